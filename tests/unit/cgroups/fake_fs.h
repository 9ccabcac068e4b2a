// A cgroup tree made of plain files in a temp dir, behaving like cgroupfs
// where the drivers care, with failures to inject and a record of what the
// drivers did.
#pragma once

#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <fstream>
#include <functional>
#include <map>
#include <set>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "cgroups/device_program.h"
#include "cgroups/fs.h"
#include "common/status.h"

namespace crius::cgroups::fake {

// mkdir -p.
inline void PutDir(const std::string& dir) {
  std::string partial;
  for (absl::string_view part : absl::StrSplit(dir, '/', absl::SkipEmpty())) {
    absl::StrAppend(&partial, "/", part);
    ::mkdir(partial.c_str(), 0755);
  }
}

// Writes `content` to `path`, making its directories.
inline void PutFile(const std::string& path, const std::string& content = "") {
  PutDir(path.substr(0, path.rfind('/')));
  std::ofstream(path, std::ios::trunc) << content;
}

inline std::string GetFile(const std::string& path) {
  std::ifstream in(path);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

inline bool IsDir(const std::string& path) {
  struct stat st;
  return ::stat(path.c_str(), &st) == 0 && S_ISDIR(st.st_mode);
}

// mkdir gives a new cgroup its parent's files with their values (the
// defaults), but an empty cgroup.procs and, as the kernel gives a new v1
// cpuset, no cpus or mems; on v2 only the cgroup.* files and those of the
// controllers in the parent's subtree_control, with cgroup.controllers set
// from it. Writes to cgroup.subtree_control apply "+c -c" as the kernel
// does; writes to cgroup.procs add the pid, "1" to cgroup.kill empties the
// subtree, cgroup.freeze shows in cgroup.events. rmdir fails with EBUSY while
// cgroup.procs lists a pid or a child cgroup exists.
class FakeFs : public Fs {
 public:
  enum class Op { kRead, kWrite, kMkdir, kRmdir, kAttach };

  explicit FakeFs(std::string root) : root_(std::move(root)), host_(HostFs()) {}

  // The next `times` calls of `op` on `path` fail with `err` (-1: all of them).
  void Fail(Op op, const std::string& path, int err, int times = -1) { failures_[{op, path}] = {err, times}; }

  std::vector<std::string> writes;  // "path=value", in order
  std::vector<std::string> rmdirs;  // paths, in order
  std::vector<std::pair<pid_t, int>> kills;
  absl::Duration slept;
  bool kill_works = true;  // false: processes shrug SIGKILL off
  std::map<std::string, DeviceProgram> device_programs;  // cgroup dir -> the one attached

  absl::StatusOr<std::string> ReadFile(const std::string& path) override {
    if (int err = Injected(Op::kRead, path)) return ErrnoError(err, absl::StrCat("read ", path));
    return host_->ReadFile(path);
  }

  absl::Status WriteFile(const std::string& path, absl::string_view data) override {
    if (int err = Injected(Op::kWrite, path)) return ErrnoError(err, absl::StrCat("write ", path));
    writes.push_back(absl::StrCat(path, "=", data));
    if (!Exists(path)) return ErrnoError(ENOENT, absl::StrCat("open ", path));
    std::string base = path.substr(path.rfind('/') + 1);
    if (base == "cgroup.subtree_control") {
      std::set<std::string> on = Words(GetFile(path));
      for (absl::string_view w : absl::StrSplit(data, ' ', absl::SkipEmpty())) {
        if (w[0] == '+') on.insert(std::string(w.substr(1)));
        if (w[0] == '-') on.erase(std::string(w.substr(1)));
      }
      PutFile(path, absl::StrJoin(on, " "));
      return absl::OkStatus();
    }
    if (base == "cgroup.kill" && data == "1") {
      ClearPids(path.substr(0, path.rfind('/')));
      return absl::OkStatus();
    }
    if (base == "cgroup.freeze") {
      PutFile(path.substr(0, path.rfind('/')) + "/cgroup.events", absl::StrCat("populated 1\nfrozen ", data, "\n"));
      return host_->WriteFile(path, data);
    }
    if (base == "cgroup.procs") {
      PutFile(path, absl::StrCat(GetFile(path), data, "\n"));
      return absl::OkStatus();
    }
    return host_->WriteFile(path, data);
  }

  absl::Status MakeDir(const std::string& path) override {
    if (int err = Injected(Op::kMkdir, path)) return ErrnoError(err, absl::StrCat("mkdir ", path));
    CRIUS_RETURN_IF_ERROR(host_->MakeDir(path));
    std::string parent = path.substr(0, path.rfind('/'));
    bool v2 = Exists(parent + "/cgroup.controllers");
    std::set<std::string> passed = v2 ? Words(GetFile(parent + "/cgroup.subtree_control")) : std::set<std::string>{};
    auto entries = host_->ListDir(parent);
    if (!entries.ok()) return entries.status();
    for (const auto& e : *entries) {
      if (e.type != DirEntry::Type::kFile) continue;
      std::string controller = e.name.substr(0, e.name.find('.'));
      if (v2 && controller != "cgroup" && !passed.count(controller)) continue;
      bool starts_empty = e.name == "cgroup.procs" || e.name == "cgroup.subtree_control" ||
                          e.name == "cpuset.cpus" || e.name == "cpuset.mems";
      PutFile(path + "/" + e.name, starts_empty ? "" : GetFile(parent + "/" + e.name));
    }
    if (v2) PutFile(path + "/cgroup.controllers", absl::StrJoin(passed, " "));
    return absl::OkStatus();
  }

  absl::Status RemoveDir(const std::string& path) override {
    rmdirs.push_back(path);
    if (int err = Injected(Op::kRmdir, path)) return ErrnoError(err, absl::StrCat("rmdir ", path));
    auto entries = host_->ListDir(path);
    if (!entries.ok()) return entries.status();
    for (const auto& e : *entries) {
      if (e.type == DirEntry::Type::kDir) return ErrnoError(EBUSY, absl::StrCat("rmdir ", path));
    }
    if (!Words(GetFile(path + "/cgroup.procs")).empty()) return ErrnoError(EBUSY, absl::StrCat("rmdir ", path));
    for (const auto& e : *entries) ::unlink((path + "/" + e.name).c_str());
    return host_->RemoveDir(path);
  }

  bool Exists(const std::string& path) override { return host_->Exists(path); }

  absl::StatusOr<std::vector<DirEntry>> ListDir(const std::string& path) override {
    return host_->ListDir(path);
  }

  absl::StatusOr<UniqueFd> OpenDir(const std::string& path) override { return host_->OpenDir(path); }

  // The process dies at once: it leaves every cgroup.procs below the root.
  absl::Status Kill(pid_t pid, int sig) override {
    kills.push_back({pid, sig});
    if (kill_works) RemovePid(root_, pid);
    return absl::OkStatus();
  }

  void Sleep(absl::Duration d) override { slept += d; }

  absl::Status AttachDeviceProgram(const std::string& dir, const DeviceProgram& program) override {
    if (int err = Injected(Op::kAttach, dir)) return ErrnoError(err, absl::StrCat("attach to ", dir));
    if (!IsDir(dir)) return ErrnoError(ENOENT, absl::StrCat("open ", dir));
    device_programs[dir] = program;
    return absl::OkStatus();
  }

  // The writes whose path starts with `prefix`, with the prefix cut off.
  std::vector<std::string> WritesUnder(const std::string& prefix) const {
    std::vector<std::string> out;
    for (const auto& w : writes) {
      if (w.rfind(prefix, 0) == 0) out.push_back(w.substr(prefix.size()));
    }
    return out;
  }

  static std::set<std::string> Words(absl::string_view text) {
    std::set<std::string> out;
    for (absl::string_view w : absl::StrSplit(text, absl::ByAnyChar(" \n"), absl::SkipEmpty())) {
      out.insert(std::string(w));
    }
    return out;
  }

 private:
  int Injected(Op op, const std::string& path) {
    auto it = failures_.find({op, path});
    if (it == failures_.end() || it->second.second == 0) return 0;
    if (it->second.second > 0) --it->second.second;
    return it->second.first;
  }

  // Empties every cgroup.procs in `dir` and below.
  void ClearPids(const std::string& dir) {
    auto entries = host_->ListDir(dir);
    if (!entries.ok()) return;
    for (const auto& e : *entries) {
      if (e.type == DirEntry::Type::kDir) ClearPids(dir + "/" + e.name);
      if (e.name == "cgroup.procs") PutFile(dir + "/" + e.name, "");
    }
  }

  void RemovePid(const std::string& dir, pid_t pid) {
    auto entries = host_->ListDir(dir);
    if (!entries.ok()) return;
    for (const auto& e : *entries) {
      std::string path = dir + "/" + e.name;
      if (e.type == DirEntry::Type::kDir) RemovePid(path, pid);
      if (e.name != "cgroup.procs") continue;
      std::set<std::string> pids = Words(GetFile(path));
      if (pids.erase(std::to_string(pid))) PutFile(path, absl::StrJoin(pids, "\n"));
    }
  }

  std::string root_;
  std::shared_ptr<Fs> host_;
  std::map<std::pair<Op, std::string>, std::pair<int, int>> failures_;
};

// /sys as the drivers read it: cpus 0-3, one memory node, 2MB and 1GB pages.
inline void MakeSys(const std::string& sys) {
  PutFile(sys + "/devices/system/cpu/online", "0-3\n");
  PutFile(sys + "/devices/system/node/online", "0\n");
  PutDir(sys + "/kernel/mm/hugepages/hugepages-2048kB");
  PutDir(sys + "/kernel/mm/hugepages/hugepages-1048576kB");
}

// A v1 host: cpu,cpuacct combined with symlinks beside it, the usual
// controllers, a named systemd hierarchy; `hybrid` adds the empty cgroup2 at
// <root>/unified.
inline void MakeV1(const std::string& root, bool hybrid = false, bool memsw = true) {
  auto files = [&](const std::string& dir, std::vector<std::pair<std::string, std::string>> list) {
    PutFile(root + "/" + dir + "/cgroup.procs");
    for (const auto& [name, content] : list) PutFile(root + "/" + dir + "/" + name, content);
  };
  files("cpu,cpuacct", {{"cpu.shares", "1024\n"},
                        {"cpu.cfs_period_us", "100000\n"},
                        {"cpu.cfs_quota_us", "-1\n"},
                        {"cpuacct.usage", "0\n"},
                        {"cpuacct.usage_user", "0\n"},
                        {"cpuacct.usage_sys", "0\n"},
                        {"cpuacct.stat", ""}});
  ::symlink("cpu,cpuacct", (root + "/cpu").c_str());
  ::symlink("cpu,cpuacct", (root + "/cpuacct").c_str());
  files("cpuset", {{"cpuset.cpus", "0-3\n"}, {"cpuset.mems", "0\n"}});
  std::vector<std::pair<std::string, std::string>> memory = {{"memory.limit_in_bytes", "9223372036854771712\n"},
                                                             {"memory.usage_in_bytes", "0\n"},
                                                             {"memory.stat", ""},
                                                             {"memory.oom_control", "oom_kill_disable 0\n"}};
  if (memsw) memory.push_back({"memory.memsw.limit_in_bytes", "9223372036854771712\n"});
  files("memory", memory);
  files("pids", {{"pids.max", "max\n"}, {"pids.current", "0\n"}});
  files("hugetlb", {{"hugetlb.2MB.limit_in_bytes", ""}, {"hugetlb.1GB.limit_in_bytes", ""}});
  files("freezer", {{"freezer.state", "THAWED\n"}});
  files("devices", {{"devices.allow", ""}});
  files("systemd", {});
  if (hybrid) {
    PutFile(root + "/unified/cgroup.controllers", "");
    PutFile(root + "/unified/cgroup.subtree_control", "");
    PutFile(root + "/unified/cgroup.procs");
  }
}

// A v2 host with every controller; the root holds the files each controller
// gives a child, so the fake's mkdir can pass them down.
inline void MakeV2(const std::string& root, bool swap = true, bool kill = true) {
  PutFile(root + "/cgroup.controllers", "cpuset cpu io memory hugetlb pids rdma misc\n");
  PutFile(root + "/cgroup.subtree_control", "");
  for (const char* f : {"cgroup.procs", "cgroup.freeze", "cgroup.events", "cpu.stat", "cpu.weight", "cpu.max",
                        "cpuset.cpus", "cpuset.mems", "memory.max", "memory.high", "memory.current",
                        "memory.stat", "memory.events", "pids.max", "pids.current", "hugetlb.2MB.max",
                        "hugetlb.1GB.max", "io.max"}) {
    PutFile(root + "/" + f);
  }
  if (swap) PutFile(root + "/memory.swap.max");
  if (kill) PutFile(root + "/cgroup.kill");
}

}  // namespace crius::cgroups::fake
