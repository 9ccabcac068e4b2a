// One process run in a running container by `crius-monitor exec`
// (sandbox/monitor/exec.h), its output collected: ExecSync.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"

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

// Runs `cmd` in the container whose init is `pid`, as `spec_path` says,
// through `monitor_binary`. A zero timeout waits as long as it takes; at
// the timeout the command is killed and the result is DeadlineExceeded. A
// command that could not start is InvalidArgument (no such executable, user
// or working directory) or Internal, with the reason.
absl::StatusOr<ExecResult> RunExec(const std::string& monitor_binary, const std::string& spec_path, pid_t pid,
                                   const std::vector<std::string>& cmd, absl::Duration timeout);

}  // namespace crius::cri
