#include "sandbox/monitor_client.h"

#include <dirent.h>
#include <fcntl.h>
#include <poll.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cerrno>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/ascii.h"
#include "absl/strings/strip.h"
#include "common/status.h"
#include "common/unique_fd.h"
#include "sandbox/monitor_wire.h"

namespace crius::sandbox {

std::string MonitorSocket(const std::string& dir) { return absl::StrCat(dir, "/monitor.sock"); }

namespace {

// A monitor that failed or did not report in time may still run, or have
// left pins: shut it down through its socket and release them.
void Abandon(const std::string& dir) {
  crius::monitor::Request shutdown;
  shutdown.mutable_shutdown();
  (void)CallMonitor(dir, shutdown, 2000);
  ReleasePins(dir);
}

absl::StatusOr<crius::monitor::PodState> Launch(const MonitorLaunch& l);

}  // namespace

absl::StatusOr<crius::monitor::PodState> StartMonitor(const MonitorLaunch& l) {
  absl::StatusOr<crius::monitor::PodState> state = Launch(l);
  if (!state.ok()) Abandon(l.dir);
  return state;
}

namespace {

absl::StatusOr<crius::monitor::PodState> Launch(const MonitorLaunch& l) {
  // Everything the children need is built before fork: after it, in a
  // multi-threaded process, only async-signal-safe calls are allowed.
  std::vector<std::string> args = {l.binary,
                                   "--pod-id", l.pod_id,
                                   "--dir", l.dir,
                                   "--net", l.new_net ? "new" : "host",
                                   "--ipc", l.new_ipc ? "new" : "host",
                                   "--uts", l.new_uts ? "new" : "host",
                                   "--pid", l.pod_pid ? "pod" : "none",
                                   "--ready-fd", "3"};
  for (const std::string& procs : l.cgroup_procs) {
    args.push_back("--cgroup-procs");
    args.push_back(procs);
  }
  for (const auto& [key, value] : l.sysctls) {
    args.push_back("--sysctl");
    args.push_back(absl::StrCat(key, "=", value));
  }
  if (!l.hostname.empty()) {
    args.push_back("--hostname");
    args.push_back(l.hostname);
  }
  for (const auto& [flag, ranges] : {std::pair{"--uid-map", &l.userns.uids}, {"--gid-map", &l.userns.gids}}) {
    for (const IdRange& r : *ranges) {
      args.push_back(flag);
      args.push_back(RangeFlag(r));
    }
  }
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  std::vector<const char*> procs_files;
  for (const std::string& procs : l.cgroup_procs) procs_files.push_back(procs.c_str());
  char* envp[] = {const_cast<char*>("PATH=/usr/sbin:/usr/bin:/sbin:/bin"), nullptr};

  int pipefd[2];
  if (::pipe2(pipefd, O_CLOEXEC) != 0) return ErrnoError(errno, "pipe");
  UniqueFd read_end(pipefd[0]), write_end(pipefd[1]);

  pid_t child = ::fork();
  if (child < 0) return ErrnoError(errno, "fork crius-monitor");
  if (child == 0) {
    // The middle process: it exits at once, so the monitor is reparented
    // (to init or a subreaper) and never becomes criusd's zombie.
    ::setsid();
    pid_t monitor = ::fork();
    if (monitor != 0) ::_exit(monitor < 0 ? 1 : 0);
    ::dup2(pipefd[1], 3);
    ::syscall(SYS_close_range, 4U, ~0U, 0U);
    int null = ::open("/dev/null", O_RDWR);
    if (null >= 0) {
      ::dup2(null, 0);
      if (null > 3) ::close(null);
    }
    // Into the pod's cgroups before execve, so that every page the monitor
    // touches is charged to the pod, not to criusd's cgroup (v1 and v2 keep
    // charges where they were made). The monitor joins again first thing,
    // and reports a failure there.
    for (const char* procs : procs_files) {
      int fd = ::open(procs, O_WRONLY | O_CLOEXEC);
      if (fd < 0) continue;
      ssize_t joined = ::write(fd, "0", 1);  // 0: the writer itself
      (void)joined;
      ::close(fd);
    }
    ::execve(argv[0], argv.data(), envp);
    const char msg[] = "error 5 cannot execute crius-monitor";
    ssize_t ignored = ::write(3, msg, sizeof msg - 1);
    (void)ignored;
    ::_exit(127);
  }
  write_end.reset();
  int status = 0;
  while (::waitpid(child, &status, 0) < 0 && errno == EINTR) {
  }

  // Wait for "ok <pid>" or "error <code> <text>"; EOF without either means
  // the monitor died during set-up.
  std::string reply;
  struct timespec start;
  clock_gettime(CLOCK_MONOTONIC, &start);
  char buf[512];
  for (;;) {
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    long waited = (now.tv_sec - start.tv_sec) * 1000 + (now.tv_nsec - start.tv_nsec) / 1000000;
    if (waited >= l.ready_timeout_ms) {
      return absl::DeadlineExceededError(absl::StrCat(
          "crius-monitor did not report ready within ", l.ready_timeout_ms, " ms"));
    }
    struct pollfd p = {read_end.get(), POLLIN, 0};
    int r = ::poll(&p, 1, static_cast<int>(l.ready_timeout_ms - waited));
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) continue;
    ssize_t n = ::read(read_end.get(), buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    reply.append(buf, static_cast<size_t>(n));
    if (reply.back() == '\n') break;  // the whole report
  }
  absl::string_view text = absl::StripTrailingAsciiWhitespace(reply);
  if (absl::ConsumePrefix(&text, "error ")) {
    std::pair<absl::string_view, absl::string_view> parts = absl::StrSplit(text, absl::MaxSplits(' ', 1));
    int code = 0;
    (void)absl::SimpleAtoi(parts.first, &code);
    return absl::Status(code > 0 && code <= 16 ? static_cast<absl::StatusCode>(code)
                                               : absl::StatusCode::kInternal,
                        absl::StrCat("crius-monitor: ", parts.second));
  }
  if (!absl::StartsWith(text, "ok ")) {
    return absl::InternalError(absl::StrCat("crius-monitor exited during set-up (see ", l.dir,
                                            "/monitor.log)"));
  }
  crius::monitor::Request hello;
  hello.mutable_hello();
  CRIUS_ASSIGN_OR_RETURN(crius::monitor::Response resp, CallMonitor(l.dir, hello));
  return resp.pod();
}

}  // namespace

namespace {

absl::StatusOr<UniqueFd> ConnectMonitor(const std::string& dir, int timeout_ms) {
  std::string path = MonitorSocket(dir);
  UniqueFd fd(::socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0));
  if (!fd) return ErrnoError(errno, "socket");
  struct timeval tv = {timeout_ms / 1000, (timeout_ms % 1000) * 1000};
  ::setsockopt(fd.get(), SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  ::setsockopt(fd.get(), SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
  // A request may be kMaxPacket long (a spec with a large environment); the
  // default send buffer (net.core.wmem_default, 208 KiB) refuses a packet
  // past it with EMSGSIZE. FORCE passes net.core.wmem_max, as root may.
  int sndbuf = static_cast<int>(kMaxPacket) + 4096;
  if (::setsockopt(fd.get(), SOL_SOCKET, SO_SNDBUFFORCE, &sndbuf, sizeof sndbuf) != 0) {
    ::setsockopt(fd.get(), SOL_SOCKET, SO_SNDBUF, &sndbuf, sizeof sndbuf);
  }
  absl::StatusOr<std::unique_ptr<SocketPath>> short_path = MonitorSocketPath(dir);
  if (!short_path.ok()) {
    return absl::UnavailableError(absl::StrCat("no monitor answers on ", path, ": ",
                                               short_path.status().message()));
  }
  struct sockaddr_un addr = {};
  addr.sun_family = AF_UNIX;
  (*short_path)->path.copy(addr.sun_path, sizeof addr.sun_path - 1);
  if (::connect(fd.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    return absl::UnavailableError(absl::StrCat("no monitor answers on ", path, ": ", strerror(errno)));
  }
  return fd;
}

}  // namespace

absl::StatusOr<crius::monitor::Response> CallMonitor(const std::string& dir,
                                                     const crius::monitor::Request& req,
                                                     int timeout_ms, std::vector<UniqueFd>* fds) {
  std::string path = MonitorSocket(dir);
  CRIUS_ASSIGN_OR_RETURN(UniqueFd fd, ConnectMonitor(dir, timeout_ms));
  CRIUS_RETURN_IF_ERROR(Annotate(SendMessage(fd.get(), req), path));
  crius::monitor::Response resp;
  absl::Status st = ReceiveMessage(fd.get(), &resp, fds);
  if (!st.ok()) {
    return absl::UnavailableError(absl::StrCat("monitor on ", path, " did not answer: ", st.message()));
  }
  if (resp.code() != 0) {
    return absl::Status(static_cast<absl::StatusCode>(resp.code()), resp.error());
  }
  return resp;
}

absl::StatusOr<UniqueFd> WatchMonitor(const std::string& dir) {
  crius::monitor::Request watch;
  watch.mutable_watch();
  CRIUS_ASSIGN_OR_RETURN(UniqueFd fd, ConnectMonitor(dir, 10000));
  std::string path = MonitorSocket(dir);
  CRIUS_RETURN_IF_ERROR(Annotate(SendMessage(fd.get(), watch), path));
  crius::monitor::Response resp;
  CRIUS_RETURN_IF_ERROR(Annotate(ReceiveMessage(fd.get(), &resp), path));
  if (resp.code() != 0) return absl::Status(static_cast<absl::StatusCode>(resp.code()), resp.error());
  struct timeval none = {0, 0};  // from now on read only when readable
  ::setsockopt(fd.get(), SOL_SOCKET, SO_RCVTIMEO, &none, sizeof none);
  return fd;
}

void ReleasePins(const std::string& dir, bool keep_net) {
  std::string shm = absl::StrCat(dir, "/shm");
  ::umount2(shm.c_str(), MNT_DETACH);
  ::rmdir(shm.c_str());
  std::string ns = absl::StrCat(dir, "/ns");
  DIR* d = ::opendir(ns.c_str());
  if (d == nullptr) return;
  std::vector<std::string> names;
  while (struct dirent* e = ::readdir(d)) {
    if (e->d_name[0] != '.') names.push_back(e->d_name);
  }
  ::closedir(d);
  for (const std::string& name : names) {
    if (keep_net && name == "net") continue;
    std::string path = absl::StrCat(ns, "/", name);
    ::umount2(path.c_str(), MNT_DETACH);
    ::unlink(path.c_str());
  }
  ::rmdir(ns.c_str());  // fails, harmlessly, while the netns pin stays
}

}  // namespace crius::sandbox
