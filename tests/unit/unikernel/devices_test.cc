#include "unikernel/core/devices.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdlib>
#include <string>

#include "tests/unit/unikernel/elf_fixture.h"

namespace crius::unikernel::testing {
namespace {

class TempFile {
 public:
  explicit TempFile(size_t size) {
    char tmpl[] = "/tmp/crius-blk-XXXXXX";
    int fd = mkstemp(tmpl);
    EXPECT_GE(fd, 0);
    EXPECT_EQ(ftruncate(fd, static_cast<off_t>(size)), 0);
    close(fd);
    path_ = tmpl;
  }
  ~TempFile() { unlink(path_.c_str()); }
  const char* path() const { return path_.c_str(); }

 private:
  std::string path_;
};

TEST(BlockOpen, ReportsCapacity) {
  TempFile f(8192);
  uint64_t cap = 0;
  terr e{};
  int fd = block_open(f.path(), 512, &cap, &e);
  ASSERT_GE(fd, 0) << e.msg;
  EXPECT_EQ(cap, 8192u);
  close(fd);
}

TEST(BlockOpen, RefusesAFileSmallerThanOneSector) {
  TempFile f(256);
  uint64_t cap = 0;
  terr e{};
  EXPECT_EQ(block_open(f.path(), 512, &cap, &e), -1);
  EXPECT_NE(std::string(e.msg).find("at least 1 block"), std::string::npos) << e.msg;
}

TEST(BlockOpen, RefusesAFileNotMadeOfWholeBlocks) {
  TempFile f(6144);
  uint64_t cap = 0;
  terr e{};
  EXPECT_EQ(block_open(f.path(), 4096, &cap, &e), -1);
  EXPECT_NE(std::string(e.msg).find("Backing storage size must be block aligned"),
            std::string::npos)
      << e.msg;
}

TEST(BlockOpen, NamesAMissingFile) {
  uint64_t cap = 0;
  terr e{};
  EXPECT_EQ(block_open("/nonexistent/crius-disk", 512, &cap, &e), -1);
  EXPECT_NE(std::string(e.msg).find("/nonexistent/crius-disk: open"), std::string::npos) << e.msg;
}

TEST(TapOpen, RefusesATapThatDoesNotExist) {
  terr e{};
  EXPECT_EQ(tap_open("crius-notap0", &e), -1);
  EXPECT_NE(std::string(e.msg).find("no such interface"), std::string::npos) << e.msg;
}

class DevicesAttach : public ::testing::Test {
 protected:
  tender_args Args(std::vector<dev_request> devs) {
    tender_args a{};
    for (auto& d : devs) a.dev[a.ndev++] = d;
    return a;
  }
  dev_request Req(uint32_t type, const char* name, const char* path) {
    dev_request d{};
    d.type = type;
    std::strncpy(d.name, name, MFT_NAME_MAX);
    d.path = path;
    return d;
  }
};

TEST_F(DevicesAttach, FillsInABlockDevice) {
  TempFile f(4096);
  ElfSpec s;
  s.devices = {Device("storage", MFT_DEV_BLOCK_BASIC)};
  auto p = MftPayload(s);
  auto* m = reinterpret_cast<mft*>(p.data());
  auto a = Args({Req(MFT_DEV_BLOCK_BASIC, "storage", f.path())});
  terr e{};
  ASSERT_EQ(devices_attach(m, &a, &e), 0) << e.msg;
  EXPECT_TRUE(m->e[1].attached);
  EXPECT_EQ(m->e[1].u.block_basic.capacity, 4096u);
  EXPECT_EQ(m->e[1].u.block_basic.block_size, 512);
  close(m->e[1].b.hostfd);
}

TEST_F(DevicesAttach, RefusesADeviceTheGuestDoesNotDeclare) {
  TempFile f(4096);
  ElfSpec s;
  auto p = MftPayload(s);
  auto a = Args({Req(MFT_DEV_BLOCK_BASIC, "extra", f.path())});
  terr e{};
  EXPECT_EQ(devices_attach(reinterpret_cast<mft*>(p.data()), &a, &e), -1);
  EXPECT_NE(std::string(e.msg).find("declares no block device 'extra'"), std::string::npos)
      << e.msg;
}

TEST_F(DevicesAttach, RefusesADeclaredDeviceNotGiven) {
  ElfSpec s;
  s.devices = {Device("service0", MFT_DEV_NET_BASIC)};
  auto p = MftPayload(s);
  auto a = Args({});
  terr e{};
  EXPECT_EQ(devices_attach(reinterpret_cast<mft*>(p.data()), &a, &e), -1);
  EXPECT_NE(std::string(e.msg).find("no --net:service0=TAP was given"), std::string::npos)
      << e.msg;
}

TEST_F(DevicesAttach, RefusesATypeMismatch) {
  TempFile f(4096);
  ElfSpec s;
  s.devices = {Device("d", MFT_DEV_NET_BASIC)};
  auto p = MftPayload(s);
  auto a = Args({Req(MFT_DEV_BLOCK_BASIC, "d", f.path())});
  terr e{};
  EXPECT_EQ(devices_attach(reinterpret_cast<mft*>(p.data()), &a, &e), -1);
  EXPECT_NE(std::string(e.msg).find("declares no block device 'd'"), std::string::npos) << e.msg;
}

}  // namespace
}  // namespace crius::unikernel::testing
