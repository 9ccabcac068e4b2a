#include <fcntl.h>

#include "absl/strings/str_cat.h"
#include "common/failpoint.h"
#include "common/files.h"
#include "common/status.h"
#include "common/unique_fd.h"
#include "cri/container_cgroups.h"
#include "cri/container_ops.h"
#include "cri/handlers.h"
#include "cri/pod_cgroups.h"
#include "cri/sandbox_ops.h"

namespace crius::cri {

absl::Status SandboxRemove(Runtime& rt, const v1::RemovePodSandboxRequest& req,
                           v1::RemovePodSandboxResponse*) {
  if (req.pod_sandbox_id().empty()) {
    return absl::InvalidArgumentError("pod_sandbox_id: is empty");
  }
  std::shared_ptr<Pod> pod = rt.pods().Find(req.pod_sandbox_id());
  if (pod == nullptr) return absl::OkStatus();
  std::lock_guard<std::mutex> lock(pod->op);
  // A running pod is stopped first, as containerd does.
  CRIUS_RETURN_IF_ERROR(StopPod(rt, *pod));
  CRIUS_FAILPOINT("sandbox_remove.after_stop");
  for (const std::shared_ptr<Container>& c : rt.containers().OfPod(pod->id)) {
    std::lock_guard<std::mutex> clock(c->op);
    CRIUS_RETURN_IF_ERROR(RemoveContainerFully(rt, pod.get(), *c));
  }
  CRIUS_RETURN_IF_ERROR(Annotate(RemovePodCgroups(rt, *pod), absl::StrCat("remove the cgroups of pod ", pod->id)));
  CRIUS_FAILPOINT("sandbox_remove.after_cgroups");
  CRIUS_RETURN_IF_ERROR(Annotate(RemoveTree(pod->dir), absl::StrCat("remove pod directory ", pod->dir)));
  CRIUS_FAILPOINT("sandbox_remove.after_files");
  CRIUS_RETURN_IF_ERROR(Annotate(rt.pods().Delete(pod->id), absl::StrCat("remove pod ", pod->id)));
  CRIUS_FAILPOINT("sandbox_remove.after_record");
  rt.events().Publish(v1::CONTAINER_DELETED_EVENT, pod->id, pod->id);
  return absl::OkStatus();
}

}  // namespace crius::cri
