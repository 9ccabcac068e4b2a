#include "cri/exec_process.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "common/status.h"
#include "common/unique_fd.h"
#include "sandbox/monitor_wire.h"

namespace crius::cri {
namespace {

absl::Status Pipe(UniqueFd* r, UniqueFd* w) {
  int fds[2];
  if (::pipe2(fds, O_CLOEXEC) != 0) return ErrnoError(errno, "pipe");
  r->reset(fds[0]);
  w->reset(fds[1]);
  return absl::OkStatus();
}

// Reads what is there now; false at EOF (or an error).
bool Drain(int fd, std::string* out, size_t cap) {
  char buf[65536];
  for (;;) {
    ssize_t n = ::read(fd, buf, sizeof buf);
    if (n > 0) {
      size_t keep = out->size() < cap ? std::min(cap - out->size(), static_cast<size_t>(n)) : 0;
      out->append(buf, keep);
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    return n < 0 && errno == EAGAIN;
  }
}

int Wait(pid_t pid) {
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  return status;
}

}  // namespace

ExecChild::~ExecChild() {
  if (pid > 0) (void)Reap("", true);
}

std::string ExecChild::ReadReport() {
  std::string report;
  char buf[4096];
  ::fcntl(report_r.get(), F_SETFL, O_NONBLOCK);
  for (ssize_t n; (n = ::read(report_r.get(), buf, sizeof buf)) > 0;) report.append(buf, static_cast<size_t>(n));
  return report;
}

absl::StatusOr<int> ExecChild::Reap(const std::string& report, bool kill) {
  if (pid <= 0) return absl::InternalError("exec: already reaped");
  if (kill) {
    // The helper kills the command and reaps it, then exits; SIGKILL if it
    // does not within a second.
    ::kill(pid, SIGTERM);
    struct pollfd exited = {pidfd.get(), POLLIN, 0};
    if (!pidfd || ::poll(&exited, 1, 1000) != 1) ::kill(pid, SIGKILL);
  }
  int status = Wait(pid);
  pid = 0;
  if (!report.empty()) {
    std::string why = report.substr(1);
    if (report[0] == 'I') return absl::InvalidArgumentError(absl::StrCat("cmd: ", why));
    return absl::InternalError(absl::StrCat("exec in the container: ", why));
  }
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

absl::StatusOr<ExecChild> SpawnExec(const std::string& monitor_binary, const std::string& spec_path, pid_t pid,
                                    const std::vector<std::string>& cmd, const ExecStdio& stdio) {
  ExecChild child;
  UniqueFd in_r, out_w, err_w, rep_w;
  CRIUS_RETURN_IF_ERROR(Pipe(&child.report_r, &rep_w));
  UniqueFd console_ours, console_theirs;
  if (stdio.tty) {
    int pair[2];
    if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, pair) != 0) return ErrnoError(errno, "socketpair");
    console_ours.reset(pair[0]);
    console_theirs.reset(pair[1]);
  } else {
    if (stdio.stdin) CRIUS_RETURN_IF_ERROR(Pipe(&in_r, &child.stdin_w));
    if (stdio.stdout) CRIUS_RETURN_IF_ERROR(Pipe(&child.stdout_r, &out_w));
    if (stdio.stderr) CRIUS_RETURN_IF_ERROR(Pipe(&child.stderr_r, &err_w));
  }
  std::vector<std::string> args = {monitor_binary, "exec", "--spec", spec_path, "--pid", absl::StrCat(pid),
                                   "--report-fd", "3"};
  if (stdio.tty) {
    args.push_back("--console-fd");
    args.push_back("4");
  }
  args.push_back("--");
  args.insert(args.end(), cmd.begin(), cmd.end());
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  char* envp[] = {const_cast<char*>("PATH=/usr/sbin:/usr/bin:/sbin:/bin"), nullptr};

  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  auto stdio_fd = [&](int target, const UniqueFd& fd, int flags) {
    if (fd) {
      posix_spawn_file_actions_adddup2(&actions, fd.get(), target);
    } else {
      posix_spawn_file_actions_addopen(&actions, target, "/dev/null", flags, 0);
    }
  };
  stdio_fd(0, in_r, O_RDONLY);
  stdio_fd(1, out_w, O_WRONLY);
  stdio_fd(2, err_w, O_WRONLY);
  posix_spawn_file_actions_adddup2(&actions, rep_w.get(), 3);
  if (console_theirs) posix_spawn_file_actions_adddup2(&actions, console_theirs.get(), 4);
  posix_spawn_file_actions_addclosefrom_np(&actions, console_theirs ? 5 : 4);
  int err = ::posix_spawn(&child.pid, argv[0], &actions, nullptr, argv.data(), envp);
  posix_spawn_file_actions_destroy(&actions);
  if (err != 0) {
    child.pid = 0;
    return ErrnoError(err, absl::StrCat("start ", monitor_binary, " exec"));
  }
  child.pidfd.reset(static_cast<int>(::syscall(SYS_pidfd_open, child.pid, 0)));
  if (!child.pidfd) return ErrnoError(errno, "pidfd_open");
  if (console_ours) {
    // The terminal's master, once the helper has made it in the container;
    // EOF instead when it failed before (its report says why).
    console_theirs.reset();
    struct timeval tv = {10, 0};
    ::setsockopt(console_ours.get(), SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    absl::StatusOr<UniqueFd> master = sandbox::ReceiveFd(console_ours.get());
    if (!master.ok()) {
      std::string report = child.ReadReport();
      absl::StatusOr<int> code = child.Reap(report.empty() ? "Eno terminal came from the exec helper" : report, true);
      return code.status();
    }
    child.stdout_r = std::move(*master);
    child.stdin_w.reset(::fcntl(child.stdout_r.get(), F_DUPFD_CLOEXEC, 0));
    if (!child.stdin_w) return ErrnoError(errno, "dup the terminal");
  }
  return child;
}

absl::StatusOr<ExecResult> RunExec(const std::string& monitor_binary, const std::string& spec_path, pid_t pid,
                                   const std::vector<std::string>& cmd, absl::Duration timeout) {
  CRIUS_ASSIGN_OR_RETURN(ExecChild child, SpawnExec(monitor_binary, spec_path, pid, cmd, ExecStdio{}));
  UniqueFd& out_r = child.stdout_r;
  UniqueFd& err_r = child.stderr_r;
  UniqueFd& rep_r = child.report_r;
  UniqueFd& exited = child.pidfd;
  for (int fd : {out_r.get(), err_r.get(), rep_r.get()}) ::fcntl(fd, F_SETFL, O_NONBLOCK);
  ExecResult result;
  std::string report;
  const absl::Time deadline = timeout > absl::ZeroDuration() ? absl::Now() + timeout : absl::InfiniteFuture();
  bool open[3] = {true, true, true};
  for (;;) {
    struct pollfd fds[4] = {{out_r.get(), POLLIN, 0}, {err_r.get(), POLLIN, 0}, {rep_r.get(), POLLIN, 0},
                            {exited.get(), POLLIN, 0}};
    for (int i = 0; i < 3; ++i) {
      if (!open[i]) fds[i].fd = -1;
    }
    int wait_ms = -1;
    if (deadline != absl::InfiniteFuture()) {
      wait_ms = static_cast<int>(std::max<int64_t>(0, absl::ToInt64Milliseconds(deadline - absl::Now())));
    }
    int n = ::poll(fds, 4, wait_ms);
    if (n < 0 && errno == EINTR) continue;
    if (n == 0) {  // the timeout: the command dies with the helper
      (void)child.Reap("", true);
      return absl::DeadlineExceededError(
          absl::StrCat("command ", cmd[0], " timed out after ", absl::FormatDuration(timeout), " and was killed"));
    }
    std::string* sinks[3] = {&result.stdout_data, &result.stderr_data, &report};
    for (int i = 0; i < 3; ++i) {
      if (open[i] && fds[i].revents != 0) open[i] = Drain(fds[i].fd, sinks[i], i < 2 ? kExecOutputCap : 4096);
    }
    if (fds[3].revents != 0) {
      // It has exited, and with it the command: what they wrote is in the
      // pipes. A process the command left behind may hold them open; it is
      // not waited for.
      for (int i = 0; i < 3; ++i) {
        if (open[i]) Drain(fds[i].fd, sinks[i], i < 2 ? kExecOutputCap : 4096);
      }
      break;
    }
  }
  CRIUS_ASSIGN_OR_RETURN(result.exit_code, child.Reap(report));
  return result;
}

}  // namespace crius::cri
