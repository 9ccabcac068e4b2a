// kubelet's userns_options and mount mappings, checked before anything of a
// pod or container is made.
#include "cri/pod_userns.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

namespace crius::cri {
namespace {

using ::testing::HasSubstr;

constexpr char kField[] = "config.linux.security_context.namespace_options";

v1::NamespaceOption Pod(uint32_t host = 100000, uint32_t length = 65536, uint32_t container = 0) {
  v1::NamespaceOption ns;
  v1::UserNamespace* u = ns.mutable_userns_options();
  u->set_mode(v1::POD);
  for (auto* list : {u->mutable_uids(), u->mutable_gids()}) {
    v1::IDMapping* m = list->Add();
    m->set_host_id(host);
    m->set_container_id(container);
    m->set_length(length);
  }
  return ns;
}

void ExpectInvalid(const absl::Status& st, const std::string& field, const std::string& why) {
  EXPECT_EQ(st.code(), absl::StatusCode::kInvalidArgument) << st;
  EXPECT_THAT(std::string(st.message()), HasSubstr(field)) << st;
  EXPECT_THAT(std::string(st.message()), HasSubstr(why)) << st;
}

TEST(PodUsernsTest, NoOptionsOrNodeModeIsTheNodesNamespace) {
  auto none = PodIdMappings(v1::NamespaceOption(), kField);
  ASSERT_TRUE(none.ok());
  EXPECT_TRUE(none->uids.empty());
  v1::NamespaceOption node;
  node.mutable_userns_options()->set_mode(v1::NODE);
  auto n = PodIdMappings(node, kField);
  ASSERT_TRUE(n.ok());
  EXPECT_TRUE(n->uids.empty() && n->gids.empty());
}

TEST(PodUsernsTest, PodModeGivesTheMappings) {
  auto m = PodIdMappings(Pod(), kField);
  ASSERT_TRUE(m.ok()) << m.status();
  EXPECT_EQ(m->uids, (std::vector<sandbox::IdRange>{{0, 100000, 65536}}));
  EXPECT_EQ(m->gids, m->uids);
}

TEST(PodUsernsTest, BadOptionsNameTheirField) {
  v1::NamespaceOption ns = Pod();
  ns.mutable_userns_options()->set_mode(v1::CONTAINER);
  ExpectInvalid(PodIdMappings(ns, kField).status(), std::string(kField) + ".userns_options.mode", "POD or NODE");
  ns = Pod();
  ns.mutable_userns_options()->set_mode(v1::NODE);
  ExpectInvalid(PodIdMappings(ns, kField).status(), std::string(kField) + ".userns_options.uids", "must be empty");
  ExpectInvalid(PodIdMappings(Pod(100000, 0), kField).status(), ".userns_options.uids", "length 0");
  ExpectInvalid(PodIdMappings(Pod(100000, 65536, 1), kField).status(), ".userns_options.uids",
                "container ID 0");
  ns = Pod();
  ns.mutable_userns_options()->clear_gids();
  ExpectInvalid(PodIdMappings(ns, kField).status(), ".userns_options.gids", "no mapping");
  ns = Pod();
  ns.set_network(v1::NODE);
  ExpectInvalid(PodIdMappings(ns, kField).status(), ".userns_options", "node's network");
}

TEST(PodUsernsTest, AContainersOptionsMustBeThePods) {
  EXPECT_TRUE(CheckContainerUserns(Pod(), Pod(), "c").ok());
  EXPECT_TRUE(CheckContainerUserns(v1::NamespaceOption(), Pod(), "c").ok());  // none given
  ExpectInvalid(CheckContainerUserns(Pod(200000), Pod(), "c"), "c.userns_options", "differs");
  v1::NamespaceOption node;
  node.mutable_userns_options()->set_mode(v1::NODE);
  EXPECT_TRUE(CheckContainerUserns(node, v1::NamespaceOption(), "c").ok());
  ExpectInvalid(CheckContainerUserns(Pod(), v1::NamespaceOption(), "c"), "c.userns_options", "differs");
}

TEST(PodUsernsTest, AMountIsIdmappedWithThePodsMappingsOnly) {
  sandbox::IdMappings pod = *PodIdMappings(Pod(), kField);
  v1::Mount plain;
  EXPECT_EQ(MountIsIdmapped(plain, pod, "m").value_or(true), false);
  v1::Mount m;
  for (auto* list : {m.mutable_uidmappings(), m.mutable_gidmappings()}) {
    v1::IDMapping* r = list->Add();
    r->set_host_id(100000);
    r->set_length(65536);
  }
  EXPECT_EQ(MountIsIdmapped(m, pod, "m").value_or(false), true);
  ExpectInvalid(MountIsIdmapped(m, sandbox::IdMappings{}, "m").status(), "m.uidMappings", "user namespace");
  m.mutable_gidmappings(0)->set_host_id(1);
  ExpectInvalid(MountIsIdmapped(m, pod, "m").status(), "m.gidMappings", "the pod's");
}

}  // namespace
}  // namespace crius::cri
