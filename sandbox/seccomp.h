// Seccomp profiles compiled to classic BPF. criusd compiles (it links
// libseccomp); the container's init only installs the bytes it is handed,
// so InstallProgram below is header-only and needs nothing but the kernel.
#pragma once

#include <errno.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace crius::sandbox {

struct SeccompProgram {
  // struct sock_filter[] as bytes, as seccomp_export_bpf writes it, for the
  // native architecture plus the compat ones the profile names.
  std::string bpf;
  // The profile asked for SECCOMP_FILTER_FLAG_LOG.
  bool log_flag = false;
};

// The moby/containerd default profile. `caps` is the container's final
// capability set (CAP_* numbers); rules conditioned on a capability apply
// only when it is there.
absl::StatusOr<SeccompProgram> RuntimeDefaultProgram(const std::vector<int>& caps);

// An OCI runtime-spec seccomp profile (config-linux.md#seccomp) as JSON, as
// kubelet's Localhost profiles are written; moby's format ("archMap",
// "includes"/"excludes" on syscall entries) is accepted too. Bad input is
// InvalidArgument starting with `field`, which names the profile.
absl::StatusOr<SeccompProgram> CompileProfile(absl::string_view json, const std::vector<int>& caps,
                                              absl::string_view field);

// Installs `bpf` as a seccomp filter on the calling thread. Setting
// no_new_privs (or holding CAP_SYS_ADMIN) is the caller's job. Returns 0 or
// an errno. Allocates nothing, so it is safe in a freshly cloned child.
inline int InstallProgram(const char* bpf, size_t size, bool log_flag) {
  size_t count = size / sizeof(struct sock_filter);
  if (size % sizeof(struct sock_filter) != 0 || count == 0 || count > BPF_MAXINSNS) return EINVAL;
  // The kernel copies the program, so the cast away from const is harmless.
  struct sock_fprog prog = {static_cast<unsigned short>(count),
                            reinterpret_cast<struct sock_filter*>(const_cast<char*>(bpf))};
  unsigned int flags = log_flag ? SECCOMP_FILTER_FLAG_LOG : 0;
  if (::syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, flags, &prog) != 0) return errno;
  return 0;
}

// The profile as both entry points hand it to the compiler: conditions
// (capabilities, architecture, kernel) already resolved, names validated.
// Exposed for seccomp_default.cc and tests, not for other callers.
namespace seccomp_internal {

enum class Action { kKillThread, kKillProcess, kTrap, kErrno, kTrace, kAllow, kLog };
enum class Op { kNotEqual, kLess, kLessOrEqual, kEqual, kGreaterOrEqual, kGreater, kMaskedEqual };

struct Arg {
  unsigned int index = 0;
  uint64_t value = 0;
  uint64_t value_two = 0;
  Op op = Op::kEqual;
};

struct Rule {
  std::vector<std::string> names;
  Action action = Action::kAllow;
  // For kErrno and kTrace: the errno / the tracer's data.
  uint32_t errno_ret = EPERM;
  std::vector<Arg> args;
};

struct Profile {
  Action default_action = Action::kErrno;
  uint32_t default_errno_ret = EPERM;
  // libseccomp's names ("x86", "x32") besides the native one.
  std::vector<std::string> arches;
  bool log_flag = false;
  std::vector<Rule> rules;
};

// The default profile resolved for `caps` on this host (seccomp_default.cc).
Profile RuntimeDefaultProfile(const std::vector<int>& caps);

// This host's architecture as moby's "arches" filters name it ("amd64" on
// x86-64), and whether the running kernel is at least major.minor.
absl::string_view NativeMobyArch();
bool KernelAtLeast(unsigned int major, unsigned int minor);

absl::StatusOr<SeccompProgram> Compile(const Profile& profile, absl::string_view field);

}  // namespace seccomp_internal
}  // namespace crius::sandbox
