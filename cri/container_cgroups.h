// Container cgroups through the node's driver: one cgroup per container, in
// its pod's cgroup (cri/pod_cgroups.h), with its resources and device policy.
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
