#include "network/pod_network.h"

#include <errno.h>
#include <linux/magic.h>
#include <sys/vfs.h>
#include <unistd.h>

#include "absl/strings/str_cat.h"
#include "common/clock.h"
#include "common/failpoint.h"
#include "common/files.h"
#include "common/log.h"
#include "common/status.h"

namespace crius::network {
namespace {

using json = nlohmann::json;

constexpr char kCacheKind[] = "crius-cni-cache-v1";

struct Cache {
  CniNetwork net;
  Attachment attachment;
  json result;  // null until ADD finished
};

json ToJson(const Cache& c) {
  json args = json::array();
  for (const auto& [k, v] : c.attachment.args) args.push_back({k, v});
  return {{"kind", kCacheKind},
          {"network",
           {{"file", c.net.file},
            {"name", c.net.name},
            {"cniVersion", c.net.cni_version},
            {"disableCheck", c.net.disable_check},
            {"plugins", c.net.plugins}}},
          {"attachment",
           {{"containerId", c.attachment.container_id},
            {"netns", c.attachment.netns},
            {"ifname", c.attachment.ifname},
            {"args", args},
            {"capabilityArgs", c.attachment.capability_args}}},
          {"result", c.result}};
}

// Crash points: at its callers
absl::Status WriteCache(const std::string& path, const Cache& c) {
  return Annotate(WriteFileAtomic(path, ToJson(c).dump(), 0600), "write the CNI cache");
}

// NotFound when there is no cache file.
absl::StatusOr<Cache> ReadCache(const std::string& path) {
  absl::StatusOr<std::string> text = ReadFile(path, absl::StrCat("read the CNI cache ", path));
  if (!text.ok()) {
    if (ErrnoOf(text.status()) == ENOENT) return absl::NotFoundError(absl::StrCat("no CNI cache at ", path));
    return text.status();
  }
  json j = json::parse(*text, nullptr, false);
  auto bad = [&](absl::string_view why) {
    return absl::DataLossError(absl::StrCat("CNI cache ", path, ": ", why));
  };
  if (!j.is_object() || !j.contains("kind") || !j["kind"].is_string() || j["kind"].get<std::string>() != kCacheKind) {
    return bad("not a crius CNI cache");
  }
  Cache c;
  try {
    const json& n = j.at("network");
    c.net.file = n.at("file").get<std::string>();
    c.net.name = n.at("name").get<std::string>();
    c.net.cni_version = n.at("cniVersion").get<std::string>();
    c.net.disable_check = n.at("disableCheck").get<bool>();
    for (const json& p : n.at("plugins")) {
      if (!p.is_object() || !p.contains("type") || !p["type"].is_string()) return bad("a plugin has no type");
      c.net.plugins.push_back(p);
    }
    const json& a = j.at("attachment");
    c.attachment.container_id = a.at("containerId").get<std::string>();
    c.attachment.netns = a.at("netns").get<std::string>();
    c.attachment.ifname = a.at("ifname").get<std::string>();
    for (const json& kv : a.at("args")) {
      c.attachment.args.emplace_back(kv.at(0).get<std::string>(), kv.at(1).get<std::string>());
    }
    c.attachment.capability_args = a.at("capabilityArgs");
    c.result = j.at("result");
  } catch (const json::exception& e) {
    return bad(e.what());
  }
  return c;
}

}  // namespace

bool IsNetnsMount(const std::string& path) {
  struct statfs fs;
  return !path.empty() && ::statfs(path.c_str(), &fs) == 0 &&
         static_cast<unsigned long>(fs.f_type) == NSFS_MAGIC;
}

json CapabilityArgs(const PodNetworkRequest& req) {
  json caps = json::object();
  json ports = json::array();
  for (const PortMapping& p : req.port_mappings) {
    if (p.host_port <= 0) continue;  // no host port: nothing to forward
    json m = {{"hostPort", p.host_port}, {"containerPort", p.container_port},
              {"protocol", p.protocol}};
    if (!p.host_ip.empty()) m["hostIP"] = p.host_ip;
    ports.push_back(m);
  }
  caps["portMappings"] = ports;
  if (!req.pod_cidr.empty()) caps["ipRanges"] = json::array({json::array({{{"subnet", req.pod_cidr}}})});
  if (!req.dns_servers.empty() || !req.dns_searches.empty() || !req.dns_options.empty()) {
    caps["dns"] = {{"servers", req.dns_servers}, {"searches", req.dns_searches},
                   {"options", req.dns_options}};
  }
  return caps;
}

// Crash points: at its callers
absl::StatusOr<PodNetworkStatus> PodNetworks::Setup(const std::string& cache_path,
                                                    const PodNetworkRequest& req) const {
  absl::StatusOr<CniNetwork> current = Current();
  if (!current.ok()) {
    return absl::FailedPreconditionError(
        absl::StrCat("the node's pod network is not ready: ", current.status().message()));
  }
  const CniNetwork& net = *current;
  Cache c;
  c.net = net;
  c.attachment.container_id = req.pod_id;
  c.attachment.netns = req.netns;
  c.attachment.args = {{"K8S_POD_NAMESPACE", req.pod_namespace},
                       {"K8S_POD_NAME", req.pod_name},
                       {"K8S_POD_INFRA_CONTAINER_ID", req.pod_id},
                       {"K8S_POD_UID", req.pod_uid}};
  c.attachment.capability_args = CapabilityArgs(req);
  // Written before ADD: whatever ADD makes, a later DEL can find.
  CRIUS_RETURN_IF_ERROR(WriteCache(cache_path, c));
  CRIUS_FAILPOINT("pod_network.after_cache");
  int64_t add_start = MonotonicNs();
  absl::StatusOr<json> result = cni_.Add(net, c.attachment);
  double add_seconds = static_cast<double>(MonotonicNs() - add_start) / 1e9;
  if (result.ok()) CRIUS_FAILPOINT("pod_network.after_add");
  if (!result.ok()) {
    // no crash point: undoes what the ADD made
    absl::Status del = cni_.Del(net, c.attachment, json());
    if (!del.ok()) {
      return Annotate(result.status(),
                      absl::StrCat("(and the DEL that should undo it failed too, to be retried: ",
                                   del.message(), ")"));
    }
    ::unlink(cache_path.c_str());  // no crash point: as the DEL above
    return result.status();
  }
  c.result = *result;
  if (absl::Status st = WriteCache(cache_path, c); !st.ok()) {
    // no crash point: undoes the ADD
    if (absl::Status del = cni_.Del(net, c.attachment, c.result); del.ok()) ::unlink(cache_path.c_str());
    return st;
  }
  PodNetworkStatus status;
  status.network = net.name;
  status.ips = SandboxIps(c.result, c.attachment.ifname);
  status.addresses = SandboxAddresses(c.result, c.attachment.ifname);
  status.ifname = c.attachment.ifname;
  status.add_seconds = add_seconds;
  return status;
}

// Crash points: at its callers
absl::Status PodNetworks::Teardown(const std::string& cache_path) const {
  absl::StatusOr<Cache> c = ReadCache(cache_path);
  if (absl::IsNotFound(c.status())) return absl::OkStatus();
  if (!c.ok()) {
    // Nothing can be torn down from it: keep it for an operator, say so.
    LOG_ERROR("%s: the pod's network cannot be detached", std::string(c.status().message()));
    return absl::OkStatus();
  }
  // A netns that is gone took its interfaces with it; the plugins still
  // release addresses and rules, and are told there is no netns.
  if (!IsNetnsMount(c->attachment.netns)) c->attachment.netns.clear();
  CRIUS_RETURN_IF_ERROR(cni_.Del(c->net, c->attachment, c->result));
  CRIUS_FAILPOINT("pod_network.after_del");
  if (::unlink(cache_path.c_str()) != 0 && errno != ENOENT) {
    return ErrnoError(errno, absl::StrCat("remove the CNI cache ", cache_path));
  }
  return absl::OkStatus();
}

absl::Status PodNetworks::Check(const std::string& cache_path) const {
  CRIUS_ASSIGN_OR_RETURN(Cache c, ReadCache(cache_path));
  if (c.result.is_null()) return absl::FailedPreconditionError("the pod's CNI ADD never finished");
  return cni_.Check(c.net, c.attachment, c.result);
}

absl::StatusOr<PodNetworkStatus> PodNetworks::Cached(const std::string& cache_path) {
  CRIUS_ASSIGN_OR_RETURN(Cache c, ReadCache(cache_path));
  PodNetworkStatus status;
  status.network = c.net.name;
  status.ips = SandboxIps(c.result, c.attachment.ifname);
  status.addresses = SandboxAddresses(c.result, c.attachment.ifname);
  status.ifname = c.attachment.ifname;
  return status;
}

}  // namespace crius::network
