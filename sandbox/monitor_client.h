// criusd's side of crius-monitor: starting one for a pod (detached, so it
// is not criusd's child) and talking to it over its socket.
#pragma once

#include <sys/types.h>

#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "common/unique_fd.h"
#include "monitor.pb.h"
#include "sandbox/userns.h"

namespace crius::sandbox {

struct MonitorLaunch {
  std::string binary;  // crius-monitor
  std::string pod_id;
  std::string dir;     // the pod's run directory (exists)
  bool new_net = true;
  bool new_ipc = true;
  bool new_uts = true;
  bool pod_pid = false;
  std::string hostname;
  std::vector<std::pair<std::string, std::string>> sysctls;  // validated by the caller
  std::vector<std::string> cgroup_procs;  // the monitor joins these cgroups first
  IdMappings userns;  // empty: the node's user namespace
  int ready_timeout_ms = 10000;
};

// Starts the monitor and waits until it reports its namespaces pinned and
// its socket listening. Its set-up error comes back as the status.
absl::StatusOr<crius::monitor::PodState> StartMonitor(const MonitorLaunch& launch);

// The monitor socket of the pod directory `dir`.
std::string MonitorSocket(const std::string& dir);

// One request, one response, on a fresh connection; descriptors that come
// with the response are kept in `fds` if given. Unavailable when no
// monitor answers (it is gone).
absl::StatusOr<crius::monitor::Response> CallMonitor(const std::string& dir,
                                                     const crius::monitor::Request& req,
                                                     int timeout_ms = 10000, std::vector<UniqueFd>* fds = nullptr);

// A connection on which the monitor reports each container exit (a
// Response with `container` set) until either side closes it; EOF when the
// monitor exits. The answer to the Watch itself is read here.
absl::StatusOr<UniqueFd> WatchMonitor(const std::string& dir);

// Releases what a monitor that died without its teardown left: pinned
// namespace mounts under dir/ns and the pod's /dev/shm. With keep_net the
// netns pin stays: a pod network still attached is detached inside it.
void ReleasePins(const std::string& dir, bool keep_net = false);

}  // namespace crius::sandbox
