// The pod's cgroups through the node's driver: the pod cgroup kubelet names
// (or crius's own /crius/<id>), the monitor's leaf in it, and the parents
// crius made for pods because they were not there.
//
// kubelet makes each pod's cgroup itself and removes it; crius removes only
// what it made. A cgroup_parent that crius made (crictl and test tools name
// one that does not exist, often the same for many pods) is recorded
// durably before it is made, shared by every pod in it, and removed, with
// the levels crius made above it, when the last pod in it goes: never while
// another pod's cgroup is inside.
#pragma once

#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "api.pb.h"
#include "cri/pods.h"
#include "cri/runtime.h"

namespace crius::cri {

// The pod's cgroup: cgroup_parent when kubelet gives one (cgroupfs form,
// "/kubepods/burstable/pod<uid>"), else "/crius/<pod id>". InvalidArgument
// for a path that is not clean and absolute, or a systemd slice.
absl::StatusOr<std::string> PodCgroup(const v1::PodSandboxConfig& config, const std::string& pod_id);

// Whether the pod's cgroup is its alone: "/crius/<id>", made for it.
bool PodOwnsCgroup(const Pod& pod);

// Makes the pod's cgroup (recording the levels crius makes) and the
// monitor's leaf; the leaf's cgroup.procs files go to `procs`. On failure
// nothing it made is left.
absl::Status CreatePodCgroups(Runtime& rt, const Pod& pod, std::vector<std::string>* procs);
// Kills what is left in the monitor's leaf and removes it, then the pod's
// own cgroup, then each parent crius made that no other pod is in. Missing
// cgroups are fine.
absl::Status RemovePodCgroups(Runtime& rt, const Pod& pod);

// At start, for each pod loaded: an older criusd recorded a cgroup_parent it
// made as owned by the first pod in it; it becomes a recorded shared parent.
absl::Status AdoptOlderCgroupParent(Runtime& rt, Pod& pod);
// At start, after the pods are recovered: finishes what a crash between a
// parent's record and its cgroup left: removes the recorded parents no pod
// is in, and forgets those already gone.
absl::Status RecoverCgroupParents(Runtime& rt);

}  // namespace crius::cri
