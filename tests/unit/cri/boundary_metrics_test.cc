// CRI headers first: <signal.h> (pulled in by gtest) defines macros named
// like the CRI Signal enum's values.
#include "api.pb.h"
#include "cri/boundary.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "metrics/metrics.h"

namespace crius::cri {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

TEST(BoundaryMetricsTest, ServeCountsAndTimesEveryRpcInTheCurrentMetrics) {
  metrics::Metrics m(metrics::BuildInfo{.version = "t", .api_version = "v1"});
  metrics::ScopedCurrent scope(&m);
  runtime::v1::VersionRequest req;
  Serve("Version", req, [] { return absl::OkStatus(); });
  Serve("Version", req, [] { return absl::OkStatus(); });
  Serve("StopContainer", req, [] { return absl::NotFoundError("no such container"); });
  std::string text = m.Text();
  EXPECT_THAT(text, HasSubstr("crius_grpc_requests_total{code=\"OK\",method=\"Version\"} 2\n"));
  EXPECT_THAT(text, HasSubstr(
                        "crius_grpc_requests_total{code=\"NotFound\",method=\"StopContainer\"} 1\n"));
  EXPECT_THAT(text, HasSubstr("crius_grpc_request_duration_seconds_count{method=\"Version\"} 2\n"));
  EXPECT_THAT(text, Not(HasSubstr("code=\"OK\",method=\"StopContainer\"")));
}

TEST(BoundaryMetricsTest, ServeWorksWithoutMetrics) {
  ASSERT_EQ(metrics::Current(), nullptr);
  runtime::v1::VersionRequest req;
  EXPECT_TRUE(Serve("Version", req, [] { return absl::OkStatus(); }).ok());
}

}  // namespace
}  // namespace crius::cri
