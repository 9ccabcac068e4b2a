#include <signal.h>

#include <cerrno>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

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

class V1Test : public ::testing::Test {
 protected:
  void SetUp() override {
    fake::MakeSys(sys_);
    fake::MakeV1(root_, /*hybrid=*/true, memsw_);
  }

  // Detects after the test has shaped the tree.
  Driver& D() {
    if (!driver_) {
      auto d = Driver::Detect(fs_, root_, sys_);
      EXPECT_TRUE(d.ok()) << d.status();
      if (d.ok()) driver_ = std::move(*d);
    }
    return *driver_;
  }

  std::string Msg(const absl::Status& st) { return std::string(st.message()); }

  bool memsw_ = true;
  crius::testing::TempDir tmp_{"crius-cgroups-test"};
  std::string root_ = tmp_.path() + "/cgroup";
  std::string sys_ = tmp_.path() + "/sys";
  std::shared_ptr<fake::FakeFs> fs_ = std::make_shared<fake::FakeFs>(root_);
  std::unique_ptr<Driver> driver_;
};

const char* kHierarchies[] = {"cpu,cpuacct", "cpuset", "devices", "freezer", "hugetlb", "memory", "pids"};

TEST_F(V1Test, CreateMakesEveryLevelInEveryControllerHierarchy) {
  ASSERT_TRUE(D().Create("/kubepods/pod1/ctr").ok());
  for (const char* h : kHierarchies) {
    EXPECT_TRUE(fake::IsDir(root_ + "/" + h + "/kubepods/pod1/ctr")) << h;
  }
  // Not in the named systemd hierarchy, nor in the hybrid's empty cgroup2.
  EXPECT_FALSE(fake::IsDir(root_ + "/systemd/kubepods"));
  EXPECT_FALSE(fake::IsDir(root_ + "/unified/kubepods"));
}

TEST_F(V1Test, CreateGivesEachNewCpusetLevelItsParentsCpusAndMems) {
  fake::PutFile(root_ + "/cpuset/kubepods/cgroup.procs");
  fake::PutFile(root_ + "/cpuset/kubepods/cpuset.cpus", "1-2\n");
  fake::PutFile(root_ + "/cpuset/kubepods/cpuset.mems", "");  // left empty by someone
  ASSERT_TRUE(D().Create("/kubepods/pod1").ok());
  EXPECT_EQ(fake::GetFile(root_ + "/cpuset/kubepods/cpuset.cpus"), "1-2\n");  // already set: kept
  EXPECT_EQ(fake::GetFile(root_ + "/cpuset/kubepods/cpuset.mems"), "0");
  EXPECT_EQ(fake::GetFile(root_ + "/cpuset/kubepods/pod1/cpuset.cpus"), "1-2");
  EXPECT_EQ(fake::GetFile(root_ + "/cpuset/kubepods/pod1/cpuset.mems"), "0");
}

TEST_F(V1Test, CreateOfAnExistingCgroupIsFine) {
  ASSERT_TRUE(D().Create("/kubepods/pod1").ok());
  EXPECT_TRUE(D().Create("/kubepods/pod1").ok());
}

TEST_F(V1Test, AFailedCreateRemovesTheLevelsItMade) {
  fs_->Fail(Op::kMkdir, root_ + "/memory/kubepods/pod1", EACCES);
  absl::Status st = D().Create("/kubepods/pod1");
  EXPECT_EQ(st.code(), absl::StatusCode::kPermissionDenied);
  EXPECT_THAT(Msg(st), HasSubstr("create cgroup /kubepods/pod1: mkdir " + root_ + "/memory/kubepods/pod1"));
  for (const char* h : kHierarchies) EXPECT_FALSE(fake::IsDir(root_ + "/" + h + "/kubepods")) << h;
}

TEST_F(V1Test, CreateRefusesPathsThatAreNotCleanAndAbsolute) {
  for (const char* bad : {"", "kubepods", "/", "/a/../b", "/a//b", "/a/./b", "/a/"}) {
    absl::Status st = D().Create(bad);
    EXPECT_EQ(st.code(), absl::StatusCode::kInvalidArgument) << bad;
  }
}

TEST_F(V1Test, ApplyWritesEachSettingToItsControllersFile) {
  ASSERT_TRUE(D().Create("/c").ok());
  Resources r;
  r.cpu_shares = 512;
  r.cpu_period = 100000;
  r.cpu_quota = 50000;
  r.memory_limit_in_bytes = 64 << 20;
  r.memory_swap_limit_in_bytes = 128 << 20;
  r.cpuset_cpus = "1";
  r.cpuset_mems = "0";
  r.pids_limit = 100;
  r.hugepage_limits = {{"2MB", 4 << 20}};
  fs_->writes.clear();
  absl::Status st = D().Apply("/c", r);
  ASSERT_TRUE(st.ok()) << st;
  // The memory limit goes first: memsw does not grow past the current
  // (unlimited) limit.
  EXPECT_THAT(fs_->WritesUnder(root_ + "/"),
              ElementsAre("cpu,cpuacct/c/cpu.shares=512", "cpu,cpuacct/c/cpu.cfs_period_us=100000",
                          "cpu,cpuacct/c/cpu.cfs_quota_us=50000", "memory/c/memory.limit_in_bytes=67108864",
                          "memory/c/memory.memsw.limit_in_bytes=134217728", "cpuset/c/cpuset.cpus=1",
                          "cpuset/c/cpuset.mems=0", "pids/c/pids.max=100",
                          "hugetlb/c/hugetlb.2MB.limit_in_bytes=4194304"));
}

TEST_F(V1Test, ApplyWritesOnlyWhatIsSet) {
  ASSERT_TRUE(D().Create("/c").ok());
  Resources r;
  r.pids_limit = -1;
  fs_->writes.clear();
  ASSERT_TRUE(D().Apply("/c", r).ok());
  EXPECT_THAT(fs_->WritesUnder(root_ + "/"), ElementsAre("pids/c/pids.max=max"));
}

TEST_F(V1Test, RaisingMemswPastTheCurrentLimitWritesMemswFirst) {
  ASSERT_TRUE(D().Create("/c").ok());
  fake::PutFile(root_ + "/memory/c/memory.limit_in_bytes", "33554432\n");
  Resources r;
  r.memory_limit_in_bytes = 64 << 20;
  r.memory_swap_limit_in_bytes = 64 << 20;
  fs_->writes.clear();
  ASSERT_TRUE(D().Apply("/c", r).ok());
  EXPECT_THAT(fs_->WritesUnder(root_ + "/memory/c/"),
              ElementsAre("memory.memsw.limit_in_bytes=67108864", "memory.limit_in_bytes=67108864"));
}

TEST_F(V1Test, UnlimitedSwapIsMinusOneWrittenFirst) {
  ASSERT_TRUE(D().Create("/c").ok());
  Resources r;
  r.memory_limit_in_bytes = 64 << 20;
  r.memory_swap_limit_in_bytes = -1;
  fs_->writes.clear();
  ASSERT_TRUE(D().Apply("/c", r).ok());
  EXPECT_THAT(fs_->WritesUnder(root_ + "/memory/c/"),
              ElementsAre("memory.memsw.limit_in_bytes=-1", "memory.limit_in_bytes=67108864"));
}

class V1NoSwapAccountingTest : public V1Test {
 protected:
  V1NoSwapAccountingTest() { memsw_ = false; }
};

TEST_F(V1NoSwapAccountingTest, SwapEqualToTheLimitIsHonouredByTheLimitAlone) {
  ASSERT_TRUE(D().Create("/c").ok());
  Resources r;
  r.memory_limit_in_bytes = 64 << 20;
  r.memory_swap_limit_in_bytes = 64 << 20;
  fs_->writes.clear();
  ASSERT_TRUE(D().Apply("/c", r).ok());
  EXPECT_THAT(fs_->WritesUnder(root_ + "/memory/c/"), ElementsAre("memory.limit_in_bytes=67108864"));
}

TEST_F(V1NoSwapAccountingTest, MoreSwapThanTheLimitIsRefusedClearly) {
  ASSERT_TRUE(D().Create("/c").ok());
  Resources r;
  r.memory_limit_in_bytes = 64 << 20;
  r.memory_swap_limit_in_bytes = 128 << 20;
  absl::Status st = D().Apply("/c", r);
  EXPECT_EQ(st.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(Msg(st), HasSubstr("linux.resources.memory_swap_limit_in_bytes: this kernel has no swap accounting"));
}

TEST_F(V1Test, UnifiedSettingsAreRefusedOnV1) {
  ASSERT_TRUE(D().Create("/c").ok());
  Resources r;
  r.unified = {{"memory.high", "1G"}};
  fs_->writes.clear();
  absl::Status st = D().Apply("/c", r);
  EXPECT_EQ(st.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(Msg(st), HasSubstr("linux.resources.unified: needs cgroup v2"));
  EXPECT_THAT(fs_->writes, IsEmpty());
}

TEST_F(V1Test, InvalidResourcesWriteNothing) {
  ASSERT_TRUE(D().Create("/c").ok());
  Resources r;
  r.pids_limit = 10;
  r.cpuset_cpus = "7";
  fs_->writes.clear();
  EXPECT_EQ(D().Apply("/c", r).code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(fs_->writes, IsEmpty());
}

TEST_F(V1Test, WithoutTheHugetlbControllerZeroLimitsAreSkippedAndOthersRefused) {
  ASSERT_EQ(RemoveTree(root_ + "/hugetlb"), absl::OkStatus());
  ASSERT_TRUE(D().Create("/c").ok());
  Resources r;
  r.hugepage_limits = {{"2MB", 0}, {"1GB", 0}};
  EXPECT_TRUE(D().Apply("/c", r).ok());
  r.hugepage_limits = {{"2MB", 2 << 20}};
  absl::Status st = D().Apply("/c", r);
  EXPECT_EQ(st.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(Msg(st), HasSubstr("linux.resources.hugepage_limits[2MB]: the hugetlb controller is not mounted"));
}

TEST_F(V1Test, APeriodTheKernelRefusesBeforeTheQuotaIsRetriedAfterIt) {
  ASSERT_TRUE(D().Create("/c").ok());
  fs_->Fail(Op::kWrite, root_ + "/cpu,cpuacct/c/cpu.cfs_period_us", EINVAL, 1);
  Resources r;
  r.cpu_period = 10000;
  r.cpu_quota = 5000;
  fs_->writes.clear();
  ASSERT_TRUE(D().Apply("/c", r).ok());
  EXPECT_THAT(fs_->WritesUnder(root_ + "/cpu,cpuacct/c/"),
              ElementsAre("cpu.cfs_quota_us=5000", "cpu.cfs_period_us=10000"));
}

TEST_F(V1Test, AFailedWriteNamesTheCgroupAndTheFileAndKeepsTheErrno) {
  ASSERT_TRUE(D().Create("/c").ok());
  std::string file = root_ + "/memory/c/memory.limit_in_bytes";
  fs_->Fail(Op::kWrite, file, EBUSY);
  Resources r;
  r.memory_limit_in_bytes = 64 << 20;
  absl::Status st = D().Apply("/c", r);
  EXPECT_EQ(ErrnoOf(st), EBUSY);
  EXPECT_THAT(Msg(st), HasSubstr("apply resources to cgroup /c: write " + file));
}

TEST_F(V1Test, AddProcessJoinsEveryHierarchyOnce) {
  ASSERT_TRUE(D().Create("/c").ok());
  fs_->writes.clear();
  ASSERT_TRUE(D().AddProcess("/c", 1234).ok());
  std::vector<std::string> expected;
  for (const char* h : kHierarchies) expected.push_back(std::string(h) + "/c/cgroup.procs=1234");
  EXPECT_THAT(fs_->WritesUnder(root_ + "/"), ::testing::UnorderedElementsAreArray(expected));
}

TEST_F(V1Test, OpenDirIsUnimplemented) {
  ASSERT_TRUE(D().Create("/c").ok());
  EXPECT_EQ(D().OpenDir("/c").status().code(), absl::StatusCode::kUnimplemented);
}

TEST_F(V1Test, RemoveGoesLeafFirstInEveryHierarchyAndKeepsTheParent) {
  ASSERT_TRUE(D().Create("/pod/c/sub").ok());
  ASSERT_TRUE(D().Remove("/pod/c").ok());
  for (const char* h : kHierarchies) {
    std::string base = root_ + "/" + h;
    EXPECT_FALSE(fake::IsDir(base + "/pod/c")) << h;
    EXPECT_TRUE(fake::IsDir(base + "/pod")) << h;
    auto sub = std::find(fs_->rmdirs.begin(), fs_->rmdirs.end(), base + "/pod/c/sub");
    auto c = std::find(fs_->rmdirs.begin(), fs_->rmdirs.end(), base + "/pod/c");
    EXPECT_LT(sub, c) << h;
  }
}

TEST_F(V1Test, RemovingAMissingCgroupIsFine) { EXPECT_TRUE(D().Remove("/never").ok()); }

TEST_F(V1Test, RemovingACgroupWithProcessesNamesItAndRemovesTheRest) {
  ASSERT_TRUE(D().Create("/c").ok());
  fake::PutFile(root_ + "/memory/c/cgroup.procs", "42\n");
  absl::Status st = D().Remove("/c");
  EXPECT_EQ(st.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(Msg(st), HasSubstr("remove cgroup /c: cgroup " + root_ + "/memory/c still has processes: 42"));
  EXPECT_TRUE(fake::IsDir(root_ + "/memory/c"));
  EXPECT_FALSE(fake::IsDir(root_ + "/pids/c"));
}

TEST_F(V1Test, AMomentaryEbusyWithoutProcessesIsRetried) {
  ASSERT_TRUE(D().Create("/c").ok());
  fs_->Fail(Op::kRmdir, root_ + "/pids/c", EBUSY, 2);
  EXPECT_TRUE(D().Remove("/c").ok());
  EXPECT_FALSE(fake::IsDir(root_ + "/pids/c"));
  EXPECT_GT(fs_->slept, absl::ZeroDuration());
}

TEST_F(V1Test, PidsUnitesHierarchiesAndCgroupsBelow) {
  ASSERT_TRUE(D().Create("/c/sub").ok());
  fake::PutFile(root_ + "/memory/c/cgroup.procs", "1\n2\n");
  fake::PutFile(root_ + "/pids/c/cgroup.procs", "2\n3\n");
  fake::PutFile(root_ + "/pids/c/sub/cgroup.procs", "4\n");
  auto pids = D().Pids("/c");
  ASSERT_TRUE(pids.ok()) << pids.status();
  EXPECT_THAT(*pids, ElementsAre(1, 2, 3, 4));
  EXPECT_EQ(D().Pids("/never").status().code(), absl::StatusCode::kNotFound);
}

TEST_F(V1Test, KillAllFreezesKillsAndThaws) {
  ASSERT_TRUE(D().Create("/c").ok());
  for (const char* h : kHierarchies) fake::PutFile(root_ + "/" + h + "/c/cgroup.procs", "10\n11\n");
  fs_->writes.clear();
  ASSERT_TRUE(D().KillAll("/c").ok());
  EXPECT_THAT(fs_->kills, UnorderedElementsAre(std::pair<pid_t, int>(10, SIGKILL), std::pair<pid_t, int>(11, SIGKILL)));
  EXPECT_THAT(fs_->WritesUnder(root_ + "/freezer/c/"), ElementsAre("freezer.state=FROZEN", "freezer.state=THAWED"));
  EXPECT_THAT(*D().Pids("/c"), IsEmpty());
}

TEST_F(V1Test, KillAllReportsSurvivors) {
  ASSERT_TRUE(D().Create("/c").ok());
  fake::PutFile(root_ + "/pids/c/cgroup.procs", "10\n");
  fs_->kill_works = false;
  absl::Status st = D().KillAll("/c");
  EXPECT_EQ(st.code(), absl::StatusCode::kDeadlineExceeded);
  EXPECT_THAT(Msg(st), HasSubstr("kill processes of cgroup /c: processes left after SIGKILL: 10"));
}

TEST_F(V1Test, KillAllOfAMissingCgroupIsFine) { EXPECT_TRUE(D().KillAll("/never").ok()); }

TEST_F(V1Test, StatsOfAMissingCgroupAreNotFound) {
  EXPECT_EQ(D().ReadStats("/never").status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(D().OomKills("/never").status().code(), absl::StatusCode::kNotFound);
}

}  // namespace
}  // namespace crius::cgroups
