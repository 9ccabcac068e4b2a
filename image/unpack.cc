#include "image/unpack.h"

#include <archive.h>
#include <archive_entry.h>
#include <fcntl.h>
#include <linux/openat2.h>
#include <openssl/evp.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <cerrno>
#include <memory>
#include <vector>

#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "common/files.h"
#include "common/status.h"
#include "common/unique_fd.h"

namespace crius::image {
namespace {

constexpr absl::string_view kWhiteoutPrefix = ".wh.";
constexpr absl::string_view kOpaqueMarker = ".wh..wh..opq";
constexpr absl::string_view kAufsPrefix = ".wh..wh.";  // aufs' own metadata (.wh..wh.plnk ...)

struct ArchiveDeleter {
  void operator()(struct archive* a) const { archive_read_free(a); }
};
using ArchivePtr = std::unique_ptr<struct archive, ArchiveDeleter>;

// The decompressed byte stream of the blob, hashed as it is read: the tar
// reader pulls from here, so the diff_id costs no second pass.
struct HashingSource {
  struct archive* raw = nullptr;  // decompressor (libarchive filters, "raw" format)
  EVP_MD_CTX* sha = nullptr;
  uint64_t bytes = 0;
  uint64_t max_bytes = 0;
  bool too_big = false;
  std::string error;
};

la_ssize_t ReadDecompressed(struct archive*, void* data, const void** buf) {
  auto* src = static_cast<HashingSource*>(data);
  const void* block;
  size_t size;
  la_int64_t offset;
  int rc = archive_read_data_block(src->raw, &block, &size, &offset);
  if (rc == ARCHIVE_EOF) return 0;
  if (rc != ARCHIVE_OK) {
    src->error = archive_error_string(src->raw) ? archive_error_string(src->raw) : "read error";
    return -1;
  }
  if (size > src->max_bytes - src->bytes) {
    src->too_big = true;
    return -1;
  }
  EVP_DigestUpdate(src->sha, block, size);
  src->bytes += size;
  *buf = block;
  return static_cast<la_ssize_t>(size);
}

int Openat2(int dirfd, const std::string& path, uint64_t flags, uint64_t resolve) {
  struct open_how how = {};
  how.flags = flags | O_CLOEXEC;
  how.resolve = resolve;
  return static_cast<int>(::syscall(SYS_openat2, dirfd, path.c_str(), &how, sizeof how));
}

constexpr uint64_t kBeneath = RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS;

// An entry's path, cleaned: "./a/b/" -> "a/b". Absolute paths and ".."
// components are refused.
absl::StatusOr<std::string> CleanPath(absl::string_view raw) {
  if (absl::StartsWith(raw, "/")) {
    return absl::InvalidArgumentError(absl::StrCat("entry \"", raw, "\" has an absolute path"));
  }
  std::vector<absl::string_view> kept;
  for (absl::string_view part : absl::StrSplit(raw, '/', absl::SkipEmpty())) {
    if (part == ".") continue;
    if (part == "..") {
      return absl::InvalidArgumentError(absl::StrCat("entry \"", raw, "\" has a \"..\" component"));
    }
    kept.push_back(part);
  }
  return absl::StrJoin(kept, "/");
}

class Unpacker {
 public:
  explicit Unpacker(UniqueFd root) : root_(std::move(root)) {}

  absl::Status Entry(struct archive* tar, struct archive_entry* e);
  // Directory times last: their children changed them while unpacking.
  void FinishDirectories();

 private:
  absl::StatusOr<int> Parent(const std::string& dir);
  absl::Status Whiteout(int parent, absl::string_view parent_path, absl::string_view name);
  absl::Status RemoveExisting(int parent, const std::string& name, bool keep_dir);
  absl::Status WriteFile(struct archive* tar, int fd, const std::string& path);
  absl::Status SetAttributes(int fd, struct archive_entry* e, const std::string& path);

  UniqueFd root_;
  std::string cached_parent_path_ = "\x01";  // never a real path
  UniqueFd cached_parent_;
  struct DirTimes {
    std::string path;
    struct timespec times[2];
  };
  std::vector<DirTimes> dirs_;
};

absl::StatusOr<int> Unpacker::Parent(const std::string& dir) {
  if (dir == cached_parent_path_) return cached_parent_.get();
  // Walk down, creating what an earlier entry (or layer) did not: a layer
  // may hold "a/b/c" without "a/b".
  UniqueFd cur(Openat2(root_.get(), ".", O_PATH | O_DIRECTORY, kBeneath));
  if (!cur) return ErrnoError(errno, "open layer directory");
  std::string walked;
  for (absl::string_view part : absl::StrSplit(dir, '/', absl::SkipEmpty())) {
    std::string name(part);
    walked = walked.empty() ? name : absl::StrCat(walked, "/", name);
    int fd = Openat2(root_.get(), walked, O_PATH | O_DIRECTORY, kBeneath);
    if (fd < 0 && errno == ENOENT) {
      if (::mkdirat(cur.get(), name.c_str(), 0755) != 0 && errno != EEXIST) {
        return ErrnoError(errno, absl::StrCat("mkdir ", walked));
      }
      fd = Openat2(root_.get(), walked, O_PATH | O_DIRECTORY, kBeneath);
    }
    if (fd < 0) {
      if (errno == EXDEV || errno == ELOOP) {
        return absl::InvalidArgumentError(absl::StrCat(
            "path \"", walked, "\" leads outside the layer through a symlink"));
      }
      return ErrnoError(errno, absl::StrCat("open ", walked));
    }
    cur.reset(fd);
  }
  cached_parent_path_ = dir;
  cached_parent_ = std::move(cur);
  return cached_parent_.get();
}

absl::Status Unpacker::RemoveExisting(int parent, const std::string& name, bool keep_dir) {
  struct stat st;
  if (::fstatat(parent, name.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) return absl::OkStatus();
  if (S_ISDIR(st.st_mode)) {
    if (keep_dir) return absl::OkStatus();
    // A later entry replaces a directory: remove it with what it holds. The
    // cached parent may be it, or below it: no longer a path of the layer.
    cached_parent_path_ = "\x01";
    return Annotate(RemoveTreeAt(parent, name), absl::StrCat("replace directory ", name));
  }
  if (::unlinkat(parent, name.c_str(), 0) != 0) return ErrnoError(errno, absl::StrCat("replace ", name));
  return absl::OkStatus();
}

absl::Status Unpacker::Whiteout(int parent, absl::string_view parent_path, absl::string_view name) {
  if (name == kOpaqueMarker) {
    // The directory hides everything below it in lower layers.
    std::string path = absl::StrCat("/proc/self/fd/", parent);
    UniqueFd dir(::open(path.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    if (!dir || ::fsetxattr(dir.get(), "trusted.overlay.opaque", "y", 1, 0) != 0) {
      return ErrnoError(errno, absl::StrCat("mark ", parent_path, " opaque"));
    }
    return absl::OkStatus();
  }
  std::string hidden(name.substr(kWhiteoutPrefix.size()));
  if (absl::StartsWith(name, kAufsPrefix)) return absl::OkStatus();  // not content
  if (hidden.empty() || hidden == "." || hidden == "..") {
    return absl::InvalidArgumentError(absl::StrCat(
        "whiteout \"", parent_path, parent_path.empty() ? "" : "/", name, "\" hides \"", hidden,
        "\", which is no entry of its directory"));
  }
  CRIUS_RETURN_IF_ERROR(RemoveExisting(parent, hidden, false));
  if (::mknodat(parent, hidden.c_str(), S_IFCHR | 0, makedev(0, 0)) != 0) {
    return ErrnoError(errno, absl::StrCat("whiteout ", parent_path, "/", hidden));
  }
  return absl::OkStatus();
}

absl::Status Unpacker::WriteFile(struct archive* tar, int fd, const std::string& path) {
  const void* block;
  size_t size;
  la_int64_t offset;
  int rc;
  while ((rc = archive_read_data_block(tar, &block, &size, &offset)) == ARCHIVE_OK) {
    const char* p = static_cast<const char*>(block);
    while (size > 0) {
      ssize_t n = ::pwrite(fd, p, size, offset);
      if (n < 0 && errno == EINTR) continue;
      if (n < 0) return ErrnoError(errno, absl::StrCat("write ", path));
      p += n;
      size -= static_cast<size_t>(n);
      offset += n;
    }
  }
  if (rc != ARCHIVE_EOF) {
    return absl::DataLossError(absl::StrCat("read ", path, " from the layer: ",
                                            archive_error_string(tar) ? archive_error_string(tar) : "error"));
  }
  return absl::OkStatus();
}

absl::Status Unpacker::SetAttributes(int fd, struct archive_entry* e, const std::string& path) {
  // Owner before mode: chown clears setuid and setgid bits.
  if (::fchown(fd, static_cast<uid_t>(archive_entry_uid(e)), static_cast<gid_t>(archive_entry_gid(e))) != 0) {
    return ErrnoError(errno, absl::StrCat("chown ", path));
  }
  if (::fchmod(fd, archive_entry_perm(e)) != 0) return ErrnoError(errno, absl::StrCat("chmod ", path));
  archive_entry_xattr_reset(e);
  const char* name;
  const void* value;
  size_t size;
  while (archive_entry_xattr_next(e, &name, &value, &size) == ARCHIVE_OK) {
    // A layer must not forge overlayfs' own metadata.
    if (absl::StartsWith(name, "trusted.overlay.")) continue;
    if (::fsetxattr(fd, name, value, size, 0) != 0 && errno != ENOTSUP) {
      return ErrnoError(errno, absl::StrCat("set xattr ", name, " on ", path));
    }
  }
  struct timespec times[2] = {{archive_entry_atime(e), archive_entry_atime_nsec(e)},
                              {archive_entry_mtime(e), archive_entry_mtime_nsec(e)}};
  if (!archive_entry_atime_is_set(e)) times[0] = times[1];
  ::futimens(fd, times);
  return absl::OkStatus();
}

absl::Status Unpacker::Entry(struct archive* tar, struct archive_entry* e) {
  const char* raw = archive_entry_pathname(e);
  if (raw == nullptr) return absl::InvalidArgumentError("entry without a path");
  CRIUS_ASSIGN_OR_RETURN(std::string path, CleanPath(raw));
  if (path.empty()) return absl::OkStatus();  // "./": the layer root itself
  size_t slash = path.rfind('/');
  std::string dir = slash == std::string::npos ? "" : path.substr(0, slash);
  std::string name = slash == std::string::npos ? path : path.substr(slash + 1);
  // A whiteout hides a name; it is never a directory an entry goes into.
  for (absl::string_view part : absl::StrSplit(dir, '/', absl::SkipEmpty())) {
    bool aufs = absl::StartsWith(part, kAufsPrefix) && part != kOpaqueMarker;
    if (absl::StartsWith(part, kWhiteoutPrefix) && !aufs) {
      return absl::InvalidArgumentError(absl::StrCat("entry \"", raw, "\" is under the whiteout \"",
                                                     part, "\""));
    }
  }
  CRIUS_ASSIGN_OR_RETURN(int parent, Parent(dir));

  if (absl::StartsWith(name, kWhiteoutPrefix)) return Whiteout(parent, dir, name);

  if (const char* link = archive_entry_hardlink(e)) {
    CRIUS_ASSIGN_OR_RETURN(std::string target, CleanPath(link));
    UniqueFd src(Openat2(root_.get(), target, O_PATH | O_NOFOLLOW, kBeneath));
    if (!src) {
      if (errno == EXDEV || errno == ELOOP) {
        return absl::InvalidArgumentError(absl::StrCat("hard link \"", path, "\" -> \"", link,
                                                       "\" leads outside the layer"));
      }
      return ErrnoError(errno, absl::StrCat("hard link ", path, " -> ", link));
    }
    CRIUS_RETURN_IF_ERROR(RemoveExisting(parent, name, false));
    if (::linkat(src.get(), "", parent, name.c_str(), AT_EMPTY_PATH) != 0) {
      return ErrnoError(errno, absl::StrCat("hard link ", path, " -> ", link));
    }
    return absl::OkStatus();
  }

  mode_t type = archive_entry_filetype(e);
  uid_t uid = static_cast<uid_t>(archive_entry_uid(e));
  gid_t gid = static_cast<gid_t>(archive_entry_gid(e));
  switch (type) {
    case AE_IFDIR: {
      CRIUS_RETURN_IF_ERROR(RemoveExisting(parent, name, true));
      if (::mkdirat(parent, name.c_str(), 0700) != 0 && errno != EEXIST) {
        return ErrnoError(errno, absl::StrCat("mkdir ", path));
      }
      UniqueFd fd(Openat2(root_.get(), path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW, kBeneath));
      if (!fd) return ErrnoError(errno, absl::StrCat("open ", path));
      CRIUS_RETURN_IF_ERROR(SetAttributes(fd.get(), e, path));
      dirs_.push_back({path, {{archive_entry_mtime(e), archive_entry_mtime_nsec(e)},
                              {archive_entry_mtime(e), archive_entry_mtime_nsec(e)}}});
      cached_parent_path_ = "\x01";  // a directory may have replaced the cached one
      return absl::OkStatus();
    }
    case AE_IFREG: {
      CRIUS_RETURN_IF_ERROR(RemoveExisting(parent, name, false));
      UniqueFd fd(::openat(parent, name.c_str(),
                           O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600));
      if (!fd) return ErrnoError(errno, absl::StrCat("create ", path));
      CRIUS_RETURN_IF_ERROR(WriteFile(tar, fd.get(), path));
      // A sparse file may end in a hole that no data block reaches.
      if (::ftruncate(fd.get(), archive_entry_size(e)) != 0) {
        return ErrnoError(errno, absl::StrCat("size ", path));
      }
      return SetAttributes(fd.get(), e, path);
    }
    case AE_IFLNK: {
      const char* target = archive_entry_symlink(e);
      if (target == nullptr) return absl::InvalidArgumentError(absl::StrCat("symlink ", path, " without a target"));
      CRIUS_RETURN_IF_ERROR(RemoveExisting(parent, name, false));
      // The target is stored as it is; nothing here ever follows it.
      if (::symlinkat(target, parent, name.c_str()) != 0) {
        return ErrnoError(errno, absl::StrCat("symlink ", path));
      }
      if (::fchownat(parent, name.c_str(), uid, gid, AT_SYMLINK_NOFOLLOW) != 0) {
        return ErrnoError(errno, absl::StrCat("chown ", path));
      }
      struct timespec times[2] = {{archive_entry_mtime(e), archive_entry_mtime_nsec(e)},
                                  {archive_entry_mtime(e), archive_entry_mtime_nsec(e)}};
      ::utimensat(parent, name.c_str(), times, AT_SYMLINK_NOFOLLOW);
      return absl::OkStatus();
    }
    case AE_IFCHR:
    case AE_IFBLK:
    case AE_IFIFO: {
      CRIUS_RETURN_IF_ERROR(RemoveExisting(parent, name, false));
      if (::mknodat(parent, name.c_str(), type | 0600, archive_entry_rdev(e)) != 0) {
        return ErrnoError(errno, absl::StrCat("mknod ", path));
      }
      UniqueFd fd(::openat(parent, name.c_str(), O_PATH | O_NOFOLLOW | O_CLOEXEC));
      if (!fd) return ErrnoError(errno, absl::StrCat("open ", path));
      std::string proc = absl::StrCat("/proc/self/fd/", fd.get());
      if (::chown(proc.c_str(), uid, gid) != 0 || ::chmod(proc.c_str(), archive_entry_perm(e)) != 0) {
        return ErrnoError(errno, absl::StrCat("set owner and mode of ", path));
      }
      return absl::OkStatus();
    }
    default:
      return absl::OkStatus();  // sockets and the like are not image content
  }
}

void Unpacker::FinishDirectories() {
  for (auto it = dirs_.rbegin(); it != dirs_.rend(); ++it) {
    ::utimensat(root_.get(), it->path.c_str(), it->times, AT_SYMLINK_NOFOLLOW);
  }
}

absl::Status TooBig(const UnpackLimits& limits) {
  return absl::ResourceExhaustedError(absl::StrCat(
      "its uncompressed content passes ", limits.max_bytes >> 20,
      " MiB (registry.max_unpacked_layer_mib): refused as a decompression bomb"));
}

}  // namespace

absl::StatusOr<UnpackedLayer> UnpackLayer(const std::string& blob_path, const std::string& dest,
                                          const UnpackLimits& limits) {
  UniqueFd root(::open(dest.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!root) return ErrnoError(errno, absl::StrCat("open ", dest));

  ArchivePtr raw(archive_read_new());
  archive_read_support_filter_gzip(raw.get());
  archive_read_support_filter_zstd(raw.get());
  archive_read_support_filter_none(raw.get());
  archive_read_support_format_raw(raw.get());
  if (archive_read_open_filename(raw.get(), blob_path.c_str(), 1 << 20) != ARCHIVE_OK) {
    return absl::DataLossError(absl::StrCat("open layer ", blob_path, ": ", archive_error_string(raw.get())));
  }
  struct archive_entry* raw_entry;
  if (archive_read_next_header(raw.get(), &raw_entry) != ARCHIVE_OK) {
    return absl::DataLossError(absl::StrCat("read layer ", blob_path, ": ", archive_error_string(raw.get())));
  }

  HashingSource src;
  src.raw = raw.get();
  src.max_bytes = limits.max_bytes;
  std::unique_ptr<EVP_MD_CTX, decltype(&EVP_MD_CTX_free)> sha(EVP_MD_CTX_new(), EVP_MD_CTX_free);
  src.sha = sha.get();
  EVP_DigestInit_ex(src.sha, EVP_sha256(), nullptr);

  ArchivePtr tar(archive_read_new());
  archive_read_support_format_tar(tar.get());
  archive_read_support_format_gnutar(tar.get());
  if (archive_read_open(tar.get(), &src, nullptr, ReadDecompressed, nullptr) != ARCHIVE_OK) {
    return absl::DataLossError(absl::StrCat("layer is not a tar archive: ", archive_error_string(tar.get())));
  }
  Unpacker unpacker(std::move(root));
  UnpackedLayer out;
  struct archive_entry* e;
  int rc;
  while ((rc = archive_read_next_header(tar.get(), &e)) == ARCHIVE_OK) {
    absl::Status st = unpacker.Entry(tar.get(), e);
    if (src.too_big) return TooBig(limits);
    if (!st.ok()) return st;
    ++out.entries;
  }
  if (src.too_big) return TooBig(limits);
  if (rc != ARCHIVE_EOF) {
    std::string why = !src.error.empty() ? src.error
                      : archive_error_string(tar.get()) ? archive_error_string(tar.get())
                                                        : "unreadable";
    return absl::DataLossError(absl::StrCat("layer is not a valid tar archive: ", why));
  }
  // Hash whatever follows the end-of-archive marker too: the diff_id covers
  // the whole uncompressed stream.
  const void* buf;
  while (ReadDecompressed(tar.get(), &src, &buf) > 0) {
  }
  if (src.too_big) return TooBig(limits);
  unpacker.FinishDirectories();
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int n = 0;
  EVP_DigestFinal_ex(src.sha, md, &n);
  out.diff_id = absl::StrCat(
      "sha256:", absl::BytesToHexString(absl::string_view(reinterpret_cast<const char*>(md), n)));
  out.tar_bytes = src.bytes;
  return out;
}

}  // namespace crius::image
