// What a container may use (kubelet's LinuxContainerResources in plain types),
// what this machine offers, and the checks and unit conversions between them.
#pragma once

#include <cstdint>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "cgroups/fs.h"

namespace crius::cgroups {

// Zero (or empty) means unset: the driver leaves that file alone.
struct Resources {
  int64_t cpu_period = 0;  // us
  int64_t cpu_quota = 0;   // us per period
  int64_t cpu_shares = 0;
  int64_t memory_limit_in_bytes = 0;
  int64_t memory_swap_limit_in_bytes = 0;  // memory plus swap; -1 = unlimited swap
  std::string cpuset_cpus;
  std::string cpuset_mems;
  // Page size as kubelet writes it ("2MB", "1GB") -> bytes. Zero is a limit.
  std::map<std::string, int64_t> hugepage_limits;
  // cgroup v2 file -> value, written verbatim after everything else.
  std::map<std::string, std::string> unified;
  int64_t pids_limit = 0;  // -1 = max
};

// What Validate checks against; read once when the driver is detected.
struct Machine {
  int cgroup_version = 2;
  std::set<int> online_cpus;
  std::set<int> online_mems;
  std::string online_cpus_text;  // as the kernel lists them, for messages
  std::string online_mems_text;
  std::vector<std::string> hugepage_sizes;  // "2MB", "1GB"
  bool swap_accounting = false;
};

// Online cpus and memory nodes (<sys_root>/devices/system/{cpu,node}/online;
// no node list means a single node 0) and hugepage sizes
// (<sys_root>/kernel/mm/hugepages). Version and swap accounting are the
// driver's to fill in.
absl::StatusOr<Machine> ReadMachine(Fs& fs, const std::string& sys_root = "/sys");

// InvalidArgument naming the CRI field ("linux.resources.cpu_quota: ...").
absl::Status Validate(const Resources& r, const Machine& m);

// A kernel cpu/node list ("0-3,8,10-11"); whitespace around it is ignored.
absl::StatusOr<std::set<int>> ParseCpuList(absl::string_view list);

// cgroup v1 cpu.shares (2..262144) to v2 cpu.weight (1..10000), as runc and crun map it.
uint64_t SharesToWeight(int64_t shares);

// The v2 cpu.max value: "quota period", "max period" for a period alone, ""
// when neither is set.
std::string CpuMaxValue(int64_t quota, int64_t period);

// The v2 memory.swap.max value for a CRI memory+swap limit: "max" for -1,
// else swap - memory. Validate has made sure it is not negative.
std::string SwapMaxValue(int64_t memory_limit, int64_t memory_swap_limit);

// "2MB" for 2048 KiB, "1GB" for 1048576 KiB: the kernel's hugetlb file names.
std::string HugepageSizeName(uint64_t kib);

// One rule of a device policy, as the v1 devices cgroup writes it:
// "c 1:3 rwm", "b *:* m". A major or minor of -1 is "*".
struct DeviceRule {
  char type = 'a';  // 'c', 'b' or 'a' (all)
  int64_t major = -1;
  int64_t minor = -1;
  std::string access = "rwm";
  std::string ToString() const;  // "c 1:3 rwm"
};

// The standard allow list (runc's and containerd's): mknod of any node;
// null, zero, full, random, urandom, tty, console, ptmx, the pts and tun.
const std::vector<DeviceRule>& DefaultAllowedDevices();

}  // namespace crius::cgroups
