#include <fcntl.h>

#include "absl/strings/str_cat.h"
#include "common/failpoint.h"
#include "common/files.h"
#include "common/status.h"
#include "common/unique_fd.h"
#include "cri/container_cgroups.h"
#include "cri/container_ops.h"
#include "cri/handlers.h"
#include "cri/sandbox_ops.h"
#include "sandbox/monitor_client.h"

namespace crius::cri {

absl::Status RemoveContainerFully(Runtime& rt, Pod* pod, Container& c) {
  if (pod != nullptr && pod->state == kPodReady) {
    if (c.state == kContainerRunning) CRIUS_RETURN_IF_ERROR(StopContainerProcess(rt, *pod, c, 0));
    CRIUS_FAILPOINT("container_remove.after_stop");
    crius::monitor::Request remove;
    remove.mutable_remove()->set_id(c.id);
    absl::StatusOr<crius::monitor::Response> resp = sandbox::CallMonitor(pod->dir, remove);
    if (!resp.ok() && resp.status().code() != absl::StatusCode::kUnavailable) {
      return Annotate(resp.status(), absl::StrCat("remove container ", c.id, " from its monitor"));
    }
  }
  CRIUS_FAILPOINT("container_remove.after_monitor");
  CRIUS_RETURN_IF_ERROR(Annotate(RemoveContainerCgroup(rt, c), absl::StrCat("remove the cgroup of container ", c.id)));
  CRIUS_FAILPOINT("container_remove.after_cgroup");
  if (!c.dir.empty()) {
    CRIUS_RETURN_IF_ERROR(Annotate(RemoveTree(c.dir), absl::StrCat("remove container directory ", c.dir)));
    CRIUS_FAILPOINT("container_remove.after_dir");
  }
  CRIUS_RETURN_IF_ERROR(Annotate(rt.containers().Delete(c.id), absl::StrCat("remove container ", c.id)));
  CRIUS_FAILPOINT("container_remove.after_record");
  if (!c.image_volumes.empty()) {
    rt.image_volumes().Sweep();
    CRIUS_FAILPOINT("container_remove.after_volumes");
  }
  rt.events().Publish(v1::CONTAINER_DELETED_EVENT, c.id, c.pod_id);
  return absl::OkStatus();
}

absl::Status ContainerRemove(Runtime& rt, const v1::RemoveContainerRequest& req,
                             v1::RemoveContainerResponse*) {
  if (req.container_id().empty()) return absl::InvalidArgumentError("container_id: is empty");
  std::shared_ptr<Container> c = rt.containers().Find(req.container_id());
  if (c == nullptr) return absl::OkStatus();
  std::shared_ptr<Pod> pod = rt.pods().Get(c->pod_id);
  if (pod != nullptr) RefreshContainers(rt, *pod);
  std::lock_guard<std::mutex> lock(c->op);
  if (!rt.containers().Listed(*c)) return absl::OkStatus();  // removed meanwhile
  return RemoveContainerFully(rt, pod.get(), *c);
}

}  // namespace crius::cri
