// criusd's configuration: /etc/crius/crius.toml. Every key has a default, so
// no file is needed; an unknown key or a value of the wrong type is an error
// that names the key.
#pragma once

#include "absl/strings/string_view.h"
#include <cstdint>
#include <map>
#include <string>

#include <vector>

#include "absl/status/statusor.h"

namespace crius {

struct Config {
  std::string root = "/var/lib/crius";
  std::string state = "/run/crius";
  std::string containers_dir;  // empty: <root>/containers
  std::string listen = "unix:///run/crius/crius.sock";
  std::string log_level = "info";
  std::string cgroup_driver = "cgroupfs";
  std::string monitor_path;  // empty: crius-monitor beside criusd

  struct StateDb {
    std::string synchronous = "full";
  } state_db;

  struct Network {
    std::string cni_conf_dir = "/etc/cni/net.d";
    std::vector<std::string> cni_bin_dirs = {"/usr/lib/cni", "/opt/cni/bin"};
  } network;

  struct RuntimeHandlers {
    std::string spt = "crius-spt";
    std::string hvt = "crius-hvt";
  } runtime_handlers;

  // Unikernel pods (the runtime_handlers above).
  struct Unikernel {
    std::string spt_path;  // empty: crius-spt beside criusd
    std::string hvt_path;  // empty: crius-hvt beside criusd
    // Of a container's memory limit, what the tender itself keeps; the
    // guest gets the rest.
    int64_t tender_reserve_mib = 16;
    // Guest memory of a container without a memory limit.
    int64_t default_memory_mib = 128;
  } unikernel;

  struct Registry {
    std::vector<std::string> insecure;
    std::vector<std::string> ca_files;
    std::map<std::string, std::vector<std::string>> mirrors;
    std::string pull_progress_timeout = "5m";
    int64_t max_unpacked_layer_mib = 65536;
  } registry;

  struct Metrics {
    std::string address = "127.0.0.1:9654";
  } metrics;

  struct Events {
    int64_t max_queued = 4096;
  } events;

  struct Streaming {
    std::string address = "127.0.0.1:0";
    std::string idle_timeout = "4h";
    std::string token_ttl = "1m";
  } streaming;
};

inline constexpr absl::string_view kDefaultConfigPath = "/etc/crius/crius.toml";

// Parses TOML text on top of the defaults. `source` names the text in errors.
absl::StatusOr<Config> ParseConfig(absl::string_view text, absl::string_view source);

// Reads `path`. A missing file is an error only when `must_exist`.
absl::StatusOr<Config> LoadConfig(const std::string& path, bool must_exist);

// Checks values that depend on more than one key (after flags override keys).
absl::Status ValidateConfig(const Config& config);

// The effective configuration as a TOML document, every key with its comment.
std::string RenderConfigToml(const Config& config);

// The same as one JSON object (for Status's verbose info).
std::string RenderConfigJson(const Config& config);

// The path of the unix socket in `listen` ("unix:///run/crius/crius.sock").
absl::StatusOr<std::string> UnixSocketPath(absl::string_view listen);

}  // namespace crius
