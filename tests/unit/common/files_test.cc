#include "common/files.h"

#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <fstream>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "common/status.h"
#include "tests/unit/temp_dir.h"

namespace crius {
namespace {

using ::testing::HasSubstr;

class FilesTest : public ::testing::Test {
 protected:
  testing::TempDir tmp_{"crius-files-test"};
  const std::string dir_ = tmp_.path();
};

TEST_F(FilesTest, MakeDirsReportsWhatItCreatedAndUndoRemovesIt) {
  auto created = MakeDirs(dir_ + "/a/b/c", 0711);
  ASSERT_TRUE(created.ok()) << created.status();
  EXPECT_THAT(*created, ::testing::ElementsAre(dir_ + "/a", dir_ + "/a/b", dir_ + "/a/b/c"));
  struct stat st;
  ASSERT_EQ(stat((dir_ + "/a/b/c").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0711u);
  RemoveCreatedDirs(*created);
  EXPECT_NE(stat((dir_ + "/a").c_str(), &st), 0);
}

TEST_F(FilesTest, MakeDirsThroughAFileFailsAndLeavesNothing) {
  std::ofstream(dir_ + "/file") << "x";
  // "n1" is created on the way, then "n1/../file" is a file: n1 must go again.
  auto bad = MakeDirs(dir_ + "/n1/../file/y", 0711);
  ASSERT_FALSE(bad.ok());
  EXPECT_THAT(bad.status().message(), HasSubstr("mkdir " + dir_ + "/n1/../file"));
  EXPECT_THAT(bad.status().message(), HasSubstr("Not a directory"));
  struct stat st;
  EXPECT_NE(stat((dir_ + "/n1").c_str(), &st), 0);
}

TEST_F(FilesTest, SecondLockNamesTheHolder) {
  std::string path = dir_ + "/lock";
  auto first = LockFile(path, "the thing");
  ASSERT_TRUE(first.ok()) << first.status();
  // flock is per open file description: a second open in this process conflicts too.
  auto second = LockFile(path, "the thing");
  ASSERT_FALSE(second.ok());
  EXPECT_EQ(second.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(second.status().message(), HasSubstr("pid " + std::to_string(getpid())));
  EXPECT_THAT(second.status().message(), HasSubstr("the thing"));
  first->reset();
  EXPECT_TRUE(LockFile(path, "the thing").ok());
}

TEST_F(FilesTest, WriteFileAtomicReplacesContent) {
  std::string path = dir_ + "/f";
  ASSERT_TRUE(WriteFileAtomic(path, "one", 0644).ok());
  ASSERT_TRUE(WriteFileAtomic(path, "two", 0644).ok());
  std::ifstream in(path);
  std::string text((std::istreambuf_iterator<char>(in)), {});
  EXPECT_EQ(text, "two");
  EXPECT_FALSE(WriteFileAtomic(dir_ + "/missing/f", "x", 0644).ok());
}

TEST_F(FilesTest, ReadFileReadsAllAndNamesWhatFailed) {
  std::string path = dir_ + "/f";
  std::string big(100000, 'x');  // more than one read
  ASSERT_TRUE(WriteFileAtomic(path, big, 0644).ok());
  absl::StatusOr<std::string> text = ReadFile(path);
  ASSERT_TRUE(text.ok()) << text.status();
  EXPECT_EQ(*text, big);
  absl::StatusOr<std::string> missing = ReadFile(dir_ + "/missing");
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(ErrnoOf(missing.status()), ENOENT);
  EXPECT_THAT(missing.status().message(), HasSubstr("read " + dir_ + "/missing"));
  EXPECT_THAT(ReadFile(dir_ + "/missing", "read the thing").status().message(), HasSubstr("read the thing: "));
  EXPECT_EQ(ErrnoOf(ReadFile(dir_).status()), EISDIR);
}

TEST(DirUsageTest, CountsBlocksAndInodesWithoutFollowingSymlinks) {
  crius::testing::TempDir tmp;
  ASSERT_EQ(::mkdir((tmp.path() + "/d").c_str(), 0755), 0);
  std::ofstream(tmp.path() + "/d/f") << std::string(100000, 'x');
  ASSERT_EQ(::symlink("/usr", (tmp.path() + "/link").c_str()), 0);
  DirUsage u = UsageOf(tmp.path());
  EXPECT_EQ(u.inodes, 3u);  // d, d/f, link: /usr not walked
  EXPECT_GE(u.bytes, 100000u);
  EXPECT_LT(u.bytes, 1u << 20);
  DirUsage none = UsageOf(tmp.path() + "/missing");
  EXPECT_EQ(none.inodes, 0u);
  EXPECT_EQ(none.bytes, 0u);
}

}  // namespace
}  // namespace crius
