// Readiness for systemd (crius.service is Type=notify): a datagram such as
// "READY=1" to the unix socket in $NOTIFY_SOCKET, as sd_notify(3) sends it,
// without linking libsystemd. Without $NOTIFY_SOCKET (not under systemd)
// every call is a no-op.
#pragma once

#include "absl/status/status.h"
#include "absl/strings/string_view.h"

namespace crius {

// Takes $NOTIFY_SOCKET out of the environment, so that no child (monitors,
// CNI plugins) inherits it, and keeps it for SystemdNotify. Call once, early
// in main, before any thread starts.
void InitSystemdNotify();

// Sends `state` ("READY=1", "STOPPING=1", "STATUS=...", newline-separated).
absl::Status SystemdNotify(absl::string_view state);

}  // namespace crius
