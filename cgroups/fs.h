// The seam between the cgroup drivers and the host: every file they read or
// write, every directory they make or remove, the signals KillAll sends and
// the BPF device program v2 attaches go through Fs, so unit tests run the
// drivers against a plain directory tree and inject the failures cgroupfs
// produces (EBUSY, EINVAL, ENOENT).
#pragma once

#include <sys/types.h>

#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "common/unique_fd.h"

namespace crius::cgroups {

struct DeviceProgram;  // device_program.h

struct DirEntry {
  enum class Type { kFile, kDir, kSymlink, kOther };
  std::string name;
  Type type = Type::kOther;
};

// Errors are ErrnoError("<verb> <path>", errno): the errno stays branchable.
class Fs {
 public:
  virtual ~Fs() = default;
  // The whole file.
  virtual absl::StatusOr<std::string> ReadFile(const std::string& path) = 0;
  // One write(2) to an existing file: cgroupfs takes a value per write and
  // never creates files.
  virtual absl::Status WriteFile(const std::string& path, absl::string_view data) = 0;
  // mkdir(2) with mode 0755; EEXIST is reported (AlreadyExists), not hidden.
  virtual absl::Status MakeDir(const std::string& path) = 0;
  virtual absl::Status RemoveDir(const std::string& path) = 0;
  virtual bool Exists(const std::string& path) = 0;
  // Entries without "." and "..", in no particular order.
  virtual absl::StatusOr<std::vector<DirEntry>> ListDir(const std::string& path) = 0;
  // O_DIRECTORY | O_RDONLY | O_CLOEXEC, for clone3(CLONE_INTO_CGROUP).
  virtual absl::StatusOr<UniqueFd> OpenDir(const std::string& path) = 0;
  // kill(2); ESRCH is reported.
  virtual absl::Status Kill(pid_t pid, int sig) = 0;
  virtual void Sleep(absl::Duration d) = 0;
  // Loads `program` and attaches it to the cgroup directory `dir` in place of
  // the device program crius attached there before (cgroups::AttachDeviceProgram).
  virtual absl::Status AttachDeviceProgram(const std::string& dir, const DeviceProgram& program) = 0;
};

// The host's filesystem and signals.
std::shared_ptr<Fs> HostFs();

}  // namespace crius::cgroups
