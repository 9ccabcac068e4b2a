#include "cri/handlers.h"
#include "cri/sandbox_ops.h"

namespace crius::cri {
namespace {

bool Matches(const Pod& pod, const v1::PodSandboxFilter& f) {
  if (!f.id().empty() && pod.id.compare(0, f.id().size(), f.id()) != 0) return false;
  if (f.has_state()) {
    bool ready = pod.state == kPodReady;
    if ((f.state().state() == v1::SANDBOX_READY) != ready) return false;
  }
  for (const auto& [k, v] : f.label_selector()) {
    auto it = pod.config.labels().find(k);
    if (it == pod.config.labels().end() || it->second != v) return false;
  }
  return true;
}

// Pods that are being created are not shown until they are ready.
template <typename Emit>
void ForEachPod(Runtime& rt, const v1::PodSandboxFilter& filter, Emit&& emit) {
  for (const std::shared_ptr<Pod>& pod : rt.pods().All()) {
    RefreshPod(rt, *pod);
    if (pod->state == kPodCreating || !Matches(*pod, filter)) continue;
    emit(*pod);
  }
}

}  // namespace

absl::Status SandboxList(Runtime& rt, const v1::ListPodSandboxRequest& req, std::string* wire) {
  ForEachPod(rt, req.filter(), [&](Pod& pod) {
    v1::PodSandboxState state = pod.state == kPodReady ? v1::SANDBOX_READY : v1::SANDBOX_NOTREADY;
    AppendListed(
        pod.listed, state,
        [&pod](int shown) {
          v1::PodSandbox entry;
          ToCriSandbox(pod, &entry);
          entry.set_state(static_cast<v1::PodSandboxState>(shown));
          return entry.SerializeAsString();
        },
        wire);
  });
  return absl::OkStatus();
}

absl::Status SandboxesStream(Runtime& rt, const v1::StreamPodSandboxesRequest& req,
                             const std::function<bool(const v1::StreamPodSandboxesResponse&)>& send) {
  v1::StreamPodSandboxesResponse batch;
  bool ok = true;
  ForEachPod(rt, req.filter(), [&](const Pod& pod) {
    ToCriSandbox(pod, batch.add_pod_sandboxes());
    if (batch.pod_sandboxes_size() == 256) {
      ok = ok && send(batch);
      batch.Clear();
    }
  });
  if (batch.pod_sandboxes_size() > 0) ok = ok && send(batch);
  return ok ? absl::OkStatus() : absl::CancelledError("StreamPodSandboxes: the client went away");
}

}  // namespace crius::cri
