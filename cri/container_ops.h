// Steps on containers shared by several RPCs and by recovery.
#pragma once

#include "absl/status/status.h"
#include "cri/containers.h"
#include "cri/pods.h"
#include "cri/runtime.h"

namespace crius::cri {

// Brings the containers of `pod` up to date with what its monitor reports
// (exits are recorded durably). With the monitor gone, containers that were
// not known to have exited become exited, with the code the monitor left in
// its exit records when there is one, and a message saying what happened.
// It never takes pod.op, so callers may hold it.
void RefreshContainers(Runtime& rt, Pod& pod);

// Stops the container: its stop signal, SIGKILL after `timeout_s` (at once
// for 0); returns once the process is gone and its exit is recorded.
absl::Status StopContainerProcess(Runtime& rt, Pod& pod, Container& c, int64_t timeout_s);

// The CRI state of a container (creating shows as created).
v1::ContainerState CriState(const Container& c);

// Stops (SIGKILL) a running container, forgets it in its monitor, removes its
// directories and its record. `pod` may be null (gone) or not ready. The
// caller holds c.op.
absl::Status RemoveContainerFully(Runtime& rt, Pod* pod, Container& c);

// The signal number for a CRI Signal or an image StopSignal ("SIGTERM",
// "TERM", "15"); 0 when the text names none.
int SignalNumber(const std::string& name);

}  // namespace crius::cri
