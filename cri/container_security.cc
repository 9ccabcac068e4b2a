#include "cri/container_security.h"

#include <linux/capability.h>
#include <dirent.h>
#include <sys/capability.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>

#include <algorithm>
#include <fstream>
#include <map>
#include <tuple>
#include <set>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "common/status.h"

namespace crius::cri {
namespace {

int LastCapability() {
  static const int last = [] {
    std::ifstream in("/proc/sys/kernel/cap_last_cap");
    int n = CAP_LAST_CAP;
    in >> n;
    return n;
  }();
  return last;
}

std::set<int> AllCapabilities() {
  std::set<int> all;
  for (int c = 0; c <= LastCapability(); ++c) all.insert(c);
  return all;
}

// "NET_ADMIN", "CAP_NET_ADMIN", "cap_net_admin": one capability; -1 if unknown.
int CapabilityNumber(const std::string& name) {
  std::string lower = absl::AsciiStrToLower(name);
  if (!absl::StartsWith(lower, "cap_")) lower = "cap_" + lower;
  for (char c : lower) {
    if (!absl::ascii_isalnum(c) && c != '_') return -1;  // cap_from_name also takes numbers
  }
  cap_value_t value;
  if (cap_from_name(lower.c_str(), &value) != 0 || value > LastCapability()) return -1;
  return value;
}

bool IsAll(const std::string& name) { return absl::AsciiStrToUpper(name) == "ALL" || absl::AsciiStrToUpper(name) == "CAP_ALL"; }

absl::Status CheckPaths(const google::protobuf::RepeatedPtrField<std::string>& paths, absl::string_view field) {
  for (int i = 0; i < paths.size(); ++i) {
    const std::string& p = paths[i];
    bool clean = !p.empty() && p[0] == '/';
    for (absl::string_view part : absl::StrSplit(p, '/')) clean = clean && part != "..";
    if (!clean || p.find('\0') != std::string::npos) {
      return InvalidField(absl::StrCat(field, "[", i, "]"), absl::StrCat("\"", p, "\" is not a clean absolute path"));
    }
  }
  return absl::OkStatus();
}

}  // namespace

const std::vector<int>& DefaultCapabilities() {
  static const std::vector<int> caps = {CAP_CHOWN,  CAP_DAC_OVERRIDE, CAP_FSETID,           CAP_FOWNER,
                                        CAP_MKNOD,  CAP_NET_RAW,      CAP_SETGID,           CAP_SETUID,
                                        CAP_SETFCAP, CAP_SETPCAP,     CAP_NET_BIND_SERVICE, CAP_SYS_CHROOT,
                                        CAP_KILL,   CAP_AUDIT_WRITE};
  return caps;
}

absl::StatusOr<std::vector<int>> Capabilities(const v1::LinuxContainerSecurityContext& sc) {
  const std::string field = "config.linux.security_context.capabilities";
  std::set<int> caps;
  if (sc.privileged()) {
    caps = AllCapabilities();
  } else {
    caps.insert(DefaultCapabilities().begin(), DefaultCapabilities().end());
  }
  const auto& add = sc.capabilities().add_capabilities();
  const auto& drop = sc.capabilities().drop_capabilities();
  // containerd's order: drop ALL empties the set, add ALL fills it, then
  // the named ones are added and dropped.
  if (std::any_of(drop.begin(), drop.end(), IsAll)) caps.clear();
  if (std::any_of(add.begin(), add.end(), IsAll)) caps = AllCapabilities();
  for (const auto* list : {&add, &drop}) {
    bool adding = list == &add;
    for (int i = 0; i < list->size(); ++i) {
      const std::string& name = (*list)[i];
      if (IsAll(name)) continue;
      int cap = CapabilityNumber(name);
      if (cap < 0) {
        return InvalidField(absl::StrCat(field, adding ? ".add_capabilities[" : ".drop_capabilities[", i, "]"),
                       absl::StrCat("unknown capability \"", name, "\""));
      }
      if (adding) {
        caps.insert(cap);
      } else {
        caps.erase(cap);
      }
    }
  }
  return std::vector<int>(caps.begin(), caps.end());
}

absl::Status ApplySecurityContext(const v1::ContainerConfig& config, const v1::PodSandboxConfig& pod,
                                  crius::monitor::ContainerSpec* spec) {
  const v1::LinuxContainerSecurityContext& sc = config.linux().security_context();
  const std::string field = "config.linux.security_context";
  if (sc.privileged() && !pod.linux().security_context().privileged()) {
    return InvalidField(absl::StrCat(field, ".privileged"),
                   "a privileged container needs a privileged pod sandbox");
  }
  CRIUS_ASSIGN_OR_RETURN(std::vector<int> caps, Capabilities(sc));
  for (int c : caps) spec->add_capabilities(static_cast<uint32_t>(c));
  spec->set_privileged(sc.privileged());
  spec->set_nodev(!sc.privileged());
  spec->set_no_new_privs(sc.no_new_privs());
  CRIUS_RETURN_IF_ERROR(CheckPaths(sc.masked_paths(), absl::StrCat(field, ".masked_paths")));
  CRIUS_RETURN_IF_ERROR(CheckPaths(sc.readonly_paths(), absl::StrCat(field, ".readonly_paths")));
  // A privileged container sees everything, as under containerd.
  if (!sc.privileged()) {
    for (const std::string& p : sc.masked_paths()) spec->add_masked_paths(p);
    for (const std::string& p : sc.readonly_paths()) spec->add_readonly_paths(p);
    // kubelet always sends both lists (empty only for procMount Unmasked,
    // and then not both); other clients send none: containerd's defaults.
    if (sc.masked_paths().empty() && sc.readonly_paths().empty()) {
      for (const char* p : {"/proc/acpi", "/proc/asound", "/proc/kcore", "/proc/keys", "/proc/latency_stats",
                            "/proc/timer_list", "/proc/timer_stats", "/proc/sched_debug", "/proc/scsi",
                            "/sys/firmware", "/sys/devices/virtual/powercap"}) {
        spec->add_masked_paths(p);
      }
      for (const char* p : {"/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"}) {
        spec->add_readonly_paths(p);
      }
    }
  }
  for (int i = 0; i < sc.supplemental_groups_size(); ++i) {
    int64_t g = sc.supplemental_groups(i);
    if (g < 0 || g > 0xfffffffe) {
      return InvalidField(absl::StrCat(field, ".supplemental_groups[", i, "]"), absl::StrCat(g, " is not a group id"));
    }
  }
  if (sc.has_run_as_user() && (sc.run_as_user().value() < 0 || sc.run_as_user().value() > 0xfffffffe)) {
    return InvalidField(absl::StrCat(field, ".run_as_user"), absl::StrCat(sc.run_as_user().value(), " is not a user id"));
  }
  if (sc.has_run_as_group() && (sc.run_as_group().value() < 0 || sc.run_as_group().value() > 0xfffffffe)) {
    return InvalidField(absl::StrCat(field, ".run_as_group"), absl::StrCat(sc.run_as_group().value(), " is not a group id"));
  }
  // As kubelet's own validation and the other runtimes: a group without a
  // user would take the image's user with a group it may not belong to.
  if (sc.has_run_as_group() && !sc.has_run_as_user() && sc.run_as_username().empty()) {
    return InvalidField(absl::StrCat(field, ".run_as_group"), "is set without run_as_user or run_as_username");
  }
  if (!v1::SupplementalGroupsPolicy_IsValid(sc.supplemental_groups_policy())) {
    return InvalidField(absl::StrCat(field, ".supplemental_groups_policy"),
                   absl::StrCat(sc.supplemental_groups_policy(), " is neither Merge nor Strict"));
  }
  spec->set_merge_image_groups(sc.supplemental_groups_policy() == v1::Merge);
  return absl::OkStatus();
}

namespace {

// The node's device `host` (stat `st`) as `path` in the container.
void AddDevice(const std::string& path, const std::string& host, const struct stat& st,
               const std::string& permissions, crius::monitor::ContainerSpec* spec) {
  crius::monitor::Device* out = spec->add_devices();
  out->set_path(path);
  out->set_host_path(host);
  out->set_block(S_ISBLK(st.st_mode));
  out->set_dev_major(major(st.st_rdev));
  out->set_dev_minor(minor(st.st_rdev));
  out->set_mode(st.st_mode & 07777);
  out->set_uid(st.st_uid);
  out->set_gid(st.st_gid);
  out->set_permissions(permissions);
}

// Every device node under the node's `dir` (recursively), as containerd
// gives a privileged container; what the container's /dev has anyway (the
// standard nodes, pts, shm, mqueue) is left out.
void AddHostDevices(const std::string& dir, crius::monitor::ContainerSpec* spec) {
  static const std::set<std::string> kSkip = {"/dev/null", "/dev/zero", "/dev/full", "/dev/random",
                                              "/dev/urandom", "/dev/tty", "/dev/ptmx", "/dev/pts",
                                              "/dev/shm", "/dev/mqueue", "/dev/fd"};
  DIR* d = ::opendir(dir.c_str());
  if (d == nullptr) return;
  std::vector<std::string> subdirs;
  while (struct dirent* e = ::readdir(d)) {
    std::string name = e->d_name;
    if (name == "." || name == "..") continue;
    std::string path = absl::StrCat(dir, "/", name);
    if (kSkip.count(path)) continue;
    struct stat st;
    if (::lstat(path.c_str(), &st) != 0) continue;
    if (S_ISDIR(st.st_mode)) {
      subdirs.push_back(path);
    } else if (S_ISCHR(st.st_mode) || S_ISBLK(st.st_mode)) {
      AddDevice(path, path, st, "rwm", spec);
    }
  }
  ::closedir(d);
  std::sort(subdirs.begin(), subdirs.end());
  for (const std::string& sub : subdirs) AddHostDevices(sub, spec);
}

}  // namespace

absl::Status ApplyDevices(const v1::ContainerConfig& config, crius::monitor::ContainerSpec* spec) {
  if (config.linux().security_context().privileged()) AddHostDevices("/dev", spec);
  for (int i = 0; i < config.devices_size(); ++i) {
    const v1::Device& d = config.devices(i);
    std::string field = absl::StrCat("config.devices[", i, "]");
    std::string perms = d.permissions().empty() ? "rwm" : d.permissions();
    if (perms.find_first_not_of("rwm") != std::string::npos) {
      return InvalidField(field, absl::StrCat("permissions \"", d.permissions(), "\" are not a subset of rwm"));
    }
    std::string dest = d.container_path().empty() ? d.host_path() : d.container_path();
    if (dest.empty() || dest[0] != '/' || absl::StrContains(dest, "/../") || absl::EndsWith(dest, "/..")) {
      return InvalidField(field, absl::StrCat("container_path \"", dest, "\" is not a clean absolute path"));
    }
    struct stat st;
    if (d.host_path().empty() || ::stat(d.host_path().c_str(), &st) != 0) {
      return InvalidField(field, absl::StrCat("host_path \"", d.host_path(), "\" does not exist"));
    }
    std::vector<std::tuple<std::string, std::string, struct stat>> nodes;  // dest, host, stat
    if (S_ISDIR(st.st_mode)) {
      DIR* dir = ::opendir(d.host_path().c_str());
      while (struct dirent* e = dir ? ::readdir(dir) : nullptr) {
        struct stat est;
        std::string path = absl::StrCat(d.host_path(), "/", e->d_name);
        if (::lstat(path.c_str(), &est) == 0 && (S_ISCHR(est.st_mode) || S_ISBLK(est.st_mode))) {
          nodes.emplace_back(absl::StrCat(dest, "/", e->d_name), path, est);
        }
      }
      if (dir) ::closedir(dir);
    } else if (S_ISCHR(st.st_mode) || S_ISBLK(st.st_mode)) {
      nodes.emplace_back(dest, d.host_path(), st);
    } else {
      return InvalidField(field, absl::StrCat("host_path \"", d.host_path(), "\" is not a device"));
    }
    for (const auto& [path, host, node] : nodes) AddDevice(path, host, node, perms, spec);
  }
  return absl::OkStatus();
}

absl::StatusOr<std::vector<std::pair<std::string, std::string>>> PodSysctls(
    const v1::PodSandboxConfig& pod) {
  const v1::NamespaceOption& ns = pod.linux().security_context().namespace_options();
  std::map<std::string, std::string> sorted(pod.linux().sysctls().begin(), pod.linux().sysctls().end());
  std::vector<std::pair<std::string, std::string>> out;
  for (const auto& [key, value] : sorted) {
    std::string field = absl::StrCat("config.linux.sysctls[\"", key, "\"]");
    std::string dotted = key;
    std::replace(dotted.begin(), dotted.end(), '/', '.');
    bool clean = !dotted.empty() && dotted.front() != '.' && dotted.back() != '.' &&
                 !absl::StrContains(dotted, "..");
    for (char c : dotted) clean = clean && (absl::ascii_isalnum(c) || c == '.' || c == '_' || c == '-');
    if (!clean) return InvalidField(field, "is not a sysctl name");
    if (value.empty() || value.find_first_of("\n\0", 0, 2) != std::string::npos) {
      return InvalidField(field, absl::StrCat("value \"", value, "\" is empty or has a newline"));
    }
    bool net = absl::StartsWith(dotted, "net.");
    bool ipc = absl::StartsWith(dotted, "kernel.shm") || absl::StartsWith(dotted, "kernel.msg") ||
               dotted == "kernel.sem" || absl::StartsWith(dotted, "fs.mqueue.");
    if (!net && !ipc) {
      return InvalidField(field, "is not a namespaced sysctl: it would change the whole node");
    }
    if (net && ns.network() == v1::NODE) {
      return InvalidField(field, "the pod uses the node's network namespace: setting it would change the node");
    }
    if (ipc && ns.ipc() == v1::NODE) {
      return InvalidField(field, "the pod uses the node's IPC namespace: setting it would change the node");
    }
    out.emplace_back(key, value);
  }
  return out;
}

}  // namespace crius::cri
