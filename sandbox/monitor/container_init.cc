#include "sandbox/monitor/container_init.h"

#include <fcntl.h>
#include <grp.h>
#include <linux/capability.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <linux/mount.h>
#include <linux/openat2.h>
#include <sched.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <climits>
#include <cstring>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "common/in_root.h"
#include "common/unique_fd.h"
#include "sandbox/userns.h"
#include "sandbox/monitor_wire.h"

namespace crius::monitor {
namespace {


int LastCap() {
  std::ifstream in("/proc/sys/kernel/cap_last_cap");
  int last = CAP_LAST_CAP;
  in >> last;
  return last;
}

// Opens `path` below the directory `root` as the container would see it
// (symlinks resolve inside root), creating what is missing on the way: the
// last component as a directory or an empty file.
int OpenInRoot(int root, const std::string& path, bool dir, std::string* error) {
  std::string walked;
  std::vector<std::string> parts = absl::StrSplit(path, '/', absl::SkipEmpty());
  for (size_t i = 0; i < parts.size(); ++i) {
    bool last = i + 1 == parts.size();
    std::string next = walked.empty() ? parts[i] : absl::StrCat(walked, "/", parts[i]);
    struct open_how how = {};
    how.flags = O_PATH | O_CLOEXEC;
    how.resolve = RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS;
    int fd = static_cast<int>(::syscall(SYS_openat2, root, next.c_str(), &how, sizeof how));
    if (fd < 0 && errno == ENOENT) {
      how.flags = O_PATH | O_CLOEXEC | O_DIRECTORY;
      int parent = walked.empty()
                       ? ::dup(root)
                       : static_cast<int>(::syscall(SYS_openat2, root, walked.c_str(), &how, sizeof how));
      if (parent < 0) {
        *error = absl::StrCat("open ", walked, ": ", strerror(errno));
        return -1;
      }
      std::string proc = absl::StrCat("/proc/self/fd/", parent);
      int made;
      if (!last || dir) {
        made = ::mkdirat(parent, parts[i].c_str(), 0755);
      } else {
        made = ::openat(parent, parts[i].c_str(), O_CREAT | O_WRONLY | O_CLOEXEC | O_NOFOLLOW, 0644);
        if (made >= 0) ::close(made), made = 0;
      }
      ::close(parent);
      if (made != 0 && errno != EEXIST) {
        *error = absl::StrCat("create ", next, ": ", strerror(errno));
        return -1;
      }
      how.flags = O_PATH | O_CLOEXEC;
      fd = static_cast<int>(::syscall(SYS_openat2, root, next.c_str(), &how, sizeof how));
    }
    if (fd < 0) {
      *error = absl::StrCat("open ", next, ": ", strerror(errno));
      return -1;
    }
    if (last) return fd;
    ::close(fd);
    walked = next;
  }
  return ::dup(root);
}

// The mount point of the mount holding `path` (longest prefix in mountinfo).
std::string MountPointOf(const std::string& path) {
  std::ifstream in("/proc/self/mountinfo");
  std::string best = "/";
  for (std::string line; std::getline(in, line);) {
    std::vector<std::string> f = absl::StrSplit(line, ' ');
    if (f.size() < 5) continue;
    const std::string& mp = f[4];
    if ((path == mp || absl::StartsWith(path, mp + "/")) && mp.size() > best.size()) best = mp;
  }
  return best;
}

// Binds `source` onto `dest` inside the root (opened as `root`).
// `locked` (of MS_NODEV, MS_NOSUID) is set on the bind too: a
// bind remount sets a mount's flags anew, so the source's are not kept.
// With `idmap_userns` (an open user namespace, else -1) the bind is an
// idmapped copy of the source's mounts.
void Bind(const InitPipes& p, int root, const std::string& source, const std::string& dest,
          bool readonly, bool recursive = true, bool recursive_readonly = false, unsigned long locked = 0,
          int idmap_userns = -1) {
  struct stat st;
  if (::stat(source.c_str(), &st) != 0) InitFail(p, absl::StrCat("mount source ", source), errno);
  std::string error;
  int target = OpenInRoot(root, dest, S_ISDIR(st.st_mode), &error);
  if (target < 0) InitFail(p, absl::StrCat("mount destination ", dest, ": ", error));
  std::string proc = absl::StrCat("/proc/self/fd/", target);
  if (idmap_userns >= 0) {
    absl::StatusOr<UniqueFd> copy = sandbox::IdmappedCopy(source, idmap_userns, recursive);
    if (!copy.ok()) InitFail(p, absl::StrCat("idmapped bind of ", source, " to ", dest, ": ", copy.status().message()));
    // The target as an fd: move_mount() refuses a /proc/self/fd path there.
    if (::syscall(SYS_move_mount, copy->get(), "", target, "", MOVE_MOUNT_F_EMPTY_PATH | MOVE_MOUNT_T_EMPTY_PATH) !=
        0) {
      InitFail(p, absl::StrCat("idmapped bind of ", source, " to ", dest), errno);
    }
  } else {
    unsigned long flags = MS_BIND | (recursive ? MS_REC : 0);
    if (::mount(source.c_str(), proc.c_str(), nullptr, flags, nullptr) != 0) {
      InitFail(p, absl::StrCat("bind ", source, " to ", dest), errno);
    }
  }
  ::close(target);
  if (recursive_readonly) {
    target = OpenInRoot(root, dest, S_ISDIR(st.st_mode), &error);
    struct mount_attr attr = {};
    attr.attr_set = MOUNT_ATTR_RDONLY | (locked & MS_NODEV ? MOUNT_ATTR_NODEV : 0) |
                    (locked & MS_NOSUID ? MOUNT_ATTR_NOSUID : 0);
    if (target < 0 || ::syscall(SYS_mount_setattr, target, "", AT_EMPTY_PATH | AT_RECURSIVE, &attr,
                                sizeof attr) != 0) {
      InitFail(p, absl::StrCat("make ", dest, " recursively read-only"), errno);
    }
    ::close(target);
  }
  if (!recursive_readonly && (readonly || locked != 0)) {
    target = OpenInRoot(root, dest, S_ISDIR(st.st_mode), &error);
    proc = absl::StrCat("/proc/self/fd/", target);
    unsigned long flags = MS_BIND | MS_REMOUNT | (readonly ? MS_RDONLY : 0) | locked;
    if (target < 0 || ::mount(nullptr, proc.c_str(), nullptr, flags, nullptr) != 0) {
      InitFail(p, absl::StrCat("remount ", dest, readonly ? " read-only" : " with its flags"), errno);
    }
    ::close(target);
  }
}

// A device node inside the root (its /dev is our tmpfs by now), made with
// the node's numbers, owner and mode.
void MakeDevice(const InitPipes& p, int root, const Device& d) {
  std::string dir = d.path().substr(0, d.path().rfind('/'));
  std::string name = d.path().substr(d.path().rfind('/') + 1);
  std::string error;
  int parent = OpenInRoot(root, dir.empty() ? "/" : dir, true, &error);
  if (parent < 0) InitFail(p, absl::StrCat("device ", d.path(), ": ", error));
  // mknodat needs a real directory fd, not O_PATH.
  std::string proc = absl::StrCat("/proc/self/fd/", parent);
  int real = ::open(proc.c_str(), O_DIRECTORY | O_CLOEXEC);
  ::close(parent);
  mode_t type = d.block() ? S_IFBLK : S_IFCHR;
  ::unlinkat(real, name.c_str(), 0);
  if (real < 0 || ::mknodat(real, name.c_str(), type | (d.mode() & 07777), makedev(d.dev_major(), d.dev_minor())) != 0 ||
      ::fchownat(real, name.c_str(), d.uid(), d.gid(), AT_SYMLINK_NOFOLLOW) != 0 ||
      ::fchmodat(real, name.c_str(), d.mode() & 07777, 0) != 0) {
    InitFail(p, absl::StrCat("make device ", d.path()), errno);
  }
  ::close(real);
}

void MountIn(const InitPipes& p, int root, const char* type, const std::string& dest,
             unsigned long flags, const char* data) {
  std::string error;
  int target = OpenInRoot(root, dest, true, &error);
  if (target < 0) InitFail(p, absl::StrCat("mount ", type, " on ", dest, ": ", error));
  std::string proc = absl::StrCat("/proc/self/fd/", target);
  if (::mount(type, proc.c_str(), type, flags, data) != 0) {
    InitFail(p, absl::StrCat("mount ", type, " on ", dest), errno);
  }
  ::close(target);
}

// An existing path below `root`, resolved as the container would see it;
// -1 with errno ENOENT when it is not there.
int OpenExistingInRoot(int root, const std::string& path) {
  struct open_how how = {};
  how.flags = O_PATH | O_CLOEXEC;
  how.resolve = RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS;
  std::string rel = path.substr(path.find_first_not_of('/') == std::string::npos ? path.size()
                                                                                   : path.find_first_not_of('/'));
  return static_cast<int>(::syscall(SYS_openat2, root, rel.empty() ? "." : rel.c_str(), &how, sizeof how));
}

// Masked paths hide what is there: a directory under an empty read-only
// tmpfs, anything else under /dev/null. Paths the image lacks are skipped,
// as runc skips them.
void Mask(const InitPipes& p, int root, const std::string& path) {
  int fd = OpenExistingInRoot(root, path);
  if (fd < 0) {
    if (errno == ENOENT) return;
    InitFail(p, absl::StrCat("open masked path ", path), errno);
  }
  struct stat st;
  std::string proc = absl::StrCat("/proc/self/fd/", fd);
  bool dir = ::fstat(fd, &st) == 0 && S_ISDIR(st.st_mode);
  int rc = dir ? ::mount("tmpfs", proc.c_str(), "tmpfs", MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC, "size=0")
               : ::mount("/dev/null", proc.c_str(), nullptr, MS_BIND, nullptr);
  if (rc != 0) InitFail(p, absl::StrCat("mask ", path), errno);
  ::close(fd);
}

void MakeReadonly(const InitPipes& p, int root, const std::string& path) {
  int fd = OpenExistingInRoot(root, path);
  if (fd < 0) {
    if (errno == ENOENT) return;
    InitFail(p, absl::StrCat("open read-only path ", path), errno);
  }
  std::string proc = absl::StrCat("/proc/self/fd/", fd);
  if (::mount(proc.c_str(), proc.c_str(), nullptr, MS_BIND | MS_REC, nullptr) != 0) {
    InitFail(p, absl::StrCat("bind read-only path ", path), errno);
  }
  ::close(fd);
  fd = OpenExistingInRoot(root, path);  // the new mount, not the one beneath
  proc = absl::StrCat("/proc/self/fd/", fd);
  if (fd < 0 || ::mount(nullptr, proc.c_str(), nullptr, MS_BIND | MS_REMOUNT | MS_RDONLY | MS_NOSUID | MS_NODEV,
                        nullptr) != 0) {
    InitFail(p, absl::StrCat("make ", path, " read-only"), errno);
  }
  ::close(fd);
}

struct Ids {
  uid_t uid = 0;
  gid_t gid = 0;
  std::string home = "/";
  std::string name;  // from /etc/passwd, when the user is there
};

// "uid[:gid]" or "name[:group]" against the container's own /etc/passwd and
// /etc/group (read after pivot_root).
bool ResolveUser(const std::string& spec, Ids* ids, std::string* error) {
  // No user: root, still looked up for its home and groups.
  std::pair<std::string, std::string> ug = absl::StrSplit(spec.empty() ? "0" : spec, absl::MaxSplits(':', 1));
  bool uid_numeric = absl::SimpleAtoi(ug.first, &ids->uid);
  bool user_found = uid_numeric;
  std::ifstream passwd("/etc/passwd");
  for (std::string line; std::getline(passwd, line);) {
    std::vector<std::string> f = absl::StrSplit(line, ':');
    if (f.size() < 7) continue;
    uid_t uid;
    if (!absl::SimpleAtoi(f[2], &uid)) continue;
    if ((uid_numeric && uid == ids->uid) || (!uid_numeric && f[0] == ug.first)) {
      ids->uid = uid;
      absl::SimpleAtoi(f[3], &ids->gid);
      ids->home = f[5];
      ids->name = f[0];
      user_found = true;
      break;
    }
  }
  if (!user_found) {
    *error = absl::StrCat("user \"", ug.first, "\" is not in the image's /etc/passwd");
    return false;
  }
  if (!ug.second.empty() && !absl::SimpleAtoi(ug.second, &ids->gid)) {
    std::ifstream group("/etc/group");
    bool found = false;
    for (std::string line; std::getline(group, line);) {
      std::vector<std::string> f = absl::StrSplit(line, ':');
      if (f.size() >= 3 && f[0] == ug.second && absl::SimpleAtoi(f[2], &ids->gid)) {
        found = true;
        break;
      }
    }
    if (!found) {
      *error = absl::StrCat("group \"", ug.second, "\" is not in the image's /etc/group");
      return false;
    }
  }
  return true;
}

std::string EnvValue(const google::protobuf::RepeatedPtrField<std::string>& env, const std::string& key) {
  for (const std::string& e : env) {
    if (e.size() > key.size() && e.compare(0, key.size(), key) == 0 && e[key.size()] == '=') {
      return e.substr(key.size() + 1);
    }
  }
  return "";
}

// The executable as execve needs it: a path, or the first match in PATH.
bool FindExecutable(const std::string& name, const std::string& path_env, std::string* found) {
  if (name.find('/') != std::string::npos) {
    *found = name;
    return ::access(name.c_str(), X_OK) == 0;
  }
  std::string path = path_env.empty() ? "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
                                      : path_env;
  for (absl::string_view dir : absl::StrSplit(path, ':', absl::SkipEmpty())) {
    std::string candidate = absl::StrCat(dir, "/", name);
    struct stat st;
    if (::stat(candidate.c_str(), &st) == 0 && S_ISREG(st.st_mode) && ::access(candidate.c_str(), X_OK) == 0) {
      *found = candidate;
      return true;
    }
  }
  errno = ENOENT;
  return false;
}

// The bounding set is cut to the container's capabilities before setuid;
// a root user then gets them as effective and permitted. Inheritable stays
// empty, as runc keeps it since CVE-2022-24769.
void SetCapabilities(const InitPipes& p, const ContainerSpec& spec, bool root) {
  uint64_t keep = 0;
  for (uint32_t cap : spec.capabilities()) {
    if (cap < 64) keep |= uint64_t{1} << cap;
  }
  // Nobody gets what the node withholds from us (a bounding set without
  // CAP_SYS_RESOURCE, say): "ALL" means all we have.
  struct __user_cap_header_struct own_header = {_LINUX_CAPABILITY_VERSION_3, 0};
  struct __user_cap_data_struct own[2] = {};
  if (::syscall(SYS_capget, &own_header, own) == 0) {
    keep &= uint64_t{own[0].permitted} | (uint64_t{own[1].permitted} << 32);
  }
  int last = LastCap();
  for (int cap = 0; cap <= last; ++cap) {
    if (!(keep & (uint64_t{1} << cap)) && ::prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) != 0 && errno != EINVAL) {
      InitFail(p, absl::StrCat("drop capability ", cap, " from the bounding set"), errno);
    }
  }
  ::prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0);
  if (!root) return;  // setuid to a non-root user already cleared them
  struct __user_cap_header_struct header = {_LINUX_CAPABILITY_VERSION_3, 0};
  struct __user_cap_data_struct data[2] = {};
  for (int cap = 0; cap <= last && cap < 64; ++cap) {
    if (!(keep & (uint64_t{1} << cap))) continue;
    data[cap / 32].effective |= 1u << (cap % 32);
    data[cap / 32].permitted |= 1u << (cap % 32);
  }
  if (::syscall(SYS_capset, &header, data) != 0) InitFail(p, "set capabilities", errno);
}

// The filter criusd compiled (struct sock_filter[]), as is.
void InstallSeccomp(const InitPipes& p, const ContainerSpec& spec) {
  const std::string& bpf = spec.seccomp_bpf();
  size_t n = bpf.size() / sizeof(struct sock_filter);
  if (bpf.size() % sizeof(struct sock_filter) != 0 || n == 0 || n > BPF_MAXINSNS) {
    InitFail(p, "the seccomp program is malformed");
  }
  struct sock_fprog prog = {static_cast<unsigned short>(n),
                            reinterpret_cast<struct sock_filter*>(const_cast<char*>(bpf.data()))};
  unsigned int flags = spec.seccomp_log() ? SECCOMP_FILTER_FLAG_LOG : 0;
  if (::syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, flags, &prog) != 0) {
    InitFail(p, "install the seccomp filter", errno);
  }
}

// The groups of `user` in the image's /etc/group (supplemental groups
// policy Merge).
std::vector<gid_t> ImageGroups(const std::string& user) {
  std::vector<gid_t> out;
  std::ifstream group("/etc/group");
  for (std::string line; std::getline(group, line);) {
    std::vector<std::string> f = absl::StrSplit(line, ':');
    gid_t gid;
    if (f.size() < 4 || !absl::SimpleAtoi(f[2], &gid)) continue;
    for (absl::string_view member : absl::StrSplit(f[3], ',')) {
      if (member == user) out.push_back(gid);
    }
  }
  return out;
}

}  // namespace

void InitFail(const InitPipes& p, const std::string& what, int err, char kind) {
  std::string msg = absl::StrCat(std::string(1, kind), what, err ? absl::StrCat(": ", strerror(err)) : "");
  ssize_t ignored = ::write(p.sync_w, msg.data(), msg.size());
  (void)ignored;
  ::_exit(127);
}

bool AwaitPlacement(const InitPipes& p) {
  // A process parked here must not outlive its monitor.
  ::prctl(PR_SET_PDEATHSIG, SIGKILL);
  ::setsid();
  ResetSignals();
  // Nothing happens until the monitor has put us in our cgroup.
  char placed;
  return ::read(p.start_r, &placed, 1) == 1;
}

void ContainerInit(const ContainerSpec& spec, const InitPipes& p) {
  if (!AwaitPlacement(p)) ::_exit(127);

  if (p.console < 0) {  // else the terminal, once the container's /dev/pts is there
    int in = p.stdin_r >= 0 ? p.stdin_r : ::open("/dev/null", O_RDONLY | O_CLOEXEC);
    if (in < 0 || ::dup2(in, 0) < 0 || ::dup2(p.stdout_w, 1) < 0 || ::dup2(p.stderr_w, 2) < 0) {
      InitFail(p, "set up stdio", errno);
    }
  }

  // Our mounts stay ours; the node's still reach us. A bidirectional mount
  // needs our copies of the node's mounts to stay their peers: then only the
  // mount holding the rootfs is made private, so what we mount on it (the
  // overlay, /proc, ...) never shows on the node.
  bool bidirectional = false;
  for (const Mount& m : spec.mounts()) bidirectional = bidirectional || m.propagation() == 2;
  if (!bidirectional && ::mount(nullptr, "/", nullptr, MS_REC | MS_SLAVE, nullptr) != 0) {
    InitFail(p, "make / a slave mount", errno);
  }
  if (bidirectional) {
    std::string holder = MountPointOf(spec.rootfs());
    if (::mount(nullptr, holder.c_str(), nullptr, MS_PRIVATE, nullptr) != 0) {
      InitFail(p, absl::StrCat("make ", holder, " private"), errno);
    }
  }
  // In a user namespace the image's layers are idmapped lower layers: a
  // file of root on disk is root inside. What the container writes lands in
  // the upper directory with its host IDs, as in any idmapped mount.
  int userns = -1;
  std::vector<UniqueFd> idmapped;
  std::vector<std::string> lowers(spec.lower_dirs().begin(), spec.lower_dirs().end());
  if (!spec.user_namespace().empty()) {
    userns = ::open(spec.user_namespace().c_str(), O_RDONLY | O_CLOEXEC);
    if (userns < 0) InitFail(p, absl::StrCat("open the pod's user namespace ", spec.user_namespace()), errno);
    for (std::string& lower : lowers) {
      absl::StatusOr<UniqueFd> copy = sandbox::IdmappedCopy(lower, userns, false);
      if (!copy.ok()) InitFail(p, absl::StrCat("image layer: ", copy.status().message()));
      lower = absl::StrCat("/proc/self/fd/", copy->get());
      idmapped.push_back(std::move(*copy));
    }
    if (::lchown(spec.upper_dir().c_str(), spec.userns_root_uid(), spec.userns_root_gid()) != 0) {
      InitFail(p, absl::StrCat("give the container's root its upper directory ", spec.upper_dir()), errno);
    }
  }
  std::string lower = absl::StrJoin(lowers, ":");
  std::string options = absl::StrCat("lowerdir=", lower, ",upperdir=", spec.upper_dir(),
                                     ",workdir=", spec.work_dir());
  const unsigned long nodev = spec.nodev() ? MS_NODEV : 0;
  if (::mount("overlay", spec.rootfs().c_str(), "overlay", nodev, options.c_str()) != 0) {
    InitFail(p, absl::StrCat("mount the root filesystem (overlay) on ", spec.rootfs()), errno);
  }
  idmapped.clear();  // the overlay holds its layers now
  int root = ::open(spec.rootfs().c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC);
  if (root < 0) InitFail(p, absl::StrCat("open ", spec.rootfs()), errno);

  MountIn(p, root, "proc", "/proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, nullptr);
  std::string dev_options = "mode=755,size=65536k";
  std::string pts_options = "newinstance,ptmxmode=0666,mode=0620,gid=5";
  if (userns >= 0) {
    // Mounted from the node's user namespace: IDs are the node's.
    absl::StrAppend(&dev_options, ",uid=", spec.userns_root_uid(), ",gid=", spec.userns_root_gid());
    pts_options = "newinstance,ptmxmode=0666,mode=0620";
    if (spec.userns_tty_gid() >= 0) absl::StrAppend(&pts_options, ",gid=", spec.userns_tty_gid());
  }
  MountIn(p, root, "tmpfs", "/dev", MS_NOSUID | MS_STRICTATIME | nodev, dev_options.c_str());
  for (const char* dev : {"null", "zero", "full", "random", "urandom", "tty"}) {
    Bind(p, root, absl::StrCat("/dev/", dev), absl::StrCat("/dev/", dev), false, false);
  }
  for (const Device& d : spec.devices()) {
    if (spec.nodev()) {
      // A bind of the node's own node: its mount is not nodev.
      Bind(p, root, d.host_path(), d.path(), false, false);
    } else {
      MakeDevice(p, root, d);
    }
  }
  MountIn(p, root, "devpts", "/dev/pts", MS_NOSUID | MS_NOEXEC, pts_options.c_str());
  if (spec.shm().empty()) {
    MountIn(p, root, "tmpfs", "/dev/shm", MS_NOSUID | MS_NODEV | MS_NOEXEC, "mode=1777,size=65536k");
  } else {
    Bind(p, root, spec.shm(), "/dev/shm", false);
  }
  MountIn(p, root, "mqueue", "/dev/mqueue", MS_NOSUID | MS_NODEV | MS_NOEXEC, nullptr);
  MountIn(p, root, "sysfs", "/sys", MS_NOSUID | MS_NODEV | MS_NOEXEC | (spec.privileged() ? 0 : MS_RDONLY),
          nullptr);
  for (const Mount& m : spec.mounts()) {
    std::string via;
    if (m.from_request() && EscapesRoot(root, m.destination(), &via)) {
      InitFail(p, absl::StrCat("config.mounts[", m.index(), "]: container_path \"", m.destination(),
                           "\" leads out of the root filesystem through the image's symlink ", via), 0, 'I');
    }
    unsigned long locked = (spec.nodev() || m.nodev() ? MS_NODEV : 0) | (m.nosuid() ? MS_NOSUID : 0);
    Bind(p, root, m.source(), m.destination(), m.readonly(), true, m.recursive_readonly(), locked,
         m.idmap() ? userns : -1);
    if (m.propagation() != 0) {
      std::string error;
      int target = OpenInRoot(root, m.destination(), true, &error);
      std::string proc = absl::StrCat("/proc/self/fd/", target);
      unsigned long type = m.propagation() == 2 ? MS_SHARED : MS_SLAVE;
      if (target < 0 || ::mount(nullptr, proc.c_str(), nullptr, MS_REC | type, nullptr) != 0) {
        InitFail(p, absl::StrCat("set the propagation of ", m.destination()), errno);
      }
      ::close(target);
    }
  }
  // After the CRI mounts, as runc orders them: a masked path stays masked
  // whatever was mounted over its parent.
  for (const std::string& path : spec.masked_paths()) Mask(p, root, path);
  for (const std::string& path : spec.readonly_paths()) MakeReadonly(p, root, path);

  if (::fchdir(root) != 0) InitFail(p, "enter the root filesystem", errno);
  for (const auto& [link, target] : {std::pair{"dev/fd", "/proc/self/fd"}, {"dev/stdin", "/proc/self/fd/0"},
                                     {"dev/stdout", "/proc/self/fd/1"}, {"dev/stderr", "/proc/self/fd/2"},
                                     {"dev/ptmx", "pts/ptmx"}}) {
    if (::symlink(target, link) != 0 && errno != EEXIST) InitFail(p, absl::StrCat("symlink /", link), errno);
  }
  if (spec.readonly_rootfs() &&
      ::mount(nullptr, ".", nullptr, MS_BIND | MS_REMOUNT | MS_RDONLY, nullptr) != 0) {
    InitFail(p, "make the root filesystem read-only", errno);
  }
  // The old root, slave before it goes: with a bidirectional mount our
  // copies of the node's mounts are its peers, and detaching them must not
  // unmount them on the node. It is named through an fd taken before the
  // pivot: "." would name the new root, and the bidirectional mounts in it.
  int old_root = ::open("/", O_PATH | O_DIRECTORY | O_CLOEXEC);
  if (old_root < 0) InitFail(p, "open the old root", errno);
  if (::syscall(SYS_pivot_root, ".", ".") != 0) InitFail(p, "pivot_root", errno);
  std::string old_path = absl::StrCat("/proc/self/fd/", old_root);
  if (::mount(nullptr, old_path.c_str(), nullptr, MS_SLAVE | MS_REC, nullptr) != 0) {
    InitFail(p, "make the old root a slave", errno);
  }
  if (::umount2(old_path.c_str(), MNT_DETACH) != 0) InitFail(p, "detach the old root", errno);
  ::close(old_root);
  if (::chdir("/") != 0) InitFail(p, "chdir /", errno);
  ::close(root);
  if (p.console >= 0) {
    // The terminal becomes the session's controlling terminal and all of stdio.
    std::string error;
    int tty = OpenTerminal(p.console, &error);
    if (tty < 0) InitFail(p, error, 0);
    if (::dup2(tty, 0) < 0 || ::dup2(tty, 1) < 0 || ::dup2(tty, 2) < 0 || ::ioctl(0, TIOCSCTTY, 0) != 0) {
      InitFail(p, "set up the terminal", errno);
    }
    ::close(tty);
  }
  if (userns >= 0) {
    // Last of what needs the node's privileges: from here on our IDs and
    // capabilities are the pod's.
    if (::setns(userns, CLONE_NEWUSER) != 0) InitFail(p, "join the pod's user namespace", errno);
    ::close(userns);
    ::prctl(PR_SET_PDEATHSIG, SIGKILL);  // a change of credentials clears it
  }

  std::vector<std::string> args(spec.args().begin(), spec.args().end());
  if (args.empty()) InitFail(p, "no command: neither the image nor the container names one", 0, 'I');
  ContainerProcess proc = BecomeContainerProcess(spec, p, args);
  std::vector<char*> envp, argv;
  for (auto& e : proc.env) envp.push_back(e.data());
  envp.push_back(nullptr);
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);

  // Parked: the monitor answers CreateContainer now, and StartContainer
  // releases us.
  if (::write(p.sync_w, "R", 1) != 1) ::_exit(127);
  char go;
  if (::read(p.start_r, &go, 1) != 1) ::_exit(0);
  ::close(p.start_r);
  ::execve(proc.exe.c_str(), argv.data(), envp.data());
  InitFail(p, absl::StrCat("exec ", proc.exe), errno, 'I');
}

int OpenTerminal(int console, std::string* error) {
  int master = ::open("/dev/ptmx", O_RDWR | O_NOCTTY | O_CLOEXEC);
  char name[128];
  if (master < 0 || ::unlockpt(master) != 0 || ::ptsname_r(master, name, sizeof name) != 0) {
    *error = absl::StrCat("open a terminal in the container (/dev/ptmx): ", std::strerror(errno));
    return -1;
  }
  int slave = ::open(name, O_RDWR | O_NOCTTY | O_CLOEXEC);
  if (slave < 0) {
    *error = absl::StrCat("open ", name, " in the container: ", std::strerror(errno));
    ::close(master);
    return -1;
  }
  absl::Status sent = sandbox::SendFd(console, master);
  ::close(master);
  ::close(console);
  if (!sent.ok()) {
    *error = absl::StrCat("send the terminal: ", sent.message());
    ::close(slave);
    return -1;
  }
  return slave;
}

void ResetSignals() {
  sigset_t none;
  sigemptyset(&none);
  ::sigprocmask(SIG_SETMASK, &none, nullptr);
  // The kernel's sigaction: glibc refuses the signals it keeps for itself
  // (32, 33), and an ignored one would pass on through execve.
  struct {
    void (*handler)(int);
    unsigned long flags;
    void (*restorer)();
    uint64_t mask;
  } dfl = {SIG_DFL, 0, nullptr, 0};
  for (int sig = 1; sig <= 64; ++sig) {
    if (sig != SIGKILL && sig != SIGSTOP) ::syscall(SYS_rt_sigaction, sig, &dfl, nullptr, sizeof dfl.mask);
  }
}

void SetOomScoreAdj(const ContainerSpec& spec, const InitPipes& p) {
  if (!spec.set_oom_score_adj()) return;
  // As containerd's restrict_oom_score_adj: never below our own score,
  // which a node without CAP_SYS_RESOURCE would refuse anyway.
  int own = 0;
  std::ifstream("/proc/self/oom_score_adj") >> own;
  std::string value = absl::StrCat(std::max(own, static_cast<int>(spec.oom_score_adj())));
  int fd = ::open("/proc/self/oom_score_adj", O_WRONLY | O_CLOEXEC);
  if (fd < 0 || ::write(fd, value.data(), value.size()) < 0) InitFail(p, "set oom_score_adj", errno);
  ::close(fd);
}

ContainerProcess BecomeContainerProcess(const ContainerSpec& spec, const InitPipes& p,
                                        const std::vector<std::string>& args) {
  ContainerProcess out;
  Ids ids;
  std::string error;
  if (!ResolveUser(spec.user(), &ids, &error)) InitFail(p, error, 0, 'I');
  if (!FindExecutable(args[0], EnvValue(spec.env(), "PATH"), &out.exe)) {
    InitFail(p, absl::StrCat("executable \"", args[0], "\" not found in the container"), errno, 'I');
  }
  const std::string cwd = spec.cwd().empty() ? std::string("/") : spec.cwd();
  if (::chdir(cwd.c_str()) != 0) {
    InitFail(p, absl::StrCat("working directory \"", cwd, "\""), errno, 'I');
  }

  SetOomScoreAdj(spec, p);
  std::vector<gid_t> groups(spec.additional_gids().begin(), spec.additional_gids().end());
  if (spec.merge_image_groups() && !ids.name.empty()) {
    for (gid_t g : ImageGroups(ids.name)) {
      if (std::find(groups.begin(), groups.end(), g) == groups.end()) groups.push_back(g);
    }
  }
  if (::setgroups(groups.size(), groups.data()) != 0) InitFail(p, "setgroups", errno);
  // Without no_new_privs, installing a filter takes CAP_SYS_ADMIN, which the
  // process has only until the capabilities are set: install it first. The
  // few calls left before execve are allowed by any profile a container can
  // run under (runc orders it the same way).
  if (!spec.seccomp_bpf().empty() && !spec.no_new_privs()) InstallSeccomp(p, spec);
  SetCapabilities(p, spec, false);
  if (::setresgid(ids.gid, ids.gid, ids.gid) != 0) InitFail(p, absl::StrCat("setgid ", ids.gid), errno);
  if (::setresuid(ids.uid, ids.uid, ids.uid) != 0) InitFail(p, absl::StrCat("setuid ", ids.uid), errno);
  if (ids.uid == 0) SetCapabilities(p, spec, true);
  if (spec.no_new_privs() && ::prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) InitFail(p, "set no_new_privs", errno);
  if (!spec.seccomp_bpf().empty() && spec.no_new_privs()) InstallSeccomp(p, spec);

  out.env.assign(spec.env().begin(), spec.env().end());
  if (EnvValue(spec.env(), "HOME").empty()) out.env.push_back(absl::StrCat("HOME=", ids.home));
  return out;
}

}  // namespace crius::monitor
