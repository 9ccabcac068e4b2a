// What an image says of its guest, and how a guest is told its address.
#include "cri/unikernel.h"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

namespace crius::cri {
namespace {

image::ImageInfo Image(std::map<std::string, std::string> annotations, std::map<std::string, std::string> labels = {}) {
  image::ImageInfo i;
  i.id = "sha256:abc";
  i.repo_tags = {"registry/guest:1"};
  i.annotations = std::move(annotations);
  i.config.labels = std::move(labels);
  return i;
}

TEST(ImageGuest, AnImageWithoutTheKeysIsNoGuest) {
  absl::StatusOr<std::optional<GuestImage>> g = ImageGuest(Image({{"org.opencontainers.image.title", "x"}}));
  ASSERT_TRUE(g.ok()) << g.status();
  EXPECT_FALSE(g->has_value());
}

TEST(ImageGuest, ReadsCriusKeysFromAnnotationsOverLabels) {
  absl::StatusOr<std::optional<GuestImage>> g = ImageGuest(Image(
      {{"org.crius.unikernel.flavour", "hvt"}, {"org.crius.unikernel.binary", "/unikernel/net.hvt"},
       {"org.crius.unikernel.block", "storage=/disk.img,logs=/var/logs.img"}},
      {{"org.crius.unikernel.flavour", "spt"}, {"org.crius.unikernel.cmdline", "a b"}}));
  ASSERT_TRUE(g.ok()) << g.status();
  ASSERT_TRUE(g->has_value());
  EXPECT_EQ((*g)->flavour, "hvt");
  EXPECT_EQ((*g)->binary, "/unikernel/net.hvt");
  EXPECT_EQ((*g)->cmdline, "a b");
  EXPECT_EQ((*g)->net_args, "crius");
  ASSERT_EQ((*g)->blocks.size(), 2u);
  EXPECT_EQ((*g)->blocks[1], std::make_pair(std::string("logs"), std::string("/var/logs.img")));
}

TEST(ImageGuest, ReadsUruncKeys) {
  absl::StatusOr<std::optional<GuestImage>> g = ImageGuest(Image(
      {}, {{"com.urunc.unikernel.hypervisor", "spt"}, {"com.urunc.unikernel.binary", "/unikernel/app.spt"},
           {"com.urunc.unikernel.unikernelType", "rumprun"}, {"com.urunc.unikernel.block", "/data.img"},
           {"com.urunc.unikernel.solo5BlkDev", "rootfs"}, {"com.urunc.unikernel.cmdline", "app -v"}}));
  ASSERT_TRUE(g.ok()) << g.status();
  ASSERT_TRUE(g->has_value());
  EXPECT_EQ((*g)->flavour, "spt");
  EXPECT_EQ((*g)->net_args, "rumprun");
  EXPECT_EQ((*g)->cmdline, "app -v");
  ASSERT_EQ((*g)->blocks.size(), 1u);
  EXPECT_EQ((*g)->blocks[0], std::make_pair(std::string("rootfs"), std::string("/data.img")));
}

TEST(ImageGuest, RefusesWhatItCannotRun) {
  struct Case {
    std::map<std::string, std::string> keys;
    std::string why;
  } cases[] = {
      {{{"org.crius.unikernel.flavour", "hvt"}}, "not its guest binary (org.crius.unikernel.binary)"},
      {{{"org.crius.unikernel.flavour", "hvt"}, {"org.crius.unikernel.binary", "guest"}}, "not a clean absolute path"},
      {{{"org.crius.unikernel.flavour", "hvt"}, {"org.crius.unikernel.binary", "/a/../guest"}}, "not a clean absolute path"},
      {{{"org.crius.unikernel.flavour", "qemu"}, {"org.crius.unikernel.binary", "/g"}}, "not a solo5 tender"},
      {{{"com.urunc.unikernel.hypervisor", "firecracker"}, {"com.urunc.unikernel.binary", "/g"}}, "hypervisor \"firecracker\""},
      {{{"org.crius.unikernel.flavour", "spt"}, {"org.crius.unikernel.binary", "/g"}, {"org.crius.unikernel.block", "storage"}},
       "is not NAME=PATH"},
      {{{"org.crius.unikernel.flavour", "spt"}, {"org.crius.unikernel.binary", "/g"}, {"org.crius.unikernel.block", "s=../x"}},
       "block image \"../x\" is not a clean absolute path"},
  };
  for (const Case& c : cases) {
    absl::StatusOr<std::optional<GuestImage>> g = ImageGuest(Image(c.keys));
    ASSERT_FALSE(g.ok()) << c.why;
    EXPECT_EQ(g.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_NE(g.status().message().find(c.why), std::string::npos) << g.status();
    EXPECT_NE(g.status().message().find("registry/guest:1"), std::string::npos) << g.status();
  }
}

constexpr int64_t kMiB = 1 << 20;

// The limit less the reserve (16) and 1/256 of the rest, in whole 2 MiB.
TEST(SizeGuestMemory, TakesTheLimitLessReserveAndPageTables) {
  GuestMemory m = SizeGuestMemory("hvt", 1040 * kMiB, 128, 16);
  EXPECT_EQ(m.mib, 1020);
  EXPECT_EQ(m.tables_mib, 4);
  EXPECT_FALSE(m.capped);
  EXPECT_EQ(SizeGuestMemory("spt", 0, 128, 16).mib, 128);
  EXPECT_EQ(SizeGuestMemory("hvt", 20 * kMiB, 128, 16).mib, 2);
}

// crius-hvt takes what solo5-hvt takes, 4 GiB, as its suite asks (--mem=4096).
TEST(SizeGuestMemory, HvtGetsUpTo4GiB) {
  EXPECT_EQ(kHvtMaxMemMib, 4096);
  GuestMemory at = SizeGuestMemory("hvt", 4129 * kMiB, 128, 16);  // 4113 - 17
  EXPECT_EQ(at.mib, 4096);
  EXPECT_FALSE(at.capped);
  EXPECT_EQ(SizeGuestMemory("hvt", 4128 * kMiB, 128, 16).mib, 4094);  // 4095, whole 2 MiB
  GuestMemory above = SizeGuestMemory("hvt", 4131 * kMiB, 128, 16);   // 4098
  EXPECT_EQ(above.mib, 4096);
  EXPECT_TRUE(above.capped);
  EXPECT_EQ(SizeGuestMemory("hvt", int64_t{64} << 30, 128, 16).mib, 4096);
  EXPECT_EQ(SizeGuestMemory("hvt", 0, 4096, 16).mib, 4096);
}

TEST(SizeGuestMemory, SptHasNoCapOfItsOwn) {
  GuestMemory m = SizeGuestMemory("spt", 4131 * kMiB, 128, 16);
  EXPECT_EQ(m.mib, 4098);
  EXPECT_FALSE(m.capped);
}

TEST(GuestNetArgs, EachFormAsItsUnikernelReadsIt) {
  GuestNetwork net{.tap = "tap0", .mac = "02:00:00:00:00:01", .mtu = 1500, .cidr = "10.88.0.5/16", .gateway = "10.88.0.1"};
  std::vector<std::string> args = {"app"};
  ASSERT_TRUE(GuestNetArgs("crius", net, "service0", &args).ok());
  EXPECT_EQ(args, (std::vector<std::string>{"app", "ip=10.88.0.5/16", "gw=10.88.0.1"}));
  args = {};
  ASSERT_TRUE(GuestNetArgs("mirage", net, "service", &args).ok());
  EXPECT_EQ(args, (std::vector<std::string>{"--ipv4=10.88.0.5/16", "--ipv4-gateway=10.88.0.1"}));
  args = {};
  ASSERT_TRUE(GuestNetArgs("unikraft", net, "", &args).ok());
  EXPECT_EQ(args, (std::vector<std::string>{"netdev.ip=10.88.0.5/16:10.88.0.1"}));
  args = {"nginx", "-g", "daemon off;"};
  ASSERT_TRUE(GuestNetArgs("rumprun", net, "ukvmif0", &args).ok());
  ASSERT_EQ(args.size(), 1u);
  nlohmann::json j = nlohmann::json::parse(args[0]);
  EXPECT_EQ(j["cmdline"], "nginx -g daemon off;");
  EXPECT_EQ(j["net"]["addr"], "10.88.0.5");
  EXPECT_EQ(j["net"]["mask"], "16");
  EXPECT_EQ(j["net"]["gw"], "10.88.0.1");
  EXPECT_EQ(j["net"]["if"], "ukvmif0");
  args = {"x"};
  ASSERT_TRUE(GuestNetArgs("none", net, "", &args).ok());
  EXPECT_EQ(args, std::vector<std::string>{"x"});
  EXPECT_FALSE(GuestNetArgs("lwip", net, "", &args).ok());
  // No gateway: none is told.
  net.gateway.clear();
  args = {};
  ASSERT_TRUE(GuestNetArgs("crius", net, "", &args).ok());
  EXPECT_EQ(args, std::vector<std::string>{"ip=10.88.0.5/16"});
}

}  // namespace
}  // namespace crius::cri
