#include "sandbox/userns.h"

#include <fcntl.h>
#include <linux/mount.h>
#include <sched.h>
#include <signal.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "common/status.h"

namespace crius::sandbox {
namespace {

absl::Status WriteFile(const std::string& path, const std::string& text) {
  UniqueFd fd(::open(path.c_str(), O_WRONLY | O_CLOEXEC));
  if (!fd || ::write(fd.get(), text.data(), text.size()) != static_cast<ssize_t>(text.size())) {
    return ErrnoError(errno, absl::StrCat("write ", path));
  }
  return absl::OkStatus();
}

// The child's report: one tag byte, and an errno after 'E'.
absl::Status ReadReport(int fd, char want, absl::string_view what) {
  char buf[1 + sizeof(int)] = {};
  ssize_t n;
  do {
    n = ::read(fd, buf, sizeof buf);
  } while (n < 0 && errno == EINTR);
  if (n >= 1 && buf[0] == want) return absl::OkStatus();
  if (n == static_cast<ssize_t>(sizeof buf) && buf[0] == 'E') {
    int err;
    std::memcpy(&err, buf + 1, sizeof err);
    return ErrnoError(err, what);
  }
  return absl::InternalError(absl::StrCat(what, ": the helper process ended"));
}

[[noreturn]] void ChildFail(int fd, int err) {
  char buf[1 + sizeof(int)] = {'E'};
  std::memcpy(buf + 1, &err, sizeof err);
  ssize_t ignored = ::write(fd, buf, sizeof buf);
  (void)ignored;
  ::_exit(1);
}

}  // namespace

std::string CheckIdRanges(const std::vector<IdRange>& ranges) {
  if (ranges.empty()) return "has no mapping";
  if (ranges.size() > kMaxIdRanges) return absl::StrCat("has more than ", kMaxIdRanges, " mappings");
  for (size_t i = 0; i < ranges.size(); ++i) {
    const IdRange& r = ranges[i];
    if (r.length == 0) return absl::StrCat("mapping ", i, " has length 0");
    if (uint64_t{r.container_id} + r.length > (uint64_t{1} << 32) ||
        uint64_t{r.host_id} + r.length > (uint64_t{1} << 32)) {
      return absl::StrCat("mapping ", i, " runs past ID 4294967295");
    }
    for (size_t j = 0; j < i; ++j) {
      const IdRange& o = ranges[j];
      if (r.container_id < o.container_id + o.length && o.container_id < r.container_id + r.length) {
        return absl::StrCat("mappings ", j, " and ", i, " overlap in container IDs");
      }
      if (r.host_id < o.host_id + o.length && o.host_id < r.host_id + r.length) {
        return absl::StrCat("mappings ", j, " and ", i, " overlap in host IDs");
      }
    }
  }
  return "";
}

std::optional<uint32_t> HostId(const std::vector<IdRange>& ranges, uint32_t id) {
  for (const IdRange& r : ranges) {
    if (id >= r.container_id && id - r.container_id < r.length) return r.host_id + (id - r.container_id);
  }
  return std::nullopt;
}

std::string MapText(const std::vector<IdRange>& ranges) {
  std::string out;
  for (const IdRange& r : ranges) absl::StrAppend(&out, r.container_id, " ", r.host_id, " ", r.length, "\n");
  return out;
}

std::string RangeFlag(const IdRange& r) { return absl::StrCat(r.container_id, ":", r.host_id, ":", r.length); }

absl::StatusOr<IdRange> ParseRangeFlag(const std::string& text) {
  std::vector<std::string> parts = absl::StrSplit(text, ':');
  IdRange r;
  if (parts.size() != 3 || !absl::SimpleAtoi(parts[0], &r.container_id) ||
      !absl::SimpleAtoi(parts[1], &r.host_id) || !absl::SimpleAtoi(parts[2], &r.length)) {
    return absl::InvalidArgumentError(absl::StrCat("\"", text, "\" is not container:host:length"));
  }
  return r;
}

absl::StatusOr<UsernsHolder> UsernsHolder::Start(const IdMappings& m, int more) {
  // Built before fork: the child only makes system calls.
  std::string uid_map = MapText(m.uids), gid_map = MapText(m.gids);
  int ready[2], go[2];
  if (::pipe2(ready, O_CLOEXEC) != 0) return ErrnoError(errno, "pipe");
  if (::pipe2(go, O_CLOEXEC) != 0) {
    int err = errno;
    ::close(ready[0]);
    ::close(ready[1]);
    return ErrnoError(err, "pipe");
  }
  UniqueFd ready_r(ready[0]), ready_w(ready[1]), go_r(go[0]), go_w(go[1]);
  pid_t pid = ::fork();
  if (pid < 0) return ErrnoError(errno, "fork the user namespace's holder");
  if (pid == 0) {
    ::close(ready[0]);
    ::close(go[1]);  // else our own copy would keep Release()'s EOF from coming
    ::prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (::unshare(CLONE_NEWUSER) != 0) ChildFail(ready[1], errno);
    if (::write(ready[1], "u", 1) != 1) ::_exit(1);
    char c;
    if (::read(go[0], &c, 1) != 1) ::_exit(1);  // the maps are written
    if (more != 0 && ::unshare(more) != 0) ChildFail(ready[1], errno);
    if (::write(ready[1], "n", 1) != 1) ::_exit(1);
    while (::read(go[0], &c, 1) > 0) {  // until Release() closes it
    }
    ::_exit(0);
  }
  ready_w.reset();
  go_r.reset();
  UsernsHolder holder(pid, std::move(go_w));
  CRIUS_RETURN_IF_ERROR(ReadReport(ready_r.get(), 'u', "make a user namespace"));
  std::string proc = absl::StrCat("/proc/", pid);
  CRIUS_RETURN_IF_ERROR(WriteFile(proc + "/uid_map", uid_map));
  CRIUS_RETURN_IF_ERROR(WriteFile(proc + "/gid_map", gid_map));
  if (::write(holder.go_.get(), "m", 1) != 1) return ErrnoError(errno, "wake the user namespace's holder");
  CRIUS_RETURN_IF_ERROR(ReadReport(ready_r.get(), 'n', "make the pod's namespaces in its user namespace"));
  return holder;
}

absl::StatusOr<UniqueFd> UsernsHolder::Open(const std::string& kind) const {
  std::string path = absl::StrCat("/proc/", pid_, "/ns/", kind);
  UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd) return ErrnoError(errno, absl::StrCat("open ", path));
  return fd;
}

void UsernsHolder::Release() {
  if (pid_ <= 0) return;
  go_.reset();
  int status;
  while (::waitpid(pid_, &status, 0) < 0 && errno == EINTR) {
  }
  pid_ = -1;
}

absl::StatusOr<UniqueFd> IdmappedCopy(const std::string& path, int userns_fd, bool recursive) {
  unsigned int flags = OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC | (recursive ? AT_RECURSIVE : 0);
  UniqueFd tree(static_cast<int>(::syscall(SYS_open_tree, AT_FDCWD, path.c_str(), flags)));
  if (!tree) return ErrnoError(errno, absl::StrCat("copy the mount of ", path));
  struct mount_attr attr = {};
  attr.attr_set = MOUNT_ATTR_IDMAP;
  attr.userns_fd = static_cast<uint64_t>(userns_fd);
  if (::syscall(SYS_mount_setattr, tree.get(), "", AT_EMPTY_PATH | (recursive ? AT_RECURSIVE : 0), &attr,
                sizeof attr) != 0) {
    return ErrnoError(errno, absl::StrCat("idmap the mount of ", path));
  }
  return tree;
}

absl::Status ProbeIdmappedOverlay(const std::string& dir) {
  // A fixed name: what a crash left here is used again and removed.
  std::string base = dir + "/.idmap-probe";
  std::string lower = base + "/lower", upper = base + "/upper", work = base + "/work", merged = base + "/merged";
  absl::Status st;
  for (const std::string& d : {base, lower, upper, work, merged}) {
    if (::mkdir(d.c_str(), 0700) != 0 && errno != EEXIST) {
      st = ErrnoError(errno, absl::StrCat("mkdir ", d));
      break;
    }
  }
  if (st.ok()) {
    auto holder = UsernsHolder::Start({{{0, 1000000, 65536}}, {{0, 1000000, 65536}}});
    st = holder.status();
    if (st.ok()) {
      auto userns = holder->Open("user");
      st = userns.status();
      std::optional<UniqueFd> copy;
      if (st.ok()) {
        auto c = IdmappedCopy(lower, userns->get(), false);
        st = c.status();
        if (c.ok()) copy = std::move(*c);
      }
      if (st.ok()) {
        // The overlay is mounted in a child's own mount namespace: nothing
        // shows on the node, and nothing is left to unmount.
        std::string options = absl::StrCat("lowerdir=/proc/self/fd/", copy->get(), ",upperdir=", upper,
                                           ",workdir=", work);
        pid_t pid = ::fork();
        if (pid == 0) {
          if (::unshare(CLONE_NEWNS) != 0 || ::mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr) != 0) {
            ::_exit(100);
          }
          ::_exit(::mount("overlay", merged.c_str(), "overlay", 0, options.c_str()) == 0 ? 0 : errno);
        }
        int status = 0;
        if (pid < 0) {
          st = ErrnoError(errno, "fork");
        } else {
          while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
          }
          if (!WIFEXITED(status) || WEXITSTATUS(status) == 100) {
            st = absl::InternalError("a private mount namespace for the overlay probe");
          } else if (WEXITSTATUS(status) != 0) {
            st = ErrnoError(WEXITSTATUS(status), "mount an overlay on an idmapped lower layer");
          }
        }
      }
    }
  }
  for (const std::string& d : {work + "/work", merged, work, upper, lower, base}) ::rmdir(d.c_str());
  return st;
}

}  // namespace crius::sandbox
