#include "sandbox/monitor/monitor.h"

#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <net/if.h>
#include <sys/epoll.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/match.h"
#include "common/log.h"
#include "common/status.h"
#include "common/unique_fd.h"
#include "sandbox/monitor_wire.h"

namespace crius::monitor {
namespace {

// A new netns has lo down; containers expect 127.0.0.1 to work whatever
// the CNI network configures.
absl::Status LoopbackUp() {
  UniqueFd sock(::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0));
  if (!sock) return ErrnoError(errno, "socket for lo");
  struct ifreq ifr = {};
  std::strncpy(ifr.ifr_name, "lo", IFNAMSIZ - 1);
  if (::ioctl(sock.get(), SIOCGIFFLAGS, &ifr) != 0) return ErrnoError(errno, "get lo flags");
  ifr.ifr_flags |= IFF_UP;
  if (::ioctl(sock.get(), SIOCSIFFLAGS, &ifr) != 0) return ErrnoError(errno, "bring lo up");
  return absl::OkStatus();
}

// /proc/sys files of net.*, ipc and uts sysctls belong to the namespaces of
// whoever opens them: ours, the pod's. criusd has validated the key.
absl::Status WriteSysctl(const std::string& key, const std::string& value) {
  std::string path = "/proc/sys/" + key;
  if (key.find('/') == std::string::npos) std::replace(path.begin() + 10, path.end(), '.', '/');
  UniqueFd fd(::open(path.c_str(), O_WRONLY | O_CLOEXEC));
  if (!fd || ::write(fd.get(), value.data(), value.size()) != static_cast<ssize_t>(value.size())) {
    return ErrnoError(errno, absl::StrCat("set sysctl ", key, "=", value));
  }
  return absl::OkStatus();
}

absl::Status Usage(absl::string_view why) {
  return absl::InvalidArgumentError(absl::StrCat(
      why, "\nusage: crius-monitor --pod-id ID --dir DIR [--net new|host] [--ipc new|host] "
           "[--uts new|host] [--pid pod|none] [--hostname NAME] [--uid-map C:H:L --gid-map C:H:L ...] "
           "[--ready-fd N]"));
}

absl::Status NewOrHost(absl::string_view flag, absl::string_view value, bool* out) {
  if (value != "new" && value != "host") {
    return Usage(absl::StrCat(flag, ": \"", value, "\" is neither new nor host"));
  }
  *out = value == "new";
  return absl::OkStatus();
}

// The pod's pid 1 when the pod shares one pid namespace: it only reaps, as
// the pause container does, and dies with the monitor.
[[noreturn]] void PodInit(int ready_fd) {
  // criusd waits for the ready pipe to be closed by the monitor: this
  // process must not keep it open.
  if (ready_fd >= 0) ::close(ready_fd);
  prctl(PR_SET_PDEATHSIG, SIGKILL);
  prctl(PR_SET_NAME, "crius-pod-init");
  sigset_t all;
  sigfillset(&all);
  sigprocmask(SIG_BLOCK, &all, nullptr);
  for (;;) {
    int sig = 0;
    sigwait(&all, &sig);
    if (sig == SIGCHLD) {
      while (waitpid(-1, nullptr, WNOHANG) > 0) {
      }
    } else if (sig == SIGTERM || sig == SIGINT) {
      _exit(0);
    }
  }
}

}  // namespace

absl::StatusOr<Options> ParseArgs(int argc, char** argv) {
  Options o;
  for (int i = 1; i < argc; ++i) {
    std::string flag = argv[i];
    if (i + 1 >= argc) return Usage(absl::StrCat(flag, " needs a value"));
    std::string value = argv[++i];
    if (flag == "--pod-id") {
      o.pod_id = value;
    } else if (flag == "--dir") {
      o.dir = value;
    } else if (flag == "--net") {
      CRIUS_RETURN_IF_ERROR(NewOrHost(flag, value, &o.new_net));
    } else if (flag == "--ipc") {
      CRIUS_RETURN_IF_ERROR(NewOrHost(flag, value, &o.new_ipc));
    } else if (flag == "--uts") {
      CRIUS_RETURN_IF_ERROR(NewOrHost(flag, value, &o.new_uts));
    } else if (flag == "--pid") {
      if (value != "pod" && value != "none") return Usage("--pid: pod or none");
      o.pod_pid = value == "pod";
    } else if (flag == "--hostname") {
      o.hostname = value;
    } else if (flag == "--uid-map" || flag == "--gid-map") {
      absl::StatusOr<sandbox::IdRange> r = sandbox::ParseRangeFlag(value);
      if (!r.ok()) return Usage(absl::StrCat(flag, ": ", r.status().message()));
      (flag == "--uid-map" ? o.userns.uids : o.userns.gids).push_back(*r);
    } else if (flag == "--cgroup-procs") {
      o.cgroup_procs.push_back(value);
    } else if (flag == "--sysctl") {
      std::pair<std::string, std::string> kv = absl::StrSplit(value, absl::MaxSplits('=', 1));
      if (kv.first.empty() || value.find('=') == std::string::npos) return Usage("--sysctl: key=value");
      o.sysctls.push_back(kv);
    } else if (flag == "--ready-fd") {
      if (!absl::SimpleAtoi(value, &o.ready_fd) || o.ready_fd < 0) return Usage("--ready-fd: a number");
    } else {
      return Usage(absl::StrCat("unknown flag ", flag));
    }
  }
  if (o.pod_id.empty() || o.dir.empty()) return Usage("--pod-id and --dir are required");
  if (o.userns.uids.empty() != o.userns.gids.empty()) return Usage("--uid-map and --gid-map go together");
  return o;
}

absl::Status Monitor::Pin(const std::string& kind, pid_t pid) {
  std::string target = absl::StrCat(options_.dir, "/ns/", kind);
  UniqueFd file(::open(target.c_str(), O_WRONLY | O_CREAT | O_CLOEXEC, 0400));
  if (!file) return ErrnoError(errno, absl::StrCat("create ", target));
  std::string source = absl::StrCat("/proc/", pid, "/ns/", kind);
  if (::mount(source.c_str(), target.c_str(), nullptr, MS_BIND, nullptr) != 0) {
    return ErrnoError(errno, absl::StrCat("pin ", kind, " namespace at ", target));
  }
  pins_[kind] = target;
  return absl::OkStatus();
}

absl::Status Monitor::StartPodInit() {
  if (::unshare(CLONE_NEWPID) != 0) return ErrnoError(errno, "unshare pid namespace");
  pid_t pid = ::fork();
  if (pid < 0) return ErrnoError(errno, "fork pod init");
  if (pid == 0) PodInit(options_.ready_fd);
  pod_init_ = pid;
  return Pin("pid", pid);
}

// The pod's net, ipc and uts namespaces, as asked. With a user namespace a
// helper makes them inside it and we join them: the monitor itself stays in
// the node's user namespace, with the privileges its work needs. The pod's
// pid namespace is ours (its init is our child), so it stays the node's
// user namespace's: root in the pod has no privilege over it.
absl::Status Monitor::EnterPodNamespaces() {
  int flags = (options_.new_net ? CLONE_NEWNET : 0) | (options_.new_ipc ? CLONE_NEWIPC : 0) |
              (options_.new_uts ? CLONE_NEWUTS : 0);
  if (options_.userns.uids.empty()) {
    if (flags != 0 && ::unshare(flags) != 0) return ErrnoError(errno, "unshare pod namespaces");
    return absl::OkStatus();
  }
  CRIUS_ASSIGN_OR_RETURN(sandbox::UsernsHolder holder, sandbox::UsernsHolder::Start(options_.userns, flags));
  for (const auto& [kind, flag] : {std::pair{"net", CLONE_NEWNET}, {"ipc", CLONE_NEWIPC}, {"uts", CLONE_NEWUTS}}) {
    if ((flags & flag) == 0) continue;
    CRIUS_ASSIGN_OR_RETURN(UniqueFd ns, holder.Open(kind));
    if (::setns(ns.get(), flag) != 0) return ErrnoError(errno, absl::StrCat("enter the pod's ", kind, " namespace"));
  }
  return Pin("user", holder.pid());
}

absl::Status Monitor::Setup() {
  for (const std::string& procs : options_.cgroup_procs) {
    std::string pid = absl::StrCat(::getpid());
    UniqueFd fd(::open(procs.c_str(), O_WRONLY | O_CLOEXEC));
    if (!fd || ::write(fd.get(), pid.data(), pid.size()) < 0) {
      return ErrnoError(errno, absl::StrCat("join the pod's cgroup ", procs));
    }
  }
  // Orphans of the pod's processes come to us, not to the node's init.
  if (prctl(PR_SET_CHILD_SUBREAPER, 1) != 0) return ErrnoError(errno, "become subreaper");
  std::string ns_dir = absl::StrCat(options_.dir, "/ns");
  if (::mkdir(ns_dir.c_str(), 0700) != 0 && errno != EEXIST) {
    return ErrnoError(errno, absl::StrCat("mkdir ", ns_dir));
  }
  CRIUS_RETURN_IF_ERROR(EnterPodNamespaces());
  if (options_.new_net) CRIUS_RETURN_IF_ERROR(LoopbackUp());
  if (options_.new_uts && !options_.hostname.empty() &&
      ::sethostname(options_.hostname.data(), options_.hostname.size()) != 0) {
    return ErrnoError(errno, absl::StrCat("set hostname ", options_.hostname));
  }
  for (const auto& [key, value] : options_.sysctls) CRIUS_RETURN_IF_ERROR(WriteSysctl(key, value));
  pid_t self = ::getpid();
  absl::Status st;
  if (options_.new_net) st.Update(Pin("net", self));
  if (st.ok() && options_.new_ipc) st.Update(Pin("ipc", self));
  if (st.ok() && options_.new_uts) st.Update(Pin("uts", self));
  if (st.ok() && options_.pod_pid) st.Update(StartPodInit());
  if (st.ok() && options_.new_ipc) {
    // The pod's /dev/shm, shared by its containers as their IPC namespace is.
    std::string shm = absl::StrCat(options_.dir, "/shm");
    if ((::mkdir(shm.c_str(), 0755) != 0 && errno != EEXIST) ||
        ::mount("shm", shm.c_str(), "tmpfs", MS_NOSUID | MS_NODEV | MS_NOEXEC,
                "mode=1777,size=65536k") != 0) {
      st = ErrnoError(errno, absl::StrCat("mount the pod's /dev/shm at ", shm));
    } else {
      shm_ = shm;
    }
  }

  sigset_t mask;
  sigemptyset(&mask);
  for (int sig : {SIGCHLD, SIGTERM, SIGINT, SIGHUP}) sigaddset(&mask, sig);
  sigprocmask(SIG_BLOCK, &mask, nullptr);
  if (st.ok()) {
    signals_.reset(::signalfd(-1, &mask, SFD_CLOEXEC | SFD_NONBLOCK));
    if (!signals_) st = ErrnoError(errno, "signalfd");
  }
  std::string sock = absl::StrCat(options_.dir, "/monitor.sock");
  if (st.ok()) {
    absl::StatusOr<std::unique_ptr<sandbox::SocketPath>> short_path =
        sandbox::MonitorSocketPath(options_.dir);
    listen_.reset(::socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0));
    if (!short_path.ok()) {
      st = short_path.status();
    } else {
      struct sockaddr_un addr = {};
      addr.sun_family = AF_UNIX;
      (*short_path)->path.copy(addr.sun_path, sizeof addr.sun_path - 1);
      ::unlink(sock.c_str());
      mode_t old = ::umask(0177);
      if (!listen_ || ::bind(listen_.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 ||
          ::listen(listen_.get(), 16) != 0) {
        st = ErrnoError(errno, absl::StrCat("listen on ", sock));
      }
      ::umask(old);
    }
  }
  if (st.ok()) {
    epoll_.reset(::epoll_create1(EPOLL_CLOEXEC));
    struct epoll_event ev = {};
    ev.events = EPOLLIN;
    ev.data.fd = listen_.get();
    ::epoll_ctl(epoll_.get(), EPOLL_CTL_ADD, listen_.get(), &ev);
    ev.data.fd = signals_.get();
    ::epoll_ctl(epoll_.get(), EPOLL_CTL_ADD, signals_.get(), &ev);
  }
  if (!st.ok()) Teardown();
  return st;
}

crius::monitor::PodState Monitor::State() const {
  crius::monitor::PodState state;
  state.set_monitor_pid(::getpid());
  state.set_pod_init_pid(pod_init_);
  for (const auto& [kind, path] : pins_) (*state.mutable_namespaces())[kind] = path;
  for (const auto& [id, c] : containers_) *state.add_containers() = c->state;
  return state;
}

void Monitor::Handle(int conn) {
  crius::monitor::Request req;
  if (absl::Status st = sandbox::ReceiveMessage(conn, &req); !st.ok()) {
    ::epoll_ctl(epoll_.get(), EPOLL_CTL_DEL, conn, nullptr);
    watchers_.erase(conn);
    ::close(conn);
    return;
  }
  crius::monitor::Response resp;
  absl::Status st;
  std::vector<UniqueFd> fds;
  switch (req.kind_case()) {
    case crius::monitor::Request::kHello:
      *resp.mutable_pod() = State();
      break;
    case crius::monitor::Request::kShutdown:
      stopping_ = true;
      Teardown();
      *resp.mutable_pod() = State();
      break;
    case crius::monitor::Request::kCreate:
      st = Create(req.create().spec(), resp.mutable_container());
      break;
    case crius::monitor::Request::kStart:
      st = Start(req.start().id(), resp.mutable_container());
      break;
    case crius::monitor::Request::kSignal:
      st = Signal(req.signal().id(), req.signal().signal(), resp.mutable_container());
      break;
    case crius::monitor::Request::kRemove:
      st = Remove(req.remove().id());
      break;
    case crius::monitor::Request::kReopenLog:
      st = ReopenLog(req.reopen_log().id(), resp.mutable_container());
      break;
    case crius::monitor::Request::kAttach:
      st = Attach(req.attach().id(), &fds);
      break;
    case crius::monitor::Request::kCloseStdin:
      st = CloseStdin(req.close_stdin().id());
      break;
    case crius::monitor::Request::kWatch:
      // Never blocks us: a criusd that stops reading misses reports (its
      // next list finds the exits), the pod's logs keep flowing.
      ::fcntl(conn, F_SETFL, ::fcntl(conn, F_GETFL) | O_NONBLOCK);
      watchers_.insert(conn);
      *resp.mutable_pod() = State();
      break;
    default:
      resp.set_code(static_cast<int>(absl::StatusCode::kUnimplemented));
      resp.set_error("request not understood by this crius-monitor");
  }
  if (!st.ok()) {
    resp.set_code(static_cast<int>(st.code()));
    resp.set_error(std::string(st.message()));
    fds.clear();
  }
  std::vector<int> raw;
  for (const UniqueFd& fd : fds) raw.push_back(fd.get());
  resp.set_fds(static_cast<int>(raw.size()));
  (void)sandbox::SendMessage(conn, resp, raw);
}

void Monitor::Teardown() {
  for (auto& [id, c] : containers_) {
    if (c->pid > 0) {
      ::kill(c->pid, SIGKILL);
      int status = 0;
      if (::waitpid(c->pid, &status, 0) == c->pid) Reaped(c->pid, status);
    }
  }
  if (pod_init_ > 0) {
    ::kill(pod_init_, SIGKILL);
    ::waitpid(pod_init_, nullptr, 0);
    pod_init_ = 0;
  }
  for (const auto& [kind, path] : pins_) {
    ::umount2(path.c_str(), MNT_DETACH);
    ::unlink(path.c_str());
  }
  pins_.clear();
  if (!shm_.empty()) {
    ::umount2(shm_.c_str(), MNT_DETACH);
    ::rmdir(shm_.c_str());
    shm_.clear();
  }
  if (listen_) {
    ::unlink(absl::StrCat(options_.dir, "/monitor.sock").c_str());
    listen_.reset();
  }
}

int Monitor::Run() {
  struct epoll_event events[16];
  while (!stopping_) {
    int n = ::epoll_wait(epoll_.get(), events, 16, -1);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      LOG_ERROR("epoll_wait: %s", strerror(errno));
      break;
    }
    for (int i = 0; i < n && !stopping_; ++i) {
      int fd = events[i].data.fd;
      if (fd == listen_.get()) {
        int conn = ::accept4(listen_.get(), nullptr, nullptr, SOCK_CLOEXEC);
        if (conn < 0) continue;
        struct epoll_event ev = {};
        ev.events = EPOLLIN;
        ev.data.fd = conn;
        ::epoll_ctl(epoll_.get(), EPOLL_CTL_ADD, conn, &ev);
      } else if (fd == signals_.get()) {
        struct signalfd_siginfo si;
        while (::read(signals_.get(), &si, sizeof si) == sizeof si) {
          if (si.ssi_signo == SIGCHLD) {
            int status;
            pid_t pid;
            while ((pid = ::waitpid(-1, &status, WNOHANG)) > 0) {
              if (pid == pod_init_) {
                LOG_ERROR("pod %s: pod init (pid %d) died", options_.pod_id, pid);
                pod_init_ = 0;
              }
              Reaped(pid, status);
            }
          } else if (si.ssi_signo == SIGTERM || si.ssi_signo == SIGINT) {
            LOG_INFO("pod %s: signal %d: stopping", options_.pod_id, si.ssi_signo);
            stopping_ = true;
          }
        }
      } else if (log_fds_.count(fd)) {
        ReadLogs(fd);
      } else {
        Handle(fd);
      }
    }
  }
  Teardown();
  return 0;
}

}  // namespace crius::monitor
