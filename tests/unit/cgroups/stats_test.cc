#include <cerrno>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "absl/time/clock.h"
#include "cgroups/driver.h"
#include "cgroups/internal.h"
#include "common/status.h"
#include "tests/unit/cgroups/fake_fs.h"
#include "tests/unit/temp_dir.h"

namespace crius::cgroups {
namespace {

using ::testing::HasSubstr;
using Op = fake::FakeFs::Op;

// Excerpts of what the kernel writes, trimmed to the fields read and a few
// neighbours.
constexpr char kV1MemoryStat[] =
    "cache 4096\nrss 8192\ninactive_file 1\npgfault 3\npgmajfault 1\n"
    "hierarchical_memory_limit 33554432\n"
    "total_cache 1048576\ntotal_rss 2097152\ntotal_inactive_file 524288\n"
    "total_pgfault 1234\ntotal_pgmajfault 12\n";
constexpr char kV1OomControl[] = "oom_kill_disable 0\nunder_oom 0\noom_kill 2\n";
constexpr char kV2CpuStat[] =
    "usage_usec 1500\nuser_usec 1000\nsystem_usec 500\nnr_periods 0\nnr_throttled 0\n"
    "throttled_usec 0\nnr_bursts 0\nburst_usec 0\n";
constexpr char kV2MemoryStat[] =
    "anon 2097152\nfile 1048576\nkernel 0\nshmem 0\ninactive_anon 0\nactive_anon 2097152\n"
    "inactive_file 524288\nactive_file 524288\npgfault 1234\npgmajfault 12\n";
constexpr char kV2MemoryEvents[] = "low 0\nhigh 0\nmax 7\noom 3\noom_kill 3\noom_group_kill 0\n";

class StatsTest : public ::testing::Test {
 protected:
  void SetUp() override { fake::MakeSys(sys_); }

  Driver& D() {
    if (!driver_) {
      auto d = Driver::Detect(fs_, root_, sys_);
      EXPECT_TRUE(d.ok()) << d.status();
      if (d.ok()) driver_ = std::move(*d);
    }
    return *driver_;
  }

  crius::testing::TempDir tmp_{"crius-cgroups-test"};
  std::string root_ = tmp_.path() + "/cgroup";
  std::string sys_ = tmp_.path() + "/sys";
  std::shared_ptr<fake::FakeFs> fs_ = std::make_shared<fake::FakeFs>(root_);
  std::unique_ptr<Driver> driver_;
};

TEST_F(StatsTest, V1ReadsCpuacctMemoryAndPids) {
  fake::MakeV1(root_);
  ASSERT_TRUE(D().Create("/c").ok());
  fake::PutFile(root_ + "/cpu,cpuacct/c/cpuacct.usage", "3000000000\n");
  fake::PutFile(root_ + "/memory/c/memory.usage_in_bytes", "4194304\n");
  fake::PutFile(root_ + "/memory/c/memory.stat", kV1MemoryStat);
  fake::PutFile(root_ + "/memory/c/memory.oom_control", kV1OomControl);
  fake::PutFile(root_ + "/pids/c/pids.current", "7\n");
  int64_t before = absl::GetCurrentTimeNanos();
  auto s = D().ReadStats("/c");
  ASSERT_TRUE(s.ok()) << s.status();
  EXPECT_GE(s->timestamp_ns, before);
  EXPECT_EQ(s->cpu_usage_ns, 3000000000u);
  EXPECT_EQ(s->memory_usage_bytes, 4194304u);
  EXPECT_EQ(s->memory_working_set_bytes, 4194304u - 524288u);  // the total_ counters win
  EXPECT_EQ(s->memory_rss_bytes, 2097152u);
  EXPECT_EQ(s->page_faults, 1234u);
  EXPECT_EQ(s->major_page_faults, 12u);
  EXPECT_EQ(*D().ProcessCount("/c"), 7u);
  EXPECT_EQ(*D().OomKills("/c"), 2u);
}

TEST_F(StatsTest, V1MissingControllersAndFilesReadAsZero) {
  // Only a memory hierarchy, and its cgroup lacks memory.stat.
  fake::PutFile(root_ + "/memory/cgroup.procs");
  fake::PutFile(root_ + "/memory/memory.usage_in_bytes", "100\n");
  ASSERT_TRUE(D().Create("/c").ok());
  ::unlink((root_ + "/memory/c/memory.stat").c_str());
  auto s = D().ReadStats("/c");
  ASSERT_TRUE(s.ok()) << s.status();
  EXPECT_EQ(s->cpu_usage_ns, 0u);
  EXPECT_EQ(*D().ProcessCount("/c"), 0u);
  EXPECT_EQ(s->memory_usage_bytes, 100u);
  EXPECT_EQ(s->memory_working_set_bytes, 100u);
}

TEST_F(StatsTest, V2ReadsCpuStatMemoryAndPids) {
  fake::MakeV2(root_);
  ASSERT_TRUE(D().Create("/c").ok());
  fake::PutFile(root_ + "/c/cpu.stat", kV2CpuStat);
  fake::PutFile(root_ + "/c/memory.current", "4194304\n");
  fake::PutFile(root_ + "/c/memory.stat", kV2MemoryStat);
  fake::PutFile(root_ + "/c/memory.events", kV2MemoryEvents);
  fake::PutFile(root_ + "/c/pids.current", "3\n");
  auto s = D().ReadStats("/c");
  ASSERT_TRUE(s.ok()) << s.status();
  EXPECT_EQ(s->cpu_usage_ns, 1500000u);
  EXPECT_EQ(s->memory_usage_bytes, 4194304u);
  EXPECT_EQ(s->memory_working_set_bytes, 4194304u - 524288u);
  EXPECT_EQ(s->memory_rss_bytes, 2097152u);
  EXPECT_EQ(s->page_faults, 1234u);
  EXPECT_EQ(s->major_page_faults, 12u);
  EXPECT_EQ(*D().ProcessCount("/c"), 3u);
  EXPECT_EQ(*D().OomKills("/c"), 3u);
}

TEST_F(StatsTest, V2WithoutMemoryAndPidsControllersReadsZero) {
  fake::MakeV2(root_);
  fake::PutFile(root_ + "/cgroup.controllers", "cpu\n");
  ASSERT_TRUE(D().Create("/c").ok());
  auto s = D().ReadStats("/c");
  ASSERT_TRUE(s.ok()) << s.status();
  EXPECT_EQ(s->memory_usage_bytes, 0u);
  EXPECT_EQ(*D().ProcessCount("/c"), 0u);
  EXPECT_EQ(*D().OomKills("/c"), 0u);
}

TEST_F(StatsTest, TheWorkingSetIsFlooredAtZero) {
  fake::MakeV2(root_);
  ASSERT_TRUE(D().Create("/c").ok());
  fake::PutFile(root_ + "/c/memory.current", "1000\n");
  fake::PutFile(root_ + "/c/memory.stat", "inactive_file 5000\n");
  EXPECT_EQ(D().ReadStats("/c")->memory_working_set_bytes, 0u);
}

TEST_F(StatsTest, AGarbledCounterIsAnErrorNamingTheFile) {
  fake::MakeV2(root_);
  ASSERT_TRUE(D().Create("/c").ok());
  fake::PutFile(root_ + "/c/memory.current", "lots\n");
  auto s = D().ReadStats("/c");
  ASSERT_FALSE(s.ok());
  EXPECT_THAT(std::string(s.status().message()),
              HasSubstr("stats of cgroup /c: " + root_ + "/c/memory.current: not a counter"));
}

TEST_F(StatsTest, AFailedReadIsAnErrorNamingTheFile) {
  fake::MakeV2(root_);
  ASSERT_TRUE(D().Create("/c").ok());
  fs_->Fail(Op::kRead, root_ + "/c/memory.stat", EIO);
  auto s = D().ReadStats("/c");
  EXPECT_EQ(ErrnoOf(s.status()), EIO);
  EXPECT_THAT(std::string(s.status().message()), HasSubstr("read " + root_ + "/c/memory.stat"));
}

TEST(ParseKeyed, SkipsLinesThatAreNotKeyAndNumber) {
  auto m = internal::ParseKeyed("a 1\nb two\n\nc\td 3\ne\t4\n  f   5  \n");
  EXPECT_EQ(m.size(), 3u);
  EXPECT_EQ(m["a"], 1u);
  EXPECT_EQ(m["e"], 4u);
  EXPECT_EQ(m["f"], 5u);
}

}  // namespace
}  // namespace crius::cgroups
