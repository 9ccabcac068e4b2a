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
