#include "cgroups/resources.h"

#include "cgroups/driver.h"

#include <cerrno>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "common/status.h"

namespace crius::cgroups {
namespace {

// Far above any real machine; stops "0-2000000000" from filling memory.
constexpr int kMaxCpuIndex = 1 << 16;

constexpr int64_t kMinCfsPeriod = 1000;
constexpr int64_t kMaxCfsPeriod = 1000000;
constexpr int64_t kMinCfsQuota = 1000;
constexpr int64_t kMinShares = 2;
constexpr int64_t kMaxShares = 262144;

// Plain decimal digits: the kernel's list syntax has no signs or spaces.
bool IsNumber(absl::string_view s) {
  return !s.empty() && s.find_first_not_of("0123456789") == absl::string_view::npos;
}

absl::Status Bad(absl::string_view field, absl::string_view why) {
  return absl::InvalidArgumentError(absl::StrCat("linux.resources.", field, ": ", why));
}

absl::Status NotNegative(absl::string_view field, int64_t v) {
  if (v < 0) return Bad(field, absl::StrCat("must not be negative (got ", v, ")"));
  return absl::OkStatus();
}

// Either -1 (unlimited) or not negative.
absl::Status MinusOneOrNotNegative(absl::string_view field, int64_t v) {
  if (v < -1) return Bad(field, absl::StrCat("must be -1 (unlimited) or not negative (got ", v, ")"));
  return absl::OkStatus();
}

absl::Status CheckCpuset(absl::string_view field, absl::string_view what,
                         const std::string& value, const std::set<int>& online,
                         const std::string& online_text) {
  if (value.empty()) return absl::OkStatus();
  auto parsed = ParseCpuList(value);
  if (!parsed.ok()) return Bad(field, parsed.status().message());
  if (parsed->empty()) return Bad(field, absl::StrCat("\"", value, "\" names no ", what));
  for (int id : *parsed) {
    if (!online.count(id)) {
      return Bad(field, absl::StrCat("\"", value, "\" names ", what, " ", id,
                                     ", which is not online (online: ",
                                     online_text.empty() ? "none" : online_text, ")"));
    }
  }
  return absl::OkStatus();
}

// Files a container's settings must never reach: they move processes, change
// the tree's shape or kill it.
bool IsReservedUnifiedKey(absl::string_view key) {
  return key == "cgroup.procs" || key == "cgroup.threads" || key == "cgroup.subtree_control" ||
         key == "cgroup.kill" || key == "cgroup.type" || key == "cgroup.freeze";
}

absl::Status CheckUnified(const Resources& r, const Machine& m) {
  if (r.unified.empty()) return absl::OkStatus();
  if (m.cgroup_version != 2) {
    return Bad("unified", "needs cgroup v2; this node runs cgroup v1");
  }
  for (const auto& [key, value] : r.unified) {
    std::string field = absl::StrCat("unified[", key, "]");
    if (key.empty()) return Bad("unified", "empty key");
    if (absl::StrContains(key, "/") || absl::StrContains(key, "..")) {
      return Bad(field, "must be a file name in the cgroup, without '/' or '..'");
    }
    size_t dot = key.find('.');
    if (dot == std::string::npos || dot == 0 || dot + 1 == key.size()) {
      return Bad(field, "must have the form <controller>.<setting>");
    }
    if (IsReservedUnifiedKey(key)) return Bad(field, "is managed by the runtime");
  }
  return absl::OkStatus();
}

absl::Status CheckHugepages(const Resources& r, const Machine& m) {
  for (const auto& [size, limit] : r.hugepage_limits) {
    std::string field = absl::StrCat("hugepage_limits[", size, "]");
    bool known = false;
    for (const auto& s : m.hugepage_sizes) known = known || s == size;
    if (!known) {
      return Bad(field, absl::StrCat("unknown page size (this machine has: ",
                                     m.hugepage_sizes.empty() ? "none"
                                                              : absl::StrJoin(m.hugepage_sizes, ", "),
                                     ")"));
    }
    CRIUS_RETURN_IF_ERROR(NotNegative(field, limit));
  }
  return absl::OkStatus();
}

absl::Status CheckCpu(const Resources& r) {
  CRIUS_RETURN_IF_ERROR(NotNegative("cpu_period", r.cpu_period));
  CRIUS_RETURN_IF_ERROR(NotNegative("cpu_quota", r.cpu_quota));
  CRIUS_RETURN_IF_ERROR(NotNegative("cpu_shares", r.cpu_shares));
  if (r.cpu_period != 0 && (r.cpu_period < kMinCfsPeriod || r.cpu_period > kMaxCfsPeriod)) {
    return Bad("cpu_period", absl::StrCat("must be between ", kMinCfsPeriod, " and ", kMaxCfsPeriod,
                                          " us (got ", r.cpu_period, ")"));
  }
  if (r.cpu_quota != 0 && r.cpu_period == 0) {
    return Bad("cpu_quota", "is set without cpu_period");
  }
  if (r.cpu_quota != 0 && r.cpu_quota < kMinCfsQuota) {
    return Bad("cpu_quota", absl::StrCat("must be at least ", kMinCfsQuota, " us (got ", r.cpu_quota, ")"));
  }
  if (r.cpu_shares != 0 && (r.cpu_shares < kMinShares || r.cpu_shares > kMaxShares)) {
    return Bad("cpu_shares", absl::StrCat("must be between ", kMinShares, " and ", kMaxShares,
                                          " (got ", r.cpu_shares, ")"));
  }
  return absl::OkStatus();
}

absl::Status CheckMemory(const Resources& r) {
  CRIUS_RETURN_IF_ERROR(NotNegative("memory_limit_in_bytes", r.memory_limit_in_bytes));
  CRIUS_RETURN_IF_ERROR(MinusOneOrNotNegative("memory_swap_limit_in_bytes", r.memory_swap_limit_in_bytes));
  if (r.memory_swap_limit_in_bytes > 0) {
    if (r.memory_limit_in_bytes == 0) {
      return Bad("memory_swap_limit_in_bytes", "is set without memory_limit_in_bytes");
    }
    if (r.memory_swap_limit_in_bytes < r.memory_limit_in_bytes) {
      return Bad("memory_swap_limit_in_bytes",
                 absl::StrCat("(memory plus swap, ", r.memory_swap_limit_in_bytes,
                              ") is below memory_limit_in_bytes (", r.memory_limit_in_bytes, ")"));
    }
  }
  return absl::OkStatus();
}

absl::StatusOr<std::set<int>> ReadList(Fs& fs, const std::string& path, std::string* text) {
  CRIUS_ASSIGN_OR_RETURN(std::string raw, fs.ReadFile(path));
  *text = std::string(absl::StripAsciiWhitespace(raw));
  auto parsed = ParseCpuList(*text);
  if (!parsed.ok()) return Annotate(parsed.status(), path);
  return parsed;
}

}  // namespace

absl::StatusOr<std::set<int>> ParseCpuList(absl::string_view list) {
  std::set<int> out;
  list = absl::StripAsciiWhitespace(list);
  if (list.empty()) return out;
  for (absl::string_view part : absl::StrSplit(list, ',')) {
    size_t dash = part.find('-');
    absl::string_view first = part.substr(0, dash);
    absl::string_view last = dash == absl::string_view::npos ? first : part.substr(dash + 1);
    int lo = 0, hi = 0;
    if (!IsNumber(first) || !IsNumber(last) || !absl::SimpleAtoi(first, &lo) ||
        !absl::SimpleAtoi(last, &hi) || hi < lo) {
      return absl::InvalidArgumentError(
          absl::StrCat("\"", list, "\" is not a list like 0-3,5: bad \"", part, "\""));
    }
    if (hi >= kMaxCpuIndex) {
      return absl::InvalidArgumentError(absl::StrCat("\"", list, "\": ", hi, " is out of range"));
    }
    for (int i = lo; i <= hi; ++i) out.insert(i);
  }
  return out;
}

uint64_t SharesToWeight(int64_t shares) {
  if (shares <= 0) return 0;
  if (shares < kMinShares) shares = kMinShares;
  if (shares > kMaxShares) shares = kMaxShares;
  return 1 + ((static_cast<uint64_t>(shares) - 2) * 9999) / 262142;
}

std::string CpuMaxValue(int64_t quota, int64_t period) {
  if (quota > 0 && period > 0) return absl::StrCat(quota, " ", period);
  if (period > 0) return absl::StrCat("max ", period);
  return "";
}

std::string SwapMaxValue(int64_t memory_limit, int64_t memory_swap_limit) {
  if (memory_swap_limit == -1) return "max";
  return absl::StrCat(memory_swap_limit - memory_limit);
}

std::string HugepageSizeName(uint64_t kib) {
  if (kib != 0 && kib % (1024 * 1024) == 0) return absl::StrCat(kib / (1024 * 1024), "GB");
  if (kib != 0 && kib % 1024 == 0) return absl::StrCat(kib / 1024, "MB");
  return absl::StrCat(kib, "KB");
}

absl::StatusOr<Machine> ReadMachine(Fs& fs, const std::string& sys_root) {
  Machine m;
  CRIUS_ASSIGN_OR_RETURN(m.online_cpus,
                         ReadList(fs, sys_root + "/devices/system/cpu/online", &m.online_cpus_text));
  std::string nodes = sys_root + "/devices/system/node/online";
  if (fs.Exists(nodes)) {
    CRIUS_ASSIGN_OR_RETURN(m.online_mems, ReadList(fs, nodes, &m.online_mems_text));
  } else {
    // A kernel without NUMA has one memory node and no node directory.
    m.online_mems = {0};
    m.online_mems_text = absl::StrCat(0);
  }
  std::string hugepages = sys_root + "/kernel/mm/hugepages";
  if (fs.Exists(hugepages)) {
    CRIUS_ASSIGN_OR_RETURN(auto entries, fs.ListDir(hugepages));
    std::set<uint64_t> sizes;
    for (const auto& e : entries) {
      absl::string_view name = e.name;
      uint64_t kib = 0;
      if (absl::ConsumePrefix(&name, "hugepages-") && absl::ConsumeSuffix(&name, "kB") &&
          absl::SimpleAtoi(name, &kib) && kib > 0) {
        sizes.insert(kib);
      }
    }
    for (uint64_t kib : sizes) m.hugepage_sizes.push_back(HugepageSizeName(kib));
  }
  return m;
}

absl::Status Validate(const Resources& r, const Machine& m) {
  CRIUS_RETURN_IF_ERROR(CheckCpu(r));
  CRIUS_RETURN_IF_ERROR(CheckMemory(r));
  CRIUS_RETURN_IF_ERROR(
      CheckCpuset("cpuset_cpus", "cpu", r.cpuset_cpus, m.online_cpus, m.online_cpus_text));
  CRIUS_RETURN_IF_ERROR(
      CheckCpuset("cpuset_mems", "memory node", r.cpuset_mems, m.online_mems, m.online_mems_text));
  CRIUS_RETURN_IF_ERROR(CheckHugepages(r, m));
  CRIUS_RETURN_IF_ERROR(CheckUnified(r, m));
  CRIUS_RETURN_IF_ERROR(MinusOneOrNotNegative("pids_limit", r.pids_limit));
  return absl::OkStatus();
}

}  // namespace crius::cgroups

namespace crius::cgroups {

std::string DeviceRule::ToString() const {
  auto number = [](int64_t n) { return n < 0 ? std::string("*") : absl::StrCat(n); };
  if (type == 'a') return absl::StrCat("a *:* ", access);
  return absl::StrCat(std::string(1, type), " ", number(major), ":", number(minor), " ", access);
}

const std::vector<DeviceRule>& DefaultAllowedDevices() {
  static const std::vector<DeviceRule> rules = {
      {'c', -1, -1, "m"},     {'b', -1, -1, "m"},      // mknod of anything; opening is another matter
      {'c', 1, 3, "rwm"},     {'c', 1, 5, "rwm"},      // null, zero
      {'c', 1, 7, "rwm"},     {'c', 1, 8, "rwm"},      // full, random
      {'c', 1, 9, "rwm"},     {'c', 5, 0, "rwm"},      // urandom, tty
      {'c', 5, 1, "rwm"},     {'c', 5, 2, "rwm"},      // console, ptmx
      {'c', 136, -1, "rwm"},  {'c', 10, 200, "rwm"},   // the pts, tun
  };
  return rules;
}

}  // namespace crius::cgroups
