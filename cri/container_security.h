// The security side of a container's spec, from the CRI security contexts:
// capabilities, privileged, no_new_privs, masked and read-only paths,
// supplemental groups policy, seccomp; and the pod's sysctls. Everything is
// validated here, at the edge; the monitor applies what it is given.
#pragma once

#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "api.pb.h"
#include "monitor.pb.h"

namespace crius::cri {

namespace v1 = ::runtime::v1;

// containerd's default capability set, by CAP_* number.
const std::vector<int>& DefaultCapabilities();

// The container's capability set: the default (every capability when
// privileged), then add/drop as containerd applies them ("ALL" included,
// names with or without "CAP_"). InvalidArgument naming the entry for an
// unknown capability.
absl::StatusOr<std::vector<int>> Capabilities(const v1::LinuxContainerSecurityContext& sc);

// Fills the security fields of `spec` from the container's security
// context. `pod` is the pod's config (a privileged container needs a
// privileged pod).
absl::Status ApplySecurityContext(const v1::ContainerConfig& config, const v1::PodSandboxConfig& pod,
                                  crius::monitor::ContainerSpec* spec);

// The seccomp profile the container runs under, compiled into the spec:
// none when privileged or Unconfined (or nothing asked, as containerd
// does), RuntimeDefault (moby's default profile), or a Localhost profile
// file (an OCI seccomp JSON). Needs the spec's capabilities set first: the
// default profile opens syscalls by capability. InvalidArgument naming the
// field for a profile that is missing, unreadable or invalid.
absl::Status ApplySeccomp(const v1::ContainerConfig& config, crius::monitor::ContainerSpec* spec);

// The CRI devices as nodes to make: each host_path must be a character or
// block device (a directory: every device directly in it), permissions a
// non-empty subset of "rwm". InvalidArgument naming config.devices[i]. A
// privileged container also gets every device of the node's /dev, as
// under containerd.
absl::Status ApplyDevices(const v1::ContainerConfig& config, crius::monitor::ContainerSpec* spec);

// The pod's sysctls, checked: only namespaced ones (net.* unless the pod
// uses the node's network; kernel.shm*, kernel.msg*, kernel.sem and
// fs.mqueue.* unless it uses the node's IPC), with keys and values that
// cannot escape /proc/sys. Sorted by key.
absl::StatusOr<std::vector<std::pair<std::string, std::string>>> PodSysctls(
    const v1::PodSandboxConfig& pod);

}  // namespace crius::cri
