// Walking, emptying and removing cgroup directories: the same on v1 and v2.
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "cgroups/internal.h"
#include "common/status.h"

namespace crius::cgroups::internal {
namespace {

// rmdir can see EBUSY for a moment after the last process has exited and
// been reaped; runc retries the same way.
constexpr int kRmdirAttempts = 6;
constexpr absl::Duration kRmdirFirstDelay = absl::Milliseconds(10);

constexpr int kKillRounds = 250;
constexpr absl::Duration kKillRoundDelay = absl::Milliseconds(20);

std::string PidList(const std::vector<pid_t>& pids) {
  constexpr size_t kShown = 10;
  std::vector<pid_t> shown(pids.begin(), pids.begin() + std::min(pids.size(), kShown));
  std::string out = absl::StrJoin(shown, " ");
  if (pids.size() > kShown) absl::StrAppend(&out, " and ", pids.size() - kShown, " more");
  return out;
}

absl::Status RemoveOne(Fs& fs, const std::string& dir) {
  absl::Duration delay = kRmdirFirstDelay;
  for (int attempt = 1;; ++attempt) {
    absl::Status st = fs.RemoveDir(dir);
    if (st.ok() || ErrnoOf(st) == ENOENT) return absl::OkStatus();
    if (ErrnoOf(st) != EBUSY) return st;
    auto pids = ReadProcs(fs, dir);
    if (pids.ok() && !pids->empty()) {
      return absl::FailedPreconditionError(
          absl::StrCat("cgroup ", dir, " still has processes: ", PidList(*pids)));
    }
    if (attempt == kRmdirAttempts) {
      return absl::FailedPreconditionError(
          absl::StrCat("cgroup ", dir, " stays busy without processes: ", st.message()));
    }
    fs.Sleep(delay);
    delay *= 2;
  }
}

}  // namespace

absl::Status CheckPath(const std::string& path) {
  auto bad = [&](absl::string_view why) {
    return absl::InvalidArgumentError(absl::StrCat("cgroup path \"", path, "\": ", why));
  };
  if (path.empty() || path[0] != '/') return bad("must be absolute");
  if (path == "/") return bad("is the root cgroup");
  for (absl::string_view part : absl::StrSplit(absl::string_view(path).substr(1), '/')) {
    if (part.empty() || part == "." || part == "..") return bad("has an empty, \".\" or \"..\" part");
  }
  return absl::OkStatus();
}

std::vector<std::string> Levels(const std::string& path) {
  std::vector<std::string> out;
  for (size_t pos = path.find('/', 1);; pos = path.find('/', pos + 1)) {
    if (pos == std::string::npos) {
      out.push_back(path);
      return out;
    }
    out.push_back(path.substr(0, pos));
  }
}

absl::StatusOr<std::vector<pid_t>> ReadProcs(Fs& fs, const std::string& dir) {
  std::string file = dir + "/cgroup.procs";
  CRIUS_ASSIGN_OR_RETURN(std::string text, fs.ReadFile(file));
  std::vector<pid_t> pids;
  for (absl::string_view line : absl::StrSplit(text, '\n', absl::SkipWhitespace())) {
    pid_t pid = 0;
    if (!absl::SimpleAtoi(absl::StripAsciiWhitespace(line), &pid) || pid <= 0) {
      return absl::InternalError(absl::StrCat(file, ": not a pid: \"", line, "\""));
    }
    pids.push_back(pid);
  }
  return pids;
}

absl::StatusOr<std::vector<pid_t>> ReadProcsBelow(Fs& fs, const std::string& dir) {
  CRIUS_ASSIGN_OR_RETURN(std::vector<pid_t> pids, ReadProcs(fs, dir));
  auto entries = fs.ListDir(dir);
  if (!entries.ok()) {
    // Removed between the two reads: what it held is gone too.
    if (ErrnoOf(entries.status()) == ENOENT) return pids;
    return entries.status();
  }
  for (const auto& e : *entries) {
    if (e.type != DirEntry::Type::kDir) continue;
    auto below = ReadProcsBelow(fs, dir + "/" + e.name);
    if (!below.ok()) {
      if (ErrnoOf(below.status()) == ENOENT) continue;
      return below.status();
    }
    pids.insert(pids.end(), below->begin(), below->end());
  }
  return pids;
}

absl::Status CreateOrUndo(Fs& fs, const std::string& path,
                          const std::function<absl::Status(std::vector<std::string>* created)>& make) {
  CRIUS_RETURN_IF_ERROR(CheckPath(path));
  std::vector<std::string> created;
  absl::Status st = make(&created);
  if (st.ok()) return st;
  for (auto it = created.rbegin(); it != created.rend(); ++it) (void)fs.RemoveDir(*it);
  return Annotate(st, absl::StrCat("create cgroup ", path));
}

bool RemovedOrAbsent(const absl::Status& rmdir) { return rmdir.ok() || ErrnoOf(rmdir) == ENOENT; }

absl::Status RemoveCgroupTree(Fs& fs, const std::string& dir) {
  auto entries = fs.ListDir(dir);
  if (!entries.ok()) {
    if (ErrnoOf(entries.status()) == ENOENT) return absl::OkStatus();
    return entries.status();
  }
  for (const auto& e : *entries) {
    if (e.type == DirEntry::Type::kDir) CRIUS_RETURN_IF_ERROR(RemoveCgroupTree(fs, dir + "/" + e.name));
  }
  return RemoveOne(fs, dir);
}

absl::Status KillUntilEmpty(Fs& fs, const std::function<absl::StatusOr<std::vector<pid_t>>()>& list,
                            absl::string_view what) {
  std::vector<pid_t> left;
  for (int round = 0; round < kKillRounds; ++round) {
    auto pids = list();
    if (!pids.ok()) {
      if (pids.status().code() == absl::StatusCode::kNotFound) return absl::OkStatus();
      return pids.status();
    }
    if (pids->empty()) return absl::OkStatus();
    left = *pids;
    for (pid_t pid : left) {
      if (pid == ::getpid()) {
        return absl::FailedPreconditionError(
            absl::StrCat(what, " holds this daemon (pid ", pid, "); not killing it"));
      }
      absl::Status st = fs.Kill(pid, SIGKILL);
      if (!st.ok() && ErrnoOf(st) != ESRCH) return st;
    }
    fs.Sleep(kKillRoundDelay);
  }
  return absl::DeadlineExceededError(
      absl::StrCat(what, ": processes left after SIGKILL: ", PidList(left)));
}

absl::Status WriteSetting(Fs& fs, const std::string& dir, absl::string_view file,
                          absl::string_view value, absl::string_view field) {
  std::string path = absl::StrCat(dir, "/", file);
  if (!fs.Exists(path)) {
    absl::string_view controller = file.substr(0, file.find('.'));
    if (!fs.Exists(dir)) return ErrnoError(ENOENT, absl::StrCat("open ", dir));
    return absl::FailedPreconditionError(
        absl::StrCat("linux.resources.", field, ": the ", controller,
                     " controller is not available here (no ", path, ")"));
  }
  return fs.WriteFile(path, value);
}

}  // namespace crius::cgroups::internal
