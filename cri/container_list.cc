#include <set>

#include "cri/container_ops.h"
#include "cri/handlers.h"

namespace crius::cri {
namespace {

bool Matches(const Container& c, const v1::ContainerFilter& f) {
  if (!f.id().empty() && c.id.compare(0, f.id().size(), f.id()) != 0) return false;
  if (!f.pod_sandbox_id().empty() && c.pod_id.compare(0, f.pod_sandbox_id().size(), f.pod_sandbox_id()) != 0) {
    return false;
  }
  if (f.has_state() && CriState(c) != f.state().state()) return false;
  for (const auto& [k, v] : f.label_selector()) {
    auto it = c.config.labels().find(k);
    if (it == c.config.labels().end() || it->second != v) return false;
  }
  return true;
}

void ToCri(const Container& c, v1::Container* out) {
  out->set_id(c.id);
  out->set_pod_sandbox_id(c.pod_id);
  *out->mutable_metadata() = c.config.metadata();
  *out->mutable_image() = c.config.image();
  out->set_image_ref(c.image_ref);
  out->set_image_id(c.image_id);
  out->set_state(CriState(c));
  out->set_created_at(c.created_at_ns);
  *out->mutable_labels() = c.config.labels();
  *out->mutable_annotations() = c.config.annotations();
}

// Appends `c` as one `containers` field of a ListContainersResponse.
void AppendEntry(Container& c, std::string* wire) {
  AppendListed(
      c.listed, CriState(c),
      [&c](int state) {
        v1::Container entry;
        ToCri(c, &entry);
        entry.set_state(static_cast<v1::ContainerState>(state));
        return entry.SerializeAsString();
      },
      wire);
}

template <typename Emit>
void ForEachContainer(Runtime& rt, const v1::ContainerFilter& filter, Emit&& emit) {
  std::vector<std::shared_ptr<Container>> all = rt.containers().All();
  std::set<std::string> pods;
  for (const auto& c : all) {
    // A watched monitor tells of each exit as it happens: only the others
    // are asked (a watch lost since is asked again).
    if ((c->state == kContainerRunning || c->state == kContainerCreated) && pods.insert(c->pod_id).second &&
        !rt.watch().Watching(c->pod_id)) {
      if (std::shared_ptr<Pod> pod = rt.pods().Get(c->pod_id)) RefreshContainers(rt, *pod);
    }
  }
  for (const auto& c : all) {
    if (c->state == kContainerCreating || !Matches(*c, filter)) continue;
    emit(*c);
  }
}

}  // namespace

absl::Status ContainerList(Runtime& rt, const v1::ListContainersRequest& req, std::string* wire) {
  ForEachContainer(rt, req.filter(), [&](Container& c) { AppendEntry(c, wire); });
  return absl::OkStatus();
}

absl::Status ContainersStream(Runtime& rt, const v1::StreamContainersRequest& req,
                              const std::function<bool(const v1::StreamContainersResponse&)>& send) {
  v1::StreamContainersResponse batch;
  bool ok = true;
  ForEachContainer(rt, req.filter(), [&](const Container& c) {
    ToCri(c, batch.add_containers());
    if (batch.containers_size() == 256) {
      ok = ok && send(batch);
      batch.Clear();
    }
  });
  if (batch.containers_size() > 0) ok = ok && send(batch);
  return ok ? absl::OkStatus() : absl::CancelledError("StreamContainers: the client went away");
}

}  // namespace crius::cri
