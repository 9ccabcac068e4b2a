// The metrics.address key (issue 11); the rest of the key table is tested in
// config_test.cc.
#include "common/config.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

namespace crius {
namespace {

using ::testing::HasSubstr;

TEST(ConfigMetricsTest, DefaultIsLoopbackPort9654) {
  absl::StatusOr<Config> c = ParseConfig("", "test.toml");
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->metrics.address, "127.0.0.1:9654");
}

TEST(ConfigMetricsTest, EmptyAddressIsAllowed) {
  absl::StatusOr<Config> c = ParseConfig("[metrics]\naddress = \"\"\n", "test.toml");
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->metrics.address, "");
  EXPECT_TRUE(ValidateConfig(*c).ok());
}

TEST(ConfigMetricsTest, WrongTypeNamesTheKey) {
  absl::StatusOr<Config> c = ParseConfig("[metrics]\naddress = 9654\n", "test.toml");
  ASSERT_FALSE(c.ok());
  EXPECT_THAT(c.status().message(), HasSubstr("key \"metrics.address\""));
  EXPECT_THAT(c.status().message(), HasSubstr("expected a string, got an integer"));
}

TEST(ConfigMetricsTest, PrintedWithItsComment) {
  std::string toml = RenderConfigToml(Config{});
  EXPECT_THAT(toml, HasSubstr("[metrics]\n"));
  EXPECT_THAT(toml, HasSubstr("# Empty disables the endpoint."));
  EXPECT_THAT(toml, HasSubstr("address = '127.0.0.1:9654'\n"));
}

}  // namespace
}  // namespace crius
