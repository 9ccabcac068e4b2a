#include <signal.h>
#include <sys/stat.h>

#include <cerrno>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "cgroups/device_program.h"
#include "cgroups/driver.h"
#include "common/status.h"
#include "tests/unit/cgroups/fake_fs.h"
#include "tests/unit/temp_dir.h"

namespace crius::cgroups {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::UnorderedElementsAre;
using Op = fake::FakeFs::Op;

class V2Test : public ::testing::Test {
 protected:
  void SetUp() override {
    fake::MakeSys(sys_);
    fake::MakeV2(root_, swap_, kill_);
  }

  Driver& D() {
    if (!driver_) {
      auto d = Driver::Detect(fs_, root_, sys_);
      EXPECT_TRUE(d.ok()) << d.status();
      if (d.ok()) driver_ = std::move(*d);
    }
    return *driver_;
  }

  // Creates `path` and forgets the writes that took.
  void Make(const std::string& path) {
    ASSERT_TRUE(D().Create(path).ok());
    fs_->writes.clear();
  }

  std::string Msg(const absl::Status& st) { return std::string(st.message()); }

  bool swap_ = true;
  bool kill_ = true;
  crius::testing::TempDir tmp_{"crius-cgroups-test"};
  std::string root_ = tmp_.path() + "/cgroup";
  std::string sys_ = tmp_.path() + "/sys";
  std::shared_ptr<fake::FakeFs> fs_ = std::make_shared<fake::FakeFs>(root_);
  std::unique_ptr<Driver> driver_;
};

TEST_F(V2Test, CreateEnablesControllersInEachAncestorFromTheRootDown) {
  ASSERT_TRUE(D().Create("/kubepods/pod1/ctr").ok());
  const std::string all = "+cpuset +cpu +io +memory +hugetlb +pids";
  EXPECT_THAT(fs_->WritesUnder(root_),
              ElementsAre("/cgroup.subtree_control=" + all, "/kubepods/cgroup.subtree_control=" + all,
                          "/kubepods/pod1/cgroup.subtree_control=" + all));
  // The leaf holds processes, so it passes nothing down; but it has them all.
  EXPECT_EQ(fake::GetFile(root_ + "/kubepods/pod1/ctr/cgroup.subtree_control"), "");
  EXPECT_EQ(fake::GetFile(root_ + "/kubepods/pod1/ctr/cgroup.controllers"), "cpu cpuset hugetlb io memory pids");
  EXPECT_TRUE(fake::IsDir(root_ + "/kubepods/pod1/ctr"));
}

TEST_F(V2Test, CreateAddsOnlyTheControllersMissingFromSubtreeControl) {
  fake::PutFile(root_ + "/cgroup.subtree_control", "cpu memory");
  ASSERT_TRUE(D().Create("/a").ok());
  EXPECT_THAT(fs_->WritesUnder(root_), ElementsAre("/cgroup.subtree_control=+cpuset +io +hugetlb +pids"));
  EXPECT_TRUE(D().Create("/a").ok());  // a second time: nothing left to enable
  EXPECT_EQ(fs_->writes.size(), 1u);
}

TEST_F(V2Test, CreateEnablesOnlyControllersTheParentHas) {
  fake::PutFile(root_ + "/cgroup.controllers", "cpu memory pids rdma\n");
  ASSERT_TRUE(D().Create("/a").ok());
  EXPECT_THAT(fs_->WritesUnder(root_), ElementsAre("/cgroup.subtree_control=+cpu +memory +pids"));
}

TEST_F(V2Test, AParentWithProcessesCannotPassControllersDownAndCreateUndoes) {
  ASSERT_TRUE(D().Create("/busy").ok());
  fs_->Fail(Op::kWrite, root_ + "/busy/x/cgroup.subtree_control", EBUSY);
  absl::Status st = D().Create("/busy/x/y");
  EXPECT_EQ(ErrnoOf(st), EBUSY);
  EXPECT_THAT(Msg(st), HasSubstr("create cgroup /busy/x/y: enable controllers (a cgroup with processes cannot "
                                 "pass controllers down): write " + root_ + "/busy/x/cgroup.subtree_control"));
  EXPECT_FALSE(fake::IsDir(root_ + "/busy/x"));
  EXPECT_TRUE(fake::IsDir(root_ + "/busy"));  // it was there before
}

TEST_F(V2Test, ApplyTranslatesEverySetting) {
  Make("/c");
  Resources r;
  r.cpu_shares = 1024;
  r.cpu_period = 100000;
  r.cpu_quota = 50000;
  r.memory_limit_in_bytes = 64 << 20;
  r.memory_swap_limit_in_bytes = 96 << 20;
  r.cpuset_cpus = "1-2";
  r.cpuset_mems = "0";
  r.pids_limit = 100;
  r.hugepage_limits = {{"2MB", 4 << 20}, {"1GB", 0}};
  r.unified = {{"memory.high", "48M"}};
  absl::Status st = D().Apply("/c", r);
  ASSERT_TRUE(st.ok()) << st;
  EXPECT_THAT(fs_->WritesUnder(root_ + "/c/"),
              ElementsAre("cpu.weight=39", "cpu.max=50000 100000", "memory.max=67108864",
                          "memory.swap.max=33554432", "cpuset.cpus=1-2", "cpuset.mems=0", "pids.max=100",
                          "hugetlb.1GB.max=0", "hugetlb.2MB.max=4194304", "memory.high=48M"));
}

TEST_F(V2Test, APeriodAloneLiftsTheQuota) {
  Make("/c");
  Resources r;
  r.cpu_period = 100000;
  ASSERT_TRUE(D().Apply("/c", r).ok());
  EXPECT_THAT(fs_->WritesUnder(root_ + "/c/"), ElementsAre("cpu.max=max 100000"));
}

TEST_F(V2Test, SwapIsTheDifferenceOrMax) {
  Make("/c");
  Resources r;
  r.memory_limit_in_bytes = 64 << 20;
  r.memory_swap_limit_in_bytes = 64 << 20;
  ASSERT_TRUE(D().Apply("/c", r).ok());
  r.memory_swap_limit_in_bytes = -1;
  ASSERT_TRUE(D().Apply("/c", r).ok());
  EXPECT_THAT(fs_->WritesUnder(root_ + "/c/"), ElementsAre("memory.max=67108864", "memory.swap.max=0",
                                                           "memory.max=67108864", "memory.swap.max=max"));
}

TEST_F(V2Test, UnlimitedPidsAreMax) {
  Make("/c");
  Resources r;
  r.pids_limit = -1;
  ASSERT_TRUE(D().Apply("/c", r).ok());
  EXPECT_THAT(fs_->WritesUnder(root_ + "/c/"), ElementsAre("pids.max=max"));
}

class V2NoSwapTest : public V2Test {
 protected:
  V2NoSwapTest() { swap_ = false; }
};

TEST_F(V2NoSwapTest, WithoutSwapAccountingOnlyNoSwapIsHonoured) {
  Make("/c");
  Resources r;
  r.memory_limit_in_bytes = 64 << 20;
  r.memory_swap_limit_in_bytes = 64 << 20;
  ASSERT_TRUE(D().Apply("/c", r).ok());
  EXPECT_THAT(fs_->WritesUnder(root_ + "/c/"), ElementsAre("memory.max=67108864"));
  r.memory_swap_limit_in_bytes = 128 << 20;
  absl::Status st = D().Apply("/c", r);
  EXPECT_EQ(st.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(Msg(st), HasSubstr("linux.resources.memory_swap_limit_in_bytes: this kernel has no swap accounting"));
}

TEST_F(V2Test, AnUnknownUnifiedFileIsRefusedNamingTheKey) {
  Make("/c");
  Resources r;
  r.unified = {{"memory.nosuch", "1"}};
  absl::Status st = D().Apply("/c", r);
  EXPECT_EQ(st.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(Msg(st), HasSubstr("linux.resources.unified[memory.nosuch]: no such file"));
}

TEST_F(V2Test, ASettingOfAControllerNotEnabledNamesFieldAndController) {
  fake::PutFile(root_ + "/cgroup.controllers", "cpu memory\n");
  Make("/c");
  Resources r;
  r.pids_limit = 10;
  absl::Status st = D().Apply("/c", r);
  EXPECT_EQ(st.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(Msg(st), HasSubstr("linux.resources.pids_limit: the pids controller is not available here"));
}

TEST_F(V2Test, AFailedWriteNamesTheCgroupAndTheFileAndKeepsTheErrno) {
  Make("/c");
  fs_->Fail(Op::kWrite, root_ + "/c/cpu.max", EINVAL);
  Resources r;
  r.cpu_period = 100000;
  r.cpu_quota = 200000;
  absl::Status st = D().Apply("/c", r);
  EXPECT_EQ(ErrnoOf(st), EINVAL);
  EXPECT_THAT(Msg(st), HasSubstr("apply resources to cgroup /c: write " + root_ + "/c/cpu.max"));
}

TEST_F(V2Test, ApplyToAMissingCgroupIsNotFound) {
  Resources r;
  r.pids_limit = 10;
  EXPECT_EQ(D().Apply("/never", r).code(), absl::StatusCode::kNotFound);
}

TEST_F(V2Test, AddProcessWritesTheOneCgroupProcs) {
  Make("/c");
  ASSERT_TRUE(D().AddProcess("/c", 77).ok());
  EXPECT_THAT(fs_->WritesUnder(root_), ElementsAre("/c/cgroup.procs=77"));
}

TEST_F(V2Test, OpenDirGivesTheCgroupDirectory) {
  Make("/c");
  auto fd = D().OpenDir("/c");
  ASSERT_TRUE(fd.ok()) << fd.status();
  struct stat st;
  ASSERT_EQ(::fstat(fd->get(), &st), 0);
  EXPECT_TRUE(S_ISDIR(st.st_mode));
  EXPECT_EQ(D().OpenDir("/never").status().code(), absl::StatusCode::kNotFound);
}

TEST_F(V2Test, RemoveGoesLeafFirst) {
  Make("/pod/c/sub");
  ASSERT_TRUE(D().Remove("/pod/c").ok());
  EXPECT_THAT(fs_->rmdirs, ElementsAre(root_ + "/pod/c/sub", root_ + "/pod/c"));
  EXPECT_TRUE(fake::IsDir(root_ + "/pod"));
}

TEST_F(V2Test, RemovingACgroupWithProcessesIsFailedPrecondition) {
  Make("/c");
  fake::PutFile(root_ + "/c/cgroup.procs", "5\n6\n");
  absl::Status st = D().Remove("/c");
  EXPECT_EQ(st.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(Msg(st), HasSubstr("remove cgroup /c: cgroup " + root_ + "/c still has processes: 5 6"));
}

TEST_F(V2Test, KillAllUsesCgroupKill) {
  Make("/c/sub");
  fake::PutFile(root_ + "/c/cgroup.procs", "5\n");
  fake::PutFile(root_ + "/c/sub/cgroup.procs", "6\n");
  ASSERT_TRUE(D().KillAll("/c").ok());
  EXPECT_THAT(fs_->WritesUnder(root_), ElementsAre("/c/cgroup.kill=1"));
  EXPECT_THAT(fs_->kills, IsEmpty());
  EXPECT_THAT(*D().Pids("/c"), IsEmpty());
}

class V2NoKillTest : public V2Test {
 protected:
  V2NoKillTest() { kill_ = false; }
};

TEST_F(V2NoKillTest, WithoutCgroupKillKillAllFreezesKillsAndThaws) {
  Make("/c");
  fake::PutFile(root_ + "/c/cgroup.procs", "5\n6\n");
  ASSERT_TRUE(D().KillAll("/c").ok());
  EXPECT_THAT(fs_->WritesUnder(root_ + "/c/"), ElementsAre("cgroup.freeze=1", "cgroup.freeze=0"));
  EXPECT_THAT(fs_->kills, UnorderedElementsAre(std::pair<pid_t, int>(5, SIGKILL), std::pair<pid_t, int>(6, SIGKILL)));
  EXPECT_THAT(*D().Pids("/c"), IsEmpty());
}

TEST_F(V2Test, PidsOfAMissingCgroupAreNotFound) {
  EXPECT_EQ(D().Pids("/never").status().code(), absl::StatusCode::kNotFound);
}

// What the program allows is device_program_test's; here, that the driver
// attaches the default list plus the rules given, to the cgroup's directory.
std::string Bytes(const DeviceProgram& p) {
  return std::string(reinterpret_cast<const char*>(p.insns.data()), p.insns.size() * sizeof(bpf_insn));
}

TEST_F(V2Test, TheDevicePolicyIsABpfProgramOnTheCgroup) {
  Make("/pod/ctr");
  std::vector<DeviceRule> rules = DefaultAllowedDevices();
  rules.push_back({'b', 8, 0, "r"});
  auto want = BuildDeviceProgram(rules);
  ASSERT_TRUE(want.ok());
  ASSERT_TRUE(D().SetDevicePolicy("/pod/ctr", {{'b', 8, 0, "r"}}).ok());
  ASSERT_EQ(fs_->device_programs.count(root_ + "/pod/ctr"), 1u);
  EXPECT_EQ(Bytes(fs_->device_programs[root_ + "/pod/ctr"]), Bytes(*want));
  EXPECT_THAT(fs_->writes, IsEmpty());  // no devices.* files on v2
}

TEST_F(V2Test, DevicePolicyFailuresNameTheCgroup) {
  Make("/pod/ctr");
  absl::Status missing = D().SetDevicePolicy("/pod/gone", {});
  EXPECT_EQ(missing.code(), absl::StatusCode::kNotFound) << missing;
  absl::Status bad = D().SetDevicePolicy("/pod/ctr", {{'c', 1, 3, "rwx"}});
  EXPECT_EQ(bad.code(), absl::StatusCode::kInvalidArgument) << bad;
  EXPECT_THAT(Msg(bad), HasSubstr("device policy of cgroup /pod/ctr"));
  fs_->Fail(Op::kAttach, root_ + "/pod/ctr", EPERM);
  absl::Status refused = D().SetDevicePolicy("/pod/ctr", {});
  EXPECT_EQ(refused.code(), absl::StatusCode::kPermissionDenied) << refused;
  EXPECT_THAT(Msg(refused), HasSubstr("device policy of cgroup /pod/ctr"));
  EXPECT_THAT(fs_->device_programs, IsEmpty());
}

}  // namespace
}  // namespace crius::cgroups
