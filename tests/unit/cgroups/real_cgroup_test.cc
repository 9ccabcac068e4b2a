// The driver against the machine's own /sys/fs/cgroup, whichever version it
// runs: set CRIUS_CGROUP_REAL=1 and run as root (ctest's cgroups_real_test
// does). Everything lives under /crius-test-<pid> and is removed, pass or fail.
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cerrno>
#include <functional>
#include <string>
#include <vector>

#include <bpf/bpf.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "absl/strings/str_cat.h"
#include "cgroups/driver.h"
#include "cgroups/fs.h"

namespace crius::cgroups {
namespace {

constexpr char kRoot[] = "/sys/fs/cgroup";
// Where a hybrid host (v1 controllers) mounts its empty cgroup2 tree.
constexpr char kUnified[] = "/sys/fs/cgroup/unified";

int64_t ClockNs(clockid_t clock) {
  struct timespec ts;
  ::clock_gettime(clock, &ts);
  return int64_t{ts.tv_sec} * 1000000000 + ts.tv_nsec;
}

class RealCgroupTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const char* real = ::getenv("CRIUS_CGROUP_REAL");
    if (real == nullptr || std::string(real) != "1") {
      GTEST_SKIP() << "set CRIUS_CGROUP_REAL=1 to run against " << root_;
    }
    if (::geteuid() != 0) GTEST_SKIP() << "needs root";
    // Grandchildren are reparented here, not to init, so TearDown reaps them.
    ASSERT_EQ(::prctl(PR_SET_CHILD_SUBREAPER, 1), 0);
    auto d = Driver::Detect(root_);
    ASSERT_TRUE(d.ok()) << d.status();
    driver_ = std::move(*d);
    base_ = absl::StrCat("/crius-test-", ::getpid());
    leaf_ = absl::StrCat(base_, "/", ::testing::UnitTest::GetInstance()->current_test_info()->name());
    absl::Status st = driver_->Create(leaf_);
    ASSERT_TRUE(st.ok()) << st;
  }

  void TearDown() override {
    if (!driver_) return;
    absl::Status killed = driver_->KillAll(base_);
    EXPECT_TRUE(killed.ok()) << killed;
    ReapAll();
    absl::Status removed = driver_->Remove(base_);
    EXPECT_TRUE(removed.ok()) << removed;
    EXPECT_THAT(Leftovers(), ::testing::IsEmpty());
  }

  // Forks a child that joins the test's cgroup before running `body`; its
  // exit code is body's return value.
  pid_t Spawn(const std::function<int()>& body) {
    int go[2];
    if (::pipe2(go, O_CLOEXEC) != 0) return -1;
    pid_t pid = ::fork();
    if (pid == 0) {
      ::close(go[1]);
      char c;
      if (::read(go[0], &c, 1) != 1) ::_exit(99);  // the parent gave up
      ::_exit(body());
    }
    ::close(go[0]);
    if (pid > 0) {
      absl::Status st = driver_->AddProcess(leaf_, pid);
      EXPECT_TRUE(st.ok()) << st;
      if (st.ok()) (void)!::write(go[1], "x", 1);
    }
    ::close(go[1]);
    return pid;
  }

  static int Wait(pid_t pid) {
    int status = 0;
    while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
    }
    return status;
  }

  // Every child and reparented grandchild that has exited.
  static void ReapAll() {
    while (::waitpid(-1, nullptr, WNOHANG) > 0) {
    }
  }

  // Anything named crius-test-<pid> at the root or in a v1 hierarchy.
  std::vector<std::string> Leftovers() {
    std::vector<std::string> found;
    auto fs = HostFs();
    std::vector<std::string> dirs = {root_};
    if (auto entries = fs->ListDir(root_); entries.ok()) {
      for (const auto& e : *entries) {
        if (e.type == DirEntry::Type::kDir) dirs.push_back(absl::StrCat(root_, "/", e.name));
      }
    }
    for (const auto& dir : dirs) {
      if (fs->Exists(dir + base_)) found.push_back(dir + base_);
    }
    return found;
  }

  // A child in the test's cgroup opens `path`: 0 when it could, else errno.
  int OpenInCgroup(const char* path, int flags) {
    pid_t pid = Spawn([&] {
      int fd = ::open(path, flags | O_CLOEXEC);
      return fd >= 0 ? 0 : errno;
    });
    int status = Wait(pid);
    return WIFEXITED(status) ? WEXITSTATUS(status) : 100 + WTERMSIG(status);
  }

  // Both versions: /dev/kmsg (c 1:11) is on no default list.
  void CheckDevicePolicy() {
    absl::Status st = driver_->SetDevicePolicy(leaf_, {});
    ASSERT_TRUE(st.ok()) << st;
    EXPECT_EQ(OpenInCgroup("/dev/null", O_RDWR), 0);
    EXPECT_EQ(OpenInCgroup("/dev/kmsg", O_RDONLY), EPERM);
    // mknod is allowed, opening what it made is not.
    std::string node = absl::StrCat("/tmp/crius-test-kmsg-", ::getpid());
    pid_t pid = Spawn([&] {
      if (::mknod(node.c_str(), S_IFCHR | 0600, ::makedev(1, 11)) != 0) return 1;
      int fd = ::open(node.c_str(), O_RDONLY | O_CLOEXEC);
      int err = fd >= 0 ? 0 : errno;
      ::unlink(node.c_str());
      return err == EPERM ? 0 : 2;
    });
    EXPECT_EQ(Wait(pid), 0);
    ::unlink(node.c_str());
    // A new policy replaces the old: read only.
    st = driver_->SetDevicePolicy(leaf_, {{'c', 1, 11, "r"}});
    ASSERT_TRUE(st.ok()) << st;
    EXPECT_EQ(OpenInCgroup("/dev/kmsg", O_RDONLY), 0);
    EXPECT_EQ(OpenInCgroup("/dev/kmsg", O_WRONLY), EPERM);
    if (driver_->version() == 2) {
      // One program of crius's on the cgroup, not one per call.
      auto dir = driver_->OpenDir(leaf_);
      ASSERT_TRUE(dir.ok()) << dir.status();
      uint32_t ids[16], count = 16, flags = 0;
      ASSERT_EQ(::bpf_prog_query(dir->get(), BPF_CGROUP_DEVICE, 0, &flags, ids, &count), 0) << errno;
      EXPECT_EQ(count, 1u);
    }
  }

  std::string root_ = kRoot;
  std::unique_ptr<Driver> driver_;
  std::string base_;
  std::string leaf_;
};

// cgroup v2 where the machine has it: its own root, or the empty cgroup2
// tree of a hybrid host, where BPF device programs work as on a v2 one.
class RealCgroupV2Test : public RealCgroupTest {
 protected:
  RealCgroupV2Test() {
    if (HostFs()->Exists(absl::StrCat(kUnified, "/cgroup.controllers"))) root_ = kUnified;
  }
};

TEST_F(RealCgroupTest, APidsLimitMakesForkFailWithEagain) {
  Resources r;
  r.pids_limit = 8;
  ASSERT_TRUE(driver_->Apply(leaf_, r).ok());
  pid_t child = Spawn([] {
    for (int i = 0; i < 64; ++i) {
      pid_t p = ::fork();
      if (p == 0) {
        ::pause();
        ::_exit(0);
      }
      if (p < 0) return errno == EAGAIN ? 42 : 43;
    }
    return 1;
  });
  ASSERT_GT(child, 0);
  int status = Wait(child);
  ASSERT_TRUE(WIFEXITED(status)) << status;
  EXPECT_EQ(WEXITSTATUS(status), 42) << "42: fork failed with EAGAIN, 43: other errno, 1: never failed";
}

TEST_F(RealCgroupTest, AChildOverItsMemoryLimitIsOomKilled) {
  Resources r;
  r.memory_limit_in_bytes = 32 << 20;
  r.memory_swap_limit_in_bytes = 32 << 20;  // and no swap to escape to
  absl::Status st = driver_->Apply(leaf_, r);
  ASSERT_TRUE(st.ok()) << st;
  pid_t child = Spawn([] {
    constexpr size_t kSize = size_t{200} << 20;
    void* p = ::mmap(nullptr, kSize, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) return 2;
    auto* bytes = static_cast<volatile char*>(p);
    for (size_t i = 0; i < kSize; i += 4096) bytes[i] = 1;
    return 0;
  });
  ASSERT_GT(child, 0);
  int status = Wait(child);
  ASSERT_TRUE(WIFSIGNALED(status)) << "exited with " << WEXITSTATUS(status);
  EXPECT_EQ(WTERMSIG(status), SIGKILL);
  auto kills = driver_->OomKills(leaf_);
  ASSERT_TRUE(kills.ok()) << kills.status();
  EXPECT_GE(*kills, 1u);
}

TEST_F(RealCgroupTest, StatsShowTheCpuABusyChildUsed) {
  pid_t child = Spawn([] {
    // 300 ms of its own cpu time, however busy the machine is (up to 20 s).
    // Counted from here: what the child used before it joined the cgroup
    // (a few ms under emulation) is not the cgroup's.
    int64_t give_up = ClockNs(CLOCK_MONOTONIC) + 20'000'000'000;
    int64_t start = ClockNs(CLOCK_PROCESS_CPUTIME_ID);
    while (ClockNs(CLOCK_PROCESS_CPUTIME_ID) - start < 300'000'000) {
      if (ClockNs(CLOCK_MONOTONIC) > give_up) return 1;
    }
    return 0;
  });
  ASSERT_GT(child, 0);
  int status = Wait(child);
  ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << status;
  auto stats = driver_->ReadStats(leaf_);
  ASSERT_TRUE(stats.ok()) << stats.status();
  EXPECT_GE(stats->cpu_usage_ns, 300'000'000u);
  EXPECT_GT(stats->timestamp_ns, 0);
}

TEST_F(RealCgroupTest, ACpusetRestrictsTheChildsAffinity) {
  const Machine& m = driver_->machine();
  ASSERT_FALSE(m.online_cpus.empty());
  const int cpu = *m.online_cpus.rbegin();
  Resources r;
  r.cpuset_cpus = absl::StrCat(cpu);
  r.cpuset_mems = absl::StrCat(*m.online_mems.begin());
  absl::Status st = driver_->Apply(leaf_, r);
  ASSERT_TRUE(st.ok()) << st;
  pid_t child = Spawn([cpu] {
    cpu_set_t set;
    CPU_ZERO(&set);
    if (::sched_getaffinity(0, sizeof(set), &set) != 0) return 2;
    return CPU_COUNT(&set) == 1 && CPU_ISSET(cpu, &set) ? 0 : 1;
  });
  ASSERT_GT(child, 0);
  int status = Wait(child);
  ASSERT_TRUE(WIFEXITED(status)) << status;
  EXPECT_EQ(WEXITSTATUS(status), 0) << "affinity is not just cpu " << cpu;
}

TEST_F(RealCgroupTest, KillAllThenRemoveLeavesNothing) {
  pid_t child = Spawn([] {
    for (int i = 0; i < 5; ++i) {
      if (::fork() == 0) break;
    }
    ::pause();
    return 0;
  });
  ASSERT_GT(child, 0);
  std::vector<pid_t> pids;
  // Up to 30 s: under emulation (the cgroup v2 guest) on a busy machine,
  // five forks can take seconds.
  for (int i = 0; i < 3000 && pids.size() < 6; ++i) {
    auto now = driver_->Pids(leaf_);
    ASSERT_TRUE(now.ok()) << now.status();
    pids = *now;
    ::usleep(10'000);
  }
  ASSERT_EQ(pids.size(), 6u);
  EXPECT_THAT(pids, ::testing::Contains(child));
  absl::Status st = driver_->KillAll(base_);
  ASSERT_TRUE(st.ok()) << st;
  EXPECT_THAT(*driver_->Pids(base_), ::testing::IsEmpty());
  int status = Wait(child);
  EXPECT_TRUE(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL) << status;
  ReapAll();
  st = driver_->Remove(base_);
  ASSERT_TRUE(st.ok()) << st;
  EXPECT_THAT(Leftovers(), ::testing::IsEmpty());
  EXPECT_EQ(driver_->Pids(base_).status().code(), absl::StatusCode::kNotFound);
}

TEST_F(RealCgroupTest, TheDevicePolicyDeniesEveryDeviceItDoesNotAllow) { CheckDevicePolicy(); }

TEST_F(RealCgroupV2Test, TheBpfDevicePolicyDeniesEveryDeviceItDoesNotAllow) {
  if (driver_->version() != 2) GTEST_SKIP() << "no cgroup2 tree on this machine";
  CheckDevicePolicy();
}

TEST_F(RealCgroupTest, OpenDirWorksOnV2AndIsUnimplementedOnV1) {
  auto fd = driver_->OpenDir(leaf_);
  if (driver_->version() == 2) {
    EXPECT_TRUE(fd.ok()) << fd.status();
  } else {
    EXPECT_EQ(fd.status().code(), absl::StatusCode::kUnimplemented);
  }
}

}  // namespace
}  // namespace crius::cgroups
