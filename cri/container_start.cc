#include "absl/strings/str_cat.h"
#include "common/failpoint.h"
#include "common/status.h"
#include "cri/container_ops.h"
#include "cri/handlers.h"
#include "cri/sandbox_ops.h"
#include "cri/unikernel.h"
#include "metrics/metrics.h"
#include "sandbox/monitor_client.h"

namespace crius::cri {

absl::Status ContainerStart(Runtime& rt, const v1::StartContainerRequest& req,
                            v1::StartContainerResponse*) {
  if (req.container_id().empty()) return absl::InvalidArgumentError("container_id: is empty");
  std::shared_ptr<Container> c = rt.containers().Find(req.container_id());
  if (c == nullptr) return absl::NotFoundError(absl::StrCat("container ", req.container_id(), " not found"));
  std::shared_ptr<Pod> pod = rt.pods().Get(c->pod_id);
  if (pod == nullptr) return absl::NotFoundError(absl::StrCat("pod sandbox ", c->pod_id, " not found"));
  RefreshContainers(rt, *pod);
  std::lock_guard<std::mutex> lock(c->op);
  if (!rt.containers().Listed(*c)) {  // removed while we waited
    return absl::NotFoundError(absl::StrCat("container ", req.container_id(), " not found"));
  }
  if (c->state != kContainerCreated) {
    return absl::FailedPreconditionError(absl::StrCat("container ", c->id, " is ", c->state,
                                                      ": only a created container can be started"));
  }
  crius::monitor::Request start;
  start.mutable_start()->set_id(c->id);
  absl::StatusOr<crius::monitor::Response> resp = sandbox::CallMonitor(pod->dir, start, 60000);
  if (!resp.ok()) {
    // The process is gone (it could not exec): the container is exited.
    c->state = kContainerExited;
    c->exit_code = 128;
    c->reason = "StartError";
    c->message = std::string(resp.status().message());
    if (metrics::Metrics* m = metrics::Current()) m->ObserveContainerExit(c->reason);
    (void)rt.containers().Save(*c);  // no crash point: the next start asks the monitor again
    rt.events().Publish(v1::CONTAINER_STOPPED_EVENT, c->id, pod->id);
    return Annotate(resp.status(), absl::StrCat("start container ", c->config.metadata().name()));
  }
  CRIUS_FAILPOINT("container_start.after_monitor");
  bool first = true;
  for (const auto& other : rt.containers().OfPod(pod->id)) first = first && other->started_at_ns == 0;
  c->state = kContainerRunning;
  c->started_at_ns = resp->container().started_at_ns();
  if (metrics::Metrics* m = metrics::Current(); m != nullptr && first) {
    m->ObservePodReady(static_cast<double>(c->started_at_ns - pod->created_at_ns) / 1e9);
  }
  CRIUS_RETURN_IF_ERROR(Annotate(rt.containers().Save(*c), absl::StrCat("record container ", c->id, " running")));
  CRIUS_FAILPOINT("container_start.after_record");
  if (std::string flavour = PodFlavour(rt, *pod); !flavour.empty()) {
    if (metrics::Metrics* m = metrics::Current()) m->ObserveTenderStart(flavour);
  }
  rt.events().Publish(v1::CONTAINER_STARTED_EVENT, c->id, pod->id);
  return absl::OkStatus();
}

}  // namespace crius::cri
