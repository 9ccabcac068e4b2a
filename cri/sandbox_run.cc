#include <arpa/inet.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "common/clock.h"
#include "common/failpoint.h"
#include "common/files.h"
#include "common/log.h"
#include "common/status.h"
#include "common/undo.h"
#include "cri/container_cgroups.h"
#include "cri/container_security.h"
#include "cri/handlers.h"
#include "cri/pod_cgroups.h"
#include "cri/pod_userns.h"
#include "cri/sandbox_ops.h"
#include "cri/unikernel.h"
#include "metrics/metrics.h"
#include "network/pod_network.h"
#include "sandbox/monitor_client.h"
#include "sandbox/pod_files.h"

namespace crius::cri {
namespace {

// Metadata names become parts of paths and of the reserved name.
absl::Status CheckName(absl::string_view field, const std::string& value) {
  if (value.empty()) return InvalidField(field, "is empty");
  if (value.size() > 253) return InvalidField(field, "is longer than 253 characters");
  for (char c : value) {
    if (c == '/') return InvalidField(field, absl::StrCat("\"", value, "\" contains '/'"));
    if (absl::ascii_iscntrl(c) || c == ' ') {
      return InvalidField(field, absl::StrCat("\"", value, "\" contains a space or control character"));
    }
  }
  if (value == "." || value == "..") return InvalidField(field, absl::StrCat("\"", value, "\" is not a name"));
  return absl::OkStatus();
}

absl::Status CheckNamespaceMode(absl::string_view field, int mode, bool target_allowed) {
  if (mode < v1::POD || mode > v1::TARGET || (mode == v1::TARGET && !target_allowed)) {
    return InvalidField(field, absl::StrCat("namespace mode ", mode, " is not valid for a pod"));
  }
  return absl::OkStatus();
}

absl::Status Validate(const Runtime& rt, const v1::RunPodSandboxRequest& req) {
  if (!req.has_config()) return InvalidField("config", "is missing");
  const v1::PodSandboxConfig& c = req.config();
  if (!c.has_metadata()) return InvalidField("config.metadata", "is missing");
  CRIUS_RETURN_IF_ERROR(CheckName("config.metadata.name", c.metadata().name()));
  CRIUS_RETURN_IF_ERROR(CheckName("config.metadata.namespace", c.metadata().namespace_()));
  CRIUS_RETURN_IF_ERROR(CheckName("config.metadata.uid", c.metadata().uid()));
  const std::string& host = c.hostname();
  if (host.size() > 64) return InvalidField("config.hostname", "is longer than 64 characters");
  for (char ch : host) {
    if (!absl::ascii_isalnum(ch) && ch != '-' && ch != '.') {
      return InvalidField("config.hostname", absl::StrCat("\"", host, "\" is not a valid host name"));
    }
  }
  if (!c.log_directory().empty() &&
      (!absl::StartsWith(c.log_directory(), "/") || absl::StrContains(c.log_directory(), "/../") ||
       absl::EndsWith(c.log_directory(), "/.."))) {
    return InvalidField("config.log_directory", absl::StrCat("\"", c.log_directory(),
                                                        "\" is not a clean absolute path"));
  }
  for (int i = 0; i < c.dns_config().servers_size(); ++i) {
    const std::string& s = c.dns_config().servers(i);
    unsigned char buf[16];
    if (inet_pton(AF_INET, s.c_str(), buf) != 1 && inet_pton(AF_INET6, s.c_str(), buf) != 1) {
      return InvalidField(absl::StrCat("config.dns_config.servers[", i, "]"),
                     absl::StrCat("\"", s, "\" is not an IP address"));
    }
  }
  for (const auto* list : {&c.dns_config().searches(), &c.dns_config().options()}) {
    for (const std::string& s : *list) {
      if (s.empty() || s.find_first_of(" \t\n") != std::string::npos) {
        return InvalidField(list == &c.dns_config().searches() ? "config.dns_config.searches"
                                                          : "config.dns_config.options",
                       absl::StrCat("\"", s, "\" is empty or has white space"));
      }
    }
  }
  for (int i = 0; i < c.port_mappings_size(); ++i) {
    const v1::PortMapping& p = c.port_mappings(i);
    std::string field = absl::StrCat("config.port_mappings[", i, "]");
    if (p.container_port() <= 0 || p.container_port() > 65535) {
      return InvalidField(field, absl::StrCat("container_port ", p.container_port(), " is not a port"));
    }
    if (p.host_port() < 0 || p.host_port() > 65535) {
      return InvalidField(field, absl::StrCat("host_port ", p.host_port(), " is not a port"));
    }
    if (!v1::Protocol_IsValid(p.protocol())) {
      return InvalidField(field, absl::StrCat("protocol ", p.protocol(), " is not TCP, UDP or SCTP"));
    }
  }
  const v1::NamespaceOption& ns = c.linux().security_context().namespace_options();
  CRIUS_RETURN_IF_ERROR(CheckNamespaceMode("config.linux.security_context.namespace_options.network",
                                           ns.network(), false));
  CRIUS_RETURN_IF_ERROR(CheckNamespaceMode("config.linux.security_context.namespace_options.ipc",
                                           ns.ipc(), false));
  CRIUS_RETURN_IF_ERROR(CheckNamespaceMode("config.linux.security_context.namespace_options.pid",
                                           ns.pid(), false));
  CRIUS_ASSIGN_OR_RETURN(sandbox::IdMappings userns,
                         PodIdMappings(ns, "config.linux.security_context.namespace_options"));
  if (!userns.uids.empty() && !rt.userns_support().ok()) {
    return absl::FailedPreconditionError(absl::StrCat(
        "config.linux.security_context.namespace_options.userns_options: this node cannot give pods a user "
        "namespace (the image layers cannot be idmapped mounts: ", rt.userns_support().message(), ")"));
  }
  const std::string& handler = req.runtime_handler();
  const auto& handlers = rt.config().runtime_handlers;
  if (handler == handlers.spt || handler == handlers.hvt) {
    // A guest is the pod IP: it needs the pod's own network, and its tender
    // needs the node's /dev/kvm and taps as root.
    if (ns.network() == v1::NODE) {
      return InvalidField("config.linux.security_context.namespace_options.network",
                          absl::StrCat("a unikernel pod (runtime handler \"", handler,
                                       "\") has a network of its own: the guest is the pod IP"));
    }
    if (!userns.uids.empty()) {
      return InvalidField("config.linux.security_context.namespace_options.userns_options",
                          absl::StrCat("a unikernel pod (runtime handler \"", handler,
                                       "\") cannot have a user namespace: its tenders run as the node's root, "
                                       "without capabilities"));
    }
    std::string flavour = handler == handlers.spt ? "spt" : "hvt";
    if (::access(rt.tender_binary(flavour).c_str(), X_OK) != 0) {
      return absl::FailedPreconditionError(absl::StrCat("runtime_handler \"", handler, "\": the tender ",
                                                        rt.tender_binary(flavour), " is not installed"));
    }
    if (flavour == "hvt" && ::access("/dev/kvm", R_OK | W_OK) != 0) {
      return absl::FailedPreconditionError(absl::StrCat("runtime_handler \"", handler,
                                                        "\": this node has no usable /dev/kvm"));
    }
    return absl::OkStatus();
  }
  if (!handler.empty()) {
    return InvalidField("runtime_handler", absl::StrCat("unknown handler \"", handler,
                                                   "\" (this node has \"\", \"", handlers.spt,
                                                   "\" and \"", handlers.hvt, "\")"));
  }
  return absl::OkStatus();
}

// The steps of one RunPodSandbox, each timed as it ends, in the order of
// metrics::Metrics::SandboxRunSteps().
class StepClock {
 public:
  void End() {
    int64_t now = MonotonicNs();
    seconds_.push_back(static_cast<double>(now - last_) / 1e9);
    last_ = now;
  }
  // The pod is made: its steps, and the whole call less `cni_seconds`.
  void Report(double cni_seconds) const {
    if (metrics::Metrics* m = metrics::Current()) {
      m->ObserveSandboxRun(seconds_, static_cast<double>(last_ - start_) / 1e9 - cni_seconds);
    }
  }

 private:
  int64_t start_ = MonotonicNs();
  int64_t last_ = start_;
  std::vector<double> seconds_;
};

}  // namespace

absl::Status SandboxRun(Runtime& rt, const v1::RunPodSandboxRequest& req,
                        v1::RunPodSandboxResponse* resp) {
  StepClock steps;
  CRIUS_RETURN_IF_ERROR(Validate(rt, req));
  CRIUS_ASSIGN_OR_RETURN(auto sysctls, PodSysctls(req.config()));
  const v1::PodSandboxConfig& c = req.config();
  const v1::PodSandboxMetadata& m = c.metadata();
  std::string name = absl::StrCat(m.name(), "_", m.namespace_(), "_", m.uid(), "_", m.attempt());

  // kubelet retries: the same metadata is the same pod.
  if (std::shared_ptr<Pod> existing = rt.pods().ByName(name)) {
    std::lock_guard<std::mutex> lock(existing->op);  // wait out a creation under way
    if (rt.pods().Get(existing->id) != nullptr && existing->state == kPodReady) {
      resp->set_pod_sandbox_id(existing->id);
      return absl::OkStatus();
    }
    if (rt.pods().Get(existing->id) != nullptr && existing->state == kPodNotReady) {
      return absl::AlreadyExistsError(absl::StrCat("the name ", name, " is reserved by pod ", existing->id,
                                                   ", which is not ready: remove it first"));
    }
  }

  auto pod = std::make_shared<Pod>();
  pod->id = NewId();
  pod->reserved_name = name;
  pod->runtime_handler = req.runtime_handler();
  pod->config = c;
  pod->state = kPodCreating;
  pod->created_at_ns = NowNs();
  pod->dir = rt.PodDir(pod->id);
  CRIUS_ASSIGN_OR_RETURN(pod->cgroup, PodCgroup(c, pod->id));
  pod->cgroup_owned = PodOwnsCgroup(*pod);
  std::lock_guard<std::mutex> lock(pod->op);
  // Set when a network teardown failed while unwinding: the pod is then kept,
  // NotReady with its CNI cache, for StopPodSandbox/RemovePodSandbox (kubelet's
  // garbage collection) to retry the DEL, instead of leaking an IP and rules.
  bool keep_for_retry = false;
  UndoStack undo;
  steps.End();  // validate

  CRIUS_RETURN_IF_ERROR(rt.pods().Reserve(pod));
  undo.Push("release the name", [&rt, &keep_for_retry, id = pod->id] {
    if (keep_for_retry) {
      LOG_WARN("pod %s: kept NotReady: its network could not be detached; StopPodSandbox retries", id);
      return;
    }
    if (absl::Status st = rt.pods().Delete(id); !st.ok()) {
      LOG_ERROR("pod %s: undo reservation: %s", id, std::string(st.message()));
    }
  });
  CRIUS_FAILPOINT("sandbox_run.after_reserve");
  steps.End();  // reserve

  absl::StatusOr<std::vector<std::string>> made = MakeDirs(pod->dir, 0711);
  if (!made.ok()) return Annotate(made.status(), "create pod directory");
  undo.Push("remove the pod directory", [&keep_for_retry, dir = pod->dir] {
    if (!keep_for_retry) (void)RemoveTree(dir);
  });
  CRIUS_FAILPOINT("sandbox_run.after_dir");

  const v1::NamespaceOption& ns = c.linux().security_context().namespace_options();
  bool host_network = ns.network() == v1::NODE;
  sandbox::PodFiles files;
  files.hostname = c.hostname();
  if (files.hostname.empty()) {
    char buf[65] = {};
    if (host_network) ::gethostname(buf, sizeof buf - 1);
    files.hostname = host_network ? buf : m.name().substr(0, 63);
  }
  files.host_network = host_network;
  files.has_dns = c.has_dns_config();
  files.dns.servers.assign(c.dns_config().servers().begin(), c.dns_config().servers().end());
  files.dns.searches.assign(c.dns_config().searches().begin(), c.dns_config().searches().end());
  files.dns.options.assign(c.dns_config().options().begin(), c.dns_config().options().end());
  CRIUS_RETURN_IF_ERROR(Annotate(sandbox::WritePodFiles(pod->dir, files), "write pod files"));
  CRIUS_FAILPOINT("sandbox_run.after_files");
  steps.End();  // files

  sandbox::MonitorLaunch launch;
  CRIUS_RETURN_IF_ERROR(Annotate(CreatePodCgroups(rt, *pod, &launch.cgroup_procs), "create the pod's cgroup"));
  undo.Push("remove the pod's cgroups", [&rt, &keep_for_retry, pod] {
    if (keep_for_retry) return;  // RemovePodSandbox removes them with the pod
    if (absl::Status st = RemovePodCgroups(rt, *pod); !st.ok()) {
      LOG_ERROR("pod %s: %s", pod->id, std::string(st.message()));
    }
  });
  CRIUS_FAILPOINT("sandbox_run.after_cgroup");
  steps.End();  // cgroup
  launch.binary = rt.monitor_binary();
  launch.pod_id = pod->id;
  launch.dir = pod->dir;
  launch.new_net = !host_network;
  launch.new_uts = !host_network;  // a hostNetwork pod keeps the node's name too
  launch.new_ipc = ns.ipc() != v1::NODE;
  launch.pod_pid = ns.pid() == v1::POD;
  launch.hostname = files.hostname;
  launch.sysctls = std::move(sysctls);
  CRIUS_ASSIGN_OR_RETURN(launch.userns, PodIdMappings(ns, "config.linux.security_context.namespace_options"));
  absl::StatusOr<crius::monitor::PodState> state = sandbox::StartMonitor(launch);
  if (!state.ok()) return Annotate(state.status(), "start the pod's monitor");
  undo.Push("stop the monitor", [&rt, pod] { (void)ShutdownMonitor(rt, *pod); });
  CRIUS_FAILPOINT("sandbox_run.after_monitor_start");
  CRIUS_RETURN_IF_ERROR(Annotate(AttachMonitor(*pod), "attach to the pod's monitor"));
  CRIUS_FAILPOINT("sandbox_run.after_monitor");
  steps.End();  // monitor

  double cni_seconds = 0;
  if (!host_network) {
    network::PodNetworkRequest net;
    net.pod_id = pod->id;
    net.netns = pod->namespaces["net"];
    net.pod_name = m.name();
    net.pod_namespace = m.namespace_();
    net.pod_uid = m.uid();
    net.pod_cidr = rt.pod_cidr();
    for (const v1::PortMapping& p : c.port_mappings()) {
      net.port_mappings.push_back({p.host_port(), p.container_port(),
                                   absl::AsciiStrToLower(v1::Protocol_Name(p.protocol())),
                                   p.host_ip()});
    }
    net.dns_servers = files.dns.servers;
    net.dns_searches = files.dns.searches;
    net.dns_options = files.dns.options;
    absl::StatusOr<network::PodNetworkStatus> attached = rt.networks().Setup(pod->NetworkCache(), net);
    if (!attached.ok()) {
      keep_for_retry = ::access(pod->NetworkCache().c_str(), F_OK) == 0;
      return Annotate(attached.status(), "set up the pod network");
    }
    undo.Push("detach the pod network", [&rt, &keep_for_retry, pod] {
      if (absl::Status st = DetachNetwork(rt, *pod); !st.ok()) {
        LOG_ERROR("pod %s: %s", pod->id, std::string(st.message()));
        keep_for_retry = true;
      }
    });
    pod->ips = attached->ips;
    cni_seconds = attached->add_seconds;
    CRIUS_FAILPOINT("sandbox_run.after_network");
    if (!PodFlavour(rt, *pod).empty()) {
      CRIUS_RETURN_IF_ERROR(Annotate(ConnectPodGuestNetwork(*pod, *attached), "give the guest the pod's network"));
      CRIUS_FAILPOINT("sandbox_run.after_guest_link");
    }
  }

  steps.End();  // network

  pod->state = kPodReady;
  CRIUS_RETURN_IF_ERROR(Annotate(rt.pods().Save(*pod), "record pod ready"));
  CRIUS_FAILPOINT("sandbox_run.after_ready");
  undo.Commit();
  steps.End();  // ready
  steps.Report(cni_seconds);
  // The sandbox's own events, as containerd sends them for its pause container.
  rt.events().Publish(v1::CONTAINER_CREATED_EVENT, pod->id, pod->id);
  rt.events().Publish(v1::CONTAINER_STARTED_EVENT, pod->id, pod->id);
  rt.watch().Watch(pod->id, pod->dir);
  resp->set_pod_sandbox_id(pod->id);
  return absl::OkStatus();
}

}  // namespace crius::cri
