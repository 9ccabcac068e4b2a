// Pieces the v1 and v2 drivers share; not part of the module's surface.
#pragma once

#include <sys/types.h>

#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "cgroups/driver.h"
#include "cgroups/fs.h"
#include "cgroups/resources.h"

namespace crius::cgroups::internal {

// --- paths and trees (tree.cc) ---

// InvalidArgument unless `path` is absolute, not "/", and free of empty, "."
// and ".." parts.
absl::Status CheckPath(const std::string& path);
// "/a/b/c" -> {"/a", "/a/b", "/a/b/c"}.
std::vector<std::string> Levels(const std::string& path);
// The pids in <dir>/cgroup.procs.
absl::StatusOr<std::vector<pid_t>> ReadProcs(Fs& fs, const std::string& dir);
// The pids in `dir` and every cgroup below it. NotFound when `dir` is missing.
absl::StatusOr<std::vector<pid_t>> ReadProcsBelow(Fs& fs, const std::string& dir);
// rmdir of `dir` and the cgroups below it, deepest first. Missing is fine; a
// cgroup that keeps processes is FailedPrecondition naming it.
absl::Status RemoveCgroupTree(Fs& fs, const std::string& dir);
// Whether an rmdir's outcome leaves the directory gone: done, or ENOENT.
bool RemovedOrAbsent(const absl::Status& rmdir);
// Driver::Create's shape for both versions: `make` creates the missing
// levels of `path`, noting each directory it made; on its error those are
// removed again, deepest first (best effort: the tree as it was found), and
// the error names the cgroup.
absl::Status CreateOrUndo(Fs& fs, const std::string& path,
                          const std::function<absl::Status(std::vector<std::string>* created)>& make);
// SIGKILLs whatever `list` returns until it returns nothing (or NotFound).
// DeadlineExceeded naming the survivors after about five seconds.
absl::Status KillUntilEmpty(Fs& fs, const std::function<absl::StatusOr<std::vector<pid_t>>()>& list,
                            absl::string_view what);
// Writes `value` to <dir>/<file> for the CRI `field`; a missing file means the
// controller is not there: FailedPrecondition naming field and controller.
absl::Status WriteSetting(Fs& fs, const std::string& dir, absl::string_view file,
                          absl::string_view value, absl::string_view field);

// --- stats (stats.cc) ---

// "key value" lines; lines whose value is not a number are skipped.
std::map<std::string, uint64_t> ParseKeyed(absl::string_view text);
// The file's content, or "" when it does not exist.
absl::StatusOr<std::string> ReadIfPresent(Fs& fs, const std::string& path);
// A file holding one number; a missing or empty file is 0.
absl::StatusOr<uint64_t> ReadCounter(Fs& fs, const std::string& path);
// An empty directory stands for a controller the host does not have.
absl::StatusOr<Stats> ReadStatsV1(Fs& fs, const std::string& cpuacct_dir, const std::string& memory_dir);
absl::StatusOr<Stats> ReadStatsV2(Fs& fs, const std::string& dir);
absl::StatusOr<uint64_t> ReadOomKillsV1(Fs& fs, const std::string& memory_dir);
absl::StatusOr<uint64_t> ReadOomKillsV2(Fs& fs, const std::string& dir);

// --- the drivers (v1.cc, v2.cc) ---

// controller name ("cpu", "memory") -> the directory it is mounted at.
using V1Mounts = std::map<std::string, std::string>;

std::unique_ptr<Driver> NewV1Driver(std::shared_ptr<Fs> fs, std::string root, V1Mounts mounts,
                                    Machine machine);
std::unique_ptr<Driver> NewV2Driver(std::shared_ptr<Fs> fs, std::string root, Machine machine);

}  // namespace crius::cgroups::internal
