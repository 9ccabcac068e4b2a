// Steps on a pod shared by several RPCs and by recovery.
#pragma once

#include <memory>

#include "absl/status/status.h"
#include "cri/pods.h"
#include "cri/runtime.h"

namespace crius::cri {

// Stops the pod: its monitor is shut down and its namespaces released; the
// pod is recorded NotReady. Idempotent. The caller holds pod.op.
absl::Status StopPod(Runtime& rt, Pod& pod);

// A ready pod whose monitor has died becomes NotReady (recorded). Cheap:
// one poll of the monitor's pidfd.
void RefreshPod(Runtime& rt, Pod& pod);

// The pod as ListPodSandbox shows it.
void ToCriSandbox(const Pod& pod, v1::PodSandbox* out);

// Opens a pidfd on the pod's monitor, after checking through its socket that
// the pid is still that monitor. Unavailable when no monitor answers.
absl::Status AttachMonitor(Pod& pod);

}  // namespace crius::cri
