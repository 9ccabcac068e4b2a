// crius-monitor: one per pod. It creates and pins the pod's namespaces, is
// the subreaper of the pod's processes, and answers criusd on a unix socket.
// It is not criusd's child, so criusd can stop, crash or be upgraded while
// the pod runs on.
#pragma once

#include <sys/types.h>

#include <map>
#include <set>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "common/unique_fd.h"
#include "monitor.pb.h"
#include "sandbox/monitor/cri_log.h"
#include "sandbox/userns.h"

namespace crius::monitor {

struct Options {
  std::string pod_id;
  std::string dir;       // the pod's run directory: socket, ns/, log
  bool new_net = true;   // false: the node's (hostNetwork)
  bool new_ipc = true;
  bool new_uts = true;
  bool pod_pid = false;  // one pid namespace for the whole pod
  std::string hostname;
  // Namespaced sysctls ("net.ipv4.ip_forward" or "net/ipv4/ip_forward"),
  // written in the pod's namespaces once they exist.
  std::vector<std::pair<std::string, std::string>> sysctls;
  // The pod's own cgroup for the monitor and the pod's init (each
  // hierarchy's cgroup.procs), joined first thing.
  std::vector<std::string> cgroup_procs;
  // A user namespace for the pod (both lists, or neither): its other
  // namespaces are made inside it, so that it owns them.
  sandbox::IdMappings userns;
  int ready_fd = -1;     // criusd reads "ok" or an error from here
};

absl::StatusOr<Options> ParseArgs(int argc, char** argv);

// One container of the pod, from CreateContainer to RemoveContainer.
struct Container {
  ContainerSpec spec;
  ContainerState state;
  pid_t pid = 0;
  UniqueFd sync;   // child -> monitor: "R", "E<message>", EOF on exec
  UniqueFd start;  // monitor -> child: one byte releases it
  UniqueFd out[2];  // stdout (or the terminal's master), stderr: read ends
  UniqueFd stdin_w;  // the container's stdin, kept for attach
  // Attached clients: each gets a copy of the output (see AttachContainer).
  std::vector<UniqueFd> attached;
  CriLog log;
  // A tender's: the end of its stderr (its last words name a fault), and
  // whether it was asked to shut down.
  std::string stderr_tail;
  bool sigterm = false;
};

class Monitor {
 public:
  explicit Monitor(Options options) : options_(std::move(options)) {}

  // Namespaces, pins, socket. On error, whatever was made is undone.
  absl::Status Setup();
  // Serves until a Shutdown request or SIGTERM; then Teardown().
  int Run();

 private:
  absl::Status Pin(const std::string& kind, pid_t pid);
  absl::Status Create(const ContainerSpec& spec, ContainerState* state);
  absl::Status Start(const std::string& id, ContainerState* state);
  absl::Status Signal(const std::string& id, int sig, ContainerState* state);
  absl::Status Remove(const std::string& id);
  absl::Status ReopenLog(const std::string& id, ContainerState* state);
  absl::Status Attach(const std::string& id, std::vector<UniqueFd>* fds);
  absl::Status CloseStdin(const std::string& id);
  void Forward(Container& c, int stream, const char* data, size_t n);
  void Reaped(pid_t pid, int status);
  void ReadLogs(int fd);
  void RecordExit(Container& c);
  void Tell(const Container& c);
  void TenderOutput(Container& c, int stream, absl::string_view data);
  Container* Find(const std::string& id);
  absl::Status StartPodInit();
  absl::Status EnterPodNamespaces();
  void Handle(int conn);
  void Teardown();
  crius::monitor::PodState State() const;

  Options options_;
  std::map<std::string, std::string> pins_;  // kind -> pinned file
  pid_t pod_init_ = 0;
  std::string shm_;  // the pod's /dev/shm mount, when it has its own IPC namespace
  UniqueFd listen_;
  UniqueFd signals_;
  UniqueFd epoll_;
  bool stopping_ = false;
  std::map<std::string, std::unique_ptr<Container>> containers_;
  std::map<int, std::pair<Container*, int>> log_fds_;  // fd -> container, stream
  std::set<int> watchers_;  // connections told of each exit (Watch)
};

}  // namespace crius::monitor
