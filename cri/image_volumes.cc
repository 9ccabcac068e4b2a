#include "cri/image_volumes.h"

#include <dirent.h>
#include <fcntl.h>
#include <linux/openat2.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <climits>
#include <memory>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "common/failpoint.h"
#include "common/files.h"
#include "common/in_root.h"
#include "common/log.h"
#include "common/status.h"
#include "common/unique_fd.h"
#include "sandbox/userns.h"

namespace crius::cri {
namespace {

constexpr char kEmpty[] = ".empty";  // the lowest layer of every volume: overlayfs wants two
// Not noexec: the image's programs may run from it, as cri-tools checks
// (the KEP's first text asked for noexec; it holds no more).
constexpr unsigned long kFlags = MS_RDONLY | MS_NODEV | MS_NOSUID;

// Whether `path` is the root of a mount (not a directory of its parent's).
bool IsMountRoot(const std::string& path) {
  struct statx stx = {};
  if (::statx(AT_FDCWD, path.c_str(), AT_SYMLINK_NOFOLLOW, STATX_BASIC_STATS, &stx) != 0) return false;
  return (stx.stx_attributes_mask & STATX_ATTR_MOUNT_ROOT) != 0 && (stx.stx_attributes & STATX_ATTR_MOUNT_ROOT) != 0;
}

}  // namespace

std::string ImageVolumes::Name(const std::string& image_id, const std::string& idmap_pod) {
  std::string name = image_id;
  std::replace(name.begin(), name.end(), ':', '-');
  if (!idmap_pod.empty()) absl::StrAppend(&name, "-pod-", idmap_pod);
  return name;
}

// Crash points: none, it runs at every start, which does it again
absl::Status ImageVolumes::Recover() {
  if (absl::StatusOr<std::vector<std::string>> made = MakeDirs(absl::StrCat(dir_, "/", kEmpty), 0755); !made.ok()) {
    return Annotate(made.status(), "create the image volumes' directory");
  }
  std::unique_ptr<DIR, int (*)(DIR*)> dir(::opendir(dir_.c_str()), ::closedir);
  if (dir == nullptr) return ErrnoError(errno, absl::StrCat("list ", dir_));
  std::vector<std::string> found;
  for (struct dirent* e; (e = ::readdir(dir.get())) != nullptr;) {
    if (e->d_name[0] != '.') found.push_back(e->d_name);
  }
  std::lock_guard<std::mutex> lock(mu_);
  for (const std::string& name : found) {
    std::string path = absl::StrCat(dir_, "/", name);
    if (IsMountRoot(path)) {
      mounted_.insert(name);
    } else {
      (void)::rmdir(path.c_str());  // a volume whose mount was never made
    }
  }
  SweepLocked();
  return absl::OkStatus();
}

// Crash points: at its callers
absl::StatusOr<std::string> ImageVolumes::Mount(const std::string& name, const std::vector<std::string>& layers,
                                                const std::string& userns) {
  std::string path = absl::StrCat(dir_, "/", name);
  std::lock_guard<std::mutex> lock(mu_);
  if (mounted_.count(name) != 0 && IsMountRoot(path)) return path;
  mounted_.erase(name);
  // In a pod's user namespace the layers are idmapped lower layers, as the
  // container's own root is: a file of root on disk is root inside.
  std::vector<std::string> lowers = layers;
  lowers.push_back(absl::StrCat(dir_, "/", kEmpty));
  std::vector<UniqueFd> idmapped;
  if (!userns.empty()) {
    UniqueFd ns(::open(userns.c_str(), O_RDONLY | O_CLOEXEC));
    if (!ns.valid()) return ErrnoError(errno, absl::StrCat("open the pod's user namespace ", userns));
    for (std::string& lower : lowers) {
      CRIUS_ASSIGN_OR_RETURN(UniqueFd copy, sandbox::IdmappedCopy(lower, ns.get(), false));
      lower = absl::StrCat("/proc/self/fd/", copy.get());
      idmapped.push_back(std::move(copy));
    }
  }
  if (::mkdir(path.c_str(), 0755) != 0 && errno != EEXIST) return ErrnoError(errno, absl::StrCat("create ", path));
  CRIUS_FAILPOINT("image_volume.after_dir");
  // An image of no layers is an empty filesystem.
  const char* type = layers.empty() ? "tmpfs" : "overlay";
  std::string options =
      layers.empty() ? "size=4k,mode=0755" : absl::StrCat("lowerdir=", absl::StrJoin(lowers, ":"));
  if (::mount(type, path.c_str(), type, kFlags, options.c_str()) != 0) {
    absl::Status error = ErrnoError(errno, absl::StrCat("mount the image's layers on ", path));
    (void)::rmdir(path.c_str());  // no crash point: undoes the mkdir
    return error;
  }
  mounted_.insert(name);
  LOG_INFO("image volume %s mounted", path);
  return path;
}

// Crash points: at its callers
void ImageVolumes::Sweep() {
  std::lock_guard<std::mutex> lock(mu_);
  SweepLocked();
}

// Crash points: at its callers
void ImageVolumes::SweepLocked() {
  if (mounted_.empty()) return;
  std::set<std::string> needed;
  for (const std::shared_ptr<Container>& c : containers_.All()) {
    for (const ImageVolumeUse& use : c->image_volumes) needed.insert(use.volume);
  }
  for (auto it = mounted_.begin(); it != mounted_.end();) {
    if (needed.count(*it) != 0) {
      ++it;
      continue;
    }
    std::string path = absl::StrCat(dir_, "/", *it);
    // Containers hold binds of their own: the node's mount goes at once.
    for (int i = 0; i < 8 && IsMountRoot(path); ++i) {
      if (::umount2(path.c_str(), MNT_DETACH) != 0) {
        LOG_WARN("image volume %s: unmount: %s", path, strerror(errno));
        break;
      }
    }
    if (IsMountRoot(path)) {  // kept, to be tried again by the next sweep
      ++it;
      continue;
    }
    CRIUS_FAILPOINT("image_volume.after_unmount");
    if (::rmdir(path.c_str()) != 0 && errno != ENOENT) {
      LOG_WARN("image volume %s: remove: %s", path, strerror(errno));
    }
    LOG_INFO("image volume %s unmounted: no container mounts it", path);
    it = mounted_.erase(it);
  }
}

absl::StatusOr<std::string> ImageSubPath(const std::string& mount_point, const std::string& sub_path,
                                         const std::string& field) {
  if (sub_path[0] == '/') {
    return InvalidField(field, absl::StrCat("\"", sub_path, "\" is absolute: it names a path below the image's root"));
  }
  for (absl::string_view part : absl::StrSplit(sub_path, '/')) {
    if (part == "..") return InvalidField(field, absl::StrCat("\"", sub_path, "\" has a \"..\" part"));
  }
  UniqueFd root(::open(mount_point.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC));
  if (!root.valid()) return ErrnoError(errno, absl::StrCat("open ", mount_point));
  std::string via;
  if (EscapesRoot(root.get(), sub_path, &via)) {
    return InvalidField(field, absl::StrCat("\"", sub_path, "\" leads out of the image through its symlink ", via));
  }
  struct open_how how = {};
  how.flags = O_PATH | O_CLOEXEC;
  how.resolve = RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS | RESOLVE_NO_XDEV;
  UniqueFd at(static_cast<int>(::syscall(SYS_openat2, root.get(), sub_path.c_str(), &how, sizeof how)));
  if (!at.valid()) {
    if (errno == ENOENT || errno == ENOTDIR) {
      return InvalidField(field, absl::StrCat("\"", sub_path, "\" does not exist in the image"));
    }
    return ErrnoError(errno, absl::StrCat("open ", sub_path, " in the image mounted on ", mount_point));
  }
  char real[PATH_MAX];
  std::string proc = absl::StrCat("/proc/self/fd/", at.get());
  ssize_t n = ::readlink(proc.c_str(), real, sizeof real - 1);
  if (n < 0) return ErrnoError(errno, absl::StrCat("resolve ", sub_path, " in the image mounted on ", mount_point));
  return std::string(real, static_cast<size_t>(n));
}

}  // namespace crius::cri
