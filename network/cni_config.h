// CNI network configurations: /etc/cni/net.d holds .conflist, .conf and
// .json files; the lexically first valid one is the pod network, as
// containerd picks it. A file is valid when it parses, names its network and
// CNI version, has at least one plugin, and every plugin it names is an
// executable in one of the plugin directories.
#pragma once

#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace crius::network {

struct CniNetwork {
  std::string file;         // where it was read
  std::string name;
  std::string cni_version;
  bool disable_check = false;
  std::vector<nlohmann::json> plugins;  // each plugin's own object
  std::vector<std::string> plugin_paths;  // the executable of each, same order
};

// Parses one file's text. A .conf/.json (a single plugin) becomes a list of
// one. `file` names the text in errors and picks the format by its ending.
absl::StatusOr<CniNetwork> ParseNetwork(absl::string_view text, const std::string& file);

// The executable of plugin `type` in the first of `bin_dirs` that has one.
absl::StatusOr<std::string> FindPlugin(const std::vector<std::string>& bin_dirs,
                                       const std::string& type);

// The lexically first valid network in `dir`. NotFound when there is none,
// naming every file passed over and why.
absl::StatusOr<CniNetwork> LoadNetwork(const std::string& dir,
                                       const std::vector<std::string>& bin_dirs);

}  // namespace crius::network
