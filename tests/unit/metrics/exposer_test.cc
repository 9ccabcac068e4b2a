#include "metrics/exposer.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <thread>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "metrics/metrics.h"

namespace crius::metrics {
namespace {

using ::testing::HasSubstr;
using ::testing::StartsWith;

// A loopback TCP socket bound to a kernel-chosen port; listening if asked.
struct BoundSocket {
  explicit BoundSocket(bool listen) {
    fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    EXPECT_EQ(::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
    socklen_t len = sizeof a;
    ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
    port = ntohs(a.sin_port);
    if (listen) {
      EXPECT_EQ(::listen(fd, 1), 0);
    }
  }
  ~BoundSocket() { ::close(fd); }
  int fd;
  int port;
};

int FreePort() { return BoundSocket(false).port; }

// One HTTP/1.0 GET to 127.0.0.1:port; the whole answer.
std::string HttpGet(int port, const std::string& path) {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(port);
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
    ::close(fd);
    return "connect failed";
  }
  std::string req = "GET " + path + " HTTP/1.0\r\nHost: localhost\r\n\r\n";
  EXPECT_EQ(::write(fd, req.data(), req.size()), static_cast<ssize_t>(req.size()));
  std::string out;
  char buf[4096];
  for (ssize_t n; (n = ::read(fd, buf, sizeof buf)) > 0;) out.append(buf, n);
  ::close(fd);
  return out;
}

TEST(ParseListenAddressTest, TakesIpv4AndPort) {
  auto a = ParseListenAddress("127.0.0.1:9654");
  ASSERT_TRUE(a.ok()) << a.status();
  EXPECT_EQ(a->ip, "127.0.0.1");
  EXPECT_EQ(a->port, 9654);
  EXPECT_TRUE(ParseListenAddress("0.0.0.0:1").ok());
  EXPECT_TRUE(ParseListenAddress("10.1.2.3:65535").ok());
}

TEST(ParseListenAddressTest, RejectsWhatIsNotIpv4ColonPort) {
  for (const char* bad : {"9654", ":9654", "localhost:9654", "999.1.1.1:9654", "127.0.0.1",
                          "127.0.0.1:", "127.0.0.1:0", "127.0.0.1:65536", "127.0.0.1:96x",
                          "127.0.0.1:-1", "[::1]:9654", "http://127.0.0.1:9654", " 127.0.0.1:9"}) {
    auto a = ParseListenAddress(bad);
    EXPECT_EQ(a.status().code(), absl::StatusCode::kInvalidArgument) << bad;
    EXPECT_THAT(a.status().message(), HasSubstr(std::string("\"") + bad + "\"")) << bad;
  }
}

TEST(ExposerTest, ServesMetricsInTheTextFormat) {
  auto metrics = std::make_shared<Metrics>(BuildInfo{.version = "9.9", .api_version = "v1"});
  metrics->ObserveRpc("Version", absl::StatusCode::kOk, 0.001);
  int port = FreePort();
  auto e = Exposer::Start("127.0.0.1:" + std::to_string(port), metrics);
  ASSERT_TRUE(e.ok()) << e.status();
  EXPECT_EQ((*e)->port(), port);
  std::string answer = HttpGet(port, "/metrics");
  EXPECT_THAT(answer, StartsWith("HTTP/1.1 200"));
  EXPECT_THAT(answer, HasSubstr("Content-Type: text/plain"));
  EXPECT_THAT(answer, HasSubstr("crius_grpc_requests_total{code=\"OK\",method=\"Version\"} 1\n"));
  EXPECT_THAT(answer, HasSubstr("crius_build_info{api_version=\"v1\",version=\"9.9\"} 1\n"));
  // A scrape reads what happened since.
  metrics->ObserveRpc("Version", absl::StatusCode::kOk, 0.001);
  EXPECT_THAT(HttpGet(port, "/metrics"),
              HasSubstr("crius_grpc_requests_total{code=\"OK\",method=\"Version\"} 2\n"));
  EXPECT_THAT(HttpGet(port, "/"), HasSubstr(" 404 Not Found\r\n"));
}

TEST(ExposerTest, StoppingReleasesThePort) {
  auto metrics = std::make_shared<Metrics>(BuildInfo{});
  int port = FreePort();
  std::string address = "127.0.0.1:" + std::to_string(port);
  {
    auto e = Exposer::Start(address, metrics);
    ASSERT_TRUE(e.ok()) << e.status();
  }
  EXPECT_EQ(HttpGet(port, "/metrics"), "connect failed");
  auto again = Exposer::Start(address, metrics);
  EXPECT_TRUE(again.ok()) << again.status();
}

TEST(ExposerTest, StoppingIsPrompt) {
  // civetweb alone may take up to 2 s (its poll slice) to stop; criusd's
  // shutdown should not wait for that. Several tries: the delay is random.
  auto metrics = std::make_shared<Metrics>(BuildInfo{});
  for (int i = 0; i < 4; ++i) {
    auto e = Exposer::Start("127.0.0.1:" + std::to_string(FreePort()), metrics);
    ASSERT_TRUE(e.ok()) << e.status();
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    auto start = std::chrono::steady_clock::now();
    e->reset();
    EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::milliseconds(500));
  }
}

TEST(ExposerTest, AddressInUseIsAnErrorNamingItAndTheCause) {
  BoundSocket taken(/*listen=*/true);
  std::string address = "127.0.0.1:" + std::to_string(taken.port);
  auto e = Exposer::Start(address, std::make_shared<Metrics>(BuildInfo{}));
  ASSERT_FALSE(e.ok());
  EXPECT_EQ(e.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_THAT(e.status().message(), HasSubstr("serve metrics on " + address));
  EXPECT_THAT(e.status().message(), HasSubstr("Address already in use"));
  EXPECT_EQ(e.status().message().find('\n'), absl::string_view::npos);
}

TEST(ExposerTest, UnparsableAddressIsInvalidArgument) {
  auto e = Exposer::Start("localhost:9654", std::make_shared<Metrics>(BuildInfo{}));
  EXPECT_EQ(e.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(e.status().message(), HasSubstr("\"localhost:9654\""));
}

}  // namespace
}  // namespace crius::metrics
