#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "cgroups/driver.h"
#include "tests/unit/cgroups/fake_fs.h"
#include "tests/unit/temp_dir.h"

namespace crius::cgroups {
namespace {

using ::testing::HasSubstr;

class DetectTest : public ::testing::Test {
 protected:
  void SetUp() override { fake::MakeSys(sys_); }

  absl::StatusOr<std::unique_ptr<Driver>> Detect() {
    return Driver::Detect(std::make_shared<fake::FakeFs>(root_), root_, sys_);
  }

  crius::testing::TempDir tmp_{"crius-cgroups-test"};
  std::string root_ = tmp_.path() + "/cgroup";
  std::string sys_ = tmp_.path() + "/sys";
};

TEST_F(DetectTest, ControllerMountsAreV1) {
  fake::MakeV1(root_);
  auto d = Detect();
  ASSERT_TRUE(d.ok()) << d.status();
  EXPECT_EQ((*d)->version(), 1);
  EXPECT_EQ((*d)->machine().cgroup_version, 1);
  EXPECT_TRUE((*d)->machine().swap_accounting);
  EXPECT_EQ((*d)->machine().online_cpus_text, "0-3");
}

TEST_F(DetectTest, AnEmptyCgroup2BesideV1ControllersIsV1) {
  fake::MakeV1(root_, /*hybrid=*/true);
  auto d = Detect();
  ASSERT_TRUE(d.ok()) << d.status();
  EXPECT_EQ((*d)->version(), 1);
}

TEST_F(DetectTest, ACgroup2RootIsV2) {
  fake::MakeV2(root_);
  auto d = Detect();
  ASSERT_TRUE(d.ok()) << d.status();
  EXPECT_EQ((*d)->version(), 2);
  EXPECT_EQ((*d)->machine().cgroup_version, 2);
  EXPECT_TRUE((*d)->machine().swap_accounting);
}

TEST_F(DetectTest, V1WithoutMemswHasNoSwapAccounting) {
  fake::MakeV1(root_, false, /*memsw=*/false);
  auto d = Detect();
  ASSERT_TRUE(d.ok()) << d.status();
  EXPECT_FALSE((*d)->machine().swap_accounting);
}

TEST_F(DetectTest, SeparateCpuAndCpuacctMountsAreTwoHierarchies) {
  // As on this project's CI machine: cpu and cpuacct mounted apart.
  fake::PutFile(root_ + "/cpu/cgroup.procs");
  fake::PutFile(root_ + "/cpuacct/cgroup.procs");
  auto fs = std::make_shared<fake::FakeFs>(root_);
  auto d = Driver::Detect(fs, root_, sys_);
  ASSERT_TRUE(d.ok()) << d.status();
  ASSERT_TRUE((*d)->Create("/a").ok());
  EXPECT_TRUE(fake::IsDir(root_ + "/cpu/a"));
  EXPECT_TRUE(fake::IsDir(root_ + "/cpuacct/a"));
}

TEST_F(DetectTest, NoHierarchyAtAllIsFailedPrecondition) {
  fake::PutDir(root_ + "/empty");  // a directory that is no mount
  auto d = Detect();
  ASSERT_FALSE(d.ok());
  EXPECT_EQ(d.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(std::string(d.status().message()), HasSubstr("detect cgroups at " + root_));
}

TEST_F(DetectTest, AMissingRootIsNotFound) {
  auto d = Detect();
  ASSERT_FALSE(d.ok());
  EXPECT_EQ(d.status().code(), absl::StatusCode::kNotFound);
}

}  // namespace
}  // namespace crius::cgroups
