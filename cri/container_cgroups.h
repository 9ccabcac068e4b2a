// Pod and container cgroups through the node's driver: the pod cgroup
// kubelet names (or crius's own), the monitor's leaf in it, and one cgroup
// per container with its resources and device policy.
#pragma once

#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "api.pb.h"
#include "cgroups/driver.h"
#include "cri/containers.h"
#include "cri/pods.h"
#include "cri/runtime.h"
#include "monitor.pb.h"

namespace crius::cri {

// The pod's cgroup: cgroup_parent when kubelet gives one (cgroupfs form,
// "/kubepods/burstable/pod<uid>"), else "/crius/<pod id>". InvalidArgument
// for a path that is not clean and absolute, or a systemd slice.
absl::StatusOr<std::string> PodCgroup(const v1::PodSandboxConfig& config, const std::string& pod_id);

// Whether the cgroup is there already (kubelet makes the pod cgroup itself
// and removes it; crius removes only what it made).
bool PodCgroupExists(Runtime& rt, const std::string& cgroup);

// Makes the pod's cgroup and the monitor's leaf; the leaf's cgroup.procs
// files go to `procs`.
absl::Status CreatePodCgroups(Runtime& rt, Pod& pod, std::vector<std::string>* procs);
// Kills what is left in the monitor's leaf and removes it, then the pod's
// cgroup if crius made it. Missing cgroups are fine.
absl::Status RemovePodCgroups(Runtime& rt, const Pod& pod);

// kubelet's resources in the driver's terms.
cgroups::Resources ToResources(const v1::LinuxContainerResources& r);
// InvalidArgument naming `prefix` + the CRI field ("config.linux.resources.cpu_quota").
absl::Status CheckResources(Runtime& rt, const v1::LinuxContainerResources& r, absl::string_view prefix);

// Makes the container's cgroup (c.cgroup, "<pod cgroup>/<id>") with its resources and device policy (the
// standard allow list plus the spec's devices), and points the spec at it
// (the cgroup.procs files, the OOM counter, oom_score_adj).
absl::Status CreateContainerCgroup(Runtime& rt, const Pod& pod, Container& c,
                                   const v1::LinuxContainerResources& resources,
                                   crius::monitor::ContainerSpec* spec);
// Kills what is left in the container's cgroup and removes it.
absl::Status RemoveContainerCgroup(Runtime& rt, const Container& c);

}  // namespace crius::cri
