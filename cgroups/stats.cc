// Usage counters from cgroup files only: no fork, no exec, one read per file.
#include <cerrno>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "cgroups/internal.h"
#include "common/status.h"

namespace crius::cgroups::internal {
namespace {

constexpr uint64_t kNsPerUs = 1000;

uint64_t Get(const std::map<std::string, uint64_t>& m, const std::string& key) {
  auto it = m.find(key);
  return it == m.end() ? 0 : it->second;
}

// v1 memory.stat has per-cgroup and hierarchical ("total_") counters; a
// container's children count towards it, so prefer the hierarchical one.
uint64_t Total(const std::map<std::string, uint64_t>& m, const std::string& key) {
  auto it = m.find("total_" + key);
  return it != m.end() ? it->second : Get(m, key);
}

absl::StatusOr<std::map<std::string, uint64_t>> ReadKeyed(Fs& fs, const std::string& path) {
  CRIUS_ASSIGN_OR_RETURN(std::string text, ReadIfPresent(fs, path));
  return ParseKeyed(text);
}

uint64_t WorkingSet(uint64_t usage, uint64_t inactive_file) {
  return usage > inactive_file ? usage - inactive_file : 0;
}

}  // namespace

std::map<std::string, uint64_t> ParseKeyed(absl::string_view text) {
  std::map<std::string, uint64_t> out;
  for (absl::string_view line : absl::StrSplit(text, '\n', absl::SkipWhitespace())) {
    std::vector<absl::string_view> words = absl::StrSplit(line, absl::ByAnyChar(" \t"), absl::SkipWhitespace());
    uint64_t v = 0;
    if (words.size() == 2 && absl::SimpleAtoi(words[1], &v)) out[std::string(words[0])] = v;
  }
  return out;
}

absl::StatusOr<std::string> ReadIfPresent(Fs& fs, const std::string& path) {
  auto text = fs.ReadFile(path);
  if (!text.ok() && ErrnoOf(text.status()) == ENOENT) return std::string();
  return text;
}

absl::StatusOr<uint64_t> ReadCounter(Fs& fs, const std::string& path) {
  CRIUS_ASSIGN_OR_RETURN(std::string text, ReadIfPresent(fs, path));
  absl::string_view value = absl::StripAsciiWhitespace(text);
  if (value.empty()) return 0;
  uint64_t v = 0;
  if (!absl::SimpleAtoi(value, &v)) {
    return absl::InternalError(absl::StrCat(path, ": not a counter: \"", value, "\""));
  }
  return v;
}

absl::StatusOr<Stats> ReadStatsV1(Fs& fs, const std::string& cpuacct_dir, const std::string& memory_dir) {
  Stats s;
  s.timestamp_ns = absl::GetCurrentTimeNanos();
  if (!cpuacct_dir.empty()) {
    CRIUS_ASSIGN_OR_RETURN(s.cpu_usage_ns, ReadCounter(fs, cpuacct_dir + "/cpuacct.usage"));
  }
  if (!memory_dir.empty()) {
    CRIUS_ASSIGN_OR_RETURN(s.memory_usage_bytes, ReadCounter(fs, memory_dir + "/memory.usage_in_bytes"));
    CRIUS_ASSIGN_OR_RETURN(auto stat, ReadKeyed(fs, memory_dir + "/memory.stat"));
    s.memory_working_set_bytes = WorkingSet(s.memory_usage_bytes, Total(stat, "inactive_file"));
    s.memory_rss_bytes = Total(stat, "rss");
    s.page_faults = Total(stat, "pgfault");
    s.major_page_faults = Total(stat, "pgmajfault");
  }
  return s;
}

absl::StatusOr<Stats> ReadStatsV2(Fs& fs, const std::string& dir) {
  Stats s;
  s.timestamp_ns = absl::GetCurrentTimeNanos();
  CRIUS_ASSIGN_OR_RETURN(auto cpu, ReadKeyed(fs, dir + "/cpu.stat"));
  s.cpu_usage_ns = Get(cpu, "usage_usec") * kNsPerUs;
  CRIUS_ASSIGN_OR_RETURN(s.memory_usage_bytes, ReadCounter(fs, dir + "/memory.current"));
  CRIUS_ASSIGN_OR_RETURN(auto mem, ReadKeyed(fs, dir + "/memory.stat"));
  s.memory_working_set_bytes = WorkingSet(s.memory_usage_bytes, Get(mem, "inactive_file"));
  s.memory_rss_bytes = Get(mem, "anon");
  s.page_faults = Get(mem, "pgfault");
  s.major_page_faults = Get(mem, "pgmajfault");
  return s;
}

absl::StatusOr<uint64_t> ReadOomKillsV1(Fs& fs, const std::string& memory_dir) {
  CRIUS_ASSIGN_OR_RETURN(auto control, ReadKeyed(fs, memory_dir + "/memory.oom_control"));
  return Get(control, "oom_kill");
}

absl::StatusOr<uint64_t> ReadOomKillsV2(Fs& fs, const std::string& dir) {
  CRIUS_ASSIGN_OR_RETURN(auto events, ReadKeyed(fs, dir + "/memory.events"));
  return Get(events, "oom_kill");
}

}  // namespace crius::cgroups::internal
