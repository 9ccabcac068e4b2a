#include "network/cni_config.h"

#include <dirent.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/files.h"
#include "common/status.h"

namespace crius::network {
namespace {

using json = nlohmann::json;

absl::Status Bad(const std::string& file, absl::string_view why) {
  return absl::InvalidArgumentError(absl::StrCat("CNI config ", file, ": ", why));
}

std::string StringField(const json& j, const char* key) {
  auto it = j.find(key);
  return it != j.end() && it->is_string() ? it->get<std::string>() : "";
}

}  // namespace

absl::StatusOr<CniNetwork> ParseNetwork(absl::string_view text, const std::string& file) {
  json j = json::parse(text.begin(), text.end(), nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) return Bad(file, "is not valid JSON");
  if (!j.is_object()) return Bad(file, "is not a JSON object");
  CniNetwork net;
  net.file = file;
  if (absl::EndsWith(file, ".conflist")) {
    auto plugins = j.find("plugins");
    if (plugins == j.end() || !plugins->is_array() || plugins->empty()) {
      return Bad(file, "has no plugins (a .conflist needs a non-empty \"plugins\" array)");
    }
    for (const json& p : *plugins) net.plugins.push_back(p);
    auto dc = j.find("disableCheck");
    net.disable_check = dc != j.end() && dc->is_boolean() && dc->get<bool>();
  } else {
    net.plugins.push_back(j);  // a single plugin's configuration
  }
  net.name = StringField(j, "name");
  net.cni_version = StringField(j, "cniVersion");
  if (net.name.empty()) return Bad(file, "has no \"name\"");
  if (net.cni_version.empty()) return Bad(file, "has no \"cniVersion\"");
  for (size_t i = 0; i < net.plugins.size(); ++i) {
    const json& p = net.plugins[i];
    if (!p.is_object() || StringField(p, "type").empty()) {
      return Bad(file, absl::StrCat("plugin ", i, " has no \"type\""));
    }
  }
  return net;
}

absl::StatusOr<std::string> FindPlugin(const std::vector<std::string>& bin_dirs,
                                       const std::string& type) {
  if (type.find('/') != std::string::npos || type == "." || type == "..") {
    return absl::InvalidArgumentError(absl::StrCat("CNI plugin type \"", type, "\" is not a plain name"));
  }
  for (const std::string& dir : bin_dirs) {
    std::string path = absl::StrCat(dir, "/", type);
    struct stat st;
    if (::stat(path.c_str(), &st) == 0 && S_ISREG(st.st_mode) && ::access(path.c_str(), X_OK) == 0) {
      return path;
    }
  }
  return absl::NotFoundError(absl::StrCat("CNI plugin \"", type, "\" is not in ",
                                          absl::StrJoin(bin_dirs, ", ")));
}

absl::StatusOr<CniNetwork> LoadNetwork(const std::string& dir,
                                       const std::vector<std::string>& bin_dirs) {
  std::vector<std::string> files;
  if (DIR* d = ::opendir(dir.c_str())) {
    while (struct dirent* e = ::readdir(d)) {
      std::string name = e->d_name;
      if (absl::EndsWith(name, ".conflist") || absl::EndsWith(name, ".conf") ||
          absl::EndsWith(name, ".json")) {
        files.push_back(name);
      }
    }
    ::closedir(d);
  } else if (errno != ENOENT) {
    return ErrnoError(errno, absl::StrCat("read CNI config directory ", dir));
  }
  std::sort(files.begin(), files.end());
  std::vector<std::string> skipped;
  for (const std::string& name : files) {
    std::string path = absl::StrCat(dir, "/", name);
    absl::StatusOr<std::string> text = ReadFile(path);
    if (!text.ok()) {
      skipped.push_back(absl::StrCat(path, ": unreadable"));
      continue;
    }
    absl::StatusOr<CniNetwork> net = ParseNetwork(*text, path);
    if (net.ok()) {
      for (const json& p : net->plugins) {
        absl::StatusOr<std::string> exe = FindPlugin(bin_dirs, p["type"].get<std::string>());
        if (!exe.ok()) {
          net = Annotate(exe.status(), absl::StrCat("CNI config ", path));
          break;
        }
        net->plugin_paths.push_back(*exe);
      }
    }
    if (net.ok()) return net;
    skipped.push_back(std::string(net.status().message()));
  }
  return absl::NotFoundError(absl::StrCat(
      "no valid CNI network config in ", dir,
      skipped.empty() ? "" : absl::StrCat(" (", absl::StrJoin(skipped, "; "), ")")));
}

}  // namespace crius::network
