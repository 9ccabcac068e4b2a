#include "store/store.h"

#include <sqlite3.h>
#include <unistd.h>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "tests/unit/temp_dir.h"

namespace crius::store {
namespace {

using ::testing::HasSubstr;

class StoreTest : public ::testing::Test {
 protected:
  testing::TempDir tmp_{"crius-store-test"};
  const std::string dir_ = tmp_.path();
  const std::string path_ = dir_ + "/state.db";

  std::unique_ptr<Store> OpenOrDie() {
    auto s = Store::Open(path_, Synchronous::kFull);
    EXPECT_TRUE(s.ok()) << s.status();
    return s.ok() ? std::move(*s) : nullptr;
  }

};

PodRecord Pod(const std::string& id, const std::string& name) {
  return PodRecord{id, name, "ready", "", 42, std::string("\0bin", 4), R"({"k":1})"};
}

TEST_F(StoreTest, SettingsSurviveReopen) {
  {
    auto s = OpenOrDie();
    ASSERT_TRUE(s->PutSetting("pod_cidr", "10.0.0.0/24").ok());
    ASSERT_TRUE(s->PutSetting("pod_cidr", "10.1.0.0/24").ok());
  }
  auto s = OpenOrDie();
  auto v = s->GetSetting("pod_cidr");
  ASSERT_TRUE(v.ok());
  EXPECT_EQ(v->value_or(""), "10.1.0.0/24");
  EXPECT_FALSE(s->GetSetting("other")->has_value());
}

TEST_F(StoreTest, PodsRoundTripWithBinaryConfig) {
  auto s = OpenOrDie();
  ASSERT_TRUE(s->PutPod(Pod("p1", "a_ns_uid_0")).ok());
  auto got = s->GetPod("p1");
  ASSERT_TRUE(got.ok() && got->has_value());
  EXPECT_EQ((*got)->config, std::string("\0bin", 4));
  EXPECT_EQ((*got)->extra, R"({"k":1})");
  EXPECT_FALSE(s->GetPod("nope")->has_value());
}

TEST_F(StoreTest, ReservedPodNameIsUnique) {
  auto s = OpenOrDie();
  ASSERT_TRUE(s->PutPod(Pod("p1", "same")).ok());
  absl::Status st = s->PutPod(Pod("p2", "same"));
  EXPECT_FALSE(st.ok());
  EXPECT_THAT(st.message(), HasSubstr("store pod p2"));
}

TEST_F(StoreTest, DeletingAPodDeletesItsContainers) {
  auto s = OpenOrDie();
  ASSERT_TRUE(s->PutPod(Pod("p1", "n1")).ok());
  ContainerRecord c;
  c.id = "c1";
  c.pod_id = "p1";
  c.name = "c_n1";
  c.state = "created";
  c.exit_code = -1;
  c.config = "cfg";
  ASSERT_TRUE(s->PutContainer(c).ok());
  c.state = "exited";
  c.exit_code = 137;
  c.reason = "OOMKilled";
  ASSERT_TRUE(s->PutContainer(c).ok());
  auto got = s->GetContainer("c1");
  ASSERT_TRUE(got.ok() && got->has_value());
  EXPECT_EQ((*got)->exit_code, 137);
  EXPECT_EQ((*got)->reason, "OOMKilled");
  ASSERT_TRUE(s->DeletePod("p1").ok());
  EXPECT_TRUE(s->ListContainers()->empty());
  EXPECT_TRUE(s->ListPods()->empty());
}

TEST_F(StoreTest, ContainerOfUnknownPodIsRefused) {
  auto s = OpenOrDie();
  ContainerRecord c;
  c.id = "c1";
  c.pod_id = "ghost";
  c.name = "x";
  c.state = "created";
  EXPECT_FALSE(s->PutContainer(c).ok());
}

TEST_F(StoreTest, ImagesRoundTrip) {
  auto s = OpenOrDie();
  ImageRecord i{"sha256:abc", {"busybox:latest", "b:1"}, {"busybox@sha256:def"}, 1234,
                R"({"config":{}})", true, 7};
  ASSERT_TRUE(s->PutImage(i).ok());
  auto list = s->ListImages();
  ASSERT_TRUE(list.ok());
  ASSERT_EQ(list->size(), 1u);
  EXPECT_EQ((*list)[0].repo_tags, i.repo_tags);
  EXPECT_EQ((*list)[0].repo_digests, i.repo_digests);
  EXPECT_TRUE((*list)[0].pinned);
  ASSERT_TRUE(s->DeleteImage("sha256:abc").ok());
  EXPECT_FALSE(s->GetImage("sha256:abc")->has_value());
}

TEST_F(StoreTest, PutImagesWritesThemAllInOneTransaction) {
  auto s = OpenOrDie();
  ASSERT_TRUE(s->PutImage({"sha256:old", {"app:1"}, {}, 1, "{}", false, 1}).ok());
  // A pull of app:1 that moves the tag: the new image and the old one's loss of it.
  ASSERT_TRUE(s->PutImages({{"sha256:new", {"app:1"}, {}, 2, "{}", false, 2},
                            {"sha256:old", {}, {}, 1, "{}", false, 1}}).ok());
  auto list = s->ListImages();
  ASSERT_TRUE(list.ok());
  ASSERT_EQ(list->size(), 2u);
  for (const ImageRecord& i : *list) {
    EXPECT_EQ(i.repo_tags, i.id == "sha256:new" ? std::vector<std::string>{"app:1"} : std::vector<std::string>{});
  }
  EXPECT_TRUE(s->PutImages({}).ok());
}

TEST_F(StoreTest, UsesWalJournal) {
  auto s = OpenOrDie();
  sqlite3* db;
  ASSERT_EQ(sqlite3_open(path_.c_str(), &db), SQLITE_OK);
  sqlite3_stmt* st;
  ASSERT_EQ(sqlite3_prepare_v2(db, "PRAGMA journal_mode", -1, &st, nullptr), SQLITE_OK);
  ASSERT_EQ(sqlite3_step(st), SQLITE_ROW);
  EXPECT_STREQ(reinterpret_cast<const char*>(sqlite3_column_text(st, 0)), "wal");
  sqlite3_finalize(st);
  sqlite3_close(db);
}

TEST_F(StoreTest, CgroupParentsAreRecordedOnceAndForgotten) {
  {
    auto s = OpenOrDie();
    ASSERT_TRUE(s->AddCgroupParents({"/a", "/a/b"}).ok());
    ASSERT_TRUE(s->AddCgroupParents({"/a/b", "/c"}).ok());  // again: no duplicate
    ASSERT_TRUE(s->AddCgroupParents({}).ok());
  }
  auto s = OpenOrDie();
  EXPECT_THAT(*s->ListCgroupParents(), ::testing::ElementsAre("/a", "/a/b", "/c"));
  ASSERT_TRUE(s->DeleteCgroupParent("/a/b").ok());
  ASSERT_TRUE(s->DeleteCgroupParent("/never").ok());
  EXPECT_THAT(*s->ListCgroupParents(), ::testing::ElementsAre("/a", "/c"));
}

TEST_F(StoreTest, SchemaOneIsMigratedKeepingItsPods) {
  {
    auto s = OpenOrDie();
    ASSERT_TRUE(s->PutPod(Pod("p1", "a_ns_uid_0")).ok());
  }
  // Back to what a criusd of schema 1 wrote: no cgroup_parents table.
  sqlite3* db;
  ASSERT_EQ(sqlite3_open(path_.c_str(), &db), SQLITE_OK);
  ASSERT_EQ(sqlite3_exec(db, "DROP TABLE cgroup_parents; PRAGMA user_version=1", nullptr, nullptr, nullptr),
            SQLITE_OK);
  sqlite3_close(db);
  auto s = OpenOrDie();
  EXPECT_TRUE(s->GetPod("p1")->has_value());
  EXPECT_TRUE(s->AddCgroupParents({"/a"}).ok());
  EXPECT_THAT(*s->ListCgroupParents(), ::testing::ElementsAre("/a"));
}

TEST_F(StoreTest, NewerSchemaIsRefused) {
  sqlite3* db;
  ASSERT_EQ(sqlite3_open(path_.c_str(), &db), SQLITE_OK);
  std::string sql = "PRAGMA user_version=" + std::to_string(kSchemaVersion + 1);
  ASSERT_EQ(sqlite3_exec(db, sql.c_str(), nullptr, nullptr, nullptr), SQLITE_OK);
  sqlite3_close(db);
  auto s = Store::Open(path_, Synchronous::kFull);
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(s.status().message(), HasSubstr("schema version " + std::to_string(kSchemaVersion + 1)));
  EXPECT_THAT(s.status().message(), HasSubstr(path_));
}

TEST_F(StoreTest, UnopenablePathIsNamed) {
  auto s = Store::Open(dir_ + "/missing/state.db", Synchronous::kFull);
  ASSERT_FALSE(s.ok());
  EXPECT_THAT(s.status().message(), HasSubstr(dir_ + "/missing/state.db"));
}

}  // namespace
}  // namespace crius::store
