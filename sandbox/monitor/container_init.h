// The child side of a container: what runs between clone() and execve in
// the container's new mount (and pid) namespace. It builds the root
// filesystem, pivots into it, becomes the container's user, reports "ready"
// and waits to be started. Any error is written to the sync pipe as one line
// and the child exits: the monitor turns it into the RPC's error.
#pragma once

#include <string>
#include <vector>

#include "monitor.pb.h"

namespace crius::monitor {

struct InitPipes {
  int sync_w;    // "R" when parked before execve, "E<message>" on error
  int start_r;   // one byte: go; EOF: give up
  int stdout_w;
  int stderr_w;
  int stdin_r;   // -1: /dev/null
  // A unix socket, or -1: the container gets a terminal of its own devpts
  // as stdin, stdout and stderr, and the terminal's master is sent here.
  int console;
};

// Never returns.
[[noreturn]] void ContainerInit(const ContainerSpec& spec, const InitPipes& pipes);

// A unikernel container's process (spec.tender set): the tender, in the
// pod's namespaces and the container's cgroup, with the rootfs mounted
// (never entered) for the guest and its block images. Never returns.
[[noreturn]] void TenderInit(const ContainerSpec& spec, const InitPipes& pipes);

// The step that failed, written to the monitor, then exit. 'E': the node's
// side failed; 'I': the request or the image is at fault (no such
// executable, user or working directory).
[[noreturn]] void InitFail(const InitPipes& p, const std::string& what, int err = 0, char kind = 'E');

// The start of every container process: no outliving the monitor, a
// session of its own, default signals, and nothing done until the monitor
// has placed it in its cgroup (false: the monitor gave up).
bool AwaitPlacement(const InitPipes& p);

// The spec's oom_score_adj, if it sets one (never below the monitor's).
void SetOomScoreAdj(const ContainerSpec& spec, const InitPipes& p);

// A new terminal of the devpts at /dev/pts (the container's, once its mount
// namespace is ours): the master is sent on `console` (SCM_RIGHTS), the
// slave returned; -1 and `error` when that fails.
int OpenTerminal(int console, std::string* error);

// Every signal unblocked and at its default action, glibc's own included:
// what a container's process starts with.
void ResetSignals();

// What every process of a container does last, its init and each exec
// alike, once in the container's namespaces and root: find args[0] on the
// container's PATH, enter its working directory, take its oom_score_adj,
// user, groups, capabilities, no_new_privs and seccomp filter. Errors go to
// pipes.sync_w as ContainerInit's do, and the process exits.
struct ContainerProcess {
  std::string exe;               // the executable found
  std::vector<std::string> env;  // the spec's, with HOME when it has none
};
ContainerProcess BecomeContainerProcess(const ContainerSpec& spec, const InitPipes& pipes,
                                        const std::vector<std::string>& args);

}  // namespace crius::monitor
