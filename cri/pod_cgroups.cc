#include "cri/pod_cgroups.h"

#include <algorithm>
#include <set>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "common/failpoint.h"
#include "common/log.h"
#include "common/status.h"
#include "cri/container_cgroups.h"

namespace crius::cri {
namespace {

constexpr char kCriusRoot[] = "/crius";

bool Exists(Runtime& rt, const std::string& cgroup) {
  return !absl::IsNotFound(rt.cgroups().Pids(cgroup).status());
}

// The levels of a cgroup_parent, top first: "/a/b" -> {"/a", "/a/b"}. A pod
// without one has none: /crius/<id> is its own, and /crius crius's.
std::vector<std::string> ParentLevels(const Pod& pod) {
  std::vector<std::string> levels;
  if (pod.cgroup.empty() || PodOwnsCgroup(pod)) return levels;
  std::string path;
  for (absl::string_view part : absl::StrSplit(absl::string_view(pod.cgroup).substr(1), '/')) {
    absl::StrAppend(&path, "/", part);
    levels.push_back(path);
  }
  return levels;
}

bool IsAtOrBelow(const std::string& cgroup, const std::string& level) {
  return cgroup == level || absl::StartsWith(cgroup, level + "/");
}

// Removes the recorded parents among `levels` deepest first, while each is
// empty, and forgets each one removed. Stops at a level crius did not make
// or one that still holds something (another pod's cgroup).
// Crash points: at its callers
absl::Status ReleaseParents(Runtime& rt, const std::vector<std::string>& levels) {
  if (levels.empty()) return absl::OkStatus();
  CRIUS_ASSIGN_OR_RETURN(std::vector<std::string> listed, rt.store().ListCgroupParents());
  std::set<std::string> recorded(listed.begin(), listed.end());
  for (auto it = levels.rbegin(); it != levels.rend(); ++it) {
    if (!recorded.count(*it)) {
      if (Exists(rt, *it)) break;  // not crius's
      continue;                    // removed and forgotten before a crash
    }
    if (!rt.cgroups().RemoveIfEmpty(*it)) break;
    CRIUS_FAILPOINT("pod_cgroups.after_parent_removed");
    CRIUS_RETURN_IF_ERROR(rt.store().DeleteCgroupParent(*it));
    CRIUS_FAILPOINT("pod_cgroups.after_parent_forgotten");
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<std::string> PodCgroup(const v1::PodSandboxConfig& config, const std::string& pod_id) {
  const std::string& parent = config.linux().cgroup_parent();
  const char* field = "config.linux.cgroup_parent";
  if (parent.empty()) return absl::StrCat(kCriusRoot, "/", pod_id);
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

bool PodOwnsCgroup(const Pod& pod) { return pod.cgroup == absl::StrCat(kCriusRoot, "/", pod.id); }

// Crash points: at its callers
absl::Status CreatePodCgroups(Runtime& rt, const Pod& pod, std::vector<std::string>* procs) {
  std::lock_guard<std::mutex> lock(rt.cgroup_parents_mu());
  std::vector<std::string> levels = ParentLevels(pod), missing;
  for (const std::string& level : levels) {
    if (!Exists(rt, level)) missing.push_back(level);
  }
  // Recorded before it is made: a crash in between leaves a record of a
  // cgroup that is not there, which the next start forgets.
  CRIUS_RETURN_IF_ERROR(Annotate(rt.store().AddCgroupParents(missing), "record the pod's cgroup parent"));
  CRIUS_FAILPOINT("pod_cgroups.after_parent_record");
  absl::Status st = rt.cgroups().Create(pod.MonitorCgroup());
  if (st.ok()) {
    *procs = rt.cgroups().ProcsFiles(pod.MonitorCgroup());
    return absl::OkStatus();
  }
  // no crash point: undoes what Create made of it
  if (PodOwnsCgroup(pod)) (void)rt.cgroups().Remove(pod.cgroup);
  // no crash point: undoes the record above
  if (absl::Status undo = ReleaseParents(rt, levels); !undo.ok()) {
    LOG_ERROR("pod %s: %s", pod.id, std::string(undo.message()));
  }
  return st;
}

// Crash points: at its callers
absl::Status RemovePodCgroups(Runtime& rt, const Pod& pod) {
  if (pod.cgroup.empty()) return absl::OkStatus();
  cgroups::Driver& driver = rt.cgroups();
  // The pod's own cgroups first, without the lock: KillAll can take seconds,
  // and no other pod's creation needs to wait for it.
  CRIUS_RETURN_IF_ERROR(driver.KillAll(pod.MonitorCgroup()));
  CRIUS_FAILPOINT("pod_cgroups.after_kill");
  CRIUS_RETURN_IF_ERROR(driver.Remove(pod.MonitorCgroup()));
  CRIUS_FAILPOINT("pod_cgroups.after_monitor_cgroup");
  if (PodOwnsCgroup(pod)) CRIUS_RETURN_IF_ERROR(driver.Remove(pod.cgroup));
  CRIUS_FAILPOINT("pod_cgroups.after_pod_cgroup");
  std::lock_guard<std::mutex> lock(rt.cgroup_parents_mu());
  if (PodOwnsCgroup(pod)) {
    // no crash point: an empty /crius left by a crash goes at the next start
    driver.RemoveIfEmpty(kCriusRoot);  // crius's own parent goes with its last pod
    return absl::OkStatus();
  }
  return ReleaseParents(rt, ParentLevels(pod));
}

// Crash points: none, it runs at every start, which does it again
absl::Status AdoptOlderCgroupParent(Runtime& rt, Pod& pod) {
  if (!pod.cgroup_owned || PodOwnsCgroup(pod) || pod.cgroup.empty()) return absl::OkStatus();
  std::lock_guard<std::mutex> lock(rt.cgroup_parents_mu());
  CRIUS_RETURN_IF_ERROR(rt.store().AddCgroupParents({pod.cgroup}));
  pod.cgroup_owned = false;
  return rt.pods().Save(pod);
}

// Crash points: none, it runs at every start, which does it again
absl::Status RecoverCgroupParents(Runtime& rt) {
  std::lock_guard<std::mutex> lock(rt.cgroup_parents_mu());
  std::vector<std::shared_ptr<Pod>> pods = rt.pods().All();
  CRIUS_ASSIGN_OR_RETURN(std::vector<std::string> parents, rt.store().ListCgroupParents());
  std::sort(parents.begin(), parents.end(),
            [](const std::string& a, const std::string& b) { return a.size() > b.size(); });  // deepest first
  for (const std::string& parent : parents) {
    bool in_use = std::any_of(pods.begin(), pods.end(),
                              [&](const std::shared_ptr<Pod>& p) { return IsAtOrBelow(p->cgroup, parent); });
    if (in_use) continue;
    if (!rt.cgroups().RemoveIfEmpty(parent)) {
      LOG_WARN("cgroup parent %s: no pod is in it, but it is not empty: kept", parent);
      continue;
    }
    LOG_INFO("cgroup parent %s: removed, no pod is in it", parent);
    CRIUS_RETURN_IF_ERROR(rt.store().DeleteCgroupParent(parent));
  }
  // crius's own parent, left empty by a crash after its last pod's cgroup went.
  if (std::none_of(pods.begin(), pods.end(), [](const std::shared_ptr<Pod>& p) { return PodOwnsCgroup(*p); })) {
    rt.cgroups().RemoveIfEmpty(kCriusRoot);
  }
  return absl::OkStatus();
}

}  // namespace crius::cri
