#include "cri/container_cgroups.h"

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "common/failpoint.h"
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

// Crash points: at its callers
absl::Status CreateContainerCgroup(Runtime& rt, const Pod& pod, Container& c,
                                   const v1::LinuxContainerResources& resources,
                                   crius::monitor::ContainerSpec* spec) {
  cgroups::Driver& driver = rt.cgroups();
  if (c.cgroup.empty()) return absl::OkStatus();  // a pod from before cgroups: nothing to join
  CRIUS_RETURN_IF_ERROR(driver.Create(c.cgroup));
  // no crash point: it sets up the cgroup just made, which a rollback removes whole
  absl::Status st = Prefixed(driver.Apply(c.cgroup, ToResources(resources)), "config.");
  if (st.ok() && !spec->privileged()) {
    std::vector<cgroups::DeviceRule> allow;
    for (const crius::monitor::Device& d : spec->devices()) {
      allow.push_back({d.block() ? 'b' : 'c', d.dev_major(), d.dev_minor(), d.permissions()});
    }
    st = driver.SetDevicePolicy(c.cgroup, allow);  // no crash point: as Apply above
  }
  if (!st.ok()) {
    (void)driver.Remove(c.cgroup);  // no crash point: a rollback; nothing is in it yet
    return st;
  }
  for (const std::string& f : driver.ProcsFiles(c.cgroup)) spec->add_cgroup_procs(f);
  spec->set_oom_events(driver.OomEventsFile(c.cgroup));
  // Always, 0 included: else the container inherits the monitor's score.
  spec->set_set_oom_score_adj(true);
  spec->set_oom_score_adj(static_cast<int32_t>(resources.oom_score_adj()));
  return absl::OkStatus();
}

// Crash points: at its callers
absl::Status RemoveContainerCgroup(Runtime& rt, const Container& c) {
  if (c.cgroup.empty()) return absl::OkStatus();
  CRIUS_RETURN_IF_ERROR(rt.cgroups().KillAll(c.cgroup));
  CRIUS_FAILPOINT("container_cgroup.after_kill");
  return rt.cgroups().Remove(c.cgroup);
}

}  // namespace crius::cri
