// The process of a unikernel container, between clone() and the tender's
// execve: the image's rootfs is mounted in a mount namespace of its own
// (never entered: the tender lives on the node), the guest and its block
// images are opened beneath it, every capability goes, and the tender is
// exec'd with them as /proc/self/fd/N once the container starts.
#include <fcntl.h>
#include <linux/capability.h>
#include <linux/openat2.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <fstream>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "sandbox/monitor/container_init.h"

namespace crius::monitor {
namespace {

// A file of the image, opened beneath the rootfs: no ".." or absolute
// symlink out of it, no symlink at all, and a regular file. Kept open
// across execve.
int OpenGuestFile(const InitPipes& p, int root, const std::string& path, int flags, const std::string& what) {
  std::string rel = path;
  while (!rel.empty() && rel[0] == '/') rel.erase(0, 1);
  struct open_how how = {};
  how.flags = static_cast<uint64_t>(flags);
  how.resolve = RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS;
  int fd = rel.empty() ? -1 : static_cast<int>(::syscall(SYS_openat2, root, rel.c_str(), &how, sizeof how));
  if (fd < 0) {
    int err = rel.empty() ? EISDIR : errno;
    std::string why = err == ENOENT ? "is not in the image"
                      : err == EXDEV ? "leads outside the image's root filesystem"
                      : err == ELOOP ? "is or passes through a symlink (give the file's own path)"
                                     : absl::StrCat("cannot be opened: ", strerror(err));
    InitFail(p, absl::StrCat(what, " \"", path, "\" ", why), 0, 'I');
  }
  struct stat st;
  if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    InitFail(p, absl::StrCat(what, " \"", path, "\" is not a regular file"), 0, 'I');
  }
  return fd;
}

int LastCap() {
  int last = CAP_LAST_CAP;
  std::ifstream("/proc/sys/kernel/cap_last_cap") >> last;
  return last;
}

// No capability at all, now or after execve: the tender needs none (the
// tap is root's, /dev/kvm and /dev/net/tun are open to root by mode).
void DropCapabilities(const InitPipes& p) {
  for (int cap = 0; cap <= LastCap(); ++cap) {
    if (::prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) != 0 && errno != EINVAL) {
      InitFail(p, absl::StrCat("drop capability ", cap, " from the bounding set"), errno);
    }
  }
  ::prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0);
  struct __user_cap_header_struct header = {_LINUX_CAPABILITY_VERSION_3, 0};
  struct __user_cap_data_struct data[2] = {};
  if (::syscall(SYS_capset, &header, data) != 0) InitFail(p, "clear capabilities", errno);
  if (::prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) InitFail(p, "set no_new_privs", errno);
}

}  // namespace

void TenderInit(const ContainerSpec& spec, const InitPipes& p) {
  if (!AwaitPlacement(p)) ::_exit(127);
  int in = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
  if (in < 0 || ::dup2(in, 0) < 0 || ::dup2(p.stdout_w, 1) < 0 || ::dup2(p.stderr_w, 2) < 0) {
    InitFail(p, "set up stdio", errno);
  }
  if (::mount(nullptr, "/", nullptr, MS_REC | MS_SLAVE, nullptr) != 0) InitFail(p, "make / a slave mount", errno);
  std::string lower;
  for (const std::string& dir : spec.lower_dirs()) absl::StrAppend(&lower, lower.empty() ? "" : ":", dir);
  std::string options = absl::StrCat("lowerdir=", lower, ",upperdir=", spec.upper_dir(), ",workdir=", spec.work_dir());
  if (::mount("overlay", spec.rootfs().c_str(), "overlay", MS_NODEV | MS_NOSUID, options.c_str()) != 0) {
    InitFail(p, absl::StrCat("mount the root filesystem (overlay) on ", spec.rootfs()), errno);
  }
  int root = ::open(spec.rootfs().c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC);
  if (root < 0) InitFail(p, absl::StrCat("open ", spec.rootfs()), errno);

  const Tender& t = spec.tender();
  std::vector<std::string> args = {t.binary()};
  args.insert(args.end(), t.options().begin(), t.options().end());
  for (const Tender::Block& b : t.blocks()) {
    // Written through the overlay: the image's layer stays as it was.
    int fd = OpenGuestFile(p, root, b.path(), O_RDWR, absl::StrCat("block image ", b.name()));
    args.push_back(absl::StrCat("--block:", b.name(), "=/proc/self/fd/", fd));
  }
  int guest = OpenGuestFile(p, root, t.guest(), O_RDONLY, "guest");
  args.push_back("--");
  args.push_back(absl::StrCat("/proc/self/fd/", guest));
  args.insert(args.end(), t.guest_args().begin(), t.guest_args().end());
  ::close(root);

  SetOomScoreAdj(spec, p);
  DropCapabilities(p);
  std::vector<char*> argv;
  for (std::string& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  char* envp[] = {nullptr};

  // Parked, as any container: StartContainer releases us.
  if (::write(p.sync_w, "R", 1) != 1) ::_exit(127);
  char go;
  if (::read(p.start_r, &go, 1) != 1) ::_exit(0);
  ::close(p.start_r);
  ::execve(t.binary().c_str(), argv.data(), envp);
  InitFail(p, absl::StrCat("exec the tender ", t.binary()), errno);
}

}  // namespace crius::monitor
