#include "cgroups/resources.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "tests/unit/cgroups/fake_fs.h"
#include "tests/unit/temp_dir.h"

namespace crius::cgroups {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

Machine FourCpus() {
  Machine m;
  m.cgroup_version = 2;
  m.online_cpus = {0, 1, 2, 3};
  m.online_cpus_text = "0-3";
  m.online_mems = {0};
  m.online_mems_text = "0";
  m.hugepage_sizes = {"2MB", "1GB"};
  m.swap_accounting = true;
  return m;
}

// Validate's verdict on `r`: InvalidArgument whose message starts with the
// CRI field and contains `why`.
void ExpectRefused(const Resources& r, const std::string& field, const std::string& why,
                   const Machine& m = FourCpus()) {
  absl::Status st = Validate(r, m);
  EXPECT_EQ(st.code(), absl::StatusCode::kInvalidArgument) << st;
  EXPECT_THAT(std::string(st.message()), ::testing::StartsWith("linux.resources." + field + ": "));
  EXPECT_THAT(std::string(st.message()), HasSubstr(why));
}

TEST(Validate, AcceptsEmptyAndTypicalResources) {
  EXPECT_TRUE(Validate(Resources{}, FourCpus()).ok());
  Resources r;
  r.cpu_period = 100000;
  r.cpu_quota = 50000;
  r.cpu_shares = 512;
  r.memory_limit_in_bytes = 64 << 20;
  r.memory_swap_limit_in_bytes = 64 << 20;
  r.cpuset_cpus = "0-1,3";
  r.cpuset_mems = "0";
  r.hugepage_limits = {{"2MB", 0}, {"1GB", 1 << 30}};
  r.unified = {{"memory.high", "1G"}};
  r.pids_limit = -1;
  EXPECT_TRUE(Validate(r, FourCpus()).ok()) << Validate(r, FourCpus());
}

TEST(Validate, RefusesNegativeValuesNamingTheField) {
  Resources r;
  r.cpu_shares = -1;
  ExpectRefused(r, "cpu_shares", "negative");
  r = {};
  r.cpu_period = -100000;
  ExpectRefused(r, "cpu_period", "negative");
  r = {};
  r.cpu_quota = -1;
  r.cpu_period = 100000;
  ExpectRefused(r, "cpu_quota", "negative");
  r = {};
  r.memory_limit_in_bytes = -1;
  ExpectRefused(r, "memory_limit_in_bytes", "negative");
  r = {};
  r.memory_swap_limit_in_bytes = -2;
  ExpectRefused(r, "memory_swap_limit_in_bytes", "-1 (unlimited) or not negative");
  r = {};
  r.pids_limit = -5;
  ExpectRefused(r, "pids_limit", "-1 (unlimited) or not negative");
  r = {};
  r.hugepage_limits = {{"2MB", -1}};
  ExpectRefused(r, "hugepage_limits[2MB]", "negative");
}

TEST(Validate, RefusesAQuotaWithoutAPeriod) {
  Resources r;
  r.cpu_quota = 50000;
  ExpectRefused(r, "cpu_quota", "without cpu_period");
}

TEST(Validate, RefusesAQuotaBelowTheKernelMinimum) {
  Resources r;
  r.cpu_period = 100000;
  r.cpu_quota = 999;
  ExpectRefused(r, "cpu_quota", "at least 1000");
}

TEST(Validate, RefusesAPeriodOutsideTheKernelRange) {
  Resources r;
  r.cpu_period = 999;
  ExpectRefused(r, "cpu_period", "between 1000 and 1000000");
  r.cpu_period = 1000001;
  ExpectRefused(r, "cpu_period", "between 1000 and 1000000");
  r.cpu_period = 1000;
  EXPECT_TRUE(Validate(r, FourCpus()).ok());
  r.cpu_period = 1000000;
  EXPECT_TRUE(Validate(r, FourCpus()).ok());
}

TEST(Validate, RefusesSharesOutsideTheKernelRange) {
  Resources r;
  r.cpu_shares = 1;
  ExpectRefused(r, "cpu_shares", "between 2 and 262144");
  r.cpu_shares = 262145;
  ExpectRefused(r, "cpu_shares", "between 2 and 262144");
}

TEST(Validate, RefusesACpusetThatDoesNotParse) {
  for (const char* bad : {"a", "1-", "-1", "3-1", "0,,1", "0-1:2", "+1", "1 2"}) {
    Resources r;
    r.cpuset_cpus = bad;
    ExpectRefused(r, "cpuset_cpus", "not a list");
  }
  Resources r;
  r.cpuset_mems = "zero";
  ExpectRefused(r, "cpuset_mems", "not a list");
}

TEST(Validate, RefusesACpusetOutsideTheMachine) {
  Resources r;
  r.cpuset_cpus = "2-4";
  ExpectRefused(r, "cpuset_cpus", "cpu 4, which is not online (online: 0-3)");
  r = {};
  r.cpuset_mems = "1";
  ExpectRefused(r, "cpuset_mems", "memory node 1, which is not online (online: 0)");
  r = {};
  r.cpuset_cpus = "99999999";
  ExpectRefused(r, "cpuset_cpus", "out of range");
}

TEST(Validate, RefusesSwapWithoutOrBelowTheMemoryLimit) {
  Resources r;
  r.memory_swap_limit_in_bytes = 64 << 20;
  ExpectRefused(r, "memory_swap_limit_in_bytes", "without memory_limit_in_bytes");
  r.memory_limit_in_bytes = 128 << 20;
  ExpectRefused(r, "memory_swap_limit_in_bytes", "below memory_limit_in_bytes");
  r.memory_swap_limit_in_bytes = -1;  // unlimited swap is fine
  EXPECT_TRUE(Validate(r, FourCpus()).ok());
}

TEST(Validate, RefusesAnUnknownHugepageSize) {
  Resources r;
  r.hugepage_limits = {{"3MB", 0}};
  ExpectRefused(r, "hugepage_limits[3MB]", "unknown page size (this machine has: 2MB, 1GB)");
  r.hugepage_limits = {{"2Mi", 0}};
  ExpectRefused(r, "hugepage_limits[2Mi]", "unknown page size");
}

TEST(Validate, RefusesUnifiedKeysThatAreNotPlainSettingFiles) {
  for (const char* bad : {"../memory.max", "memory.max/x", "..", "memorymax", ".max", "memory."}) {
    Resources r;
    r.unified = {{bad, "1"}};
    ExpectRefused(r, absl::StrCat("unified[", bad, "]"), "");
  }
  for (const char* reserved : {"cgroup.procs", "cgroup.kill", "cgroup.subtree_control"}) {
    Resources r;
    r.unified = {{reserved, "1"}};
    ExpectRefused(r, absl::StrCat("unified[", reserved, "]"), "managed by the runtime");
  }
}

TEST(Validate, RefusesUnifiedOnCgroupV1) {
  Machine v1 = FourCpus();
  v1.cgroup_version = 1;
  Resources r;
  r.unified = {{"memory.high", "1G"}};
  ExpectRefused(r, "unified", "needs cgroup v2", v1);
}

TEST(ParseCpuList, ReadsKernelLists) {
  EXPECT_THAT(*ParseCpuList("0-2,5\n"), ElementsAre(0, 1, 2, 5));
  EXPECT_THAT(*ParseCpuList("7"), ElementsAre(7));
  EXPECT_TRUE(ParseCpuList("")->empty());
}

TEST(SharesToWeight, MapsAsRuncAndCrunDo) {
  EXPECT_EQ(SharesToWeight(2), 1u);
  EXPECT_EQ(SharesToWeight(262144), 10000u);
  EXPECT_EQ(SharesToWeight(1024), 39u);  // kubelet's 1 cpu
  EXPECT_EQ(SharesToWeight(102), 4u);    // kubelet's 100m
}

TEST(CpuMaxValue, HasThreeForms) {
  EXPECT_EQ(CpuMaxValue(50000, 100000), "50000 100000");
  EXPECT_EQ(CpuMaxValue(0, 100000), "max 100000");
  EXPECT_EQ(CpuMaxValue(0, 0), "");
}

TEST(SwapMaxValue, IsSwapAloneOrMax) {
  EXPECT_EQ(SwapMaxValue(100, 300), "200");
  EXPECT_EQ(SwapMaxValue(100, 100), "0");
  EXPECT_EQ(SwapMaxValue(100, -1), "max");
}

TEST(HugepageSizeName, UsesTheKernelsUnits) {
  EXPECT_EQ(HugepageSizeName(2048), "2MB");
  EXPECT_EQ(HugepageSizeName(1048576), "1GB");
  EXPECT_EQ(HugepageSizeName(64), "64KB");
}

class ReadMachineTest : public ::testing::Test {
 protected:
  crius::testing::TempDir tmp_{"crius-cgroups-test"};
  std::string sys_ = tmp_.path() + "/sys";
  fake::FakeFs fs_{tmp_.path()};
};

TEST_F(ReadMachineTest, ReadsCpusNodesAndHugepageSizes) {
  fake::MakeSys(sys_);
  auto m = ReadMachine(fs_, sys_);
  ASSERT_TRUE(m.ok()) << m.status();
  EXPECT_THAT(m->online_cpus, ElementsAre(0, 1, 2, 3));
  EXPECT_EQ(m->online_cpus_text, "0-3");
  EXPECT_THAT(m->online_mems, ElementsAre(0));
  EXPECT_THAT(m->hugepage_sizes, ElementsAre("2MB", "1GB"));
}

TEST_F(ReadMachineTest, WithoutNumaOrHugepagesHasNodeZeroAndNoSizes) {
  fake::PutFile(sys_ + "/devices/system/cpu/online", "0\n");
  auto m = ReadMachine(fs_, sys_);
  ASSERT_TRUE(m.ok()) << m.status();
  EXPECT_THAT(m->online_mems, ElementsAre(0));
  EXPECT_TRUE(m->hugepage_sizes.empty());
}

TEST_F(ReadMachineTest, AMissingCpuListIsAnErrorNamingTheFile) {
  auto m = ReadMachine(fs_, sys_);
  ASSERT_FALSE(m.ok());
  EXPECT_THAT(std::string(m.status().message()), HasSubstr(sys_ + "/devices/system/cpu/online"));
}

}  // namespace
}  // namespace crius::cgroups
