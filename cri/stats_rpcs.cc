// ContainerStats, ListContainerStats, StreamContainerStats, PodSandboxStats,
// ListPodSandboxStats and StreamPodSandboxStats (cri/stats.h reads them).
#include <set>

#include "absl/strings/str_cat.h"
#include "cri/container_ops.h"
#include "cri/handlers.h"
#include "cri/sandbox_ops.h"
#include "cri/stats.h"

namespace crius::cri {
namespace {

constexpr int kBatch = 256;  // stats per streamed message

bool HasLabels(const google::protobuf::Map<std::string, std::string>& labels,
               const google::protobuf::Map<std::string, std::string>& selector) {
  for (const auto& [k, v] : selector) {
    auto it = labels.find(k);
    if (it == labels.end() || it->second != v) return false;
  }
  return true;
}

bool IdMatches(const std::string& id, const std::string& prefix) {
  return prefix.empty() || id.compare(0, prefix.size(), prefix) == 0;
}

// Every container the filter selects, after refreshing the states of the
// pods they are in (one monitor call per pod).
template <typename Emit>
void ForEachContainer(Runtime& rt, const v1::ContainerStatsFilter& f, Emit&& emit) {
  std::vector<std::shared_ptr<Container>> selected;
  std::set<std::string> pods;
  for (const std::shared_ptr<Container>& c : rt.containers().All()) {
    if (c->state == kContainerCreating || !IdMatches(c->id, f.id()) || !IdMatches(c->pod_id, f.pod_sandbox_id()) ||
        !HasLabels(c->config.labels(), f.label_selector())) {
      continue;
    }
    if (c->state == kContainerRunning && pods.insert(c->pod_id).second && !rt.watch().Watching(c->pod_id)) {
      if (std::shared_ptr<Pod> pod = rt.pods().Get(c->pod_id)) RefreshContainers(rt, *pod);
    }
    selected.push_back(c);
  }
  for (const auto& c : selected) emit(*c);
}

template <typename Emit>
void ForEachPod(Runtime& rt, const v1::PodSandboxStatsFilter& f, Emit&& emit) {
  for (const std::shared_ptr<Pod>& pod : rt.pods().All()) {
    if (pod->state == kPodCreating || !IdMatches(pod->id, f.id()) || !HasLabels(pod->config.labels(), f.label_selector())) {
      continue;
    }
    RefreshContainers(rt, *pod);
    emit(*pod);
  }
}

}  // namespace

absl::Status ContainerStatsGet(Runtime& rt, const v1::ContainerStatsRequest& req, v1::ContainerStatsResponse* resp) {
  if (req.container_id().empty()) return absl::InvalidArgumentError("container_id: is empty");
  std::shared_ptr<Container> c = rt.containers().Find(req.container_id());
  if (c == nullptr || c->state == kContainerCreating) {
    return absl::NotFoundError(absl::StrCat("container ", req.container_id(), " not found"));
  }
  if (std::shared_ptr<Pod> pod = rt.pods().Get(c->pod_id)) RefreshContainers(rt, *pod);
  FillContainerStats(rt, *c, resp->mutable_stats());
  return absl::OkStatus();
}

absl::Status ContainerStatsList(Runtime& rt, const v1::ListContainerStatsRequest& req,
                                v1::ListContainerStatsResponse* resp) {
  ForEachContainer(rt, req.filter(), [&](const Container& c) { FillContainerStats(rt, c, resp->add_stats()); });
  return absl::OkStatus();
}

absl::Status ContainerStatsStream(Runtime& rt, const v1::StreamContainerStatsRequest& req,
                                  const std::function<bool(const v1::StreamContainerStatsResponse&)>& send) {
  v1::StreamContainerStatsResponse batch;
  bool ok = true;
  ForEachContainer(rt, req.filter(), [&](const Container& c) {
    if (!ok) return;
    FillContainerStats(rt, c, batch.add_container_stats());
    if (batch.container_stats_size() == kBatch) {
      ok = send(batch);
      batch.Clear();
    }
  });
  if (ok && batch.container_stats_size() > 0) ok = send(batch);
  return ok ? absl::OkStatus() : absl::CancelledError("StreamContainerStats: the client went away");
}

absl::Status SandboxStatsGet(Runtime& rt, const v1::PodSandboxStatsRequest& req, v1::PodSandboxStatsResponse* resp) {
  if (req.pod_sandbox_id().empty()) return absl::InvalidArgumentError("pod_sandbox_id: is empty");
  std::shared_ptr<Pod> pod = rt.pods().Find(req.pod_sandbox_id());
  if (pod == nullptr || pod->state == kPodCreating) {
    return absl::NotFoundError(absl::StrCat("pod sandbox ", req.pod_sandbox_id(), " not found"));
  }
  RefreshContainers(rt, *pod);
  FillPodStats(rt, *pod, resp->mutable_stats());
  return absl::OkStatus();
}

absl::Status SandboxStatsList(Runtime& rt, const v1::ListPodSandboxStatsRequest& req,
                              v1::ListPodSandboxStatsResponse* resp) {
  ForEachPod(rt, req.filter(), [&](const Pod& pod) { FillPodStats(rt, pod, resp->add_stats()); });
  return absl::OkStatus();
}

absl::Status SandboxStatsStream(Runtime& rt, const v1::StreamPodSandboxStatsRequest& req,
                                const std::function<bool(const v1::StreamPodSandboxStatsResponse&)>& send) {
  v1::StreamPodSandboxStatsResponse batch;
  bool ok = true;
  ForEachPod(rt, req.filter(), [&](const Pod& pod) {
    if (!ok) return;
    FillPodStats(rt, pod, batch.add_pod_sandbox_stats());
    if (batch.pod_sandbox_stats_size() == kBatch) {
      ok = send(batch);
      batch.Clear();
    }
  });
  if (ok && batch.pod_sandbox_stats_size() > 0) ok = send(batch);
  return ok ? absl::OkStatus() : absl::CancelledError("StreamPodSandboxStats: the client went away");
}

}  // namespace crius::cri
