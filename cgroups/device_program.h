// The cgroup v2 device policy. v2 has no devices.allow: the kernel asks a
// BPF_PROG_TYPE_CGROUP_DEVICE program attached to the cgroup (and to each of
// its ancestors) whether an open or mknod of a device may go on. The program
// built here allows what one of its rules matches and denies the rest, as the
// v1 devices cgroup does after "a" is denied.
#pragma once

#include <linux/bpf.h>

#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "cgroups/resources.h"

namespace crius::cgroups {

// The name crius gives its device programs, so that a new policy replaces
// only the program crius attached before (the kernel keeps 15 characters).
inline constexpr char kDeviceProgramName[] = "crius_devices";

struct DeviceProgram {
  std::vector<bpf_insn> insns;
};

// Default deny, allowing what any rule of `allow` matches: its type ('a': any),
// major and minor (-1: any) and every access asked for within its "rwm".
// A rule with another type, an access outside "rwm" or empty, or a number
// beyond 32 bits is InvalidArgument naming the rule.
absl::StatusOr<DeviceProgram> BuildDeviceProgram(const std::vector<DeviceRule>& allow);

// Loads `program` and attaches it to the cgroup directory open at `cgroup_fd`
// (BPF_F_ALLOW_MULTI: the ancestors' programs still apply), then detaches the
// programs named kDeviceProgramName attached there before: the cgroup is never
// without a policy. `what` names the cgroup in errors.
absl::Status AttachDeviceProgram(int cgroup_fd, const DeviceProgram& program, const std::string& what);

}  // namespace crius::cgroups
