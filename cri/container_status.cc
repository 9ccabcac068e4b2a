#include <nlohmann/json.hpp>

#include "absl/strings/str_cat.h"
#include "cri/container_ops.h"
#include "cri/handlers.h"
#include "sandbox/monitor_client.h"

namespace crius::cri {

v1::ContainerState CriState(const Container& c) {
  if (c.state == kContainerCreated || c.state == kContainerCreating) return v1::CONTAINER_CREATED;
  if (c.state == kContainerRunning) return v1::CONTAINER_RUNNING;
  if (c.state == kContainerExited) return v1::CONTAINER_EXITED;
  return v1::CONTAINER_UNKNOWN;
}

absl::Status ContainerStatusGet(Runtime& rt, const v1::ContainerStatusRequest& req,
                                v1::ContainerStatusResponse* resp) {
  if (req.container_id().empty()) return absl::InvalidArgumentError("container_id: is empty");
  std::shared_ptr<Container> c = rt.containers().Find(req.container_id());
  if (c == nullptr) return absl::NotFoundError(absl::StrCat("container ", req.container_id(), " not found"));
  std::shared_ptr<Pod> pod = rt.pods().Get(c->pod_id);
  if (pod != nullptr) RefreshContainers(rt, *pod);
  // The process as the node sees it, for the verbose answer (as containerd's
  // "pid"): the monitor knows it while the container runs.
  int pid = 0;
  if (req.verbose() && pod != nullptr && c->state == kContainerRunning) {
    crius::monitor::Request hello;
    hello.mutable_hello();
    // no crash point: a question; it changes nothing
    if (absl::StatusOr<crius::monitor::Response> state = sandbox::CallMonitor(pod->dir, hello); state.ok()) {
      for (const crius::monitor::ContainerState& st : state->pod().containers()) {
        if (st.id() == c->id) pid = st.pid();
      }
    }
  }
  std::lock_guard<std::mutex> lock(c->op);
  v1::ContainerStatus* s = resp->mutable_status();
  s->set_id(c->id);
  *s->mutable_metadata() = c->config.metadata();
  s->set_state(CriState(*c));
  s->set_created_at(c->created_at_ns);
  s->set_started_at(c->started_at_ns);
  s->set_finished_at(c->finished_at_ns);
  s->set_exit_code(c->exit_code);
  *s->mutable_image() = c->config.image();
  s->set_image_ref(c->image_ref);
  s->set_image_id(c->image_id);
  s->set_reason(c->reason);
  s->set_message(c->message);
  *s->mutable_labels() = c->config.labels();
  *s->mutable_annotations() = c->config.annotations();
  *s->mutable_mounts() = c->config.mounts();
  // An image volume names the image it mounted by its id, as PullImage
  // answered (KEP-5365).
  for (const ImageVolumeUse& v : c->image_volumes) {
    if (v.index < 0 || v.index >= s->mounts_size()) continue;
    s->mutable_mounts(v.index)->mutable_image()->set_image_ref(v.image_id);
  }
  s->set_log_path(c->log_path);
  // What the cgroup was given, at creation or by UpdateContainerResources.
  if (c->config.linux().has_resources()) {
    *s->mutable_resources()->mutable_linux() = c->config.linux().resources();
  }
  s->set_stop_signal(c->config.stop_signal());
  if (req.verbose()) {
    nlohmann::json info = {{"podSandboxId", c->pod_id}, {"dir", c->dir}, {"state", c->state},
                           {"reservedName", c->reserved_name}};
    if (pid > 0) info["pid"] = pid;
    (*resp->mutable_info())["info"] = info.dump();
  }
  return absl::OkStatus();
}

}  // namespace crius::cri
