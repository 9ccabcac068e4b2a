// One process run in a running container by `crius-monitor exec`
// (sandbox/monitor/exec.h), its output collected: ExecSync.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "common/unique_fd.h"

namespace crius::cri {

// containerd's cap on what ExecSync returns of each stream; the rest is
// read and dropped, so the command never blocks on a full pipe.
inline constexpr size_t kExecOutputCap = 16 << 20;
// What one ExecSyncResponse carries of both streams together: kubelet takes
// messages of 16 MiB, room left for the rest of the message.
inline constexpr size_t kExecResponseCap = (16 << 20) - 1024;

struct ExecResult {
  std::string stdout_data;
  std::string stderr_data;
  int exit_code = 0;
};

// What an exec's stdio is: a terminal (stdin, stdout and stderr at once),
// or pipes for the streams asked for (the others are /dev/null).
struct ExecStdio {
  bool tty = false;
  bool stdin = false;
  bool stdout = true;
  bool stderr = true;
};

// A started `crius-monitor exec`, with criusd's ends of its stdio. The
// destructor kills and reaps it if Reap() has not.
struct ExecChild {
  pid_t pid = 0;
  UniqueFd pidfd;     // readable once it has exited
  UniqueFd stdin_w;   // the terminal's master with a tty
  UniqueFd stdout_r;  // the terminal's master with a tty
  UniqueFd stderr_r;
  UniqueFd report_r;  // "I..." / "E..." when the command could not start

  ExecChild() = default;
  ExecChild(ExecChild&& o) noexcept
      : pid(std::exchange(o.pid, 0)), pidfd(std::move(o.pidfd)), stdin_w(std::move(o.stdin_w)),
        stdout_r(std::move(o.stdout_r)), stderr_r(std::move(o.stderr_r)), report_r(std::move(o.report_r)) {}
  ExecChild& operator=(ExecChild&&) = delete;
  ~ExecChild();
  // What the report pipe holds now ("" when the command started).
  std::string ReadReport();
  // Waits for it (it has exited, or is killed now when `kill`) and turns
  // its status and `report` into the command's exit code or the error.
  absl::StatusOr<int> Reap(const std::string& report, bool kill = false);
};

absl::StatusOr<ExecChild> SpawnExec(const std::string& monitor_binary, const std::string& spec_path, pid_t pid,
                                    const std::vector<std::string>& cmd, const ExecStdio& stdio);

// Runs `cmd` in the container whose init is `pid`, as `spec_path` says,
// through `monitor_binary`. A zero timeout waits as long as it takes; at
// the timeout the command is killed and the result is DeadlineExceeded. A
// command that could not start is InvalidArgument (no such executable, user
// or working directory) or Internal, with the reason.
absl::StatusOr<ExecResult> RunExec(const std::string& monitor_binary, const std::string& spec_path, pid_t pid,
                                   const std::vector<std::string>& cmd, absl::Duration timeout);

}  // namespace crius::cri
