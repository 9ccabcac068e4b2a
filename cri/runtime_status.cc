#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>

#include <nlohmann/json.hpp>

#include "absl/strings/str_cat.h"
#include "cri/handlers.h"
#include "network/cni_config.h"
#include "cri/version.h"

namespace crius::cri {
namespace {

void AddCondition(v1::RuntimeStatus* status, const char* type, bool ok, std::string reason,
                  std::string message) {
  v1::RuntimeCondition* c = status->add_conditions();
  c->set_type(type);
  c->set_status(ok);
  c->set_reason(std::move(reason));
  c->set_message(std::move(message));
}

}  // namespace

absl::Status RuntimeStatus(Runtime& rt, const v1::StatusRequest& req, v1::StatusResponse* resp) {
  v1::RuntimeStatus* status = resp->mutable_status();

  // The runtime is ready when its state database answers.
  absl::StatusOr<std::optional<std::string>> probe = rt.store().GetSetting("pod_cidr");
  if (probe.ok()) {
    AddCondition(status, "RuntimeReady", true, "", "");
  } else {
    AddCondition(status, "RuntimeReady", false, "StateDatabaseUnavailable",
                 std::string(probe.status().message()));
  }
  // The network is ready when the node has a valid CNI network, read
  // afresh each time, so a config dropped in while criusd runs is noticed.
  absl::StatusOr<network::CniNetwork> net = rt.networks().Current();
  AddCondition(status, "NetworkReady", net.ok(), net.ok() ? "" : "NetworkPluginNotReady",
               net.ok() ? "" : std::string(net.status().message()));

  // The default handler ("") runs namespace sandboxes; the unikernel handlers
  // are named in config. Features stay false until they are implemented.
  for (const std::string& name :
       {std::string(), rt.config().runtime_handlers.spt, rt.config().runtime_handlers.hvt}) {
    v1::RuntimeHandler* h = resp->add_runtime_handlers();
    h->set_name(name);
    // Namespace sandboxes make mounts read-only recursively, where the
    // kernel has mount_setattr (5.12).
    static const bool has_mount_setattr =
        ::syscall(SYS_mount_setattr, -1, "", 0, nullptr, 0) != 0 && errno != ENOSYS;
    h->mutable_features()->set_recursive_read_only_mounts(name.empty() && has_mount_setattr);
    h->mutable_features()->set_user_namespaces(name.empty() && rt.userns_support().ok());
  }
  resp->mutable_features()->set_supplemental_groups_policy(true);

  if (req.verbose()) {
    // Each value is a JSON document (crictl info decodes them).
    (*resp->mutable_info())["config"] = RenderConfigJson(rt.config());
    nlohmann::json runtime = {
        {"name", "crius"},
        {"version", CRIUS_VERSION},
        {"apiVersion", "v1"},
        {"cgroupDriver", rt.config().cgroup_driver},
        {"cgroupVersion", rt.cgroups().version()},
        {"podCIDR", rt.pod_cidr()},
        {"stateDatabase", rt.store().path()},
        {"schemaVersion", rt.store().schema_version()},
        {"startedAtNs", rt.started_at_ns()},
        {"cni",
         {{"confDir", rt.config().network.cni_conf_dir},
          {"binDirs", rt.config().network.cni_bin_dirs},
          {"network", net.ok() ? net->name : ""},
          {"file", net.ok() ? net->file : ""}}},
        {"handlers",
         {{"default", "namespace sandbox"},
          {rt.config().runtime_handlers.spt, "unikernel (spt)"},
          {rt.config().runtime_handlers.hvt, "unikernel (hvt)"}}},
    };
    (*resp->mutable_info())["runtime"] = runtime.dump();
  }
  return absl::OkStatus();
}

}  // namespace crius::cri
