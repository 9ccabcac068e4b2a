#include "sandbox/seccomp.h"

#include <fcntl.h>
#include <linux/capability.h>
#include <linux/sched.h>
#include <sched.h>
#include <signal.h>
#include <sys/mount.h>
#include <sys/personality.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>

#include <cstring>
#include <functional>
#include <string>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "absl/strings/str_cat.h"

namespace crius::sandbox {
namespace {

using ::testing::HasSubstr;
using ::testing::StartsWith;

constexpr char kField[] = "linux.security_context.seccomp.localhost_ref \"/p.json\"";

// Runs `body` in a forked child, under `program` when given, and returns
// what the child reported: empty when every check in it passed.
std::string RunInChild(const SeccompProgram* program, const std::function<std::string()>& body) {
  int fds[2];
  if (::pipe2(fds, O_CLOEXEC) != 0) return "pipe2 failed";
  pid_t pid = ::fork();
  if (pid < 0) return "fork failed";
  if (pid == 0) {
    ::close(fds[0]);
    std::string verdict;
    if (program != nullptr) {
      if (::prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) verdict = "prctl(NO_NEW_PRIVS) failed";
      int err = verdict.empty() ? InstallProgram(program->bpf.data(), program->bpf.size(), program->log_flag) : 0;
      if (err != 0) verdict = absl::StrCat("InstallProgram: ", strerror(err));
    }
    if (verdict.empty()) verdict = body();
    if (!verdict.empty()) (void)!::write(fds[1], verdict.data(), verdict.size());
    ::_exit(verdict.empty() ? 0 : 1);
  }
  ::close(fds[1]);
  std::string out;
  char buf[512];
  ssize_t n;
  while ((n = ::read(fds[0], buf, sizeof buf)) > 0) out.append(buf, static_cast<size_t>(n));
  ::close(fds[0]);
  int status = 0;
  ::waitpid(pid, &status, 0);
  if (!WIFEXITED(status)) return absl::StrCat("child killed by signal ", WTERMSIG(status), "; ", out);
  if (WEXITSTATUS(status) != 0 && out.empty()) return absl::StrCat("child exited ", WEXITSTATUS(status));
  return out;
}

// For use in the child: `rc` (with errno read right away) must be -1/`want`.
std::string WantErrno(long rc, int want, const char* what) {
  int err = errno;
  if (rc == -1 && err == want) return "";
  return absl::StrCat(what, " returned ", rc, " (", rc == -1 ? strerror(err) : "no error", "), want ",
                      strerror(want), "; ");
}

std::string WantSuccess(long rc, const char* what) {
  int err = errno;
  if (rc != -1) return "";
  return absl::StrCat(what, " failed: ", strerror(err), "; ");
}

SeccompProgram Compiled(absl::string_view json, const std::vector<int>& caps = {}) {
  absl::StatusOr<SeccompProgram> program = CompileProfile(json, caps, kField);
  EXPECT_TRUE(program.ok()) << program.status();
  return program.ok() ? *program : SeccompProgram{};
}

bool IsRoot() { return ::geteuid() == 0; }

TEST(RuntimeDefaultTest, CompilesToWholeInstructions) {
  absl::StatusOr<SeccompProgram> program = RuntimeDefaultProgram({});
  ASSERT_TRUE(program.ok()) << program.status();
  EXPECT_GT(program->bpf.size(), 300 * sizeof(struct sock_filter));
  EXPECT_EQ(program->bpf.size() % sizeof(struct sock_filter), 0u);
  EXPECT_FALSE(program->log_flag);
}

TEST(RuntimeDefaultTest, RefusesNamespacesAndMountsButNotOrdinaryCalls) {
  absl::StatusOr<SeccompProgram> program = RuntimeDefaultProgram({CAP_CHOWN, CAP_SETUID, CAP_SETGID});
  ASSERT_TRUE(program.ok()) << program.status();
  EXPECT_EQ(RunInChild(&*program, [] {
              int fds[2];
              std::string v = WantSuccess(::pipe2(fds, 0), "pipe2");
              v += WantSuccess(::write(fds[1], "x", 1), "write");
              v += WantSuccess(::getpid(), "getpid");
              v += WantErrno(::unshare(CLONE_NEWUTS), EPERM, "unshare(CLONE_NEWUTS)");
              v += WantErrno(::setns(0, 0), EPERM, "setns");
              v += WantErrno(::mount("none", "/nonexistent-crius", "tmpfs", 0, nullptr), EPERM, "mount");
              v += WantErrno(::umount2("/nonexistent-crius", 0), EPERM, "umount2");
              return v;
            }),
            "");
}

// The EPERM above comes from the filter: as root, unfiltered, the same
// calls fail differently or succeed, and with CAP_SYS_ADMIN the filter lets
// them through.
TEST(RuntimeDefaultTest, SysAdminLetsNamespacesAndMountsThrough) {
  if (!IsRoot()) GTEST_SKIP() << "needs root to tell the filter from missing privileges";
  auto body = [] {
    std::string v = WantSuccess(::unshare(CLONE_NEWUTS), "unshare(CLONE_NEWUTS)");
    v += WantErrno(::mount("none", "/nonexistent-crius", "tmpfs", 0, nullptr), ENOENT, "mount");
    return v;
  };
  std::string unfiltered = RunInChild(nullptr, body);
  if (!unfiltered.empty()) GTEST_SKIP() << "this host refuses even unfiltered: " << unfiltered;
  absl::StatusOr<SeccompProgram> program = RuntimeDefaultProgram({CAP_SYS_ADMIN});
  ASSERT_TRUE(program.ok()) << program.status();
  EXPECT_EQ(RunInChild(&*program, body), "");
}

TEST(RuntimeDefaultTest, OtherCapabilitiesOpenTheirSyscalls) {
  if (!IsRoot()) GTEST_SKIP() << "needs root to tell the filter from missing privileges";
  auto body = [] { return WantSuccess(::chroot("/"), "chroot(/)"); };
  ASSERT_EQ(RunInChild(nullptr, body), "");
  absl::StatusOr<SeccompProgram> with = RuntimeDefaultProgram({CAP_SYS_CHROOT});
  absl::StatusOr<SeccompProgram> without = RuntimeDefaultProgram({});
  ASSERT_TRUE(with.ok() && without.ok());
  EXPECT_EQ(RunInChild(&*with, body), "");
  EXPECT_EQ(RunInChild(&*without, [] { return WantErrno(::chroot("/"), EPERM, "chroot(/)"); }), "");
}

TEST(RuntimeDefaultTest, CloneWithNamespaceFlagsIsRefusedPlainForkWorks) {
  absl::StatusOr<SeccompProgram> program = RuntimeDefaultProgram({});
  ASSERT_TRUE(program.ok()) << program.status();
  EXPECT_EQ(RunInChild(&*program, [] {
              std::string v;
              long rc = ::syscall(SYS_clone, CLONE_NEWNS | SIGCHLD, 0, 0, 0, 0);
              if (rc == 0) ::_exit(0);
              v += WantErrno(rc, EPERM, "clone(CLONE_NEWNS)");
              pid_t pid = ::fork();
              if (pid == 0) ::_exit(7);
              int status = 0;
              if (pid < 0 || ::waitpid(pid, &status, 0) != pid || !WIFEXITED(status) || WEXITSTATUS(status) != 7) {
                v += "plain fork did not work; ";
              }
              // clone3's flags are out of the filter's reach: ENOSYS sends libc back to clone.
              struct clone_args args = {};
              args.exit_signal = SIGCHLD;
              rc = ::syscall(SYS_clone3, &args, sizeof args);
              if (rc == 0) ::_exit(0);
              v += WantErrno(rc, ENOSYS, "clone3");
              return v;
            }),
            "");
}

TEST(RuntimeDefaultTest, SocketRefusesVsockAndAlgOnly) {
  absl::StatusOr<SeccompProgram> program = RuntimeDefaultProgram({});
  ASSERT_TRUE(program.ok()) << program.status();
  EXPECT_EQ(RunInChild(&*program, [] {
              std::string v = WantErrno(::socket(AF_VSOCK, SOCK_STREAM, 0), EPERM, "socket(AF_VSOCK)");
              v += WantErrno(::socket(AF_ALG, SOCK_SEQPACKET, 0), EPERM, "socket(AF_ALG)");
              v += WantSuccess(::socket(AF_UNIX, SOCK_STREAM, 0), "socket(AF_UNIX)");
              v += WantSuccess(::socket(AF_INET, SOCK_DGRAM, 0), "socket(AF_INET)");
              v += WantSuccess(::socket(AF_NETLINK, SOCK_RAW, 0), "socket(AF_NETLINK)");
              return v;
            }),
            "");
}

TEST(RuntimeDefaultTest, PersonalityOnlyWithStandardValues) {
  absl::StatusOr<SeccompProgram> program = RuntimeDefaultProgram({});
  ASSERT_TRUE(program.ok()) << program.status();
  EXPECT_EQ(RunInChild(&*program, [] {
              std::string v = WantSuccess(::personality(0xffffffff), "personality(query)");
              v += WantSuccess(::personality(PER_LINUX), "personality(PER_LINUX)");
              v += WantErrno(::personality(0x0400000), EPERM, "personality(READ_IMPLIES_EXEC)");
              return v;
            }),
            "");
}

TEST(LocalhostProfileTest, ErrnoRetIsReturnedOtherCallsWork) {
  SeccompProgram program = Compiled(R"({
    "defaultAction": "SCMP_ACT_ALLOW",
    "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"],
    "syscalls": [{"names": ["mkdir"], "action": "SCMP_ACT_ERRNO", "errnoRet": 38}]
  })");
  EXPECT_EQ(RunInChild(&program, [] {
              std::string v = WantErrno(::syscall(SYS_mkdir, "/tmp/crius-seccomp-never", 0700), ENOSYS, "mkdir");
              v += WantErrno(::syscall(SYS_rmdir, "/nonexistent-crius"), ENOENT, "rmdir");
              v += WantSuccess(::getpid(), "getpid");
              return v;
            }),
            "");
}

TEST(LocalhostProfileTest, ArgsFilterMatchesOnlyTheGivenValue) {
  SeccompProgram program = Compiled(R"({
    "defaultAction": "SCMP_ACT_ALLOW",
    "syscalls": [{"names": ["personality"], "action": "SCMP_ACT_ERRNO",
                  "args": [{"index": 0, "value": 4294967295, "op": "SCMP_CMP_EQ"}]}]
  })");
  EXPECT_EQ(RunInChild(&program, [] {
              std::string v = WantErrno(::personality(0xffffffff), EPERM, "personality(0xffffffff)");
              v += WantSuccess(::personality(PER_LINUX), "personality(PER_LINUX)");
              return v;
            }),
            "");
}

// runc's rule: conditions on one argument are alternatives.
TEST(LocalhostProfileTest, ArgsOnTheSameIndexAreOred) {
  SeccompProgram program = Compiled(R"({
    "defaultAction": "SCMP_ACT_ALLOW",
    "syscalls": [{"names": ["getpgid"], "action": "SCMP_ACT_ERRNO", "errnoRet": 77,
                  "args": [{"index": 0, "value": 1, "op": "SCMP_CMP_EQ"},
                           {"index": 0, "value": 2, "op": "SCMP_CMP_EQ"}]}]
  })");
  EXPECT_EQ(RunInChild(&program, [] {
              std::string v = WantErrno(::getpgid(1), EBADFD, "getpgid(1)");
              v += WantErrno(::getpgid(2), EBADFD, "getpgid(2)");
              v += WantSuccess(::getpgid(0), "getpgid(0)");
              return v;
            }),
            "");
}

// ...and conditions on different arguments must all hold.
TEST(LocalhostProfileTest, ArgsOnDifferentIndexesAreAnded) {
  SeccompProgram program = Compiled(R"({
    "defaultAction": "SCMP_ACT_ALLOW",
    "syscalls": [{"names": ["getpriority"], "action": "SCMP_ACT_ERRNO", "errnoRet": 77,
                  "args": [{"index": 0, "value": 1, "op": "SCMP_CMP_EQ"},
                           {"index": 1, "value": 4242, "op": "SCMP_CMP_EQ"}]}]
  })");
  EXPECT_EQ(RunInChild(&program, [] {
              std::string v = WantErrno(::syscall(SYS_getpriority, PRIO_PGRP, 4242), EBADFD, "getpriority(PGRP, 4242)");
              errno = 0;
              long rc = ::syscall(SYS_getpriority, PRIO_PROCESS, 4242);
              if (rc == -1 && errno == EBADFD) v += "getpriority(PROCESS, 4242) was filtered; ";
              v += WantSuccess(::syscall(SYS_getpriority, PRIO_PGRP, 0), "getpriority(PGRP, 0)");
              return v;
            }),
            "");
}

TEST(LocalhostProfileTest, MaskedEqualUsesValueAsMask) {
  SeccompProgram program = Compiled(R"({
    "defaultAction": "SCMP_ACT_ALLOW",
    "syscalls": [{"names": ["getpgid"], "action": "SCMP_ACT_ERRNO", "errnoRet": 77,
                  "args": [{"index": 0, "value": 240, "valueTwo": 16, "op": "SCMP_CMP_MASKED_EQ"}]}]
  })");
  EXPECT_EQ(RunInChild(&program, [] {
              std::string v = WantErrno(::getpgid(0x1f), EBADFD, "getpgid(0x1f)");
              errno = 0;
              if (::getpgid(0x20) == -1 && errno == EBADFD) v += "getpgid(0x20) was filtered; ";
              return v;
            }),
            "");
}

TEST(LocalhostProfileTest, UnknownSyscallNamesAreSkipped) {
  absl::StatusOr<SeccompProgram> with_unknown = CompileProfile(
      R"({"defaultAction": "SCMP_ACT_ALLOW",
          "syscalls": [{"names": ["no_such_syscall", "mkdir"], "action": "SCMP_ACT_ERRNO"}]})",
      {}, kField);
  ASSERT_TRUE(with_unknown.ok()) << with_unknown.status();
  SeccompProgram known_only = Compiled(R"({"defaultAction": "SCMP_ACT_ALLOW",
      "syscalls": [{"names": ["mkdir"], "action": "SCMP_ACT_ERRNO"}]})");
  EXPECT_EQ(with_unknown->bpf, known_only.bpf);
}

TEST(LocalhostProfileTest, RuleWithTheDefaultActionIsSkipped) {
  SeccompProgram same = Compiled(R"({"defaultAction": "SCMP_ACT_ERRNO",
      "syscalls": [{"names": ["getpid"], "action": "SCMP_ACT_ERRNO"},
                   {"names": ["read"], "action": "SCMP_ACT_ALLOW"}]})");
  SeccompProgram without = Compiled(R"({"defaultAction": "SCMP_ACT_ERRNO",
      "syscalls": [{"names": ["read"], "action": "SCMP_ACT_ALLOW"}]})");
  EXPECT_EQ(same.bpf, without.bpf);
  // Another errno is another action.
  SeccompProgram other = Compiled(R"({"defaultAction": "SCMP_ACT_ERRNO",
      "syscalls": [{"names": ["getpid"], "action": "SCMP_ACT_ERRNO", "errnoRet": 38},
                   {"names": ["read"], "action": "SCMP_ACT_ALLOW"}]})");
  EXPECT_NE(other.bpf, without.bpf);
}

TEST(LocalhostProfileTest, LogFlagIsReportedAndInstalls) {
  SeccompProgram program = Compiled(R"({"defaultAction": "SCMP_ACT_ALLOW",
      "flags": ["SECCOMP_FILTER_FLAG_LOG", "SECCOMP_FILTER_FLAG_TSYNC"],
      "syscalls": [{"names": ["mkdir"], "action": "SCMP_ACT_LOG"}]})");
  EXPECT_TRUE(program.log_flag);
  EXPECT_EQ(RunInChild(&program, [] { return WantSuccess(::getpid(), "getpid"); }), "");
  EXPECT_FALSE(Compiled(R"({"defaultAction": "SCMP_ACT_ALLOW"})").log_flag);
}

TEST(LocalhostProfileTest, LegacyNameIsAccepted) {
  SeccompProgram legacy = Compiled(R"({"defaultAction": "SCMP_ACT_ALLOW",
      "syscalls": [{"name": "mkdir", "action": "SCMP_ACT_ERRNO"}]})");
  SeccompProgram names = Compiled(R"({"defaultAction": "SCMP_ACT_ALLOW",
      "syscalls": [{"names": ["mkdir"], "action": "SCMP_ACT_ERRNO"}]})");
  EXPECT_EQ(legacy.bpf, names.bpf);
}

struct BadProfile {
  const char* json;
  const char* problem;
};

class BadProfileTest : public ::testing::TestWithParam<BadProfile> {};

TEST_P(BadProfileTest, IsInvalidArgumentNamingFieldAndProblem) {
  absl::StatusOr<SeccompProgram> program = CompileProfile(GetParam().json, {CAP_SYS_ADMIN}, kField);
  ASSERT_FALSE(program.ok());
  EXPECT_EQ(program.status().code(), absl::StatusCode::kInvalidArgument);
  std::string message(program.status().message());
  EXPECT_THAT(message, StartsWith(absl::StrCat(kField, ": ")));
  EXPECT_THAT(message, HasSubstr(GetParam().problem));
}

INSTANTIATE_TEST_SUITE_P(
    Seccomp, BadProfileTest,
    ::testing::Values(
        BadProfile{"{not json", "not valid JSON"},
        BadProfile{"[1]", "not a JSON object"},
        BadProfile{"{}", "defaultAction: missing"},
        BadProfile{R"({"defaultAction": 3})", "defaultAction: not a string"},
        BadProfile{R"({"defaultAction": "SCMP_ACT_MAYBE"})", "defaultAction: \"SCMP_ACT_MAYBE\" is not a seccomp action"},
        BadProfile{R"({"defaultAction": "SCMP_ACT_ERRNO", "defaultErrnoRet": -1})", "defaultErrnoRet: not a non-negative integer"},
        BadProfile{R"({"defaultAction": "SCMP_ACT_NOTIFY"})", "SCMP_ACT_NOTIFY is not supported"},
        BadProfile{R"({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["mkdir"], "action": "SCMP_ACT_BOGUS"}]})",
                   "syscalls[0].action: \"SCMP_ACT_BOGUS\" is not a seccomp action"},
        BadProfile{R"({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["mkdir"], "action": "SCMP_ACT_NOTIFY"}]})",
                   "syscalls[0].action: SCMP_ACT_NOTIFY is not supported"},
        BadProfile{R"({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["mkdir"]}]})", "syscalls[0].action: missing"},
        BadProfile{R"({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"action": "SCMP_ACT_ERRNO"}]})", "syscalls[0]: no names given"},
        BadProfile{R"({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": [1], "action": "SCMP_ACT_ERRNO"}]})",
                   "syscalls[0].names: not an array of strings"},
        BadProfile{R"({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["mkdir"], "action": "SCMP_ACT_ERRNO",
                     "args": [{"index": 0, "value": 1, "op": "SCMP_CMP_ALMOST"}]}]})",
                   "syscalls[0].args[0].op: \"SCMP_CMP_ALMOST\" is not a seccomp comparison"},
        BadProfile{R"({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["mkdir"], "action": "SCMP_ACT_ERRNO",
                     "args": [{"index": 6, "value": 1, "op": "SCMP_CMP_EQ"}]}]})",
                   "syscalls[0].args[0].index: 6 is more than 5"},
        BadProfile{R"({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["mkdir"], "action": "SCMP_ACT_ERRNO",
                     "args": [{"index": 0, "value": 1}]}]})",
                   "syscalls[0].args[0].op: missing"},
        BadProfile{R"({"defaultAction": "SCMP_ACT_ALLOW", "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_VAX"]})",
                   "architectures[1]: \"SCMP_ARCH_VAX\" is not a seccomp architecture"},
        BadProfile{R"({"defaultAction": "SCMP_ACT_ALLOW", "archMap": [{"architecture": "SCMP_ARCH_X86_64",
                     "subArchitectures": ["SCMP_ARCH_PDP11"]}]})",
                   "archMap[0].subArchitectures[0]: \"SCMP_ARCH_PDP11\" is not a seccomp architecture"},
        BadProfile{R"({"defaultAction": "SCMP_ACT_ALLOW", "architectures": ["SCMP_ARCH_X86"],
                     "archMap": [{"architecture": "SCMP_ARCH_X86_64"}]})",
                   "archMap: given together with architectures"},
        BadProfile{R"({"defaultAction": "SCMP_ACT_ALLOW", "flags": ["SECCOMP_FILTER_FLAG_FAST"]})",
                   "flags: \"SECCOMP_FILTER_FLAG_FAST\" is not a seccomp filter flag"},
        BadProfile{R"({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["mkdir"], "action": "SCMP_ACT_ERRNO",
                     "includes": {"minKernel": "5"}}]})",
                   "syscalls[0].includes.minKernel: \"5\" is not <kernel>.<major>"},
        BadProfile{R"({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["mkdir"], "action": "SCMP_ACT_ERRNO",
                     "errnoRet": 70000}]})",
                   "syscalls[0].errnoRet: 70000 is more than 65535"},
        BadProfile{R"({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": {"names": ["mkdir"]}})", "syscalls: not an array"}));

TEST(MobyFormatTest, ArchMapPicksTheNativeEntry) {
  SeccompProgram mapped = Compiled(R"({"defaultAction": "SCMP_ACT_ALLOW",
      "archMap": [{"architecture": "SCMP_ARCH_AARCH64", "subArchitectures": ["SCMP_ARCH_ARM"]},
                  {"architecture": "SCMP_ARCH_X86_64", "subArchitectures": ["SCMP_ARCH_X86", "SCMP_ARCH_X32"]}],
      "syscalls": [{"names": ["mkdir"], "action": "SCMP_ACT_ERRNO"}]})");
  SeccompProgram listed = Compiled(R"({"defaultAction": "SCMP_ACT_ALLOW",
      "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"],
      "syscalls": [{"names": ["mkdir"], "action": "SCMP_ACT_ERRNO"}]})");
  SeccompProgram native_only = Compiled(R"({"defaultAction": "SCMP_ACT_ALLOW",
      "archMap": [{"architecture": "SCMP_ARCH_AARCH64", "subArchitectures": ["SCMP_ARCH_ARM"]}],
      "syscalls": [{"names": ["mkdir"], "action": "SCMP_ACT_ERRNO"}]})");
  SeccompProgram plain = Compiled(R"({"defaultAction": "SCMP_ACT_ALLOW",
      "syscalls": [{"names": ["mkdir"], "action": "SCMP_ACT_ERRNO"}]})");
  EXPECT_EQ(mapped.bpf, listed.bpf);
  EXPECT_EQ(native_only.bpf, plain.bpf);
  EXPECT_NE(mapped.bpf, plain.bpf);
}

TEST(MobyFormatTest, IncludesAndExcludesFollowCapabilities) {
  constexpr char kProfile[] = R"({"defaultAction": "SCMP_ACT_ALLOW",
      "syscalls": [{"names": ["mkdir"], "action": "SCMP_ACT_ERRNO", "errnoRet": 38,
                    "includes": {"caps": ["CAP_SYS_ADMIN"]}},
                   {"names": ["rmdir"], "action": "SCMP_ACT_ERRNO", "errnoRet": 38,
                    "excludes": {"caps": ["CAP_SYS_ADMIN"]}}]})";
  SeccompProgram admin = Compiled(kProfile, {CAP_CHOWN, CAP_SYS_ADMIN});
  SeccompProgram plain = Compiled(kProfile, {CAP_CHOWN});
  auto mkdir_filtered = [] {
    std::string v = WantErrno(::syscall(SYS_mkdir, "/nonexistent-crius/x", 0700), ENOSYS, "mkdir");
    v += WantErrno(::syscall(SYS_rmdir, "/nonexistent-crius"), ENOENT, "rmdir");
    return v;
  };
  auto rmdir_filtered = [] {
    std::string v = WantErrno(::syscall(SYS_mkdir, "/nonexistent-crius/x", 0700), ENOENT, "mkdir");
    v += WantErrno(::syscall(SYS_rmdir, "/nonexistent-crius"), ENOSYS, "rmdir");
    return v;
  };
  EXPECT_EQ(RunInChild(&admin, mkdir_filtered), "");
  EXPECT_EQ(RunInChild(&plain, rmdir_filtered), "");
}

TEST(MobyFormatTest, IncludesFollowArchAndKernel) {
  SeccompProgram none = Compiled(R"({"defaultAction": "SCMP_ACT_ALLOW"})");
  auto entry = [](const char* includes) {
    return Compiled(absl::StrCat(R"({"defaultAction": "SCMP_ACT_ALLOW",
        "syscalls": [{"names": ["mkdir"], "action": "SCMP_ACT_ERRNO", "includes": )",
                                 includes, "}]}"));
  };
  EXPECT_NE(entry(R"({"arches": ["amd64", "x32"]})").bpf, none.bpf);
  EXPECT_EQ(entry(R"({"arches": ["arm64"]})").bpf, none.bpf);
  EXPECT_NE(entry(R"({"minKernel": "3.10"})").bpf, none.bpf);
  EXPECT_EQ(entry(R"({"minKernel": "99.0"})").bpf, none.bpf);
}

TEST(InstallProgramTest, RefusesPartialOrEmptyPrograms) {
  EXPECT_EQ(InstallProgram("", 0, false), EINVAL);
  EXPECT_EQ(InstallProgram("1234567", 7, false), EINVAL);
}

}  // namespace
}  // namespace crius::sandbox
