#include "cri/container_cgroups.h"

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "common/log.h"
#include "common/status.h"

namespace crius::cri {
namespace {

// The driver names fields from "linux.resources."; the request nests them.
absl::Status Prefixed(const absl::Status& st, absl::string_view prefix) {
  if (st.ok() || !absl::StartsWith(st.message(), "linux.resources")) return st;
  return absl::Status(st.code(), absl::StrCat(prefix, st.message()));
}

}  // namespace

absl::StatusOr<std::string> PodCgroup(const v1::PodSandboxConfig& config, const std::string& pod_id) {
  const std::string& parent = config.linux().cgroup_parent();
  const char* field = "config.linux.cgroup_parent";
  if (parent.empty()) return absl::StrCat("/crius/", pod_id);
  if (absl::EndsWith(parent, ".slice")) {
    return InvalidField(field, absl::StrCat("\"", parent, "\" is a systemd slice: this node's crius uses the "
                                       "cgroupfs driver (set kubelet's cgroupDriver to cgroupfs)"));
  }
  bool clean = parent[0] == '/' && parent != "/";
  std::vector<absl::string_view> parts = absl::StrSplit(parent.substr(1), '/');
  for (absl::string_view part : parts) clean = clean && !part.empty() && part != "." && part != "..";
  if (!clean) return InvalidField(field, absl::StrCat("\"", parent, "\" is not a clean absolute cgroup path"));
  return parent;
}

bool PodCgroupExists(Runtime& rt, const std::string& cgroup) {
  return !absl::IsNotFound(rt.cgroups().Pids(cgroup).status());
}

absl::Status CreatePodCgroups(Runtime& rt, Pod& pod, std::vector<std::string>* procs) {
  cgroups::Driver& driver = rt.cgroups();
  CRIUS_RETURN_IF_ERROR(driver.Create(pod.MonitorCgroup()));
  *procs = driver.ProcsFiles(pod.MonitorCgroup());
  return absl::OkStatus();
}

absl::Status RemovePodCgroups(Runtime& rt, const Pod& pod) {
  if (pod.cgroup.empty()) return absl::OkStatus();
  cgroups::Driver& driver = rt.cgroups();
  CRIUS_RETURN_IF_ERROR(driver.KillAll(pod.MonitorCgroup()));
  CRIUS_RETURN_IF_ERROR(driver.Remove(pod.MonitorCgroup()));
  if (pod.cgroup_owned) {
    CRIUS_RETURN_IF_ERROR(driver.Remove(pod.cgroup));
    // crius's own parent of pods without a cgroup_parent goes with the last.
    if (absl::StartsWith(pod.cgroup, "/crius/")) driver.RemoveIfEmpty("/crius");
  }
  return absl::OkStatus();
}

cgroups::Resources ToResources(const v1::LinuxContainerResources& r) {
  cgroups::Resources out;
  out.cpu_period = r.cpu_period();
  out.cpu_quota = r.cpu_quota();
  out.cpu_shares = r.cpu_shares();
  out.memory_limit_in_bytes = r.memory_limit_in_bytes();
  out.memory_swap_limit_in_bytes = r.memory_swap_limit_in_bytes();
  out.cpuset_cpus = r.cpuset_cpus();
  out.cpuset_mems = r.cpuset_mems();
  for (const v1::HugepageLimit& h : r.hugepage_limits()) {
    out.hugepage_limits[h.page_size()] = static_cast<int64_t>(h.limit());
  }
  out.unified.insert(r.unified().begin(), r.unified().end());
  return out;
}

absl::Status CheckResources(Runtime& rt, const v1::LinuxContainerResources& r, absl::string_view prefix) {
  return Prefixed(cgroups::Validate(ToResources(r), rt.cgroups().machine()), prefix);
}

absl::Status CreateContainerCgroup(Runtime& rt, const Pod& pod, Container& c,
                                   const v1::LinuxContainerResources& resources,
                                   crius::monitor::ContainerSpec* spec) {
  cgroups::Driver& driver = rt.cgroups();
  if (c.cgroup.empty()) return absl::OkStatus();  // a pod from before cgroups: nothing to join
  CRIUS_RETURN_IF_ERROR(driver.Create(c.cgroup));
  absl::Status st = Prefixed(driver.Apply(c.cgroup, ToResources(resources)), "config.");
  if (st.ok() && !spec->privileged()) {
    std::vector<cgroups::DeviceRule> allow;
    for (const crius::monitor::Device& d : spec->devices()) {
      allow.push_back({d.block() ? 'b' : 'c', d.dev_major(), d.dev_minor(), d.permissions()});
    }
    st = driver.SetDevicePolicy(c.cgroup, allow);
  }
  if (!st.ok()) {
    (void)driver.Remove(c.cgroup);  // nothing is in it yet
    return st;
  }
  for (const std::string& f : driver.ProcsFiles(c.cgroup)) spec->add_cgroup_procs(f);
  spec->set_oom_events(driver.OomEventsFile(c.cgroup));
  // Always, 0 included: else the container inherits the monitor's score.
  spec->set_set_oom_score_adj(true);
  spec->set_oom_score_adj(static_cast<int32_t>(resources.oom_score_adj()));
  return absl::OkStatus();
}

absl::Status RemoveContainerCgroup(Runtime& rt, const Container& c) {
  if (c.cgroup.empty()) return absl::OkStatus();
  CRIUS_RETURN_IF_ERROR(rt.cgroups().KillAll(c.cgroup));
  return rt.cgroups().Remove(c.cgroup);
}

}  // namespace crius::cri
