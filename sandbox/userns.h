// User namespaces for pods: the ID mappings kubelet gives a pod, the
// namespace made from them, and idmapped mounts, which show files owned by
// the node's IDs as the pod's (kubelet's userns_options, KEP-127).
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "common/unique_fd.h"

namespace crius::sandbox {

// Container IDs [container_id, container_id + length) are the node's
// [host_id, host_id + length).
struct IdRange {
  uint32_t container_id = 0;
  uint32_t host_id = 0;
  uint32_t length = 0;
  bool operator==(const IdRange&) const = default;
};

struct IdMappings {
  std::vector<IdRange> uids;
  std::vector<IdRange> gids;
  bool operator==(const IdMappings&) const = default;
};

// The kernel takes at most this many lines in a uid_map.
inline constexpr size_t kMaxIdRanges = 340;

// Problems of one list: empty, too long, a range of length 0, past 2^32, or
// overlapping another on either side. "" when it is fine.
std::string CheckIdRanges(const std::vector<IdRange>& ranges);

// The node's ID of container ID `id`, if the ranges map it.
std::optional<uint32_t> HostId(const std::vector<IdRange>& ranges, uint32_t id);

// The /proc/<pid>/uid_map text: "container host length" per line.
std::string MapText(const std::vector<IdRange>& ranges);

// "container:host:length", as the monitor takes --uid-map and --gid-map.
std::string RangeFlag(const IdRange& r);
absl::StatusOr<IdRange> ParseRangeFlag(const std::string& text);

// A process that has made a user namespace with `m` and, inside it (so that
// namespace owns them), the namespaces of `more` (CLONE_NEWNET, ...;
// CLONE_NEWPID is for its children). It waits until Release(); its
// namespaces are at /proc/<pid>/ns/ meanwhile. Made by fork(): callable
// from a multi-threaded process.
class UsernsHolder {
 public:
  static absl::StatusOr<UsernsHolder> Start(const IdMappings& m, int more = 0);
  UsernsHolder(UsernsHolder&& o) noexcept : pid_(o.pid_), go_(std::move(o.go_)) { o.pid_ = -1; }
  UsernsHolder& operator=(UsernsHolder&& o) noexcept {
    if (this != &o) {
      Release();
      pid_ = o.pid_;
      go_ = std::move(o.go_);
      o.pid_ = -1;
    }
    return *this;
  }
  ~UsernsHolder() { Release(); }

  pid_t pid() const { return pid_; }
  // /proc/<pid>/ns/<kind>, opened.
  absl::StatusOr<UniqueFd> Open(const std::string& kind) const;
  // Ends the process and reaps it.
  void Release();

 private:
  UsernsHolder(pid_t pid, UniqueFd go) : pid_(pid), go_(std::move(go)) {}
  pid_t pid_ = -1;
  UniqueFd go_;  // closing it lets the process exit
};

// A detached copy of the mount at `path` (with the mounts below it when
// `recursive`), idmapped through the user namespace `userns_fd`: a file
// owned by ID k on disk shows as owned by the host ID of container ID k, so
// as k inside a pod of the same mappings. Attach it with move_mount(), or
// name it as /proc/self/fd/<fd> (an overlay's lowerdir).
absl::StatusOr<UniqueFd> IdmappedCopy(const std::string& path, int userns_fd, bool recursive);

// Whether this kernel and the filesystem of `dir` take what a pod with a
// user namespace needs: a user namespace, an idmapped mount of a directory
// of `dir` and an overlay with it as a lower layer (Linux 5.19+; tmpfs only
// from 6.3). Runs in a child process; `dir` must exist and is left as found.
absl::Status ProbeIdmappedOverlay(const std::string& dir);

}  // namespace crius::sandbox
