// `crius-monitor exec`: one more process in a running container, for
// ExecSync and Exec. criusd starts it (it is criusd's child, not the
// monitor's) with the container's spec, as CreateContainer wrote it, and
// the pid of the container's init:
//
//   crius-monitor exec --spec FILE --pid PID --report-fd N [--console-fd N] -- CMD [ARG...]
//
// With --console-fd (a unix socket), CMD runs on a new terminal of the
// container's /dev/pts, in a session of its own with it as the controlling
// terminal; the terminal's master is sent on the socket (SCM_RIGHTS).
// It joins the container's cgroup and its ipc, uts, net, pid and mount
// namespaces, then its user namespace if it has one; its child takes the
// container's user, capabilities and seccomp filter (as the container's
// init did) and execs CMD with stdin, stdout and stderr as given. The exit
// status is CMD's (128 + signal when a signal ended it). A failure before
// CMD runs is written to the report fd as "I<message>" (the request's
// fault: no such executable) or "E<message>", and the exit status is 255.
// SIGTERM ends CMD: it is killed and reaped (a zombie left to the
// container's init might never be reaped); if this process dies, CMD is
// killed too (PR_SET_PDEATHSIG), but then left to the container's init.
#pragma once

namespace crius::monitor {

int ExecMain(int argc, char** argv);

}  // namespace crius::monitor
