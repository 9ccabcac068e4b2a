// Filesystem steps with undo: directories made on the way, lock files.
#pragma once

#include "absl/strings/string_view.h"
#include <sys/types.h>

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "common/unique_fd.h"

namespace crius {

// mkdir -p with `mode` for each directory it creates. Returns the directories
// it created, outermost first, so an undo can remove exactly those.
absl::StatusOr<std::vector<std::string>> MakeDirs(const std::string& path, mode_t mode);

// Removes the directories MakeDirs created (innermost first) if still empty.
void RemoveCreatedDirs(const std::vector<std::string>& created);

// Removes `name` below the directory `dirfd` with everything it holds.
// Never follows a symlink; a missing `name` is fine.
absl::Status RemoveTreeAt(int dirfd, const std::string& name);

// Removes the tree at the absolute `path` (RemoveTreeAt on its parent).
absl::Status RemoveTree(const std::string& path);

// An exclusive, non-blocking flock on `path` that records the holder's pid.
// Held until the returned descriptor is closed (or the process dies).
// When another process holds it: FailedPrecondition naming that pid.
absl::StatusOr<UniqueFd> LockFile(const std::string& path, absl::string_view what);

// Bytes (allocated blocks) and inodes below `dir`, a du that stays on the
// tree: no symlink followed, no mount crossed. A missing dir is zero.
struct DirUsage {
  uint64_t bytes = 0;
  uint64_t inodes = 0;
};
DirUsage UsageOf(const std::string& dir);

// The whole of the file at `path`. On failure, ErrnoError with `what` (by
// default "read <path>"), carrying errno (ErrnoOf) for callers that treat a
// missing file as no error.
absl::StatusOr<std::string> ReadFile(const std::string& path, absl::string_view what = "");

// Writes `data` to `path` through a temporary file, fsync and rename, so a
// reader sees the old or the new content, never a part.
absl::Status WriteFileAtomic(const std::string& path, absl::string_view data, mode_t mode);

}  // namespace crius
