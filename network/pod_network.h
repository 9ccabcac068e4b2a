// A pod's network as criusd manages it: the node's CNI network attached at
// RunPodSandbox and detached at StopPodSandbox, with what teardown needs
// cached in the pod's directory before ADD starts, so a DEL after a crash,
// a criusd restart or a vanished netns still releases the IP and the
// plugins' rules.
#pragma once

#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "absl/status/statusor.h"
#include "network/cni.h"
#include "network/cni_config.h"

namespace crius::network {

struct PortMapping {
  int host_port = 0;
  int container_port = 0;
  std::string protocol;  // "tcp", "udp" or "sctp"
  std::string host_ip;
};

struct PodNetworkRequest {
  std::string pod_id;
  std::string netns;  // the pinned netns path
  std::string pod_name, pod_namespace, pod_uid;
  std::vector<PortMapping> port_mappings;  // host_port 0 entries are not forwarded
  std::string pod_cidr;                    // for plugins that ask for ipRanges
  std::vector<std::string> dns_servers, dns_searches, dns_options;
};

struct PodNetworkStatus {
  std::string network;           // the CNI network's name
  std::vector<std::string> ips;  // IPv4 first
  std::vector<SandboxAddress> addresses;  // the same with prefixes and gateways
  std::string ifname;            // the pod's interface ("eth0")
  double add_seconds = 0;        // the CNI ADD's run: its plugins, one after another
};

class PodNetworks {
 public:
  PodNetworks(std::string conf_dir, std::vector<std::string> bin_dirs,
              PluginObserver observer = nullptr)
      : conf_dir_(std::move(conf_dir)), cni_(bin_dirs, std::move(observer)),
        bin_dirs_(std::move(bin_dirs)) {}

  // The network pods get now: read afresh, so a config added or removed
  // while criusd runs is noticed.
  absl::StatusOr<CniNetwork> Current() const { return LoadNetwork(conf_dir_, bin_dirs_); }

  // Attaches the pod: caches the attachment at `cache_path`, runs ADD and
  // caches its result. On failure DEL runs at once; when that DEL fails too
  // the error says so and the cache stays for Teardown to retry.
  absl::StatusOr<PodNetworkStatus> Setup(const std::string& cache_path,
                                         const PodNetworkRequest& req) const;

  // DEL from the cache at `cache_path`, then removes it. OK when there is no
  // cache (never attached, or already detached). The netns is passed only
  // while it still exists.
  absl::Status Teardown(const std::string& cache_path) const;

  // CHECK from the cache. NotFound when the pod has no attachment.
  absl::Status Check(const std::string& cache_path) const;

  // The cached attachment's status (the network name and IPs), for
  // recovery; NotFound without a cache.
  static absl::StatusOr<PodNetworkStatus> Cached(const std::string& cache_path);

 private:
  std::string conf_dir_;
  Cni cni_;
  std::vector<std::string> bin_dirs_;
};

// The capability arguments of a request ("portMappings", "ipRanges", "dns").
nlohmann::json CapabilityArgs(const PodNetworkRequest& req);

// true when `path` is a mounted network namespace (nsfs), not a leftover file.
bool IsNetnsMount(const std::string& path);

}  // namespace crius::network
