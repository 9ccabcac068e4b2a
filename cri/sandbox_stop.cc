#include "common/failpoint.h"
#include "common/status.h"
#include "cri/handlers.h"
#include "cri/sandbox_ops.h"

namespace crius::cri {

absl::Status SandboxStop(Runtime& rt, const v1::StopPodSandboxRequest& req,
                         v1::StopPodSandboxResponse*) {
  if (req.pod_sandbox_id().empty()) {
    return absl::InvalidArgumentError("pod_sandbox_id: is empty");
  }
  // Stopping a pod that is not there succeeds: kubelet retries stops.
  std::shared_ptr<Pod> pod = rt.pods().Find(req.pod_sandbox_id());
  if (pod == nullptr) return absl::OkStatus();
  std::lock_guard<std::mutex> lock(pod->op);
  CRIUS_RETURN_IF_ERROR(StopPod(rt, *pod));
  CRIUS_FAILPOINT("sandbox_stop.after_record");
  return absl::OkStatus();
}

}  // namespace crius::cri
