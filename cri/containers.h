// The containers criusd knows: like PodTable, an in-memory table over the
// durable records. A container's live state comes from its pod's monitor.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "api.pb.h"
#include "cri/listed.h"
#include "cri/named_table.h"
#include "store/store.h"

namespace crius::cri {

namespace v1 = ::runtime::v1;

inline constexpr char kContainerCreating[] = "creating";
inline constexpr char kContainerCreated[] = "created";
inline constexpr char kContainerRunning[] = "running";
inline constexpr char kContainerExited[] = "exited";

// A CRI mount of the container whose `image` is set (an image volume).
struct ImageVolumeUse {
  int index = 0;          // config.mounts[index]
  std::string image_id;   // config digest
  std::string volume;     // the mount it binds (ImageVolumes::Name)
};

struct Container {
  std::string id;
  std::string pod_id;
  std::string reserved_name;
  v1::ContainerConfig config;
  std::string state;
  int64_t created_at_ns = 0;
  int64_t started_at_ns = 0;
  int64_t finished_at_ns = 0;
  int32_t exit_code = 0;
  std::string reason;
  std::string message;
  std::string image_id;    // config digest
  std::string image_ref;   // a repo digest of the image, as kubelet shows it
  std::string log_path;    // absolute, "" when the pod has no log directory
  std::string dir;         // <containers_dir>/<id>: upper, work, rootfs
  int stop_signal = 0;     // from the image (0: SIGTERM)
  std::string cgroup;      // "<pod cgroup>/<id>"; "" for containers made before cgroups
  std::vector<ImageVolumeUse> image_volumes;  // each keeps its image mounted (cri/image_volumes.h)
  int64_t first_output_at_ns = 0;  // a unikernel guest's first console output, once seen (not recorded)

  std::mutex op;  // serialises the RPCs that change this container

  ListedEntry listed;  // its ListContainers entry (cri/listed.h)

  store::ContainerRecord ToRecord() const;
};

// The monitor's spec of the container, as CreateContainer made it: what exec
// needs to run a process as the container's own.
inline std::string ContainerSpecPath(const Container& c) { return c.dir + "/spec.pb"; }

class ContainerTable {
 public:
  explicit ContainerTable(store::Store& db) : db_(db) {}

  absl::StatusOr<std::vector<std::shared_ptr<Container>>> Load();
  std::shared_ptr<Container> Find(const std::string& id_or_prefix) const {
    return table_.Find(id_or_prefix);
  }
  std::vector<std::shared_ptr<Container>> All() const { return table_.All(); }
  // Whether `c` is still the container recorded under its id: an RPC that
  // found it and then waited for its lock must check, since RemoveContainer
  // or RemovePodSandbox may have removed it meanwhile (and saving it then
  // would bring its record back).
  bool Listed(const Container& c) const { return table_.Get(c.id).get() == &c; }
  std::vector<std::shared_ptr<Container>> OfPod(const std::string& pod_id) const;
  absl::Status Reserve(const std::shared_ptr<Container>& c);
  absl::Status Save(const Container& c);
  absl::Status Delete(const std::string& id);

 private:
  store::Store& db_;
  NamedTable<Container> table_;
};

}  // namespace crius::cri
