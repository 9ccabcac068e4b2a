#include "absl/strings/str_cat.h"
#include "common/failpoint.h"
#include "common/status.h"
#include "cri/container_cgroups.h"
#include "cri/handlers.h"

namespace crius::cri {

absl::Status ContainerUpdateResources(Runtime& rt, const v1::UpdateContainerResourcesRequest& req,
                                      v1::UpdateContainerResourcesResponse*) {
  if (req.container_id().empty()) return absl::InvalidArgumentError("container_id: is empty");
  if (!req.has_linux()) return absl::InvalidArgumentError("linux: is missing (this node runs Linux containers)");
  std::shared_ptr<Container> c = rt.containers().Find(req.container_id());
  if (c == nullptr) return absl::NotFoundError(absl::StrCat("container ", req.container_id(), " not found"));
  CRIUS_RETURN_IF_ERROR(CheckResources(rt, req.linux(), ""));
  std::lock_guard<std::mutex> lock(c->op);
  if (!rt.containers().Listed(*c)) {  // removed while we waited
    return absl::NotFoundError(absl::StrCat("container ", req.container_id(), " not found"));
  }
  if (c->state != kContainerCreated && c->state != kContainerRunning) {
    return absl::FailedPreconditionError(
        absl::StrCat("container ", c->id, " is ", c->state, ": only a created or running container can be updated"));
  }
  if (c->cgroup.empty()) {
    return absl::FailedPreconditionError(absl::StrCat("container ", c->id, " has no cgroup to update"));
  }
  CRIUS_RETURN_IF_ERROR(Annotate(rt.cgroups().Apply(c->cgroup, ToResources(req.linux())),
                                 absl::StrCat("update container ", c->id)));
  CRIUS_FAILPOINT("container_update.after_cgroup");
  // What kubelet reads back in ContainerStatus, and what a restart keeps.
  *c->config.mutable_linux()->mutable_resources() = req.linux();
  CRIUS_RETURN_IF_ERROR(Annotate(rt.containers().Save(*c), absl::StrCat("record resources of container ", c->id)));
  CRIUS_FAILPOINT("container_update.after_record");
  return absl::OkStatus();
}

}  // namespace crius::cri
