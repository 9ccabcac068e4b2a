#include "stream/requests.h"

#include <set>
#include <thread>

#include <gtest/gtest.h>

namespace crius::stream {
namespace {

TEST(RequestCache, ATokenIsGoodOnce) {
  RequestCache cache(absl::Minutes(1));
  Request r;
  r.container_id = "c1";
  absl::StatusOr<std::string> token = cache.Insert(r);
  ASSERT_TRUE(token.ok());
  std::optional<Request> got = cache.Consume(*token);
  ASSERT_TRUE(got.has_value());
  EXPECT_EQ(got->container_id, "c1");
  EXPECT_FALSE(cache.Consume(*token).has_value());
  EXPECT_FALSE(cache.Consume("made-up").has_value());
}

TEST(RequestCache, TokensAreUnguessableAndDistinct) {
  RequestCache cache(absl::Minutes(1));
  std::set<std::string> seen;
  for (int i = 0; i < 100; ++i) {
    absl::StatusOr<std::string> token = cache.Insert(Request{});
    ASSERT_TRUE(token.ok());
    EXPECT_GE(token->size(), 22u);  // 128 random bits
    EXPECT_TRUE(seen.insert(*token).second);
  }
}

TEST(RequestCache, ATokenExpires) {
  RequestCache cache(absl::Milliseconds(20));
  absl::StatusOr<std::string> token = cache.Insert(Request{});
  ASSERT_TRUE(token.ok());
  std::this_thread::sleep_for(std::chrono::milliseconds(40));
  EXPECT_FALSE(cache.Consume(*token).has_value());
}

TEST(RequestCache, AtMostAThousandWait) {
  RequestCache cache(absl::Minutes(1));
  for (size_t i = 0; i < RequestCache::kMaxInFlight; ++i) ASSERT_TRUE(cache.Insert(Request{}).ok());
  absl::StatusOr<std::string> over = cache.Insert(Request{});
  EXPECT_EQ(over.status().code(), absl::StatusCode::kResourceExhausted);
}

}  // namespace
}  // namespace crius::stream
