// Steps on a pod shared by several RPCs and by recovery.
#pragma once

#include <cstdint>
#include <memory>

#include "absl/status/status.h"
#include "cri/pods.h"
#include "cri/runtime.h"

namespace crius::cri {

// Stops the pod: its containers are stopped, its network detached (CNI
// DEL while the netns still exists), its monitor shut down and its
// namespaces released; the pod is recorded NotReady. Idempotent: a DEL that
// failed before is retried. The caller holds pod.op.
absl::Status StopPod(Runtime& rt, Pod& pod);

// Releases the pod's namespace pins and /dev/shm, except its netns while a
// network is still attached to it (the DEL that detaches it needs it).
void ReleasePodPins(const Pod& pod);

// CNI DEL from the pod's cache; OK when the pod has no network attached.
absl::Status DetachNetwork(Runtime& rt, Pod& pod);

// Shuts the monitor down (its containers die with it), releases the
// namespace pins and records the pod NotReady.
absl::Status ShutdownMonitor(Runtime& rt, Pod& pod);

// A ready pod whose monitor has died becomes NotReady (recorded). Cheap:
// one poll of the monitor's pidfd.
void RefreshPod(Runtime& rt, Pod& pod);

// Whether the pod's monitor process has exited (its pidfd is readable), or
// the pod has none.
bool MonitorExited(const Pod& pod);

// The OOM kills counted in the monitor's cgroup, its leaf that only the pod's
// init shares: a monitor gone with a count there was killed by the OOM
// killer. 0 when none, or when the pod has no such cgroup.
uint64_t MonitorOomKills(Runtime& rt, const Pod& pod);

// Records in the pod (not yet durably) and logs why its monitor went away
// unasked: the OOM killer, or an exit of its own.
void NoteMonitorGone(Runtime& rt, Pod& pod);

// The pod as ListPodSandbox shows it.
void ToCriSandbox(const Pod& pod, v1::PodSandbox* out);

// Opens a pidfd on the pod's monitor, after checking through its socket that
// the pid is still that monitor. Unavailable when no monitor answers.
absl::Status AttachMonitor(Pod& pod);

}  // namespace crius::cri
