// The pods criusd knows: an in-memory table over the durable records, so
// list and status calls never touch the database, and every change is
// written to SQLite before the RPC that made it returns.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "api.pb.h"
#include "common/unique_fd.h"
#include "cri/listed.h"
#include "cri/named_table.h"
#include "store/store.h"

namespace crius::cri {

namespace v1 = ::runtime::v1;

// Pod states as recorded. "creating" and "stopping" only live while an RPC
// works on the pod, or after a crash in the middle of one.
inline constexpr char kPodCreating[] = "creating";
inline constexpr char kPodReady[] = "ready";
inline constexpr char kPodNotReady[] = "notready";

// Why a monitor went away unasked, the words of ContainerStatus.reason.
inline constexpr char kMonitorOomKilled[] = "OOMKilled";
inline constexpr char kMonitorExited[] = "Error";

struct Pod {
  std::string id;
  std::string reserved_name;  // name_namespace_uid_attempt
  std::string runtime_handler;
  v1::PodSandboxConfig config;
  std::string state;
  int64_t created_at_ns = 0;
  std::string dir;  // run directory: monitor socket, ns pins, pod files
  int monitor_pid = 0;
  std::map<std::string, std::string> namespaces;  // kind -> pinned path
  UniqueFd monitor_pidfd;  // readable once the monitor has exited
  std::vector<std::string> ips;  // from CNI ADD, IPv4 first; empty for hostNetwork
  // The pod's cgroup: kubelet's cgroup_parent, else /crius/<id>, made (and
  // removed) by crius only when it was not there (cri/pod_cgroups.h). The
  // monitor and the pod's init live in its leaf <cgroup>/<id>, the containers
  // in <cgroup>/<their id>.
  std::string cgroup;
  // The cgroup is the pod's alone (/crius/<id>). An older criusd also set it
  // for the first pod in a cgroup_parent it made; recovery takes those over.
  bool cgroup_owned = false;
  // Why the monitor went away when nobody asked it to ("" while it runs, or
  // after StopPodSandbox): kMonitorOomKilled or kMonitorExited, with a
  // message for PodSandboxStatus(verbose) and the containers it took along.
  std::string monitor_exit_reason;
  std::string monitor_exit_message;
  std::string MonitorCgroup() const { return cgroup.empty() ? "" : cgroup + "/" + id; }

  // What CNI teardown needs, kept in the pod directory while attached.
  std::string NetworkCache() const { return dir + "/network.json"; }

  // Serialises the RPCs that change this pod (run, stop, remove).
  std::mutex op;

  ListedEntry listed;  // its ListPodSandbox entry (cri/listed.h)

  store::PodRecord ToRecord() const;
};

class PodTable {
 public:
  explicit PodTable(store::Store& db) : db_(db) {}

  // Loads every recorded pod (recovery decides what becomes of each).
  absl::StatusOr<std::vector<std::shared_ptr<Pod>>> Load();

  std::shared_ptr<Pod> Get(const std::string& id) const { return table_.Get(id); }
  // By full id, or by a unique id prefix (crictl shortens ids).
  std::shared_ptr<Pod> Find(const std::string& id_or_prefix) const { return table_.Find(id_or_prefix); }
  std::shared_ptr<Pod> ByName(const std::string& name) const { return table_.ByName(name); }
  std::vector<std::shared_ptr<Pod>> All() const { return table_.All(); }

  // Reserves the name for a new pod and records it as "creating".
  // AlreadyExists if another pod holds the name.
  absl::Status Reserve(const std::shared_ptr<Pod>& pod);
  // Writes the pod's current fields (state, monitor, namespaces).
  absl::Status Save(const Pod& pod);
  // Drops the pod from the table and the database.
  absl::Status Delete(const std::string& id);

 private:
  store::Store& db_;
  NamedTable<Pod> table_;
};

// 64 random hex digits, as containerd and CRI-O make ids.
std::string NewId();

}  // namespace crius::cri
