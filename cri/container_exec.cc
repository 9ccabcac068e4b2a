// ExecSync: a command in a running container, its output and exit code
// (kubelet's exec probes). The streaming Exec is cri/container_stream.cc.
#include <unistd.h>

#include "absl/strings/str_cat.h"
#include "common/status.h"
#include "cri/container_ops.h"
#include "cri/container_stream.h"
#include "cri/exec_process.h"
#include "cri/handlers.h"
#include "cri/unikernel.h"
#include "cri/sandbox_ops.h"
#include "sandbox/monitor_client.h"

namespace crius::cri {

absl::Status ContainerExecSync(Runtime& rt, const v1::ExecSyncRequest& req, v1::ExecSyncResponse* resp) {
  if (req.container_id().empty()) return absl::InvalidArgumentError("container_id: is empty");
  if (req.cmd_size() == 0 || req.cmd(0).empty()) return absl::InvalidArgumentError("cmd: is empty");
  if (req.timeout() < 0) return absl::InvalidArgumentError("timeout: is negative");
  std::shared_ptr<Container> c = rt.containers().Find(req.container_id());
  if (c == nullptr) return absl::NotFoundError(absl::StrCat("container ", req.container_id(), " not found"));
  std::shared_ptr<Pod> pod = rt.pods().Get(c->pod_id);
  if (pod == nullptr) return absl::NotFoundError(absl::StrCat("pod sandbox ", c->pod_id, " not found"));
  CRIUS_RETURN_IF_ERROR(RefuseIntoGuest(rt, *pod, absl::StrCat("exec into container ", c->id)));
  CRIUS_ASSIGN_OR_RETURN(pid_t pid, RunningPid(rt, *c, *pod));
  if (::access(ContainerSpecPath(*c).c_str(), R_OK) != 0) {
    return absl::FailedPreconditionError(
        absl::StrCat("container ", c->id, " was created by an older criusd: it has no spec to exec with"));
  }
  std::vector<std::string> cmd(req.cmd().begin(), req.cmd().end());
  CRIUS_ASSIGN_OR_RETURN(ExecResult r, RunExec(rt.monitor_binary(), ContainerSpecPath(*c), pid, cmd,
                                               absl::Seconds(req.timeout())));
  // Both streams in one message kubelet can take: stdout gives way first.
  if (r.stderr_data.size() > kExecResponseCap) r.stderr_data.resize(kExecResponseCap);
  if (r.stdout_data.size() + r.stderr_data.size() > kExecResponseCap) {
    r.stdout_data.resize(kExecResponseCap - r.stderr_data.size());
  }
  resp->set_stdout(std::move(r.stdout_data));
  resp->set_stderr(std::move(r.stderr_data));
  resp->set_exit_code(r.exit_code);
  return absl::OkStatus();
}

}  // namespace crius::cri
