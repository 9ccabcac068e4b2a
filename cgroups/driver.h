// The cgroupfs driver: one per daemon, chosen at start from what the host
// mounts at /sys/fs/cgroup (v1 or v2), so nothing else branches on the version.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "cgroups/fs.h"
#include "cgroups/resources.h"
#include "common/unique_fd.h"

namespace crius::cgroups {

// One sample, read from cgroup files only: what the CRI's stats carry, and
// no more (every file is an open and a read, for each of 1000 containers).
// A controller the host does not have reads as zero.
struct Stats {
  int64_t timestamp_ns = 0;  // wall clock
  uint64_t cpu_usage_ns = 0;
  uint64_t memory_usage_bytes = 0;
  uint64_t memory_working_set_bytes = 0;  // usage - inactive_file, floored at 0
  uint64_t memory_rss_bytes = 0;          // anonymous memory
  uint64_t page_faults = 0;
  uint64_t major_page_faults = 0;
};

// `path` is absolute within the hierarchy, as kubelet's cgroup_parent plus a
// leaf: "/kubepods/burstable/pod123/<container-id>". A path that is not
// absolute, is "/", or has empty, "." or ".." parts is InvalidArgument.
// A driver keeps nothing but what Detect found: any thread may call it.
class Driver {
 public:
  // v2 when <root> is a cgroup2 mount (cgroup.controllers present), else v1
  // with one mount per controller set under <root> (cpu,cpuacct; memory; ...).
  // An empty cgroup2 beside them (<root>/unified, "hybrid") is still v1.
  static absl::StatusOr<std::unique_ptr<Driver>> Detect(const std::string& root = "/sys/fs/cgroup");
  // The same against `fs`, with the machine read below `sys_root`.
  static absl::StatusOr<std::unique_ptr<Driver>> Detect(std::shared_ptr<Fs> fs, const std::string& root,
                                                        const std::string& sys_root = "/sys");

  virtual ~Driver() = default;

  virtual int version() const = 0;  // 1 or 2
  // What Validate checks resources against.
  virtual const Machine& machine() const = 0;

  // Creates the missing levels of `path`. v1: in every hierarchy, giving each
  // new cpuset level its parent's cpus and mems; v2: enabling the controllers
  // the drivers write in each ancestor's cgroup.subtree_control first.
  virtual absl::Status Create(const std::string& path) = 0;
  // Validates `r`, then writes what is set and nothing else; used again for
  // UpdateContainerResources.
  virtual absl::Status Apply(const std::string& path, const Resources& r) = 0;
  // Moves `pid` into the cgroup (every hierarchy on v1).
  virtual absl::Status AddProcess(const std::string& path, pid_t pid) = 0;
  // v2: the cgroup directory, for clone3(CLONE_INTO_CGROUP). v1: Unimplemented.
  virtual absl::StatusOr<UniqueFd> OpenDir(const std::string& path) = 0;
  // Removes the cgroup and any cgroups below it, deepest first, in every
  // hierarchy; already gone is fine. Processes left: FailedPrecondition
  // naming the cgroup.
  virtual absl::Status Remove(const std::string& path) = 0;
  // Removes the cgroup only if nothing is in it (no process, no child
  // cgroup), in every hierarchy; otherwise leaves it. For shared parents.
  // true when it is gone from every hierarchy (already gone included).
  virtual bool RemoveIfEmpty(const std::string& path) = 0;

  virtual absl::StatusOr<Stats> ReadStats(const std::string& path) = 0;
  // pids.current: the processes and threads in the cgroup and below; 0
  // without the pids controller.
  virtual absl::StatusOr<uint64_t> ProcessCount(const std::string& path) = 0;
  // OOM kills in the cgroup and below (v2 memory.events, v1 memory.oom_control).
  virtual absl::StatusOr<uint64_t> OomKills(const std::string& path) = 0;
  // Every process in the cgroup and the cgroups below it. NotFound when the
  // cgroup does not exist.
  virtual absl::StatusOr<std::vector<pid_t>> Pids(const std::string& path) = 0;
  // SIGKILLs every process in the cgroup and below, freezing it first where
  // the kernel allows (v2 cgroup.kill when present), and waits until none is
  // left (the caller still reaps its own children). DeadlineExceeded naming
  // the survivors after a few seconds.
  virtual absl::Status KillAll(const std::string& path) = 0;

  // The files a pid is written to so that the process joins the cgroup:
  // every v1 hierarchy's cgroup.procs, v2's one.
  virtual std::vector<std::string> ProcsFiles(const std::string& path) const = 0;
  // The file whose "oom_kill N" line counts the cgroup's OOM kills (v2
  // memory.events, v1 memory.oom_control); "" without a memory controller.
  virtual std::string OomEventsFile(const std::string& path) const = 0;
  // Deny every device, then allow DefaultAllowedDevices() and `allow`.
  // v1: the devices cgroup; v2: a BPF device program (device_program.h).
  virtual absl::Status SetDevicePolicy(const std::string& path, const std::vector<DeviceRule>& allow) = 0;
};

}  // namespace crius::cgroups
