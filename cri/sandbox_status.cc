#include <time.h>

#include <nlohmann/json.hpp>

#include "absl/strings/str_cat.h"
#include "common/clock.h"
#include "cri/handlers.h"
#include "cri/sandbox_ops.h"
#include "network/pod_network.h"

namespace crius::cri {

void ToCriSandbox(const Pod& pod, v1::PodSandbox* out) {
  out->set_id(pod.id);
  *out->mutable_metadata() = pod.config.metadata();
  out->set_state(pod.state == kPodReady ? v1::SANDBOX_READY : v1::SANDBOX_NOTREADY);
  out->set_created_at(pod.created_at_ns);
  *out->mutable_labels() = pod.config.labels();
  *out->mutable_annotations() = pod.config.annotations();
  out->set_runtime_handler(pod.runtime_handler);
}

absl::Status SandboxStatus(Runtime& rt, const v1::PodSandboxStatusRequest& req,
                           v1::PodSandboxStatusResponse* resp) {
  if (req.pod_sandbox_id().empty()) return absl::InvalidArgumentError("pod_sandbox_id: is empty");
  std::shared_ptr<Pod> pod = rt.pods().Find(req.pod_sandbox_id());
  if (pod == nullptr) {
    return absl::NotFoundError(absl::StrCat("pod sandbox ", req.pod_sandbox_id(), " not found"));
  }
  RefreshPod(rt, *pod);
  v1::PodSandboxStatus* s = resp->mutable_status();
  s->set_id(pod->id);
  *s->mutable_metadata() = pod->config.metadata();
  s->set_state(pod->state == kPodReady ? v1::SANDBOX_READY : v1::SANDBOX_NOTREADY);
  s->set_created_at(pod->created_at_ns);
  *s->mutable_labels() = pod->config.labels();
  *s->mutable_annotations() = pod->config.annotations();
  s->set_runtime_handler(pod->runtime_handler);
  if (!pod->ips.empty()) {
    s->mutable_network()->set_ip(pod->ips[0]);
    for (size_t i = 1; i < pod->ips.size(); ++i) {
      s->mutable_network()->add_additional_ips()->set_ip(pod->ips[i]);
    }
  } else {
    s->mutable_network();
  }
  *s->mutable_linux()->mutable_namespaces()->mutable_options() =
      pod->config.linux().security_context().namespace_options();
  resp->set_timestamp(NowNs());
  if (req.verbose()) {
    nlohmann::json info = {{"dir", pod->dir},
                           {"monitorPid", pod->monitor_pid},
                           {"namespaces", pod->namespaces},
                           {"reservedName", pod->reserved_name},
                           {"state", pod->state}};
    // Why the pod is NotReady when nobody stopped it: kubelet has no field
    // for it, an operator reads it here (and in the log).
    if (!pod->monitor_exit_reason.empty()) {
      info["monitorExit"] = {{"reason", pod->monitor_exit_reason}, {"message", pod->monitor_exit_message}};
    }
    // Verbose status is what an operator asks for: it runs CNI CHECK too.
    if (absl::StatusOr<network::PodNetworkStatus> net =
            network::PodNetworks::Cached(pod->NetworkCache());
        net.ok()) {
      absl::Status check = pod->state == kPodReady ? rt.networks().Check(pod->NetworkCache())
                                                   : absl::FailedPreconditionError("the pod is not ready");
      info["network"] = {{"name", net->network},
                         {"ips", net->ips},
                         {"check", check.ok() ? "ok" : std::string(check.message())}};
    }
    (*resp->mutable_info())["info"] = info.dump();
  }
  return absl::OkStatus();
}

}  // namespace crius::cri
