// CRI headers first: <signal.h> (pulled in by gtest) defines macros named
// like the CRI Signal enum's values.
#include "cri/handlers.h"

#include <unistd.h>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "tests/unit/temp_dir.h"

namespace crius::cri {
namespace {

using ::testing::HasSubstr;

class RuntimeConfigUpdateTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto db = store::Store::Open(dir_ + "/state.db", store::Synchronous::kNormal);
    ASSERT_TRUE(db.ok());
    rt_ = std::make_unique<Runtime>(Config(), std::move(*db));
  }

  absl::Status Update(const std::string& cidr) {
    v1::UpdateRuntimeConfigRequest req;
    req.mutable_runtime_config()->mutable_network_config()->set_pod_cidr(cidr);
    v1::UpdateRuntimeConfigResponse resp;
    return RuntimeConfigUpdate(*rt_, req, &resp);
  }

  testing::TempDir tmp_{"crius-rcu-test"};  // outlives rt_ (declared first)
  const std::string dir_ = tmp_.path();
  std::unique_ptr<Runtime> rt_;
};

TEST_F(RuntimeConfigUpdateTest, StoresAndRecoversThePodCidr) {
  ASSERT_TRUE(Update("10.244.1.0/24,fd00:1::/64").ok());
  EXPECT_EQ(rt_->pod_cidr(), "10.244.1.0/24,fd00:1::/64");
  auto db = store::Store::Open(dir_ + "/state.db", store::Synchronous::kNormal);
  ASSERT_TRUE(db.ok());
  Runtime again(Config(), std::move(*db));
  ASSERT_TRUE(again.Recover().ok());
  EXPECT_EQ(again.pod_cidr(), "10.244.1.0/24,fd00:1::/64");
}

TEST_F(RuntimeConfigUpdateTest, EmptyCidrChangesNothing) {
  ASSERT_TRUE(Update("10.0.0.0/16").ok());
  ASSERT_TRUE(Update("").ok());
  EXPECT_EQ(rt_->pod_cidr(), "10.0.0.0/16");
}

TEST_F(RuntimeConfigUpdateTest, BadCidrsAreRefusedNamingTheField) {
  for (const char* bad : {"10.0.0.0", "10.0.0.0/33", "fd00::/129", "banana/8", "10.0.0.0/-1",
                          "10.0.0.0/24,", "10.0.0.0/24,nope"}) {
    absl::Status st = Update(bad);
    EXPECT_EQ(st.code(), absl::StatusCode::kInvalidArgument) << bad;
    EXPECT_THAT(st.message(), HasSubstr("runtime_config.network_config.pod_cidr")) << bad;
  }
  EXPECT_EQ(rt_->pod_cidr(), "");
}

}  // namespace
}  // namespace crius::cri
