// cgroup v2: one tree; a controller reaches a cgroup only when every
// ancestor lists it in cgroup.subtree_control.
#include <cerrno>
#include <csignal>
#include <set>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "cgroups/device_program.h"
#include "cgroups/internal.h"
#include "common/status.h"

namespace crius::cgroups::internal {
namespace {

// The controllers whose files Apply writes (io for the blkio settings to come).
constexpr const char* kWanted[] = {"cpuset", "cpu", "io", "memory", "hugetlb", "pids"};

constexpr int kFreezePolls = 100;
constexpr absl::Duration kFreezePollDelay = absl::Milliseconds(10);

std::set<std::string> Words(absl::string_view text) {
  std::set<std::string> out;
  for (absl::string_view w : absl::StrSplit(text, absl::ByAnyChar(" \n\t"), absl::SkipWhitespace())) {
    out.insert(std::string(w));
  }
  return out;
}

class V2Driver final : public Driver {
 public:
  V2Driver(std::shared_ptr<Fs> fs, std::string root, Machine machine)
      : fs_(std::move(fs)), root_(std::move(root)), machine_(std::move(machine)) {}

  int version() const override { return 2; }
  const Machine& machine() const override { return machine_; }

  absl::Status Create(const std::string& path) override {
    return CreateOrUndo(*fs_, path, [&](std::vector<std::string>* created) { return CreateLevels(path, created); });
  }

  absl::Status Apply(const std::string& path, const Resources& r) override {
    CRIUS_RETURN_IF_ERROR(CheckPath(path));
    CRIUS_RETURN_IF_ERROR(Validate(r, machine_));
    return Annotate(ApplyAll(root_ + path, r), absl::StrCat("apply resources to cgroup ", path));
  }

  absl::Status AddProcess(const std::string& path, pid_t pid) override {
    CRIUS_RETURN_IF_ERROR(CheckPath(path));
    return Annotate(fs_->WriteFile(root_ + path + "/cgroup.procs", absl::StrCat(pid)),
                    absl::StrCat("add process ", pid, " to cgroup ", path));
  }

  absl::StatusOr<UniqueFd> OpenDir(const std::string& path) override {
    CRIUS_RETURN_IF_ERROR(CheckPath(path));
    auto fd = fs_->OpenDir(root_ + path);
    if (!fd.ok()) return Annotate(fd.status(), absl::StrCat("open cgroup ", path));
    return fd;
  }

  absl::Status Remove(const std::string& path) override {
    CRIUS_RETURN_IF_ERROR(CheckPath(path));
    return Annotate(RemoveCgroupTree(*fs_, root_ + path), absl::StrCat("remove cgroup ", path));
  }

  absl::StatusOr<Stats> ReadStats(const std::string& path) override {
    CRIUS_RETURN_IF_ERROR(CheckExists(path));
    auto stats = ReadStatsV2(*fs_, root_ + path);
    if (!stats.ok()) return Annotate(stats.status(), absl::StrCat("stats of cgroup ", path));
    return stats;
  }

  absl::StatusOr<uint64_t> ProcessCount(const std::string& path) override {
    CRIUS_RETURN_IF_ERROR(CheckExists(path));
    auto n = ReadCounter(*fs_, root_ + path + "/pids.current");
    if (!n.ok()) return Annotate(n.status(), absl::StrCat("process count of cgroup ", path));
    return n;
  }

  bool RemoveIfEmpty(const std::string& path) override {
    return CheckPath(path).ok() && RemovedOrAbsent(fs_->RemoveDir(root_ + path));  // EBUSY when in use
  }

  std::vector<std::string> ProcsFiles(const std::string& path) const override {
    return {root_ + path + "/cgroup.procs"};
  }

  std::string OomEventsFile(const std::string& path) const override { return root_ + path + "/memory.events"; }

  absl::Status SetDevicePolicy(const std::string& path, const std::vector<DeviceRule>& allow) override {
    CRIUS_RETURN_IF_ERROR(CheckExists(path));
    std::string what = absl::StrCat("device policy of cgroup ", path);
    std::vector<DeviceRule> rules = DefaultAllowedDevices();
    rules.insert(rules.end(), allow.begin(), allow.end());
    auto program = BuildDeviceProgram(rules);
    if (!program.ok()) return Annotate(program.status(), what);
    return Annotate(fs_->AttachDeviceProgram(root_ + path, *program), what);
  }

  absl::StatusOr<uint64_t> OomKills(const std::string& path) override {
    CRIUS_RETURN_IF_ERROR(CheckExists(path));
    return ReadOomKillsV2(*fs_, root_ + path);
  }

  absl::StatusOr<std::vector<pid_t>> Pids(const std::string& path) override {
    CRIUS_RETURN_IF_ERROR(CheckPath(path));
    auto pids = ReadProcsBelow(*fs_, root_ + path);
    if (!pids.ok()) {
      if (pids.status().code() == absl::StatusCode::kNotFound) {
        return absl::NotFoundError(absl::StrCat("cgroup ", path, " does not exist"));
      }
      return Annotate(pids.status(), absl::StrCat("list processes of cgroup ", path));
    }
    return pids;
  }

  absl::Status KillAll(const std::string& path) override {
    CRIUS_RETURN_IF_ERROR(CheckPath(path));
    std::string dir = root_ + path;
    std::string what = absl::StrCat("kill processes of cgroup ", path);
    if (!fs_->Exists(dir)) return absl::OkStatus();
    if (fs_->Exists(dir + "/cgroup.kill")) {
      // Linux 5.14+: the kernel kills the whole subtree, forks included.
      CRIUS_RETURN_IF_ERROR(Annotate(fs_->WriteFile(dir + "/cgroup.kill", "1"), what));
    } else if (Freeze(dir)) {
      auto pids = Pids(path);
      if (pids.ok()) {
        for (pid_t pid : *pids) (void)fs_->Kill(pid, SIGKILL);
      }
      CRIUS_RETURN_IF_ERROR(Annotate(fs_->WriteFile(dir + "/cgroup.freeze", "0"), what));
    }
    return KillUntilEmpty(*fs_, [&] { return Pids(path); }, what);
  }

 private:
  absl::Status CheckExists(const std::string& path) const {
    CRIUS_RETURN_IF_ERROR(CheckPath(path));
    if (!fs_->Exists(root_ + path)) return absl::NotFoundError(absl::StrCat("cgroup ", path, " does not exist"));
    return absl::OkStatus();
  }

  absl::Status CreateLevels(const std::string& path, std::vector<std::string>* created) {
    std::string parent = root_;
    for (const auto& level : Levels(path)) {
      CRIUS_RETURN_IF_ERROR(EnableControllers(parent));
      std::string dir = root_ + level;
      absl::Status st = fs_->MakeDir(dir);
      if (st.ok()) {
        created->push_back(dir);
      } else if (ErrnoOf(st) != EEXIST) {
        return st;
      }
      parent = dir;
    }
    return absl::OkStatus();
  }

  // Adds to <dir>/cgroup.subtree_control the wanted controllers that `dir`
  // has and has not yet passed down.
  absl::Status EnableControllers(const std::string& dir) {
    CRIUS_ASSIGN_OR_RETURN(std::string available, fs_->ReadFile(dir + "/cgroup.controllers"));
    std::string control = dir + "/cgroup.subtree_control";
    CRIUS_ASSIGN_OR_RETURN(std::string enabled_text, fs_->ReadFile(control));
    std::set<std::string> have = Words(available), enabled = Words(enabled_text);
    std::vector<std::string> add;
    for (const char* c : kWanted) {
      if (have.count(c) && !enabled.count(c)) add.push_back(absl::StrCat("+", c));
    }
    if (add.empty()) return absl::OkStatus();
    absl::Status st = fs_->WriteFile(control, absl::StrJoin(add, " "));
    if (!st.ok() && ErrnoOf(st) == EBUSY) {
      return Annotate(st, "enable controllers (a cgroup with processes cannot pass controllers down)");
    }
    return st;
  }

  absl::Status ApplyAll(const std::string& dir, const Resources& r) {
    if (r.cpu_shares != 0) {
      CRIUS_RETURN_IF_ERROR(
          WriteSetting(*fs_, dir, "cpu.weight", absl::StrCat(SharesToWeight(r.cpu_shares)), "cpu_shares"));
    }
    if (std::string max = CpuMaxValue(r.cpu_quota, r.cpu_period); !max.empty()) {
      absl::string_view field = r.cpu_quota != 0 ? "cpu_quota" : "cpu_period";
      CRIUS_RETURN_IF_ERROR(WriteSetting(*fs_, dir, "cpu.max", max, field));
    }
    if (r.memory_limit_in_bytes != 0) {
      CRIUS_RETURN_IF_ERROR(WriteSetting(*fs_, dir, "memory.max", absl::StrCat(r.memory_limit_in_bytes),
                                         "memory_limit_in_bytes"));
    }
    CRIUS_RETURN_IF_ERROR(ApplySwap(dir, r));
    if (!r.cpuset_cpus.empty()) {
      CRIUS_RETURN_IF_ERROR(WriteSetting(*fs_, dir, "cpuset.cpus", r.cpuset_cpus, "cpuset_cpus"));
    }
    if (!r.cpuset_mems.empty()) {
      CRIUS_RETURN_IF_ERROR(WriteSetting(*fs_, dir, "cpuset.mems", r.cpuset_mems, "cpuset_mems"));
    }
    if (r.pids_limit != 0) {
      std::string value = r.pids_limit == -1 ? "max" : absl::StrCat(r.pids_limit);
      CRIUS_RETURN_IF_ERROR(WriteSetting(*fs_, dir, "pids.max", value, "pids_limit"));
    }
    for (const auto& [size, limit] : r.hugepage_limits) {
      std::string file = absl::StrCat("hugetlb.", size, ".max");
      // kubelet sends zero for every size the pod does not ask for; without
      // the controller there is nothing to hold at zero.
      if (limit == 0 && fs_->Exists(dir) && !fs_->Exists(dir + "/" + file)) continue;
      CRIUS_RETURN_IF_ERROR(
          WriteSetting(*fs_, dir, file, absl::StrCat(limit), absl::StrCat("hugepage_limits[", size, "]")));
    }
    // Last, so an explicit unified value wins over the translated fields.
    for (const auto& [key, value] : r.unified) {
      if (!fs_->Exists(dir + "/" + key) && fs_->Exists(dir)) {
        return absl::InvalidArgumentError(absl::StrCat("linux.resources.unified[", key, "]: no such file in ",
                                                       dir, " (unknown setting or controller not enabled)"));
      }
      CRIUS_RETURN_IF_ERROR(fs_->WriteFile(dir + "/" + key, value));
    }
    return absl::OkStatus();
  }

  // memory.swap.max holds swap alone, CRI's field memory plus swap.
  absl::Status ApplySwap(const std::string& dir, const Resources& r) {
    const int64_t swap = r.memory_swap_limit_in_bytes;
    if (swap == 0) return absl::OkStatus();
    if (fs_->Exists(dir) && !fs_->Exists(dir + "/memory.swap.max")) {
      if (swap == -1 || swap == r.memory_limit_in_bytes) return absl::OkStatus();
      return absl::FailedPreconditionError(
          "linux.resources.memory_swap_limit_in_bytes: this kernel has no swap accounting "
          "(no memory.swap.max), so only -1 or a value equal to memory_limit_in_bytes can be honoured");
    }
    return WriteSetting(*fs_, dir, "memory.swap.max", SwapMaxValue(r.memory_limit_in_bytes, swap),
                        "memory_swap_limit_in_bytes");
  }

  // True once cgroup.events says frozen (Linux 5.2+ without cgroup.kill).
  bool Freeze(const std::string& dir) {
    if (!fs_->Exists(dir + "/cgroup.freeze")) return false;
    if (!fs_->WriteFile(dir + "/cgroup.freeze", "1").ok()) return false;
    for (int i = 0; i < kFreezePolls; ++i) {
      auto events = fs_->ReadFile(dir + "/cgroup.events");
      if (events.ok() && ParseKeyed(*events)["frozen"] == 1) return true;
      fs_->Sleep(kFreezePollDelay);
    }
    (void)fs_->WriteFile(dir + "/cgroup.freeze", "0");
    return false;
  }

  std::shared_ptr<Fs> fs_;
  std::string root_;
  Machine machine_;
};

}  // namespace

std::unique_ptr<Driver> NewV2Driver(std::shared_ptr<Fs> fs, std::string root, Machine machine) {
  return std::make_unique<V2Driver>(std::move(fs), std::move(root), std::move(machine));
}

}  // namespace crius::cgroups::internal
