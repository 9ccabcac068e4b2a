#include "metrics/metrics.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

namespace crius::metrics {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

Metrics MakeMetrics() { return Metrics(BuildInfo{.version = "1.2.3", .api_version = "v1"}); }

TEST(MetricsTest, CountsRpcsByMethodAndCode) {
  Metrics m = MakeMetrics();
  m.ObserveRpc("Version", absl::StatusCode::kOk, 0.0001);
  m.ObserveRpc("Version", absl::StatusCode::kOk, 0.0002);
  m.ObserveRpc("ExecSync", absl::StatusCode::kUnimplemented, 0.00003);
  std::string text = m.Text();
  EXPECT_THAT(text, HasSubstr("# TYPE crius_grpc_requests_total counter"));
  EXPECT_THAT(text, HasSubstr("crius_grpc_requests_total{code=\"OK\",method=\"Version\"} 2\n"));
  EXPECT_THAT(text, HasSubstr(
                        "crius_grpc_requests_total{code=\"Unimplemented\",method=\"ExecSync\"} 1\n"));
  EXPECT_THAT(text, Not(HasSubstr("code=\"OK\",method=\"ExecSync\"")));
}

TEST(MetricsTest, TimesRpcsInAHistogramByMethod) {
  Metrics m = MakeMetrics();
  m.ObserveRpc("Status", absl::StatusCode::kOk, 0.0003);        // <= 0.0005
  m.ObserveRpc("Status", absl::StatusCode::kInternal, 3.0);     // <= 5
  std::string text = m.Text();
  EXPECT_THAT(text, HasSubstr("# TYPE crius_grpc_request_duration_seconds histogram"));
  EXPECT_THAT(text, HasSubstr("crius_grpc_request_duration_seconds_count{method=\"Status\"} 2\n"));
  EXPECT_THAT(text, HasSubstr("crius_grpc_request_duration_seconds_sum{method=\"Status\"} 3.0003"));
  EXPECT_THAT(text, HasSubstr(
                        "crius_grpc_request_duration_seconds_bucket{method=\"Status\",le=\"0.00025\"} 0\n"));
  EXPECT_THAT(text, HasSubstr(
                        "crius_grpc_request_duration_seconds_bucket{method=\"Status\",le=\"0.0005\"} 1\n"));
  EXPECT_THAT(text, HasSubstr(
                        "crius_grpc_request_duration_seconds_bucket{method=\"Status\",le=\"5\"} 2\n"));
  EXPECT_THAT(text, HasSubstr(
                        "crius_grpc_request_duration_seconds_bucket{method=\"Status\",le=\"+Inf\"} 2\n"));
}

TEST(MetricsTest, BucketsSpan50MicrosecondsTo10Seconds) {
  const std::vector<double>& b = RpcDurationBuckets();
  ASSERT_FALSE(b.empty());
  EXPECT_DOUBLE_EQ(b.front(), 0.00005);
  EXPECT_DOUBLE_EQ(b.back(), 10);
  EXPECT_TRUE(std::is_sorted(b.begin(), b.end()));
  EXPECT_EQ(std::adjacent_find(b.begin(), b.end()), b.end());
}

TEST(MetricsTest, BuildInfoIsOneWithVersionLabels) {
  EXPECT_THAT(MakeMetrics().Text(),
              HasSubstr("crius_build_info{api_version=\"v1\",version=\"1.2.3\"} 1\n"));
}

TEST(MetricsTest, TextIncludesProcessMetrics) {
  std::string text = MakeMetrics().Text();
  EXPECT_THAT(text, HasSubstr("# TYPE crius_process_resident_memory_bytes gauge"));
  EXPECT_THAT(text, HasSubstr("# TYPE crius_process_open_fds gauge"));
  EXPECT_THAT(text, HasSubstr("# TYPE crius_process_threads gauge"));
  EXPECT_THAT(text, HasSubstr("# TYPE crius_process_start_time_seconds gauge"));
}

TEST(MetricsTest, CodeLabelsAreGrpcNames) {
  EXPECT_EQ(CodeLabel(absl::StatusCode::kOk), "OK");
  EXPECT_EQ(CodeLabel(absl::StatusCode::kNotFound), "NotFound");
  EXPECT_EQ(CodeLabel(absl::StatusCode::kInvalidArgument), "InvalidArgument");
  EXPECT_EQ(CodeLabel(absl::StatusCode::kCancelled), "Canceled");
  EXPECT_EQ(CodeLabel(static_cast<absl::StatusCode>(99)), "Unknown");
}

TEST(MetricsTest, CurrentIsSetOnlyWhileScoped) {
  EXPECT_EQ(Current(), nullptr);
  Metrics m = MakeMetrics();
  {
    ScopedCurrent scope(&m);
    EXPECT_EQ(Current(), &m);
  }
  EXPECT_EQ(Current(), nullptr);
}

TEST(MetricsTest, ConcurrentObservationsAreAllCounted) {
  Metrics m = MakeMetrics();
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&m, t] {
      for (int i = 0; i < 1000; ++i) {
        m.ObserveRpc(t % 2 ? "ListContainers" : "ListPodSandbox", absl::StatusCode::kOk, 0.001);
      }
    });
  }
  for (auto& t : threads) t.join();
  std::string text = m.Text();
  EXPECT_THAT(text, HasSubstr("crius_grpc_requests_total{code=\"OK\",method=\"ListContainers\"} 2000\n"));
  EXPECT_THAT(text, HasSubstr("crius_grpc_requests_total{code=\"OK\",method=\"ListPodSandbox\"} 2000\n"));
}

}  // namespace
}  // namespace crius::metrics
