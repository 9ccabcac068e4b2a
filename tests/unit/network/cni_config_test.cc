#include "network/cni_config.h"

#include <sys/stat.h>
#include <unistd.h>

#include <fstream>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "tests/unit/temp_dir.h"

namespace crius::network {
namespace {

using ::testing::HasSubstr;

class CniConfigTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_EQ(mkdir(conf_.c_str(), 0755), 0);
    ASSERT_EQ(mkdir(bin_.c_str(), 0755), 0);
    Plugin("bridge");
    Plugin("loopback");
  }

  void Plugin(const std::string& name) {
    std::string path = bin_ + "/" + name;
    std::ofstream(path) << "#!/bin/sh\n";
    chmod(path.c_str(), 0755);
  }
  void Write(const std::string& name, const std::string& text) { std::ofstream(conf_ + "/" + name) << text; }
  absl::StatusOr<CniNetwork> Load() { return LoadNetwork(conf_, {dir_ + "/nothing", bin_}); }

  testing::TempDir tmp_{"crius-cni-test"};
  const std::string dir_ = tmp_.path();
  const std::string conf_ = dir_ + "/net.d";
  const std::string bin_ = dir_ + "/bin";
};

constexpr char kList[] = R"({"cniVersion":"1.0.0","name":"pods","plugins":[
  {"type":"bridge","bridge":"cni0"},{"type":"loopback"}]})";

TEST_F(CniConfigTest, ReadsAConflistAndFindsItsPlugins) {
  Write("10-pods.conflist", kList);
  auto net = Load();
  ASSERT_TRUE(net.ok()) << net.status();
  EXPECT_EQ(net->name, "pods");
  EXPECT_EQ(net->cni_version, "1.0.0");
  ASSERT_EQ(net->plugins.size(), 2u);
  EXPECT_EQ(net->plugins[0]["bridge"], "cni0");
  EXPECT_THAT(net->plugin_paths, ::testing::ElementsAre(bin_ + "/bridge", bin_ + "/loopback"));
}

TEST_F(CniConfigTest, ASingleConfIsAListOfOne) {
  Write("10-one.conf", R"({"cniVersion":"0.4.0","name":"one","type":"bridge"})");
  auto net = Load();
  ASSERT_TRUE(net.ok()) << net.status();
  EXPECT_EQ(net->name, "one");
  ASSERT_EQ(net->plugins.size(), 1u);
}

TEST_F(CniConfigTest, TheLexicallyFirstValidFileWins) {
  Write("20-b.conflist", kList);
  Write("10-a.conflist", R"({"cniVersion":"1.0.0","name":"first","plugins":[{"type":"loopback"}]})");
  Write("05-broken.conflist", "{not json");
  Write("README", "not a config");
  auto net = Load();
  ASSERT_TRUE(net.ok()) << net.status();
  EXPECT_EQ(net->name, "first");
}

TEST_F(CniConfigTest, NoValidFileIsNotFoundNamingEachFileAndWhy) {
  Write("01.conflist", "{not json");
  Write("02.conflist", R"({"cniVersion":"1.0.0","name":"x","plugins":[]})");
  Write("03.conflist", R"({"cniVersion":"1.0.0","name":"x","plugins":[{"type":"nope"}]})");
  Write("04.conflist", R"({"cniVersion":"1.0.0","plugins":[{"type":"loopback"}]})");
  Write("05.conflist", R"({"cniVersion":"1.0.0","name":"x","plugins":[{"type":"../../bin/sh"}]})");
  auto net = Load();
  ASSERT_FALSE(net.ok());
  EXPECT_EQ(net.status().code(), absl::StatusCode::kNotFound);
  const std::string msg(net.status().message());
  EXPECT_THAT(msg, HasSubstr("01.conflist: is not valid JSON"));
  EXPECT_THAT(msg, HasSubstr("02.conflist: has no plugins"));
  EXPECT_THAT(msg, HasSubstr("CNI plugin \"nope\" is not in"));
  EXPECT_THAT(msg, HasSubstr("04.conflist: has no \"name\""));
  EXPECT_THAT(msg, HasSubstr("is not a plain name"));
}

TEST_F(CniConfigTest, AnEmptyOrMissingDirectoryIsNotFound) {
  EXPECT_EQ(Load().status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(LoadNetwork(dir_ + "/missing", {bin_}).status().code(), absl::StatusCode::kNotFound);
}

TEST_F(CniConfigTest, DebiansPluginsAreFound) {
  auto exe = FindPlugin({"/usr/lib/cni"}, "bridge");
  ASSERT_TRUE(exe.ok()) << exe.status();
  EXPECT_EQ(*exe, "/usr/lib/cni/bridge");
}

}  // namespace
}  // namespace crius::network
