// The RuntimeDefault profile: the syscalls moby's and containerd's default
// profile lets a container make, as our own table. Everything not listed
// fails with EPERM; entries conditioned on a capability open what that
// capability is meant to grant, since the filter would otherwise take away
// what the capability set gives.
#include <errno.h>
#include <linux/capability.h>
#include <sched.h>
#include <sys/socket.h>

#include <algorithm>
#include <span>

#include "sandbox/seccomp.h"

namespace crius::sandbox::seccomp_internal {
namespace {

using Names = std::span<const absl::string_view>;
using Args = std::span<const Arg>;

// ---- Always allowed ----

constexpr absl::string_view kFiles[] = {
    "access", "cachestat", "chdir", "chmod", "chown", "chown32", "close", "close_range",
    "copy_file_range", "creat", "dup", "dup2", "dup3", "faccessat", "faccessat2", "fadvise64",
    "fadvise64_64", "fallocate", "fchdir", "fchmod", "fchmodat", "fchmodat2", "fchown", "fchown32",
    "fchownat", "fcntl", "fcntl64", "fdatasync", "flock", "fstat", "fstat64", "fstatat64",
    "fstatfs", "fstatfs64", "fsync", "ftruncate", "ftruncate64", "futimesat", "getcwd", "getdents",
    "getdents64", "ioctl", "lchown", "lchown32", "link", "linkat", "listmount", "_llseek",
    "lseek", "lstat", "lstat64", "mkdir", "mkdirat", "mknod", "mknodat", "name_to_handle_at",
    "newfstatat", "open", "openat", "openat2", "pipe", "pipe2", "pread64", "preadv",
    "preadv2", "pwrite64", "pwritev", "pwritev2", "read", "readahead", "readlink", "readlinkat",
    "readv", "rename", "renameat", "renameat2", "rmdir", "sendfile", "sendfile64", "splice",
    "stat", "stat64", "statfs", "statfs64", "statmount", "statx", "symlink", "symlinkat",
    "sync", "sync_file_range", "syncfs", "tee", "truncate", "truncate64", "umask", "unlink",
    "unlinkat", "utime", "utimensat", "utimensat_time64", "utimes", "vmsplice", "write", "writev",
};

constexpr absl::string_view kXattrs[] = {
    "fgetxattr", "flistxattr", "fremovexattr", "fsetxattr", "getxattr", "getxattrat",
    "lgetxattr", "listxattr", "listxattrat", "llistxattr", "lremovexattr", "lsetxattr",
    "removexattr", "removexattrat", "setxattr", "setxattrat",
};

// Waiting on descriptors and the descriptors made for waiting.
constexpr absl::string_view kEvents[] = {
    "_newselect", "epoll_create", "epoll_create1", "epoll_ctl", "epoll_ctl_old", "epoll_pwait",
    "epoll_pwait2", "epoll_wait", "epoll_wait_old", "eventfd", "eventfd2", "fanotify_mark",
    "inotify_add_watch", "inotify_init", "inotify_init1", "inotify_rm_watch", "poll", "ppoll",
    "ppoll_time64", "pselect6", "pselect6_time64", "select", "signalfd", "signalfd4",
    "timerfd_create", "timerfd_gettime", "timerfd_gettime64", "timerfd_settime", "timerfd_settime64",
};

constexpr absl::string_view kAsyncIo[] = {
    "io_cancel", "io_destroy", "io_getevents", "io_pgetevents", "io_pgetevents_time64",
    "io_setup", "io_submit", "ioprio_get", "ioprio_set",
};

// Processes and threads within the container's own namespaces. clone and
// clone3 are conditional, below.
constexpr absl::string_view kProcesses[] = {
    "capget", "capset", "execve", "execveat", "exit", "exit_group", "fork", "futex",
    "futex_requeue", "futex_time64", "futex_wait", "futex_waitv", "futex_wake", "get_robust_list",
    "get_thread_area", "getcpu", "getpgid", "getpgrp", "getpid", "getppid", "getpriority",
    "getrandom", "getrlimit", "getrusage", "getsid", "gettid", "kill", "landlock_add_rule",
    "landlock_create_ruleset", "landlock_restrict_self", "map_shadow_stack", "membarrier",
    "pidfd_open", "pidfd_send_signal", "prctl", "prlimit64", "process_mrelease", "restart_syscall",
    "riscv_hwprobe", "rseq", "seccomp", "set_robust_list", "set_thread_area", "set_tid_address",
    "setpgid", "setpriority", "setrlimit", "setsid", "sysinfo", "tgkill", "times", "tkill",
    "ugetrlimit", "uname", "uretprobe", "vfork", "wait4", "waitid", "waitpid",
};

constexpr absl::string_view kScheduling[] = {
    "sched_get_priority_max", "sched_get_priority_min", "sched_getaffinity", "sched_getattr",
    "sched_getparam", "sched_getscheduler", "sched_rr_get_interval", "sched_rr_get_interval_time64",
    "sched_setaffinity", "sched_setattr", "sched_setparam", "sched_setscheduler", "sched_yield",
};

constexpr absl::string_view kSignals[] = {
    "alarm", "pause", "rt_sigaction", "rt_sigpending", "rt_sigprocmask", "rt_sigqueueinfo",
    "rt_sigreturn", "rt_sigsuspend", "rt_sigtimedwait", "rt_sigtimedwait_time64",
    "rt_tgsigqueueinfo", "sigaltstack", "sigprocmask", "sigreturn",
};

// mlock is bounded by RLIMIT_MEMLOCK, not by the filter.
constexpr absl::string_view kMemory[] = {
    "brk", "madvise", "memfd_create", "memfd_secret", "mincore", "mlock", "mlock2", "mlockall",
    "mmap", "mmap2", "mprotect", "mremap", "mseal", "msync", "munlock", "munlockall", "munmap",
    "pkey_alloc", "pkey_free", "pkey_mprotect", "remap_file_pages",
};

// Reading clocks and timers; adjtimex/clock_adjtime only read without
// CAP_SYS_TIME, setting the clock is conditional below.
constexpr absl::string_view kTime[] = {
    "adjtimex", "clock_adjtime", "clock_adjtime64", "clock_getres", "clock_getres_time64",
    "clock_gettime", "clock_gettime64", "clock_nanosleep", "clock_nanosleep_time64", "getitimer",
    "gettimeofday", "nanosleep", "setitimer", "time", "timer_create", "timer_delete",
    "timer_getoverrun", "timer_gettime", "timer_gettime64", "timer_settime", "timer_settime64",
};

// Changing ids stays within what CAP_SETUID/CAP_SETGID allow.
constexpr absl::string_view kCredentials[] = {
    "getegid", "getegid32", "geteuid", "geteuid32", "getgid", "getgid32", "getgroups",
    "getgroups32", "getresgid", "getresgid32", "getresuid", "getresuid32", "getuid", "getuid32",
    "setfsgid", "setfsgid32", "setfsuid", "setfsuid32", "setgid", "setgid32", "setgroups",
    "setgroups32", "setregid", "setregid32", "setresgid", "setresgid32", "setresuid",
    "setresuid32", "setreuid", "setreuid32", "setuid", "setuid32",
};

// Everything on a socket once it exists; socket(2) itself is filtered by
// family below. socketcall is i386's multiplexer and bypasses that filter,
// as it does in moby's profile.
constexpr absl::string_view kSockets[] = {
    "accept", "accept4", "bind", "connect", "getpeername", "getsockname", "getsockopt", "listen",
    "recv", "recvfrom", "recvmmsg", "recvmmsg_time64", "recvmsg", "send", "sendmmsg", "sendmsg",
    "sendto", "setsockopt", "shutdown", "socketcall", "socketpair",
};

// SysV and POSIX IPC: the container has its own IPC namespace.
constexpr absl::string_view kIpc[] = {
    "ipc", "mq_getsetattr", "mq_notify", "mq_open", "mq_timedreceive", "mq_timedreceive_time64",
    "mq_timedsend", "mq_timedsend_time64", "mq_unlink", "msgctl", "msgget", "msgrcv", "msgsnd",
    "semctl", "semget", "semop", "semtimedop", "semtimedop_time64", "shmat", "shmctl", "shmdt",
    "shmget",
};

// ---- Allowed with an argument check ----

constexpr absl::string_view kSocket[] = {"socket"};
// AF_ALG (38, kernel crypto) and AF_VSOCK (40, the host's vsock) are
// refused, as recent moby does; 39 (AF_NFC) stays open.
static_assert(AF_ALG == 38 && AF_VSOCK == 40);
constexpr Arg kSocketBelowAlg[] = {{.index = 0, .value = AF_ALG, .op = Op::kLess}};
constexpr Arg kSocketBetween[] = {{.index = 0, .value = AF_ALG + 1, .op = Op::kEqual}};
constexpr Arg kSocketAboveVsock[] = {{.index = 0, .value = AF_VSOCK, .op = Op::kGreater}};

// personality(2) only for Linux, its 32-bit variant, ADDR_NO_RANDOMIZE on
// either, and the query.
constexpr absl::string_view kPersonality[] = {"personality"};
constexpr Arg kPerLinux[] = {{.index = 0, .value = 0x0, .op = Op::kEqual}};
constexpr Arg kPerLinux32[] = {{.index = 0, .value = 0x8, .op = Op::kEqual}};
constexpr Arg kPerLinuxNoRandom[] = {{.index = 0, .value = 0x20000, .op = Op::kEqual}};
constexpr Arg kPerLinux32NoRandom[] = {{.index = 0, .value = 0x20008, .op = Op::kEqual}};
constexpr Arg kPerQuery[] = {{.index = 0, .value = 0xffffffff, .op = Op::kEqual}};

// clone without namespace flags, for containers that may not make namespaces.
constexpr absl::string_view kClone[] = {"clone"};
constexpr uint64_t kNamespaceFlags =
    CLONE_NEWNS | CLONE_NEWUTS | CLONE_NEWIPC | CLONE_NEWUSER | CLONE_NEWPID | CLONE_NEWNET | CLONE_NEWCGROUP;
static_assert(kNamespaceFlags == 0x7E020000);
constexpr Arg kCloneFlags[] = {{.index = 0, .value = kNamespaceFlags, .value_two = 0, .op = Op::kMaskedEqual}};
// s390 passes clone's stack first and its flags second.
constexpr Arg kCloneFlagsS390[] = {{.index = 1, .value = kNamespaceFlags, .value_two = 0, .op = Op::kMaskedEqual}};
// clone3 passes its flags in memory the filter cannot read: ENOSYS makes
// libc fall back to clone, whose flags it can.
constexpr absl::string_view kClone3[] = {"clone3"};

// ---- Per architecture ----

constexpr absl::string_view kPpc64le[] = {"swapcontext", "sync_file_range2"};
constexpr absl::string_view kArm[] = {"arm_fadvise64_64", "arm_sync_file_range", "breakpoint",
                                      "cacheflush",       "set_tls",             "sync_file_range2"};
constexpr absl::string_view kArchPrctl[] = {"arch_prctl"};
constexpr absl::string_view kModifyLdt[] = {"modify_ldt"};
constexpr absl::string_view kS390[] = {"s390_pci_mmio_read", "s390_pci_mmio_write", "s390_runtime_instr"};
constexpr absl::string_view kRiscv[] = {"riscv_flush_icache"};

// ---- Granted with a capability ----

// Since 4.8 ptrace cannot be used to escape seccomp, so moby allows it
// without CAP_SYS_PTRACE (ptrace's own checks still apply).
constexpr absl::string_view kPtraceBasic[] = {"process_vm_readv", "process_vm_writev", "ptrace"};
constexpr absl::string_view kDacReadSearch[] = {"open_by_handle_at"};
constexpr absl::string_view kSysAdmin[] = {
    "bpf", "clone", "clone3", "fanotify_init", "fsconfig", "fsmount", "fsopen", "fspick",
    "lookup_dcookie", "lsm_get_self_attr", "lsm_list_modules", "lsm_set_self_attr", "mount",
    "mount_setattr", "move_mount", "open_tree", "perf_event_open", "quotactl", "quotactl_fd",
    "setdomainname", "sethostname", "setns", "syslog", "umount", "umount2", "unshare",
};
constexpr absl::string_view kSysBoot[] = {"reboot"};
constexpr absl::string_view kSysChroot[] = {"chroot"};
constexpr absl::string_view kSysModule[] = {"delete_module", "finit_module", "init_module"};
constexpr absl::string_view kSysPacct[] = {"acct"};
constexpr absl::string_view kSysPtrace[] = {"kcmp", "pidfd_getfd", "process_madvise",
                                            "process_vm_readv", "process_vm_writev", "ptrace"};
constexpr absl::string_view kSysRawio[] = {"ioperm", "iopl"};
constexpr absl::string_view kSysTime[] = {"clock_settime", "clock_settime64", "settimeofday", "stime"};
constexpr absl::string_view kSysTtyConfig[] = {"vhangup"};
constexpr absl::string_view kSysNice[] = {"get_mempolicy", "mbind", "set_mempolicy", "set_mempolicy_home_node"};
constexpr absl::string_view kSyslog[] = {"syslog"};
constexpr absl::string_view kBpf[] = {"bpf"};
constexpr absl::string_view kPerfmon[] = {"perf_event_open"};

struct Entry {
  Names names;
  Action action = Action::kAllow;
  uint32_t errno_ret = EPERM;
  Args args = {};
  int with_cap = -1;               // only when the container has it
  int without_cap = -1;            // only when it does not
  Names arches = {};               // only on these hosts (moby's names); empty: all
  Names not_arches = {};           // never on these hosts
  unsigned min_kernel[2] = {0, 0};  // only on this kernel or newer
};

constexpr absl::string_view kAmd64Family[] = {"amd64", "x32"};
constexpr absl::string_view kX86Family[] = {"amd64", "x32", "x86"};
constexpr absl::string_view kArmFamily[] = {"arm", "arm64"};
constexpr absl::string_view kPpc64leArch[] = {"ppc64le"};
constexpr absl::string_view kS390Family[] = {"s390", "s390x"};
constexpr absl::string_view kRiscvArch[] = {"riscv64"};

constexpr Entry kProfile[] = {
    {.names = kFiles},
    {.names = kXattrs},
    {.names = kEvents},
    {.names = kAsyncIo},
    {.names = kProcesses},
    {.names = kScheduling},
    {.names = kSignals},
    {.names = kMemory},
    {.names = kTime},
    {.names = kCredentials},
    {.names = kSockets},
    {.names = kIpc},
    {.names = kPtraceBasic, .min_kernel = {4, 8}},

    {.names = kSocket, .args = kSocketBelowAlg},
    {.names = kSocket, .args = kSocketBetween},
    {.names = kSocket, .args = kSocketAboveVsock},
    {.names = kPersonality, .args = kPerLinux},
    {.names = kPersonality, .args = kPerLinux32},
    {.names = kPersonality, .args = kPerLinuxNoRandom},
    {.names = kPersonality, .args = kPerLinux32NoRandom},
    {.names = kPersonality, .args = kPerQuery},

    {.names = kPpc64le, .arches = kPpc64leArch},
    {.names = kArm, .arches = kArmFamily},
    {.names = kArchPrctl, .arches = kAmd64Family},
    {.names = kModifyLdt, .arches = kX86Family},
    {.names = kS390, .arches = kS390Family},
    {.names = kRiscv, .arches = kRiscvArch},

    {.names = kDacReadSearch, .with_cap = CAP_DAC_READ_SEARCH},
    {.names = kSysAdmin, .with_cap = CAP_SYS_ADMIN},
    {.names = kClone, .args = kCloneFlags, .without_cap = CAP_SYS_ADMIN, .not_arches = kS390Family},
    {.names = kClone, .args = kCloneFlagsS390, .without_cap = CAP_SYS_ADMIN, .arches = kS390Family},
    {.names = kClone3, .action = Action::kErrno, .errno_ret = ENOSYS, .without_cap = CAP_SYS_ADMIN},
    {.names = kSysBoot, .with_cap = CAP_SYS_BOOT},
    {.names = kSysChroot, .with_cap = CAP_SYS_CHROOT},
    {.names = kSysModule, .with_cap = CAP_SYS_MODULE},
    {.names = kSysPacct, .with_cap = CAP_SYS_PACCT},
    {.names = kSysPtrace, .with_cap = CAP_SYS_PTRACE},
    {.names = kSysRawio, .with_cap = CAP_SYS_RAWIO},
    {.names = kSysTime, .with_cap = CAP_SYS_TIME},
    {.names = kSysTtyConfig, .with_cap = CAP_SYS_TTY_CONFIG},
    {.names = kSysNice, .with_cap = CAP_SYS_NICE},
    {.names = kSyslog, .with_cap = CAP_SYSLOG},
    {.names = kBpf, .with_cap = CAP_BPF},
    {.names = kPerfmon, .with_cap = CAP_PERFMON},
};

// moby's archMap: the compat architectures each native one runs.
std::vector<std::string> CompatArches() {
  absl::string_view native = NativeMobyArch();
  if (native == "amd64") return {"x86", "x32"};
  if (native == "arm64") return {"arm"};
  if (native == "s390x") return {"s390"};
  return {};
}

bool Contains(Names names, absl::string_view name) {
  return std::find(names.begin(), names.end(), name) != names.end();
}

}  // namespace

Profile RuntimeDefaultProfile(const std::vector<int>& caps) {
  auto has = [&caps](int cap) { return std::find(caps.begin(), caps.end(), cap) != caps.end(); };
  Profile profile;
  profile.default_action = Action::kErrno;
  profile.default_errno_ret = EPERM;
  profile.arches = CompatArches();
  for (const Entry& entry : kProfile) {
    if (entry.with_cap >= 0 && !has(entry.with_cap)) continue;
    if (entry.without_cap >= 0 && has(entry.without_cap)) continue;
    if (!entry.arches.empty() && !Contains(entry.arches, NativeMobyArch())) continue;
    if (Contains(entry.not_arches, NativeMobyArch())) continue;
    if (entry.min_kernel[0] != 0 && !KernelAtLeast(entry.min_kernel[0], entry.min_kernel[1])) continue;
    Rule rule;
    for (absl::string_view name : entry.names) rule.names.emplace_back(name);
    rule.action = entry.action;
    rule.errno_ret = entry.errno_ret;
    rule.args.assign(entry.args.begin(), entry.args.end());
    profile.rules.push_back(std::move(rule));
  }
  return profile;
}

}  // namespace crius::sandbox::seccomp_internal
