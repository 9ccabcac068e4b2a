#include "common/config.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "absl/strings/str_cat.h"

namespace crius {
namespace {

using ::testing::HasSubstr;

TEST(ConfigTest, EmptyTextGivesDefaults) {
  absl::StatusOr<Config> c = ParseConfig("", "test.toml");
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->root, "/var/lib/crius");
  EXPECT_EQ(c->listen, "unix:///run/crius/crius.sock");
  EXPECT_EQ(c->state_db.synchronous, "full");
  EXPECT_EQ(c->network.cni_bin_dirs.size(), 2u);
}

TEST(ConfigTest, ReadsNestedKeys) {
  absl::StatusOr<Config> c = ParseConfig(
      "root = \"/r\"\n[network]\ncni_bin_dirs = [\"/a\", \"/b\", \"/c\"]\n"
      "[runtime_handlers]\nspt = \"x-spt\"\n",
      "test.toml");
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->root, "/r");
  EXPECT_THAT(c->network.cni_bin_dirs, ::testing::ElementsAre("/a", "/b", "/c"));
  EXPECT_EQ(c->runtime_handlers.spt, "x-spt");
  EXPECT_EQ(c->runtime_handlers.hvt, "crius-hvt");
}

TEST(ConfigTest, UnknownKeyIsNamed) {
  absl::StatusOr<Config> c = ParseConfig("[network]\ncni_confdir = \"/x\"\n", "f.toml");
  ASSERT_FALSE(c.ok());
  EXPECT_EQ(c.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(c.status().message(), HasSubstr("f.toml"));
  EXPECT_THAT(c.status().message(), HasSubstr("unknown key \"network.cni_confdir\""));
}

TEST(ConfigTest, UnknownTableIsNamed) {
  absl::StatusOr<Config> c = ParseConfig("[nope]\nx = 1\n", "f.toml");
  ASSERT_FALSE(c.ok());
  EXPECT_THAT(c.status().message(), HasSubstr("unknown key \"nope\""));
}

TEST(ConfigTest, WrongTypeIsNamed) {
  absl::StatusOr<Config> c = ParseConfig("log_level = 3\n", "f.toml");
  ASSERT_FALSE(c.ok());
  EXPECT_THAT(c.status().message(), HasSubstr("key \"log_level\": expected a string, got an integer"));
  c = ParseConfig("[network]\ncni_bin_dirs = \"/usr/lib/cni\"\n", "f.toml");
  ASSERT_FALSE(c.ok());
  EXPECT_THAT(c.status().message(), HasSubstr("network.cni_bin_dirs"));
  c = ParseConfig("network = 5\n", "f.toml");
  ASSERT_FALSE(c.ok());
  EXPECT_THAT(c.status().message(), HasSubstr("key \"network\": expected a table"));
  // A float where an integer goes, even one past int64's range (found by
  // tests/fuzz: it was converted, undefined behaviour past the range).
  for (const char* value : {"64.0", "1e40"}) {
    c = ParseConfig(absl::StrCat("[events]\nmax_queued = ", value, "\n"), "f.toml");
    ASSERT_FALSE(c.ok()) << value;
    EXPECT_THAT(c.status().message(), HasSubstr("key \"events.max_queued\": expected an integer")) << value;
  }
}

TEST(ConfigTest, IntegerOutsideItsRangeIsNamed) {
  // 0 would refuse every layer, 2^30 MiB (1 PiB) is no limit at all.
  for (const char* value : {"0", "-1", "1073741825"}) {
    auto c = ParseConfig(absl::StrCat("[registry]\nmax_unpacked_layer_mib = ", value, "\n"), "f.toml");
    ASSERT_FALSE(c.ok()) << value;
    EXPECT_THAT(c.status().message(), HasSubstr("key \"registry.max_unpacked_layer_mib\": "));
    EXPECT_THAT(c.status().message(), HasSubstr(absl::StrCat(value, " is not between 1 and 1073741824")));
  }
  auto c = ParseConfig("[registry]\nmax_unpacked_layer_mib = 1073741824\n", "f.toml");
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->registry.max_unpacked_layer_mib, int64_t{1} << 30);
}

TEST(ConfigTest, MirrorsAreATableOfStringArrays) {
  absl::StatusOr<Config> c = ParseConfig(
      "[registry.mirrors]\n\"gcr.io\" = [\"http://127.0.0.1:5000\"]\n", "f.toml");
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->registry.mirrors["gcr.io"], std::vector<std::string>{"http://127.0.0.1:5000"});
  c = ParseConfig("[registry.mirrors]\n\"gcr.io\" = \"http://x\"\n", "f.toml");
  ASSERT_FALSE(c.ok());
  EXPECT_THAT(c.status().message(), HasSubstr("key \"registry.mirrors\": [\"gcr.io\"]"));
  c = ParseConfig("[registry]\nmirrors = 3\n", "f.toml");
  ASSERT_FALSE(c.ok());
  EXPECT_THAT(c.status().message(), HasSubstr("key \"registry.mirrors\": expected a table"));
}

TEST(ConfigTest, ValueOutsideChoicesIsNamed) {
  absl::StatusOr<Config> c = ParseConfig("cgroup_driver = \"systemd\"\n", "f.toml");
  ASSERT_FALSE(c.ok());
  EXPECT_THAT(c.status().message(), HasSubstr("cgroup_driver"));
  EXPECT_THAT(c.status().message(), HasSubstr("not one of cgroupfs"));
}

TEST(ConfigTest, SyntaxErrorGivesLine) {
  absl::StatusOr<Config> c = ParseConfig("root = \"/a\"\nroot = = 2\n", "f.toml");
  ASSERT_FALSE(c.ok());
  EXPECT_THAT(c.status().message(), HasSubstr("f.toml: line 2"));
}

TEST(ConfigTest, ValidateRejectsRelativePathsAndBadListen) {
  Config c;
  c.root = "var/lib";
  EXPECT_THAT(ValidateConfig(c).message(), HasSubstr("key \"root\""));
  c = Config();
  c.listen = "tcp://127.0.0.1:1234";
  EXPECT_THAT(ValidateConfig(c).message(), HasSubstr("not a unix:// endpoint"));
  c = Config();
  c.runtime_handlers.hvt = c.runtime_handlers.spt;
  EXPECT_THAT(ValidateConfig(c).message(), HasSubstr("share the name"));
  EXPECT_TRUE(ValidateConfig(Config()).ok());
}

TEST(ConfigTest, ValidateChecksDurations) {
  Config c;
  c.streaming.token_ttl = "0s";
  EXPECT_THAT(ValidateConfig(c).message(),
              HasSubstr("key \"streaming.token_ttl\": \"0s\" is not a positive duration"));
  c = Config();
  c.registry.pull_progress_timeout = "-1s";
  EXPECT_THAT(ValidateConfig(c).message(),
              HasSubstr("key \"registry.pull_progress_timeout\": \"-1s\" is not a duration of zero or more"));
  c.registry.pull_progress_timeout = "0";
  EXPECT_TRUE(ValidateConfig(c).ok());
}

TEST(ConfigTest, RenderedTomlParsesBackToTheSameConfig) {
  Config c;
  c.root = "/somewhere \"quoted\"";
  c.network.cni_bin_dirs = {"/x"};
  c.registry.mirrors = {{"gcr.io", {"http://127.0.0.1:5000", "https://m"}}, {"docker.io", {}}};
  std::string text = RenderConfigToml(c);
  EXPECT_THAT(text, HasSubstr("# Persistent state"));
  EXPECT_THAT(text, HasSubstr("[state_db]"));
  absl::StatusOr<Config> back = ParseConfig(text, "rendered");
  ASSERT_TRUE(back.ok()) << back.status() << "\n" << text;
  EXPECT_EQ(back->root, c.root);
  EXPECT_EQ(back->network.cni_bin_dirs, c.network.cni_bin_dirs);
  EXPECT_EQ(back->registry.mirrors, c.registry.mirrors);
  EXPECT_EQ(RenderConfigToml(*back), text);
}

TEST(ConfigTest, JsonHasEveryTable) {
  std::string json = RenderConfigJson(Config());
  EXPECT_THAT(json, HasSubstr("\"cni_conf_dir\""));
  EXPECT_THAT(json, HasSubstr("\"runtime_handlers\""));
}

TEST(ConfigTest, MissingFileIsDefaultsUnlessRequired) {
  EXPECT_TRUE(LoadConfig("/nonexistent/crius.toml", false).ok());
  absl::StatusOr<Config> c = LoadConfig("/nonexistent/crius.toml", true);
  ASSERT_FALSE(c.ok());
  EXPECT_THAT(c.status().message(), HasSubstr("/nonexistent/crius.toml"));
}

TEST(ConfigTest, UnixSocketPath) {
  EXPECT_EQ(*UnixSocketPath("unix:///run/x.sock"), "/run/x.sock");
  EXPECT_FALSE(UnixSocketPath("unix://relative").ok());
  EXPECT_FALSE(UnixSocketPath("/run/x.sock").ok());
  EXPECT_FALSE(UnixSocketPath("unix:///" + std::string(200, 'a')).ok());
}

}  // namespace
}  // namespace crius
