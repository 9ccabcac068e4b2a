// Named crash points. criusd kills itself with SIGKILL when it reaches a point
// named in the environment variable CRIUS_FAILPOINTS, so tests can crash it
// between any two steps of an RPC and check what a restart makes of it.
//
//   CRIUS_FAILPOINTS="sandbox_run.after_reserve"      first hit kills
//   CRIUS_FAILPOINTS="container_start.before_exec:3"  third hit kills
//
// Production never sets the variable; an unarmed point costs one relaxed load.
#pragma once

#include "absl/strings/string_view.h"


namespace crius::failpoint {

// Reads CRIUS_FAILPOINTS once; call early in main().
void InitFromEnvironment();

// True when any point is armed (for tests and logging).
bool Armed();

// Kills the process with SIGKILL if `name` is armed and its hit count is due.
void Hit(absl::string_view name);

}  // namespace crius::failpoint

#define CRIUS_FAILPOINT(name) ::crius::failpoint::Hit(name)
