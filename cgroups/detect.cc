// Which cgroup version the host runs, decided once from what is mounted.
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "cgroups/driver.h"
#include "cgroups/internal.h"
#include "common/status.h"

namespace crius::cgroups {
namespace {

bool IsV1Controller(absl::string_view name) {
  static constexpr absl::string_view kControllers[] = {
      "blkio", "cpu", "cpuacct", "cpuset", "devices", "freezer", "hugetlb",
      "memory", "misc", "net_cls", "net_prio", "perf_event", "pids", "rdma"};
  for (absl::string_view c : kControllers) {
    if (c == name) return true;
  }
  return false;
}

// Maps each controller to its mount. A combined mount ("cpu,cpuacct") wins
// over the symlinks beside it ("cpu -> cpu,cpuacct") so that every hierarchy
// appears once; named hierarchies ("systemd") and the hybrid "unified"
// cgroup2 hold no controller and are left out.
absl::StatusOr<internal::V1Mounts> FindV1Mounts(Fs& fs, const std::string& root) {
  CRIUS_ASSIGN_OR_RETURN(auto entries, fs.ListDir(root));
  internal::V1Mounts mounts;
  for (auto pass : {DirEntry::Type::kDir, DirEntry::Type::kSymlink}) {
    for (const auto& e : entries) {
      if (e.type != pass) continue;
      std::string dir = absl::StrCat(root, "/", e.name);
      if (!fs.Exists(dir + "/cgroup.procs")) continue;  // not a mounted hierarchy
      for (absl::string_view c : absl::StrSplit(e.name, ',')) {
        if (IsV1Controller(c) && !mounts.count(std::string(c))) mounts[std::string(c)] = dir;
      }
    }
  }
  return mounts;
}

}  // namespace

absl::StatusOr<std::unique_ptr<Driver>> Driver::Detect(const std::string& root) {
  return Detect(HostFs(), root);
}

absl::StatusOr<std::unique_ptr<Driver>> Driver::Detect(std::shared_ptr<Fs> fs, const std::string& root,
                                                       const std::string& sys_root) {
  std::string what = absl::StrCat("detect cgroups at ", root);
  auto machine = ReadMachine(*fs, sys_root);
  if (!machine.ok()) return Annotate(machine.status(), what);
  if (fs->Exists(root + "/cgroup.controllers")) {
    machine->cgroup_version = 2;
    auto controllers = fs->ReadFile(root + "/cgroup.controllers");
    if (!controllers.ok()) return Annotate(controllers.status(), what);
    // The root has no memory.swap.max; Apply checks each cgroup for it.
    machine->swap_accounting = absl::StrContains(*controllers, "memory");
    return internal::NewV2Driver(std::move(fs), root, std::move(*machine));
  }
  auto mounts = FindV1Mounts(*fs, root);
  if (!mounts.ok()) return Annotate(mounts.status(), what);
  if (mounts->empty()) {
    return absl::FailedPreconditionError(
        absl::StrCat(what, ": neither a cgroup2 mount nor cgroup v1 controller mounts"));
  }
  machine->cgroup_version = 1;
  auto memory = mounts->find("memory");
  machine->swap_accounting =
      memory != mounts->end() && fs->Exists(memory->second + "/memory.memsw.limit_in_bytes");
  return internal::NewV1Driver(std::move(fs), root, std::move(*mounts), std::move(*machine));
}

}  // namespace crius::cgroups
