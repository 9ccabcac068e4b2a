#include "cri/exec_process.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "common/status.h"
#include "common/unique_fd.h"

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

absl::StatusOr<ExecResult> RunExec(const std::string& monitor_binary, const std::string& spec_path, pid_t pid,
                                   const std::vector<std::string>& cmd, absl::Duration timeout) {
  UniqueFd out_r, out_w, err_r, err_w, rep_r, rep_w;
  CRIUS_RETURN_IF_ERROR(Pipe(&out_r, &out_w));
  CRIUS_RETURN_IF_ERROR(Pipe(&err_r, &err_w));
  CRIUS_RETURN_IF_ERROR(Pipe(&rep_r, &rep_w));
  std::vector<std::string> args = {monitor_binary, "exec", "--spec", spec_path, "--pid", absl::StrCat(pid),
                                   "--report-fd", "3", "--"};
  args.insert(args.end(), cmd.begin(), cmd.end());
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  char* envp[] = {const_cast<char*>("PATH=/usr/sbin:/usr/bin:/sbin:/bin"), nullptr};

  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_adddup2(&actions, out_w.get(), 1);
  posix_spawn_file_actions_adddup2(&actions, err_w.get(), 2);
  posix_spawn_file_actions_adddup2(&actions, rep_w.get(), 3);
  posix_spawn_file_actions_addclosefrom_np(&actions, 4);
  pid_t helper = 0;
  int err = ::posix_spawn(&helper, argv[0], &actions, nullptr, argv.data(), envp);
  posix_spawn_file_actions_destroy(&actions);
  if (err != 0) return ErrnoError(err, absl::StrCat("start ", monitor_binary, " exec"));
  out_w.reset();
  err_w.reset();
  rep_w.reset();

  UniqueFd exited(static_cast<int>(::syscall(SYS_pidfd_open, helper, 0)));
  if (!exited) {
    int e = errno;
    ::kill(helper, SIGKILL);
    Wait(helper);
    return ErrnoError(e, "pidfd_open");
  }
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
      ::kill(helper, SIGKILL);
      Wait(helper);
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
  int status = Wait(helper);
  if (!report.empty()) {
    std::string why = report.substr(1);
    if (report[0] == 'I') return absl::InvalidArgumentError(absl::StrCat("cmd: ", why));
    return absl::InternalError(absl::StrCat("exec in the container: ", why));
  }
  result.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  return result;
}

}  // namespace crius::cri
