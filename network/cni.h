// Running CNI plugins as the CNI spec (1.0) says: each plugin of a network
// list is executed with CNI_COMMAND and friends in its environment and its
// network configuration on stdin; ADD chains each plugin's result into the
// next one's prevResult, DEL runs the list in reverse. Plugins run in
// criusd's own network namespace and enter the pod's (CNI_NETNS) themselves.
#pragma once

#include <functional>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "absl/status/statusor.h"
#include "network/cni_config.h"

namespace crius::network {

// One pod's attachment to a network: what every plugin call for it shares.
struct Attachment {
  std::string container_id;  // CNI_CONTAINERID: the pod sandbox id
  std::string netns;         // CNI_NETNS: a path; empty when the netns is gone (DEL only)
  std::string ifname = "eth0";
  // CNI_ARGS pairs (IgnoreUnknown=1 is always sent first).
  std::vector<std::pair<std::string, std::string>> args;
  // Capability arguments ("portMappings", "ipRanges", "dns", ...): each is
  // handed, inside runtimeConfig, only to the plugins that declare it.
  nlohmann::json capability_args = nlohmann::json::object();
};

// Called after every plugin execution: the operation ("ADD", "CHECK",
// "DEL"), the plugin type, its wall time and whether it succeeded.
using PluginObserver =
    std::function<void(const char* op, const std::string& plugin, double seconds, bool ok)>;

class Cni {
 public:
  Cni(std::vector<std::string> bin_dirs, PluginObserver observer = nullptr,
      int plugin_timeout_ms = 60000)
      : bin_dirs_(std::move(bin_dirs)), observer_(std::move(observer)),
        timeout_ms_(plugin_timeout_ms) {}

  // ADD through the whole list; the last plugin's result. A failure names
  // the plugin and carries its CNI error (code, msg, details). Nothing is
  // undone here: the caller runs Del, which every plugin must tolerate.
  absl::StatusOr<nlohmann::json> Add(const CniNetwork& net, const Attachment& a) const;

  // CHECK through the whole list against the cached ADD result. OK without
  // running anything when the list disables CHECK or predates CNI 0.4.0.
  absl::Status Check(const CniNetwork& net, const Attachment& a,
                     const nlohmann::json& prev_result) const;

  // DEL through the list in reverse. `prev_result` may be null (ADD never
  // finished). Every plugin runs even when an earlier one failed; the first
  // failure is returned.
  absl::Status Del(const CniNetwork& net, const Attachment& a,
                   const nlohmann::json& prev_result) const;

 private:
  absl::StatusOr<nlohmann::json> Invoke(const char* op, const CniNetwork& net, size_t index,
                                        const Attachment& a, const nlohmann::json& prev) const;

  std::vector<std::string> bin_dirs_;
  PluginObserver observer_;
  int timeout_ms_;
};

// The plugin configuration a plugin of `net` is given on stdin: its own
// object plus name, cniVersion, prevResult (when not null) and the
// runtimeConfig of the capabilities it declares.
nlohmann::json PluginConfig(const CniNetwork& net, size_t index, const nlohmann::json& capability_args,
                            const nlohmann::json& prev_result);

// The addresses (without prefix length) a result gives the sandbox's
// interface `ifname`, IPv4 before IPv6; results of CNI 0.1/0.2 (ip4/ip6)
// too. Addresses bound to no interface count as the sandbox's.
std::vector<std::string> SandboxIps(const nlohmann::json& result, const std::string& ifname);

// The same with each address's prefix and gateway, IPv4 first.
struct SandboxAddress {
  std::string ip;       // "10.88.0.5"
  std::string cidr;     // "10.88.0.5/16"
  std::string gateway;  // "" without one
};
std::vector<SandboxAddress> SandboxAddresses(const nlohmann::json& result, const std::string& ifname);

// true when `version` (e.g. "0.3.1", "1.0.0") is at least major.minor.
bool CniVersionAtLeast(const std::string& version, int major, int minor);

// Executes one plugin: `env` is the whole environment, `input` its stdin.
// Returns stdout. A non-zero exit becomes an error carrying the CNI error
// object the plugin printed (or its stderr); a plugin still running after
// `timeout_ms` is killed.
absl::StatusOr<std::string> ExecPlugin(const std::string& path, const std::vector<std::string>& env,
                                       const std::string& input, int timeout_ms);

}  // namespace crius::network
