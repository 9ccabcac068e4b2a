#include "absl/strings/str_cat.h"
#include "common/failpoint.h"
#include "common/status.h"
#include "cri/container_ops.h"
#include "cri/handlers.h"
#include "sandbox/monitor_client.h"

namespace crius::cri {

absl::Status ContainerReopenLog(Runtime& rt, const v1::ReopenContainerLogRequest& req,
                                v1::ReopenContainerLogResponse*) {
  if (req.container_id().empty()) return absl::InvalidArgumentError("container_id: is empty");
  std::shared_ptr<Container> c = rt.containers().Find(req.container_id());
  if (c == nullptr) return absl::NotFoundError(absl::StrCat("container ", req.container_id(), " not found"));
  std::shared_ptr<Pod> pod = rt.pods().Get(c->pod_id);
  if (pod != nullptr) RefreshContainers(rt, *pod);
  if (pod == nullptr || c->state != kContainerRunning) {
    return absl::FailedPreconditionError(absl::StrCat("container ", c->id, " is not running"));
  }
  crius::monitor::Request reopen;
  reopen.mutable_reopen_log()->set_id(c->id);
  CRIUS_RETURN_IF_ERROR(sandbox::CallMonitor(pod->dir, reopen).status());
  CRIUS_FAILPOINT("container_reopen_log.after_monitor");
  return absl::OkStatus();
}

}  // namespace crius::cri
