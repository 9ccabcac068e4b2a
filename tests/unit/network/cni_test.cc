// The CNI exec protocol against plugins written as shell scripts: what each
// plugin is given (environment, stdin), how results chain and how failures
// read. Debian's real plugins are driven by tests/integration/test_network.py.
#include "network/cni.h"

#include <sys/stat.h>
#include <unistd.h>

#include <fstream>
#include <sstream>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "network/pod_network.h"
#include "tests/unit/temp_dir.h"

namespace crius::network {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using json = nlohmann::json;

std::string ReadAll(const std::string& path) {
  std::ifstream in(path);
  std::stringstream buf;
  buf << in.rdbuf();
  return buf.str();
}

class CniTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_EQ(mkdir(bin_.c_str(), 0755), 0);
    ASSERT_EQ(mkdir(conf_.c_str(), 0755), 0);
  }

  // A plugin that records its stdin and environment under calls/, then runs `body`.
  void Plugin(const std::string& name, const std::string& body) {
    std::string path = bin_ + "/" + name;
    std::ofstream(path) << "#!/bin/sh\n"
                        << "n=$(ls " << dir_ << " | grep -c '^call-.*[.]in$')\n"
                        << "cat > " << dir_ << "/call-$n-" << name << "-$CNI_COMMAND.in\n"
                        << "env > " << dir_ << "/call-$n-" << name << "-$CNI_COMMAND.env\n"
                        << body << "\n";
    chmod(path.c_str(), 0755);
  }
  json Input(int n, const std::string& name, const std::string& op) {
    return json::parse(ReadAll(dir_ + "/call-" + std::to_string(n) + "-" + name + "-" + op + ".in"));
  }
  std::string Env(int n, const std::string& name, const std::string& op) {
    return ReadAll(dir_ + "/call-" + std::to_string(n) + "-" + name + "-" + op + ".env");
  }

  CniNetwork Net(std::vector<json> plugins, const std::string& version = "1.0.0") {
    CniNetwork net;
    net.name = "pods";
    net.cni_version = version;
    net.plugins = std::move(plugins);
    return net;
  }

  Attachment Pod() {
    Attachment a;
    a.container_id = "abc";
    a.netns = "/run/netns/x";
    a.args = {{"K8S_POD_NAME", "web"}};
    a.capability_args = {{"portMappings", json::array({{{"hostPort", 8080}}})}};
    return a;
  }

  testing::TempDir tmp_{"crius-cni-exec-test"};
  const std::string dir_ = tmp_.path();
  const std::string bin_ = dir_ + "/bin";
  const std::string conf_ = dir_ + "/net.d";
};

const char kResult[] =
    R"(echo '{"cniVersion":"1.0.0","interfaces":[{"name":"cni0"},{"name":"eth0","sandbox":"/run/netns/x"}],)"
    R"("ips":[{"address":"10.88.0.5/16","interface":1},{"address":"10.88.0.1/16","interface":0}]}')";

TEST_F(CniTest, AddChainsResultsAndHandsCapabilitiesOnlyToPluginsThatDeclareThem) {
  Plugin("first", kResult);
  Plugin("second", "echo '{\"cniVersion\":\"1.0.0\",\"ips\":[{\"address\":\"10.88.0.5/16\"}]}'");
  Cni cni({dir_ + "/none", bin_});
  absl::StatusOr<json> result =
      cni.Add(Net({{{"type", "first"}, {"bridge", "cni0"}},
                   {{"type", "second"}, {"capabilities", {{"portMappings", true}, {"bandwidth", true}}}}}),
              Pod());
  ASSERT_TRUE(result.ok()) << result.status();
  json first = Input(0, "first", "ADD");
  EXPECT_EQ(first["name"], "pods");
  EXPECT_EQ(first["cniVersion"], "1.0.0");
  EXPECT_EQ(first["bridge"], "cni0");
  EXPECT_FALSE(first.contains("prevResult"));
  EXPECT_FALSE(first.contains("runtimeConfig"));
  json second = Input(1, "second", "ADD");
  EXPECT_EQ(second["prevResult"]["ips"][0]["address"], "10.88.0.5/16");
  EXPECT_EQ(second["runtimeConfig"], json({{"portMappings", json::array({{{"hostPort", 8080}}})}}));
  std::string env = Env(0, "first", "ADD");
  EXPECT_THAT(env, HasSubstr("CNI_COMMAND=ADD\n"));
  EXPECT_THAT(env, HasSubstr("CNI_CONTAINERID=abc\n"));
  EXPECT_THAT(env, HasSubstr("CNI_NETNS=/run/netns/x\n"));
  EXPECT_THAT(env, HasSubstr("CNI_IFNAME=eth0\n"));
  EXPECT_THAT(env, HasSubstr("CNI_ARGS=IgnoreUnknown=1;K8S_POD_NAME=web\n"));
  EXPECT_THAT(env, HasSubstr("CNI_PATH=" + dir_ + "/none:" + bin_ + "\n"));
  EXPECT_EQ((*result)["ips"][0]["address"], "10.88.0.5/16");
}

TEST_F(CniTest, DelRunsEveryPluginInReverseWithThePreviousResult) {
  Plugin("first", "exit 0");
  Plugin("second", "echo '{\"code\":11,\"msg\":\"busy\"}'; exit 1");
  Cni cni({bin_});
  json prev = {{"cniVersion", "1.0.0"}, {"ips", json::array()}};
  absl::Status st = cni.Del(Net({{{"type", "first"}}, {{"type", "second"}}}), Pod(), prev);
  EXPECT_THAT(st.message(), HasSubstr("CNI DEL of network \"pods\", plugin second: busy (CNI error code 11)"));
  EXPECT_EQ(Input(0, "second", "DEL")["prevResult"], prev);
  EXPECT_EQ(Input(1, "first", "DEL")["prevResult"], prev);  // still ran after second failed
}

TEST_F(CniTest, OldNetworksGetNoPrevResultOnDelAndNoCheck) {
  Plugin("old", "exit 0");
  Cni cni({bin_});
  CniNetwork net = Net({{{"type", "old"}}}, "0.3.1");
  ASSERT_TRUE(cni.Del(net, Pod(), json({{"ips", json::array()}})).ok());
  EXPECT_FALSE(Input(0, "old", "DEL").contains("prevResult"));
  ASSERT_TRUE(cni.Check(net, Pod(), json::object()).ok());
  EXPECT_EQ(access((dir_ + "/call-1-old-CHECK.in").c_str(), F_OK), -1);
}

TEST_F(CniTest, AFailedPluginIsNamedWithItsErrorObjectOrStderr) {
  Plugin("json", "echo '{\"cniVersion\":\"1.0.0\",\"code\":7,\"msg\":\"bad config\",\"details\":\"no bridge\"}'; exit 1");
  Plugin("plain", "echo 'it broke' >&2; exit 3");
  Cni cni({bin_});
  absl::Status st = cni.Add(Net({{{"type", "json"}}}), Pod()).status();
  EXPECT_THAT(st.message(), HasSubstr("plugin json: bad config (CNI error code 7): no bridge"));
  st = cni.Add(Net({{{"type", "plain"}}}), Pod()).status();
  EXPECT_THAT(st.message(), HasSubstr("plugin plain: it broke"));
  st = cni.Add(Net({{{"type", "gone"}}}), Pod()).status();
  EXPECT_THAT(st.message(), HasSubstr("CNI plugin \"gone\" is not in"));
}

TEST_F(CniTest, AResultThatIsNotJsonIsAnError) {
  Plugin("garbage", "echo 'not json'");
  Cni cni({bin_});
  EXPECT_THAT(cni.Add(Net({{{"type", "garbage"}}}), Pod()).status().message(),
              HasSubstr("the plugin's result is not a JSON object"));
}

TEST_F(CniTest, APluginPastItsTimeoutIsKilled) {
  Plugin("slow", "exec sleep 30");
  std::vector<std::string> seen;
  Cni cni({bin_}, [&](const char* op, const std::string& plugin, double, bool ok) {
    seen.push_back(std::string(op) + " " + plugin + (ok ? " ok" : " failed"));
  }, 300);
  absl::Status st = cni.Add(Net({{{"type", "slow"}}}), Pod()).status();
  EXPECT_EQ(st.code(), absl::StatusCode::kDeadlineExceeded);
  EXPECT_THAT(seen, ElementsAre("ADD slow failed"));
}

TEST_F(CniTest, SandboxIpsAreThoseOfTheSandboxInterfaceIpv4First) {
  json r = json::parse(R"({"interfaces":[{"name":"cni0"},{"name":"eth0","sandbox":"/x"},{"name":"net1","sandbox":"/x"}],
    "ips":[{"address":"fd00::5/64","interface":1},{"address":"10.0.0.1/24","interface":0},
           {"address":"10.0.0.5/24","interface":1},{"address":"10.1.0.5/24","interface":2},
           {"address":"10.2.0.5/24","interface":9}]})");
  EXPECT_THAT(SandboxIps(r, "eth0"), ElementsAre("10.0.0.5", "fd00::5"));
  EXPECT_THAT(SandboxIps(json::parse(R"({"ips":[{"address":"10.3.0.5/24"}]})"), "eth0"),
              ElementsAre("10.3.0.5"));
  EXPECT_THAT(SandboxIps(json::parse(R"({"ip4":{"ip":"10.4.0.5/24"}})"), "eth0"), ElementsAre("10.4.0.5"));
  EXPECT_THAT(SandboxIps(json::parse(R"({"ips":[{"address":"nonsense"}]})"), "eth0"), ElementsAre());
}

TEST_F(CniTest, VersionsCompareByMajorAndMinor) {
  EXPECT_TRUE(CniVersionAtLeast("0.4.0", 0, 4));
  EXPECT_TRUE(CniVersionAtLeast("1.0.0", 0, 4));
  EXPECT_FALSE(CniVersionAtLeast("0.3.1", 0, 4));
  EXPECT_FALSE(CniVersionAtLeast("x", 0, 1));
}

TEST_F(CniTest, PortMappingsWithoutAHostPortAreNotForwarded) {
  PodNetworkRequest req;
  req.port_mappings = {{8080, 80, "tcp", ""}, {0, 81, "tcp", ""}, {53, 53, "udp", "10.0.0.1"}};
  req.pod_cidr = "10.244.1.0/24";
  json caps = CapabilityArgs(req);
  EXPECT_EQ(caps["portMappings"],
            json::parse(R"([{"hostPort":8080,"containerPort":80,"protocol":"tcp"},
                            {"hostPort":53,"containerPort":53,"protocol":"udp","hostIP":"10.0.0.1"}])"));
  EXPECT_EQ(caps["ipRanges"], json::parse(R"([[{"subnet":"10.244.1.0/24"}]])"));
  EXPECT_FALSE(caps.contains("dns"));
}

TEST_F(CniTest, SetupCachesBeforeAddAndTeardownDetachesFromTheCache) {
  Plugin("bridge", kResult);
  std::ofstream(conf_ + "/10-pods.conflist") << R"({"cniVersion":"1.0.0","name":"pods","plugins":[{"type":"bridge"}]})";
  PodNetworks networks(conf_, {bin_});
  PodNetworkRequest req;
  req.pod_id = "abc";
  req.netns = dir_ + "/not-a-netns";
  std::string cache = dir_ + "/network.json";
  absl::StatusOr<PodNetworkStatus> st = networks.Setup(cache, req);
  ASSERT_TRUE(st.ok()) << st.status();
  EXPECT_EQ(st->network, "pods");
  EXPECT_THAT(st->ips, ElementsAre("10.88.0.5"));
  ASSERT_TRUE(PodNetworks::Cached(cache).ok());
  EXPECT_THAT(PodNetworks::Cached(cache)->ips, ElementsAre("10.88.0.5"));

  // The config may change or vanish: teardown uses what ADD used.
  unlink((conf_ + "/10-pods.conflist").c_str());
  ASSERT_TRUE(networks.Teardown(cache).ok());
  std::string env = Env(1, "bridge", "DEL");
  EXPECT_THAT(env, HasSubstr("CNI_NETNS=\n"));  // not a netns mount: not passed
  EXPECT_EQ(Input(1, "bridge", "DEL")["prevResult"]["ips"][0]["address"], "10.88.0.5/16");
  EXPECT_EQ(access(cache.c_str(), F_OK), -1);
  EXPECT_TRUE(networks.Teardown(cache).ok());  // again: nothing to do
}

TEST_F(CniTest, AFailedAddIsUndoneAtOnceAndAFailedUndoKeepsTheCache) {
  Plugin("bridge", "[ \"$CNI_COMMAND\" = ADD ] && { echo '{\"msg\":\"no\"}'; exit 1; }; exit 0");
  Plugin("stuck", "echo '{\"msg\":\"stuck\"}'; exit 1");
  std::ofstream(conf_ + "/10-pods.conflist") << R"({"cniVersion":"1.0.0","name":"pods","plugins":[{"type":"bridge"}]})";
  PodNetworks networks(conf_, {bin_});
  std::string cache = dir_ + "/network.json";
  absl::StatusOr<PodNetworkStatus> st = networks.Setup(cache, PodNetworkRequest{});
  EXPECT_THAT(st.status().message(), HasSubstr("plugin bridge: no"));
  EXPECT_NO_THROW(Input(1, "bridge", "DEL"));
  EXPECT_EQ(access(cache.c_str(), F_OK), -1);

  std::ofstream(conf_ + "/10-pods.conflist") << R"({"cniVersion":"1.0.0","name":"pods","plugins":[{"type":"stuck"}]})";
  st = networks.Setup(cache, PodNetworkRequest{});
  EXPECT_THAT(st.status().message(), HasSubstr("plugin stuck: stuck"));
  EXPECT_THAT(st.status().message(), HasSubstr("DEL that should undo it failed too, to be retried"));
  EXPECT_EQ(access(cache.c_str(), F_OK), 0);
  EXPECT_FALSE(networks.Teardown(cache).ok());
  EXPECT_EQ(access(cache.c_str(), F_OK), 0);
}

TEST_F(CniTest, NoNetworkIsFailedPrecondition) {
  PodNetworks networks(conf_, {bin_});
  absl::StatusOr<PodNetworkStatus> st = networks.Setup(dir_ + "/network.json", PodNetworkRequest{});
  EXPECT_EQ(st.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(st.status().message(), HasSubstr("no valid CNI network config in " + conf_));
}

}  // namespace
}  // namespace crius::network
