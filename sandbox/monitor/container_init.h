// The child side of a container: what runs between clone() and execve in
// the container's new mount (and pid) namespace. It builds the root
// filesystem, pivots into it, becomes the container's user, reports "ready"
// and waits to be started. Any error is written to the sync pipe as one line
// and the child exits: the monitor turns it into the RPC's error.
#pragma once

#include "monitor.pb.h"

namespace crius::monitor {

struct InitPipes {
  int sync_w;    // "R" when parked before execve, "E<message>" on error
  int start_r;   // one byte: go; EOF: give up
  int stdout_w;
  int stderr_w;
  int stdin_r;   // -1: /dev/null
  int tty;       // the terminal's slave side, or -1; it then is stdin, stdout and stderr
};

// Never returns.
[[noreturn]] void ContainerInit(const ContainerSpec& spec, const InitPipes& pipes);

}  // namespace crius::monitor
