#include "metrics/process.h"

#include <dirent.h>
#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <optional>
#include <sstream>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "common/log.h"

namespace crius::metrics {
namespace {

std::optional<std::string> ReadFile(const std::string& path) {
  std::ifstream in(path);
  if (!in) {
    LOG_DEBUG("metrics: read %s failed: %s", path, strerror(errno));
    return std::nullopt;
  }
  std::stringstream buf;
  buf << in.rdbuf();
  return buf.str();
}

// The fields of /proc/<pid>/stat after "pid (comm)", so that fields()[0] is
// field 3 (state) of proc(5). comm may hold spaces and parentheses: the last
// ')' ends it.
std::optional<std::vector<std::string>> StatFields(const std::string& path) {
  std::optional<std::string> text = ReadFile(path);
  if (!text) return std::nullopt;
  size_t close = text->rfind(')');
  if (close == std::string::npos) {
    LOG_DEBUG("metrics: %s has no \"(comm)\"", path);
    return std::nullopt;
  }
  return std::vector<std::string>(
      absl::StrSplit(absl::string_view(*text).substr(close + 1), ' ', absl::SkipWhitespace()));
}

// Field `n` (1-based, as in proc(5)) of a stat line split by StatFields.
std::optional<double> StatField(const std::vector<std::string>& fields, size_t n) {
  double value;
  if (n < 3 || n - 3 >= fields.size() || !absl::SimpleAtod(fields[n - 3], &value)) {
    return std::nullopt;
  }
  return value;
}

std::optional<double> BootTime(const std::string& proc_stat) {
  std::optional<std::string> text = ReadFile(proc_stat);
  if (!text) return std::nullopt;
  for (absl::string_view line : absl::StrSplit(*text, '\n')) {
    if (absl::ConsumePrefix(&line, "btime ")) {
      double value;
      if (absl::SimpleAtod(line, &value)) return value;
    }
  }
  LOG_DEBUG("metrics: no btime line in %s", proc_stat);
  return std::nullopt;
}

// Entries of <proc>/self/fd, not counting the descriptor that lists them.
std::optional<double> OpenFds(const std::string& dir) {
  DIR* d = ::opendir(dir.c_str());
  if (d == nullptr) {
    LOG_DEBUG("metrics: open %s failed: %s", dir, strerror(errno));
    return std::nullopt;
  }
  std::string own = std::to_string(::dirfd(d));
  bool real_proc = dir == "/proc/self/fd";
  double count = 0;
  while (struct dirent* e = ::readdir(d)) {
    absl::string_view name = e->d_name;
    if (name == "." || name == "..") continue;
    if (real_proc && name == own) continue;
    ++count;
  }
  ::closedir(d);
  return count;
}

// The soft "Max open files" limit from <proc>/self/limits.
std::optional<double> MaxFds(const std::string& path) {
  std::optional<std::string> text = ReadFile(path);
  if (!text) return std::nullopt;
  for (absl::string_view line : absl::StrSplit(*text, '\n')) {
    if (!absl::ConsumePrefix(&line, "Max open files")) continue;
    std::vector<absl::string_view> words = absl::StrSplit(line, ' ', absl::SkipWhitespace());
    double value;
    if (!words.empty() && absl::SimpleAtod(words[0], &value)) return value;
    return std::nullopt;  // "unlimited": no finite value to report
  }
  return std::nullopt;
}

prometheus::MetricFamily Family(std::string name, std::string help, prometheus::MetricType type,
                                double value) {
  prometheus::MetricFamily f;
  f.name = std::move(name);
  f.help = std::move(help);
  f.type = type;
  prometheus::ClientMetric m;
  if (type == prometheus::MetricType::Counter) {
    m.counter.value = value;
  } else {
    m.gauge.value = value;
  }
  f.metric.push_back(std::move(m));
  return f;
}

}  // namespace

ProcessCollector::ProcessCollector(std::string proc) : proc_(std::move(proc)) {}

std::vector<prometheus::MetricFamily> ProcessCollector::Collect() const {
  using prometheus::MetricType;
  std::vector<prometheus::MetricFamily> out;
  const double ticks = static_cast<double>(::sysconf(_SC_CLK_TCK));
  const double page = static_cast<double>(::sysconf(_SC_PAGESIZE));

  if (auto fields = StatFields(absl::StrCat(proc_, "/self/stat"))) {
    // proc(5): 14 utime, 15 stime (ticks), 20 num_threads, 22 starttime
    // (ticks after boot), 24 rss (pages).
    auto utime = StatField(*fields, 14), stime = StatField(*fields, 15);
    if (utime && stime) {
      out.push_back(Family("crius_process_cpu_seconds_total",
                           "User and system CPU time criusd has used, in seconds.",
                           MetricType::Counter, (*utime + *stime) / ticks));
    }
    if (auto rss = StatField(*fields, 24)) {
      out.push_back(Family("crius_process_resident_memory_bytes",
                           "Resident memory size of criusd, in bytes.", MetricType::Gauge,
                           *rss * page));
    }
    if (auto threads = StatField(*fields, 20)) {
      out.push_back(Family("crius_process_threads", "Threads in criusd.", MetricType::Gauge,
                           *threads));
    }
    auto start = StatField(*fields, 22);
    auto boot = BootTime(absl::StrCat(proc_, "/stat"));
    if (start && boot) {
      out.push_back(Family("crius_process_start_time_seconds",
                           "Start time of criusd since the Unix epoch, in seconds.",
                           MetricType::Gauge, *boot + *start / ticks));
    }
  }
  if (auto fds = OpenFds(absl::StrCat(proc_, "/self/fd"))) {
    out.push_back(Family("crius_process_open_fds", "Open file descriptors of criusd.",
                         MetricType::Gauge, *fds));
  }
  if (auto max = MaxFds(absl::StrCat(proc_, "/self/limits"))) {
    out.push_back(Family("crius_process_max_fds",
                         "criusd's limit on open file descriptors (soft RLIMIT_NOFILE).",
                         MetricType::Gauge, *max));
  }
  return out;
}

}  // namespace crius::metrics
