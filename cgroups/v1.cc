// cgroup v1: one hierarchy per controller set, so every cgroup exists once
// per hierarchy and each setting goes to its controller's copy.
#include <cerrno>
#include <csignal>
#include <set>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "cgroups/internal.h"
#include "common/status.h"

namespace crius::cgroups::internal {
namespace {

constexpr int kFreezePolls = 100;
constexpr absl::Duration kFreezePollDelay = absl::Milliseconds(10);

std::string Parent(const std::string& dir) { return dir.substr(0, dir.rfind('/')); }

class V1Driver final : public Driver {
 public:
  V1Driver(std::shared_ptr<Fs> fs, std::string root, V1Mounts mounts, Machine machine)
      : fs_(std::move(fs)), root_(std::move(root)), mounts_(std::move(mounts)), machine_(std::move(machine)) {
    std::set<std::string> distinct;
    for (const auto& [controller, dir] : mounts_) distinct.insert(dir);
    hierarchies_.assign(distinct.begin(), distinct.end());
  }

  int version() const override { return 1; }
  const Machine& machine() const override { return machine_; }

  absl::Status Create(const std::string& path) override {
    return CreateOrUndo(*fs_, path, [&](std::vector<std::string>* created) { return CreateLevels(path, created); });
  }

  absl::Status Apply(const std::string& path, const Resources& r) override {
    CRIUS_RETURN_IF_ERROR(CheckPath(path));
    CRIUS_RETURN_IF_ERROR(Validate(r, machine_));
    return Annotate(ApplyAll(path, r), absl::StrCat("apply resources to cgroup ", path));
  }

  absl::Status AddProcess(const std::string& path, pid_t pid) override {
    CRIUS_RETURN_IF_ERROR(CheckPath(path));
    for (const auto& h : hierarchies_) {
      CRIUS_RETURN_IF_ERROR(Annotate(fs_->WriteFile(h + path + "/cgroup.procs", absl::StrCat(pid)),
                                     absl::StrCat("add process ", pid, " to cgroup ", path)));
    }
    return absl::OkStatus();
  }

  absl::StatusOr<UniqueFd> OpenDir(const std::string& path) override {
    return absl::UnimplementedError(
        absl::StrCat("open cgroup ", path, ": cgroup v1 has one directory per controller; "
                     "CLONE_INTO_CGROUP needs cgroup v2"));
  }

  absl::Status Remove(const std::string& path) override {
    CRIUS_RETURN_IF_ERROR(CheckPath(path));
    absl::Status first;
    // Every hierarchy, even after a failure: remove as much as can go.
    for (const auto& h : hierarchies_) first.Update(RemoveCgroupTree(*fs_, h + path));
    return Annotate(first, absl::StrCat("remove cgroup ", path));
  }

  absl::StatusOr<Stats> ReadStats(const std::string& path) override {
    CRIUS_RETURN_IF_ERROR(CheckExists(path));
    auto stats = ReadStatsV1(*fs_, Dir("cpuacct", path), Dir("memory", path));
    if (!stats.ok()) return Annotate(stats.status(), absl::StrCat("stats of cgroup ", path));
    return stats;
  }

  absl::StatusOr<uint64_t> ProcessCount(const std::string& path) override {
    CRIUS_RETURN_IF_ERROR(CheckExists(path));
    std::string pids = Dir("pids", path);
    if (pids.empty()) return 0;
    auto n = ReadCounter(*fs_, pids + "/pids.current");
    if (!n.ok()) return Annotate(n.status(), absl::StrCat("process count of cgroup ", path));
    return n;
  }

  absl::StatusOr<uint64_t> OomKills(const std::string& path) override {
    CRIUS_RETURN_IF_ERROR(CheckExists(path));
    std::string memory = Dir("memory", path);
    if (memory.empty()) return 0;
    return ReadOomKillsV1(*fs_, memory);
  }

  absl::StatusOr<std::vector<pid_t>> Pids(const std::string& path) override {
    CRIUS_RETURN_IF_ERROR(CheckPath(path));
    std::set<pid_t> all;
    bool found = false;
    for (const auto& h : hierarchies_) {
      auto pids = ReadProcsBelow(*fs_, h + path);
      if (!pids.ok()) {
        if (pids.status().code() == absl::StatusCode::kNotFound) continue;
        return Annotate(pids.status(), absl::StrCat("list processes of cgroup ", path));
      }
      found = true;
      all.insert(pids->begin(), pids->end());
    }
    if (!found) return absl::NotFoundError(absl::StrCat("cgroup ", path, " does not exist"));
    return std::vector<pid_t>(all.begin(), all.end());
  }

  absl::Status KillAll(const std::string& path) override {
    CRIUS_RETURN_IF_ERROR(CheckPath(path));
    std::string what = absl::StrCat("kill processes of cgroup ", path);
    // Frozen, a fork bomb cannot outrun the kill: signals land on a fixed set
    // and take effect at the thaw.
    std::string freezer = Dir("freezer", path);
    if (!freezer.empty() && Freeze(freezer)) {
      auto pids = Pids(path);
      if (pids.ok()) {
        for (pid_t pid : *pids) (void)fs_->Kill(pid, SIGKILL);
      }
      CRIUS_RETURN_IF_ERROR(Annotate(fs_->WriteFile(freezer + "/freezer.state", "THAWED"), what));
    }
    return KillUntilEmpty(*fs_, [&] { return Pids(path); }, what);
  }

  bool RemoveIfEmpty(const std::string& path) override {
    if (!CheckPath(path).ok()) return false;
    bool gone = true;
    for (const auto& h : hierarchies_) gone = RemovedOrAbsent(fs_->RemoveDir(h + path)) && gone;  // EBUSY when in use
    return gone;
  }

  std::vector<std::string> ProcsFiles(const std::string& path) const override {
    std::vector<std::string> files;
    for (const auto& h : hierarchies_) files.push_back(h + path + "/cgroup.procs");
    return files;
  }

  std::string OomEventsFile(const std::string& path) const override {
    auto it = mounts_.find("memory");
    return it == mounts_.end() ? "" : it->second + path + "/memory.oom_control";
  }

  absl::Status SetDevicePolicy(const std::string& path, const std::vector<DeviceRule>& allow) override {
    CRIUS_RETURN_IF_ERROR(CheckPath(path));
    std::string dir = Dir("devices", path);
    if (dir.empty()) {
      return absl::FailedPreconditionError(
          absl::StrCat("device policy of cgroup ", path, ": the devices controller is not mounted"));
    }
    std::string what = absl::StrCat("device policy of cgroup ", path);
    CRIUS_RETURN_IF_ERROR(Annotate(fs_->WriteFile(dir + "/devices.deny", "a"), what));
    for (const auto* list : {&DefaultAllowedDevices(), &allow}) {
      for (const DeviceRule& rule : *list) {
        CRIUS_RETURN_IF_ERROR(Annotate(fs_->WriteFile(dir + "/devices.allow", rule.ToString()),
                                       absl::StrCat(what, ": allow ", rule.ToString())));
      }
    }
    return absl::OkStatus();
  }

 private:
  // The cgroup's directory in `controller`'s hierarchy; "" when the
  // controller is not mounted or the cgroup is missing there.
  std::string Dir(absl::string_view controller, const std::string& path) const {
    auto it = mounts_.find(std::string(controller));
    if (it == mounts_.end() || !fs_->Exists(it->second + path)) return "";
    return it->second + path;
  }

  absl::Status CheckExists(const std::string& path) const {
    CRIUS_RETURN_IF_ERROR(CheckPath(path));
    for (const auto& h : hierarchies_) {
      if (fs_->Exists(h + path)) return absl::OkStatus();
    }
    return absl::NotFoundError(absl::StrCat("cgroup ", path, " does not exist"));
  }

  absl::Status CreateLevels(const std::string& path, std::vector<std::string>* created) {
    auto cpuset = mounts_.find("cpuset");
    for (const auto& h : hierarchies_) {
      for (const auto& level : Levels(path)) {
        std::string dir = h + level;
        absl::Status st = fs_->MakeDir(dir);
        if (st.ok()) {
          created->push_back(dir);
        } else if (ErrnoOf(st) != EEXIST) {
          return st;
        }
        if (cpuset != mounts_.end() && cpuset->second == h) CRIUS_RETURN_IF_ERROR(InheritCpuset(dir));
      }
    }
    return absl::OkStatus();
  }

  // A new v1 cpuset starts with no cpus and no mems, and a process cannot
  // join it until both are set: give it its parent's (unless already set).
  absl::Status InheritCpuset(const std::string& dir) {
    for (const char* file : {"cpuset.cpus", "cpuset.mems"}) {
      std::string path = absl::StrCat(dir, "/", file);
      CRIUS_ASSIGN_OR_RETURN(std::string own, fs_->ReadFile(path));
      if (!absl::StripAsciiWhitespace(own).empty()) continue;
      CRIUS_ASSIGN_OR_RETURN(std::string parent, fs_->ReadFile(absl::StrCat(Parent(dir), "/", file)));
      absl::string_view value = absl::StripAsciiWhitespace(parent);
      if (value.empty()) continue;
      CRIUS_RETURN_IF_ERROR(fs_->WriteFile(path, value));
    }
    return absl::OkStatus();
  }

  // Writes one setting into `controller`'s copy of the cgroup.
  absl::Status Set(absl::string_view controller, const std::string& path, absl::string_view file,
                   absl::string_view value, absl::string_view field) {
    auto it = mounts_.find(std::string(controller));
    if (it == mounts_.end()) {
      return absl::FailedPreconditionError(absl::StrCat("linux.resources.", field, ": the ", controller,
                                                        " controller is not mounted under ", root_));
    }
    return WriteSetting(*fs_, it->second + path, file, value, field);
  }

  absl::Status ApplyAll(const std::string& path, const Resources& r) {
    CRIUS_RETURN_IF_ERROR(ApplyCpu(path, r));
    CRIUS_RETURN_IF_ERROR(ApplyMemory(path, r));
    if (!r.cpuset_cpus.empty()) {
      CRIUS_RETURN_IF_ERROR(Set("cpuset", path, "cpuset.cpus", r.cpuset_cpus, "cpuset_cpus"));
    }
    if (!r.cpuset_mems.empty()) {
      CRIUS_RETURN_IF_ERROR(Set("cpuset", path, "cpuset.mems", r.cpuset_mems, "cpuset_mems"));
    }
    if (r.pids_limit != 0) {
      std::string value = r.pids_limit == -1 ? "max" : absl::StrCat(r.pids_limit);
      CRIUS_RETURN_IF_ERROR(Set("pids", path, "pids.max", value, "pids_limit"));
    }
    for (const auto& [size, limit] : r.hugepage_limits) {
      // kubelet sends a zero limit for every size the pod does not ask for;
      // without the controller there is nothing to hold at zero.
      if (limit == 0 && !mounts_.count("hugetlb")) continue;
      CRIUS_RETURN_IF_ERROR(Set("hugetlb", path, absl::StrCat("hugetlb.", size, ".limit_in_bytes"),
                                absl::StrCat(limit), absl::StrCat("hugepage_limits[", size, "]")));
    }
    if (!r.unified.empty()) {
      return absl::InvalidArgumentError("linux.resources.unified: needs cgroup v2; this node runs cgroup v1");
    }
    return absl::OkStatus();
  }

  absl::Status ApplyCpu(const std::string& path, const Resources& r) {
    if (r.cpu_shares != 0) {
      CRIUS_RETURN_IF_ERROR(Set("cpu", path, "cpu.shares", absl::StrCat(r.cpu_shares), "cpu_shares"));
    }
    bool period_again = false;
    if (r.cpu_period != 0) {
      absl::Status st = Set("cpu", path, "cpu.cfs_period_us", absl::StrCat(r.cpu_period), "cpu_period");
      // A shorter period can push old_quota/new_period over the parent's
      // limit (EINVAL); with a new quota coming, retry after it (as runc does).
      if (!st.ok() && (ErrnoOf(st) != EINVAL || r.cpu_quota == 0)) return st;
      period_again = !st.ok();
    }
    if (r.cpu_quota != 0) {
      CRIUS_RETURN_IF_ERROR(Set("cpu", path, "cpu.cfs_quota_us", absl::StrCat(r.cpu_quota), "cpu_quota"));
      if (period_again) {
        CRIUS_RETURN_IF_ERROR(Set("cpu", path, "cpu.cfs_period_us", absl::StrCat(r.cpu_period), "cpu_period"));
      }
    }
    return absl::OkStatus();
  }

  absl::Status ApplyMemory(const std::string& path, const Resources& r) {
    const int64_t limit = r.memory_limit_in_bytes;
    const int64_t swap = r.memory_swap_limit_in_bytes;
    if (limit == 0 && swap == 0) return absl::OkStatus();
    auto set_limit = [&] {
      return Set("memory", path, "memory.limit_in_bytes", absl::StrCat(limit), "memory_limit_in_bytes");
    };
    auto set_swap = [&] {
      return Set("memory", path, "memory.memsw.limit_in_bytes", absl::StrCat(swap),
                 "memory_swap_limit_in_bytes");
    };
    std::string dir = Dir("memory", path);
    bool write_swap = swap != 0;
    if (write_swap && !dir.empty() && !fs_->Exists(dir + "/memory.memsw.limit_in_bytes")) {
      // No swap accounting: "no swap beyond the limit" and "unlimited" are
      // what the kernel does anyway; anything else cannot be kept.
      if (swap != -1 && swap != limit) {
        return absl::FailedPreconditionError(
            "linux.resources.memory_swap_limit_in_bytes: this kernel has no swap accounting "
            "(no memory.memsw.limit_in_bytes; boot with swapaccount=1), so only -1 or a value "
            "equal to memory_limit_in_bytes can be honoured");
      }
      write_swap = false;
    }
    if (!write_swap) return limit != 0 ? set_limit() : absl::OkStatus();
    if (limit == 0) return set_swap();
    // The kernel keeps memsw >= the memory limit at every step: raise memsw
    // first when it grows past the current limit, else lower the limit first.
    bool swap_first = swap == -1;
    if (!swap_first && !dir.empty()) {
      CRIUS_ASSIGN_OR_RETURN(uint64_t current, ReadCounter(*fs_, dir + "/memory.limit_in_bytes"));
      swap_first = static_cast<uint64_t>(swap) >= current;
    }
    if (swap_first) {
      CRIUS_RETURN_IF_ERROR(set_swap());
      return set_limit();
    }
    CRIUS_RETURN_IF_ERROR(set_limit());
    return set_swap();
  }

  // True once the cgroup reports FROZEN; a task stuck in the kernel can keep
  // it FREEZING, and then the kill goes ahead unfrozen.
  bool Freeze(const std::string& freezer) {
    std::string state = freezer + "/freezer.state";
    if (!fs_->WriteFile(state, "FROZEN").ok()) return false;
    for (int i = 0; i < kFreezePolls; ++i) {
      auto now = fs_->ReadFile(state);
      if (now.ok() && absl::StripAsciiWhitespace(*now) == "FROZEN") return true;
      fs_->Sleep(kFreezePollDelay);
    }
    (void)fs_->WriteFile(state, "THAWED");
    return false;
  }

  std::shared_ptr<Fs> fs_;
  std::string root_;
  V1Mounts mounts_;
  Machine machine_;
  std::vector<std::string> hierarchies_;  // distinct mount directories
};

}  // namespace

std::unique_ptr<Driver> NewV1Driver(std::shared_ptr<Fs> fs, std::string root, V1Mounts mounts,
                                    Machine machine) {
  return std::make_unique<V1Driver>(std::move(fs), std::move(root), std::move(mounts), std::move(machine));
}

}  // namespace crius::cgroups::internal
