// UpdatePodSandboxResources (in-place pod resize, KEP-1287): kubelet tells
// the runtime the pod's new total. kubelet sizes the pod cgroup it names as
// cgroup_parent itself; a pod cgroup crius made (no cgroup_parent) is sized
// here: the containers' sum plus the overhead.
#include "absl/strings/str_cat.h"
#include "common/failpoint.h"
#include "common/status.h"
#include "cri/container_cgroups.h"
#include "cri/handlers.h"
#include "cri/pod_cgroups.h"

namespace crius::cri {
namespace {

// The pod's total: what the containers get plus the runtime's overhead.
v1::LinuxContainerResources Total(const v1::UpdatePodSandboxResourcesRequest& req) {
  v1::LinuxContainerResources total = req.resources();
  const v1::LinuxContainerResources& o = req.overhead();
  if (total.memory_limit_in_bytes() > 0 && o.memory_limit_in_bytes() > 0) {
    total.set_memory_limit_in_bytes(total.memory_limit_in_bytes() + o.memory_limit_in_bytes());
  }
  if (total.cpu_shares() > 0) total.set_cpu_shares(total.cpu_shares() + o.cpu_shares());
  if (total.cpu_quota() > 0 && o.cpu_quota() > 0 && total.cpu_period() == o.cpu_period()) {
    total.set_cpu_quota(total.cpu_quota() + o.cpu_quota());
  }
  return total;
}

}  // namespace

absl::Status SandboxUpdateResources(Runtime& rt, const v1::UpdatePodSandboxResourcesRequest& req,
                                    v1::UpdatePodSandboxResourcesResponse*) {
  if (req.pod_sandbox_id().empty()) return absl::InvalidArgumentError("pod_sandbox_id: is empty");
  if (req.has_overhead()) CRIUS_RETURN_IF_ERROR(CheckResources(rt, req.overhead(), "overhead."));
  if (req.has_resources()) CRIUS_RETURN_IF_ERROR(CheckResources(rt, req.resources(), "resources."));
  std::shared_ptr<Pod> pod = rt.pods().Find(req.pod_sandbox_id());
  if (pod == nullptr) return absl::NotFoundError(absl::StrCat("pod sandbox ", req.pod_sandbox_id(), " not found"));
  std::lock_guard<std::mutex> lock(pod->op);
  if (rt.pods().Get(pod->id) != pod) {  // removed while we waited
    return absl::NotFoundError(absl::StrCat("pod sandbox ", req.pod_sandbox_id(), " not found"));
  }
  if (pod->state != kPodReady) {
    return absl::FailedPreconditionError(
        absl::StrCat("pod sandbox ", pod->id, " is ", pod->state, ": only a ready pod can be resized"));
  }
  if (!PodOwnsCgroup(*pod) || !req.has_resources()) return absl::OkStatus();
  CRIUS_RETURN_IF_ERROR(Annotate(rt.cgroups().Apply(pod->cgroup, ToResources(Total(req))),
                                 absl::StrCat("resize the cgroup of pod ", pod->id)));
  CRIUS_FAILPOINT("sandbox_update.after_cgroup");
  return absl::OkStatus();
}

}  // namespace crius::cri
