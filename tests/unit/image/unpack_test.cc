#include "image/unpack.h"

#include <archive.h>
#include <archive_entry.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <fstream>
#include <functional>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "tests/unit/temp_dir.h"

#include "image/content_store.h"

namespace crius::image {
namespace {

using ::testing::HasSubstr;

// Builds a tar (optionally compressed) entry by entry with libarchive.
class TarBuilder {
 public:
  explicit TarBuilder(const char* filter = "") {
    a_ = archive_write_new();
    archive_write_set_format_pax_restricted(a_);
    // No padding to a 10 KiB block: the same tar bytes with or without a filter.
    archive_write_set_bytes_in_last_block(a_, 1);
    if (std::string(filter) == "gzip") archive_write_add_filter_gzip(a_);
    if (std::string(filter) == "zstd") archive_write_add_filter_zstd(a_);
    archive_write_open(a_, this, nullptr, Append, nullptr);
  }
  ~TarBuilder() { archive_write_free(a_); }

  TarBuilder& File(const std::string& path, const std::string& data, int mode = 0644,
                   int uid = 0, int gid = 0,
                   std::function<void(archive_entry*)> extra = nullptr) {
    archive_entry* e = Entry(path, AE_IFREG, mode, uid, gid);
    archive_entry_set_size(e, data.size());
    if (extra) extra(e);
    archive_write_header(a_, e);
    archive_write_data(a_, data.data(), data.size());
    archive_entry_free(e);
    return *this;
  }
  TarBuilder& Dir(const std::string& path, int mode = 0755) { return Write(Entry(path, AE_IFDIR, mode)); }
  TarBuilder& Symlink(const std::string& path, const std::string& target) {
    archive_entry* e = Entry(path, AE_IFLNK, 0777);
    archive_entry_set_symlink(e, target.c_str());
    return Write(e);
  }
  TarBuilder& Hardlink(const std::string& path, const std::string& target) {
    archive_entry* e = Entry(path, AE_IFREG, 0644);
    archive_entry_set_hardlink(e, target.c_str());
    archive_entry_set_size(e, 0);
    return Write(e);
  }
  TarBuilder& Device(const std::string& path, mode_t type, int major, int minor) {
    archive_entry* e = Entry(path, type, 0620);
    archive_entry_set_rdev(e, makedev(major, minor));
    return Write(e);
  }
  std::string Finish() {
    archive_write_close(a_);
    return out_;
  }

 private:
  archive_entry* Entry(const std::string& path, mode_t type, int mode, int uid = 0, int gid = 0) {
    archive_entry* e = archive_entry_new();
    archive_entry_set_pathname(e, path.c_str());
    archive_entry_set_filetype(e, type);
    archive_entry_set_perm(e, mode);
    archive_entry_set_uid(e, uid);
    archive_entry_set_gid(e, gid);
    archive_entry_set_mtime(e, 1000000000, 0);
    return e;
  }
  TarBuilder& Write(archive_entry* e) {
    archive_write_header(a_, e);
    archive_entry_free(e);
    return *this;
  }
  static la_ssize_t Append(archive*, void* self, const void* buf, size_t n) {
    static_cast<TarBuilder*>(self)->out_.append(static_cast<const char*>(buf), n);
    return static_cast<la_ssize_t>(n);
  }

  archive* a_;
  std::string out_;
};

std::string Uncompressed(TarBuilder& t) { return t.Finish(); }

class UnpackTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_EQ(mkdir(dest_.c_str(), 0755), 0);
    ASSERT_EQ(mkdir((dir_ + "/outside").c_str(), 0755), 0);
  }
  absl::StatusOr<UnpackedLayer> Unpack(const std::string& blob, const UnpackLimits& limits = {}) {
    std::string path = dir_ + "/blob";
    std::ofstream(path, std::ios::binary) << blob;
    return UnpackLayer(path, dest_, limits);
  }
  std::string Read(const std::string& rel) {
    std::ifstream in(dest_ + "/" + rel);
    return std::string((std::istreambuf_iterator<char>(in)), {});
  }
  bool Exists(const std::string& path) {
    struct stat st;
    return lstat(path.c_str(), &st) == 0;
  }

  testing::TempDir tmp_{"crius-unpack-test"};
  const std::string dir_ = tmp_.path();
  const std::string dest_ = dir_ + "/layer";
};

TEST_F(UnpackTest, ALayerThatInflatesPastTheLimitIsRefused) {
  // 8 MiB of zeros: gzip makes a few KiB of it.
  TarBuilder t("gzip");
  std::string blob = t.File("zeros", std::string(8 << 20, '\0')).Finish();
  ASSERT_LT(blob.size(), 64u << 10);
  UnpackLimits limits;
  limits.max_bytes = 1 << 20;
  absl::StatusOr<UnpackedLayer> r = Unpack(blob, limits);
  ASSERT_EQ(r.status().code(), absl::StatusCode::kResourceExhausted) << r.status();
  EXPECT_THAT(r.status().message(), HasSubstr("passes 1 MiB (registry.max_unpacked_layer_mib)"));
  // Under the limit, the same layer unpacks.
  limits.max_bytes = 9 << 20;
  ASSERT_TRUE(Unpack(blob, limits).ok());
  EXPECT_EQ(Read("zeros").size(), 8u << 20);
}

TEST_F(UnpackTest, KeepsFilesDirsLinksDevicesOwnersAndModes) {
  TarBuilder t;
  t.Dir("./bin").File("bin/tool", "#!/bin/sh\n", 04755, 0, 0)
      .File("home/user/notes", "hi", 0600, 1000, 1001)  // parent dirs not in the tar
      .Symlink("bin/sh", "busybox")
      .Hardlink("bin/tool2", "bin/tool")
      .Device("dev/null", AE_IFCHR, 1, 3)
      .Device("dev/fifo", AE_IFIFO, 0, 0);
  auto r = Unpack(Uncompressed(t));
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->entries, 7u);
  struct stat st;
  ASSERT_EQ(lstat((dest_ + "/bin/tool").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 07777, 04755u) << "setuid survives the chown";
  EXPECT_EQ(st.st_nlink, 2u);
  EXPECT_EQ(st.st_mtime, 1000000000);
  ASSERT_EQ(lstat((dest_ + "/home/user/notes").c_str(), &st), 0);
  EXPECT_EQ(st.st_uid, 1000u);
  EXPECT_EQ(st.st_gid, 1001u);
  EXPECT_EQ(Read("home/user/notes"), "hi");
  char target[64] = {};
  ASSERT_GT(readlink((dest_ + "/bin/sh").c_str(), target, sizeof target), 0);
  EXPECT_STREQ(target, "busybox");
  ASSERT_EQ(lstat((dest_ + "/dev/null").c_str(), &st), 0);
  EXPECT_TRUE(S_ISCHR(st.st_mode));
  EXPECT_EQ(st.st_rdev, makedev(1, 3));
  ASSERT_EQ(lstat((dest_ + "/dev/fifo").c_str(), &st), 0);
  EXPECT_TRUE(S_ISFIFO(st.st_mode));
}

TEST_F(UnpackTest, DiffIdIsTheDigestOfTheUncompressedTar) {
  for (const char* filter : {"", "gzip", "zstd"}) {
    TarBuilder plain;
    plain.File("a", "content of a");
    std::string tar = plain.Finish();
    TarBuilder packed(filter);
    packed.File("a", "content of a");
    std::string blob = packed.Finish();
    ASSERT_TRUE(RemoveTree(dest_).ok());
    ASSERT_EQ(mkdir(dest_.c_str(), 0755), 0);
    auto r = Unpack(blob);
    ASSERT_TRUE(r.ok()) << filter << ": " << r.status();
    EXPECT_EQ(r->diff_id, Sha256Digest(tar)) << filter;
    EXPECT_EQ(r->tar_bytes, tar.size());
    EXPECT_EQ(Read("a"), "content of a");
  }
}

TEST_F(UnpackTest, WhiteoutsAndOpaqueDirsBecomeOverlayWhiteouts) {
  TarBuilder t;
  t.File("etc/.wh.removed", "").Dir("var/cache").File("var/cache/.wh..wh..opq", "")
      .File("var/cache/new", "n").File(".wh..wh.plnk", "");
  auto r = Unpack(t.Finish());
  ASSERT_TRUE(r.ok()) << r.status();
  struct stat st;
  ASSERT_EQ(lstat((dest_ + "/etc/removed").c_str(), &st), 0);
  EXPECT_TRUE(S_ISCHR(st.st_mode));
  EXPECT_EQ(st.st_rdev, makedev(0, 0));
  EXPECT_FALSE(Exists(dest_ + "/etc/.wh.removed"));
  char value[8] = {};
  ASSERT_EQ(getxattr((dest_ + "/var/cache").c_str(), "trusted.overlay.opaque", value, sizeof value), 1);
  EXPECT_EQ(value[0], 'y');
  EXPECT_EQ(Read("var/cache/new"), "n");
  EXPECT_FALSE(Exists(dest_ + "/.wh..wh.plnk"));
}

TEST_F(UnpackTest, XattrsAreKeptButOverlayOnesAreNot) {
  TarBuilder t;
  t.File("f", "x", 0644, 0, 0, [](archive_entry* e) {
    archive_entry_xattr_add_entry(e, "user.color", "blue", 4);
    archive_entry_xattr_add_entry(e, "trusted.overlay.redirect", "/etc", 4);
  });
  auto r = Unpack(t.Finish());
  ASSERT_TRUE(r.ok()) << r.status();
  char value[16] = {};
  EXPECT_EQ(getxattr((dest_ + "/f").c_str(), "user.color", value, sizeof value), 4);
  EXPECT_LT(getxattr((dest_ + "/f").c_str(), "trusted.overlay.redirect", value, sizeof value), 0);
}

TEST_F(UnpackTest, LaterEntriesReplaceEarlierOnes) {
  TarBuilder t;
  t.File("x", "old").File("x", "new").Dir("d").File("d/in", "1").File("d", "now a file");
  auto r = Unpack(t.Finish());
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(Read("x"), "new");
  EXPECT_EQ(Read("d"), "now a file");
}

struct Hostile {
  std::string name;
  std::function<void(TarBuilder&)> build;
  std::string why;
};

class HostileLayerTest : public UnpackTest, public ::testing::WithParamInterface<Hostile> {};

TEST_P(HostileLayerTest, FailsAndWritesNothingOutside) {
  TarBuilder t;
  GetParam().build(t);
  auto r = Unpack(t.Finish());
  ASSERT_FALSE(r.ok());
  EXPECT_THAT(r.status().message(), HasSubstr(GetParam().why));
  EXPECT_FALSE(Exists(dir_ + "/outside/pwned"));
  EXPECT_FALSE(Exists(dir_ + "/pwned"));
  EXPECT_FALSE(Exists("/tmp/pwned-by-crius-test"));
}

INSTANTIATE_TEST_SUITE_P(
    Layers, HostileLayerTest,
    ::testing::Values(
        Hostile{"DotDot", [](TarBuilder& t) { t.File("../pwned", "x"); }, "has a \"..\" component"},
        Hostile{"DeepDotDot", [](TarBuilder& t) { t.File("a/../../outside/pwned", "x"); },
                "has a \"..\" component"},
        Hostile{"Absolute", [](TarBuilder& t) { t.File("/tmp/pwned-by-crius-test", "x"); },
                "has an absolute path"},
        Hostile{"SymlinkOut", [](TarBuilder& t) {
                  t.Symlink("evil", "../outside").File("evil/pwned", "x");
                }, "leads outside the layer through a symlink"},
        Hostile{"AbsoluteSymlink", [](TarBuilder& t) {
                  t.Symlink("evil", "/tmp").File("evil/pwned-by-crius-test", "x");
                }, "leads outside the layer through a symlink"},
        Hostile{"HardlinkOut", [](TarBuilder& t) { t.Hardlink("pwned", "../outside/x"); },
                "has a \"..\" component"},
        Hostile{"HardlinkThroughSymlink", [](TarBuilder& t) {
                  t.Symlink("up", "..").Hardlink("pwned", "up/outside");
                }, "leads outside the layer"},
        Hostile{"HardlinkToMissing", [](TarBuilder& t) { t.Hardlink("pwned", "nothing"); },
                "hard link pwned -> nothing"},
        Hostile{"SymlinkChain", [](TarBuilder& t) {
                  t.Symlink("c", "../outside").Symlink("b", "c").Symlink("a", "b").File("a/pwned", "x");
                }, "leads outside the layer through a symlink"},
        // The directory the last entry's parent was is gone: a symlink took its name.
        Hostile{"DirReplacedBySymlink", [](TarBuilder& t) {
                  t.Dir("x").File("x/a", "a").Symlink("x", "../outside").File("x/pwned", "x");
                }, "leads outside the layer through a symlink"},
        Hostile{"WhiteoutOfDotDot", [](TarBuilder& t) { t.Dir("a").File("a/.wh...", ""); },
                "whiteout \"a/.wh...\" hides \"..\""},
        Hostile{"WhiteoutOfNothing", [](TarBuilder& t) { t.File(".wh.", ""); }, "hides \"\""},
        Hostile{"UnderAWhiteout", [](TarBuilder& t) { t.File(".wh.a/pwned", "x"); },
                "is under the whiteout \".wh.a\""},
        Hostile{"UnderTheOpaqueMarker", [](TarBuilder& t) { t.File("d/.wh..wh..opq/pwned", "x"); },
                "is under the whiteout \".wh..wh..opq\""}),
    [](const auto& info) { return info.param.name; });

TEST_F(UnpackTest, GarbageIsNotATar) {
  auto r = Unpack(std::string(1000, 'z'));
  ASSERT_FALSE(r.ok());
  EXPECT_THAT(r.status().message(), HasSubstr("tar"));
}

}  // namespace
}  // namespace crius::image
