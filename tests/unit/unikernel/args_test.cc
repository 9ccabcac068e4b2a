#include "unikernel/core/args.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace {

struct Result {
  int rc;
  tender_args a;
  std::string error;
};

// The parsed args point into argv and its strings: both outlive the result
// until the next call.
Result Parse(std::vector<std::string> words) {
  static std::vector<std::string> storage;
  static std::vector<char*> argv;
  storage = std::move(words);
  storage.insert(storage.begin(), "crius-hvt");
  argv.clear();
  for (auto& w : storage) argv.push_back(w.data());
  argv.push_back(nullptr);
  Result r{};
  terr e{};
  r.rc = args_parse(static_cast<int>(storage.size()), argv.data(), &r.a, &e);
  r.error = e.msg;
  return r;
}

TEST(TenderArgs, DefaultsTo512MiBLikeUpstream) {
  Result r = Parse({"guest.hvt"});
  ASSERT_EQ(r.rc, 0) << r.error;
  EXPECT_EQ(r.a.mem_bytes, uint64_t{512} << 20);
  EXPECT_STREQ(r.a.elf_path, "guest.hvt");
  EXPECT_EQ(r.a.guest_argc, 0);
}

TEST(TenderArgs, ParsesDevicesMemoryAndGuestArgs) {
  Result r = Parse({"--mem=64", "--net:service0=tap0", "--block:storage=/tmp/disk",
                    "--block-sector-size:storage=4096", "--", "g.hvt", "--solo5:quiet", "x"});
  ASSERT_EQ(r.rc, 0) << r.error;
  EXPECT_EQ(r.a.mem_bytes, uint64_t{64} << 20);
  ASSERT_EQ(r.a.ndev, 2u);
  EXPECT_EQ(r.a.dev[0].type, uint32_t{MFT_DEV_NET_BASIC});
  EXPECT_STREQ(r.a.dev[0].name, "service0");
  EXPECT_STREQ(r.a.dev[0].path, "tap0");
  EXPECT_EQ(r.a.dev[1].block_size, 4096u);
  EXPECT_STREQ(r.a.elf_path, "g.hvt");
  ASSERT_EQ(r.a.guest_argc, 2);
  EXPECT_STREQ(r.a.guest_argv[0], "--solo5:quiet");
}

TEST(TenderArgs, SectorSizeMayComeFirst) {
  Result r = Parse({"--block-sector-size:storage=1024", "--block:storage=/d", "g"});
  ASSERT_EQ(r.rc, 0) << r.error;
  ASSERT_EQ(r.a.ndev, 1u);
  EXPECT_EQ(r.a.dev[0].block_size, 1024u);
  EXPECT_STREQ(r.a.dev[0].path, "/d");
}

TEST(TenderArgs, TakesTheMacOfANetDeviceEitherSideOfIt) {
  Result r = Parse({"--net-mac:service0=02:42:0A:58:00:07", "--net:service0=tap0", "g"});
  ASSERT_EQ(r.rc, 0) << r.error;
  ASSERT_EQ(r.a.ndev, 1u);
  EXPECT_EQ(r.a.dev[0].has_mac, 1);
  const uint8_t want[6] = {0x02, 0x42, 0x0a, 0x58, 0x00, 0x07};
  EXPECT_EQ(std::string(reinterpret_cast<char*>(r.a.dev[0].mac), 6), std::string(reinterpret_cast<const char*>(want), 6));
  r = Parse({"--net:service0=tap0", "g"});
  ASSERT_EQ(r.rc, 0) << r.error;
  EXPECT_EQ(r.a.dev[0].has_mac, 0);
}

TEST(TenderArgs, RefusesBadMacs) {
  for (const char* bad : {"--net-mac:n=02:42:0a:58:00", "--net-mac:n=02:42:0a:58:00:07:01", "--net-mac:n=0242.0a58.0007",
                          "--net-mac:n=03:42:0a:58:00:07", "--net-mac:n=zz:42:0a:58:00:07"}) {
    Result r = Parse({"--net:n=tap0", bad, "g"});
    EXPECT_EQ(r.rc, -1) << bad;
    EXPECT_NE(r.error.find("MAC"), std::string::npos) << r.error;
  }
  Result r = Parse({"--net-mac:n=02:42:0a:58:00:07", "g"});
  EXPECT_EQ(r.rc, -1);
  EXPECT_NE(r.error.find("without --net:n=TAP"), std::string::npos) << r.error;
  r = Parse({"--block:n=/d", "--net-mac:n=02:42:0a:58:00:07", "g"});
  EXPECT_EQ(r.rc, -1);
  EXPECT_NE(r.error.find("block device"), std::string::npos) << r.error;
}

TEST(TenderArgs, RefusesBadSectorSizesWithUpstreamsMessage) {
  for (const char* bad : {"521", "256", "0", "65536", "x"}) {
    Result r = Parse({std::string("--block-sector-size:storage=") + bad, "--block:storage=/d", "g"});
    EXPECT_EQ(r.rc, -1) << bad;
    EXPECT_NE(r.error.find("Block size must be a multiple of 2 greater than or equal 512"),
              std::string::npos)
        << r.error;
  }
}

// As upstream: --mem is whole MiB; each tender rounds and caps it itself.
TEST(TenderArgs, MemoryIsWholeMiBLeftForTheTenderToRound) {
  EXPECT_EQ(Parse({"--mem=4097", "g"}).a.mem_bytes, uint64_t{4097} << 20);
  EXPECT_EQ(Parse({"--mem=1", "g"}).a.mem_bytes, uint64_t{1} << 20);
  for (const char* bad : {"--mem=", "--mem=abc", "--mem=0", "--mem=-2", "--mem=12x",
                          "--mem=17592186044416"}) {
    std::string error = Parse({bad, "g"}).error;
    EXPECT_NE(error.find(std::string("Malformed argument to --mem: ") + bad), std::string::npos)
        << error;
  }
}

TEST(TenderArgs, RefusesMalformedOptions) {
  EXPECT_NE(Parse({"--mem=abc", "g"}).error.find("--mem=abc"), std::string::npos);
  EXPECT_NE(Parse({"--mem=0", "g"}).error.find("--mem=0"), std::string::npos);
  EXPECT_NE(Parse({"--net:service0", "g"}).error.find("NAME=VALUE"), std::string::npos);
  EXPECT_NE(Parse({"--net:ser-vice=tap0", "g"}).error.find("letters and digits"),
            std::string::npos);
  EXPECT_NE(Parse({"--net:a=t0", "--net:a=t1", "g"}).error.find("given twice"), std::string::npos);
  EXPECT_NE(Parse({"--net:a=t0", "--block:a=/d", "g"}).error.find("already given as a net device"),
            std::string::npos);
  EXPECT_NE(Parse({"--bogus", "g"}).error.find("unknown option --bogus"), std::string::npos);
  EXPECT_NE(Parse({}).error.find("no guest ELF"), std::string::npos);
  EXPECT_NE(Parse({"--block-sector-size:s=512", "g"}).error.find("without --block:s"),
            std::string::npos);
}

TEST(TenderArgs, JoinsTheGuestCommandLine) {
  Result r = Parse({"g", "a", "bc", "d"});
  ASSERT_EQ(r.rc, 0);
  char buf[16];
  terr e{};
  ASSERT_EQ(args_guest_cmdline(&r.a, buf, sizeof buf, &e), 0);
  EXPECT_STREQ(buf, "a bc d");
  EXPECT_EQ(args_guest_cmdline(&r.a, buf, 6, &e), -1);
  EXPECT_NE(std::string(e.msg).find("too long"), std::string::npos);
}

}  // namespace
