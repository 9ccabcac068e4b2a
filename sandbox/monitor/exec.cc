#include "sandbox/monitor/exec.h"

#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "monitor.pb.h"
#include "sandbox/monitor/container_init.h"

namespace crius::monitor {
namespace {

int report_fd = -1;

[[noreturn]] void Report(const std::string& message, char kind = 'E') {
  std::string text = std::string(1, kind) + message;
  if (report_fd >= 0) {
    ssize_t ignored = ::write(report_fd, text.data(), text.size());
    (void)ignored;
  }
  ::_exit(255);
}

int OpenNs(pid_t pid, const char* kind) {
  std::string path = absl::StrCat("/proc/", pid, "/ns/", kind);
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) Report(absl::StrCat("open ", path, ": ", std::strerror(errno), " (has the container exited?)"));
  return fd;
}

}  // namespace

int ExecMain(int argc, char** argv) {
  ResetSignals();  // nothing of criusd's signal set-up reaches the command
  std::string spec_path;
  pid_t pid = 0;
  int console_fd = -1;
  std::vector<std::string> args;
  for (int i = 2; i < argc; ++i) {
    std::string flag = argv[i];
    if (flag == "--") {
      args.assign(argv + i + 1, argv + argc);
      break;
    }
    if (i + 1 >= argc) Report(absl::StrCat(flag, " needs a value"));
    std::string value = argv[++i];
    if (flag == "--spec") {
      spec_path = value;
    } else if (flag == "--pid") {
      if (!absl::SimpleAtoi(value, &pid) || pid <= 0) Report("--pid: not a process id");
    } else if (flag == "--console-fd") {
      if (!absl::SimpleAtoi(value, &console_fd) || console_fd < 0) Report("--console-fd: not an fd");
      ::fcntl(console_fd, F_SETFD, FD_CLOEXEC);
    } else if (flag == "--report-fd") {
      if (!absl::SimpleAtoi(value, &report_fd) || report_fd < 0) Report("--report-fd: not an fd");
      ::fcntl(report_fd, F_SETFD, FD_CLOEXEC);
    } else {
      Report(absl::StrCat("unknown flag ", flag));
    }
  }
  if (spec_path.empty() || pid == 0 || args.empty()) {
    Report("usage: crius-monitor exec --spec FILE --pid PID --report-fd N [--console-fd N] -- CMD [ARG...]");
  }
  ContainerSpec spec;
  {
    std::ifstream in(spec_path, std::ios::binary);
    std::stringstream bytes;
    bytes << in.rdbuf();
    if (!in || !spec.ParseFromString(bytes.str())) Report(absl::StrCat("read the container's spec ", spec_path));
  }

  // Every namespace first, while /proc is still the node's; the user
  // namespace last: joining it gives up the node's privileges.
  std::vector<std::pair<int, int>> joins;
  for (const auto& [kind, flag] : {std::pair{"ipc", CLONE_NEWIPC}, {"uts", CLONE_NEWUTS}, {"net", CLONE_NEWNET},
                                   {"pid", CLONE_NEWPID}, {"mnt", CLONE_NEWNS}}) {
    joins.push_back({OpenNs(pid, kind), flag});
  }
  int userns = -1;
  if (!spec.user_namespace().empty()) userns = OpenNs(pid, "user");
  for (const std::string& procs : spec.cgroup_procs()) {
    std::string self = absl::StrCat(::getpid());
    int fd = ::open(procs.c_str(), O_WRONLY | O_CLOEXEC);
    if (fd < 0 || ::write(fd, self.data(), self.size()) < 0) {
      Report(absl::StrCat("join the container's cgroup ", procs, ": ", std::strerror(errno)));
    }
    ::close(fd);
  }
  for (const auto& [fd, flag] : joins) {
    // Joining the mount namespace also makes its root our root and cwd.
    if (::setns(fd, flag) != 0) Report(absl::StrCat("join the container's namespaces: ", std::strerror(errno)));
    ::close(fd);
  }
  // The terminal is the container's own (its /dev/pts), so that the
  // command finds it there (tty, ttyname); its master goes to criusd.
  int tty_slave = -1;
  if (console_fd >= 0) {
    std::string error;
    tty_slave = OpenTerminal(console_fd, &error);
    if (tty_slave < 0) Report(error);
  }
  if (userns >= 0) {
    if (::setns(userns, CLONE_NEWUSER) != 0) {
      Report(absl::StrCat("join the pod's user namespace: ", std::strerror(errno)));
    }
    ::close(userns);
  }

  int sync[2];
  if (::pipe2(sync, O_CLOEXEC) != 0) Report(absl::StrCat("pipe: ", std::strerror(errno)));
  // SIGTERM asks us to end the command: we kill it and reap it ourselves.
  // Killed outright, we would leave it to the container's init, which may
  // never reap it (a zombie `pgrep` still finds).
  sigset_t waited;
  sigemptyset(&waited);
  sigaddset(&waited, SIGTERM);
  sigaddset(&waited, SIGCHLD);
  ::sigprocmask(SIG_BLOCK, &waited, nullptr);
  pid_t child = ::fork();  // born in the container's pid namespace
  if (child < 0) Report(absl::StrCat("fork: ", std::strerror(errno)));
  if (child == 0) {
    ::close(sync[0]);
    ::sigprocmask(SIG_UNBLOCK, &waited, nullptr);
    // The terminal is stdin, stdout and stderr, and the controlling
    // terminal of a session of its own: job control and ^C work.
    if (tty_slave >= 0 && (::setsid() < 0 || ::dup2(tty_slave, 0) < 0 || ::dup2(tty_slave, 1) < 0 ||
                           ::dup2(tty_slave, 2) < 0 || ::ioctl(0, TIOCSCTTY, 0) != 0)) {
      std::string msg = absl::StrCat("Emake stdin the controlling terminal: ", std::strerror(errno));
      ssize_t ignored = ::write(sync[1], msg.data(), msg.size());
      (void)ignored;
      ::_exit(127);
    }
    InitPipes p{sync[1], -1, 1, 2, 0, -1};  // stdio as set up above
    ContainerProcess proc = BecomeContainerProcess(spec, p, args);
    // After the change of user, which clears it: we die, the command dies.
    ::prctl(PR_SET_PDEATHSIG, SIGKILL);
    std::vector<char*> envp, argvp;
    for (auto& e : proc.env) envp.push_back(e.data());
    envp.push_back(nullptr);
    for (auto& a : args) argvp.push_back(a.data());
    argvp.push_back(nullptr);
    ::execve(proc.exe.c_str(), argvp.data(), envp.data());
    std::string msg = absl::StrCat("Iexec ", proc.exe, ": ", std::strerror(errno));
    ssize_t ignored = ::write(sync[1], msg.data(), msg.size());
    (void)ignored;
    ::_exit(127);
  }
  ::close(sync[1]);
  std::string failure;
  char buf[4096];
  for (ssize_t n; (n = ::read(sync[0], buf, sizeof buf)) != 0;) {
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) break;
    failure.append(buf, static_cast<size_t>(n));
  }
  int status = 0;
  for (;;) {
    pid_t done = ::waitpid(child, &status, WNOHANG);
    if (done == child || (done < 0 && errno != EINTR)) break;
    if (done < 0) continue;
    int sig = ::sigwaitinfo(&waited, nullptr);
    if (sig == SIGTERM) {
      ::kill(child, SIGKILL);
      while (::waitpid(child, &status, 0) < 0 && errno == EINTR) {
      }
      break;
    }
  }
  if (!failure.empty()) Report(failure.substr(1), failure[0]);
  if (WIFSIGNALED(status)) return 128 + WTERMSIG(status);
  return WEXITSTATUS(status);
}

}  // namespace crius::monitor
