#include "absl/strings/str_cat.h"
#include "common/failpoint.h"
#include "common/status.h"
#include "cri/container_ops.h"
#include "cri/handlers.h"
#include "cri/sandbox_ops.h"

namespace crius::cri {

absl::Status ContainerStop(Runtime& rt, const v1::StopContainerRequest& req,
                           v1::StopContainerResponse*) {
  if (req.container_id().empty()) return absl::InvalidArgumentError("container_id: is empty");
  if (req.timeout() < 0) return absl::InvalidArgumentError("timeout: is negative");
  // Stopping a container that is not there succeeds: kubelet retries stops.
  std::shared_ptr<Container> c = rt.containers().Find(req.container_id());
  if (c == nullptr) return absl::OkStatus();
  std::shared_ptr<Pod> pod = rt.pods().Get(c->pod_id);
  if (pod == nullptr) return absl::OkStatus();
  RefreshContainers(rt, *pod);
  std::lock_guard<std::mutex> lock(c->op);
  if (!rt.containers().Listed(*c)) return absl::OkStatus();  // removed meanwhile
  if (c->state != kContainerRunning) return absl::OkStatus();
  CRIUS_RETURN_IF_ERROR(Annotate(StopContainerProcess(rt, *pod, *c, req.timeout()),
                                 absl::StrCat("stop container ", c->id)));
  CRIUS_FAILPOINT("container_stop.after_record");
  return absl::OkStatus();
}

}  // namespace crius::cri
