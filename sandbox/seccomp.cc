// OCI / moby seccomp profiles parsed into one Profile and compiled with
// libseccomp, with runc's semantics wherever the spec leaves room.
#include "sandbox/seccomp.h"

#include <seccomp.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/utsname.h>

#include <algorithm>
#include <array>
#include <memory>
#include <optional>

#include <nlohmann/json.hpp>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "common/status.h"
#include "common/unique_fd.h"

namespace crius::sandbox {
namespace seccomp_internal {
namespace {

using json = nlohmann::json;

template <typename T>
struct Named {
  absl::string_view name;
  T value;
};

constexpr Named<Action> kActions[] = {
    {"SCMP_ACT_KILL", Action::kKillThread},  // the spec's old name for KILL_THREAD
    {"SCMP_ACT_KILL_THREAD", Action::kKillThread},
    {"SCMP_ACT_KILL_PROCESS", Action::kKillProcess},
    {"SCMP_ACT_TRAP", Action::kTrap},
    {"SCMP_ACT_ERRNO", Action::kErrno},
    {"SCMP_ACT_TRACE", Action::kTrace},
    {"SCMP_ACT_ALLOW", Action::kAllow},
    {"SCMP_ACT_LOG", Action::kLog},
};

constexpr Named<Op> kOps[] = {
    {"SCMP_CMP_NE", Op::kNotEqual},     {"SCMP_CMP_LT", Op::kLess},
    {"SCMP_CMP_LE", Op::kLessOrEqual},  {"SCMP_CMP_EQ", Op::kEqual},
    {"SCMP_CMP_GE", Op::kGreaterOrEqual}, {"SCMP_CMP_GT", Op::kGreater},
    {"SCMP_CMP_MASKED_EQ", Op::kMaskedEqual},
};

// The spec's architecture names and libseccomp's for them. A name libseccomp
// (this version) does not know is accepted and left out of the filter.
constexpr Named<const char*> kArches[] = {
    {"SCMP_ARCH_X86", "x86"},           {"SCMP_ARCH_X86_64", "x86_64"},
    {"SCMP_ARCH_X32", "x32"},           {"SCMP_ARCH_ARM", "arm"},
    {"SCMP_ARCH_AARCH64", "aarch64"},   {"SCMP_ARCH_MIPS", "mips"},
    {"SCMP_ARCH_MIPS64", "mips64"},     {"SCMP_ARCH_MIPS64N32", "mips64n32"},
    {"SCMP_ARCH_MIPSEL", "mipsel"},     {"SCMP_ARCH_MIPSEL64", "mipsel64"},
    {"SCMP_ARCH_MIPSEL64N32", "mipsel64n32"}, {"SCMP_ARCH_PPC", "ppc"},
    {"SCMP_ARCH_PPC64", "ppc64"},       {"SCMP_ARCH_PPC64LE", "ppc64le"},
    {"SCMP_ARCH_S390", "s390"},         {"SCMP_ARCH_S390X", "s390x"},
    {"SCMP_ARCH_PARISC", "parisc"},     {"SCMP_ARCH_PARISC64", "parisc64"},
    {"SCMP_ARCH_RISCV64", "riscv64"},   {"SCMP_ARCH_LOONGARCH64", "loongarch64"},
    {"SCMP_ARCH_M68K", "m68k"},         {"SCMP_ARCH_SH", "sh"},
    {"SCMP_ARCH_SHEB", "sheb"},
};

// Capability names as moby's "caps" filters spell them.
constexpr Named<int> kCaps[] = {
    {"CAP_CHOWN", 0},           {"CAP_DAC_OVERRIDE", 1},   {"CAP_DAC_READ_SEARCH", 2},
    {"CAP_FOWNER", 3},          {"CAP_FSETID", 4},         {"CAP_KILL", 5},
    {"CAP_SETGID", 6},          {"CAP_SETUID", 7},         {"CAP_SETPCAP", 8},
    {"CAP_LINUX_IMMUTABLE", 9}, {"CAP_NET_BIND_SERVICE", 10}, {"CAP_NET_BROADCAST", 11},
    {"CAP_NET_ADMIN", 12},      {"CAP_NET_RAW", 13},       {"CAP_IPC_LOCK", 14},
    {"CAP_IPC_OWNER", 15},      {"CAP_SYS_MODULE", 16},    {"CAP_SYS_RAWIO", 17},
    {"CAP_SYS_CHROOT", 18},     {"CAP_SYS_PTRACE", 19},    {"CAP_SYS_PACCT", 20},
    {"CAP_SYS_ADMIN", 21},      {"CAP_SYS_BOOT", 22},      {"CAP_SYS_NICE", 23},
    {"CAP_SYS_RESOURCE", 24},   {"CAP_SYS_TIME", 25},      {"CAP_SYS_TTY_CONFIG", 26},
    {"CAP_MKNOD", 27},          {"CAP_LEASE", 28},         {"CAP_AUDIT_WRITE", 29},
    {"CAP_AUDIT_CONTROL", 30},  {"CAP_SETFCAP", 31},       {"CAP_MAC_OVERRIDE", 32},
    {"CAP_MAC_ADMIN", 33},      {"CAP_SYSLOG", 34},        {"CAP_WAKE_ALARM", 35},
    {"CAP_BLOCK_SUSPEND", 36},  {"CAP_AUDIT_READ", 37},    {"CAP_PERFMON", 38},
    {"CAP_BPF", 39},            {"CAP_CHECKPOINT_RESTORE", 40},
};

template <typename T, size_t N>
const T* Find(const Named<T> (&table)[N], absl::string_view name) {
  for (const Named<T>& entry : table) {
    if (entry.name == name) return &entry.value;
  }
  return nullptr;
}

// The native architecture's name in the spec's spelling, for archMap.
constexpr absl::string_view NativeOciArch() {
#if defined(__x86_64__) && !defined(__ILP32__)
  return "SCMP_ARCH_X86_64";
#elif defined(__aarch64__)
  return "SCMP_ARCH_AARCH64";
#elif defined(__riscv) && __riscv_xlen == 64
  return "SCMP_ARCH_RISCV64";
#elif defined(__powerpc64__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
  return "SCMP_ARCH_PPC64LE";
#elif defined(__s390x__)
  return "SCMP_ARCH_S390X";
#else
  return "";
#endif
}

// Errors name the profile first, then the place in it.
class Parser {
 public:
  Parser(absl::string_view field, const std::vector<int>& caps) : field_(field), caps_(caps) {}

  absl::StatusOr<Profile> Parse(absl::string_view text) {
    json doc = json::parse(text.begin(), text.end(), nullptr, /*allow_exceptions=*/false);
    if (doc.is_discarded()) return InvalidField("", "not valid JSON");
    if (!doc.is_object()) return InvalidField("", "not a JSON object");
    Profile profile;

    CRIUS_ASSIGN_OR_RETURN(std::optional<std::string> def, String(doc, "defaultAction", ""));
    if (!def) return InvalidField("defaultAction", "missing");
    CRIUS_ASSIGN_OR_RETURN(profile.default_action, ParseAction(*def, "defaultAction"));
    CRIUS_ASSIGN_OR_RETURN(std::optional<uint64_t> def_errno, Uint(doc, "defaultErrnoRet", "", 0xffff));
    if (def_errno) profile.default_errno_ret = static_cast<uint32_t>(*def_errno);

    CRIUS_RETURN_IF_ERROR(ParseArches(doc, &profile));
    CRIUS_ASSIGN_OR_RETURN(std::vector<std::string> flags, Strings(doc, "flags", ""));
    for (const std::string& flag : flags) CRIUS_RETURN_IF_ERROR(ParseFlag(flag, &profile));

    auto syscalls = doc.find("syscalls");
    if (syscalls != doc.end() && !syscalls->is_null()) {
      if (!syscalls->is_array()) return InvalidField("syscalls", "not an array");
      for (size_t i = 0; i < syscalls->size(); ++i) {
        std::string path = absl::StrCat("syscalls[", i, "]");
        const json& entry = (*syscalls)[i];
        if (!entry.is_object()) return InvalidField(path, "not an object");
        CRIUS_ASSIGN_OR_RETURN(bool applies, Applies(entry, path));
        CRIUS_ASSIGN_OR_RETURN(Rule rule, ParseRule(entry, path));
        if (applies) profile.rules.push_back(std::move(rule));
      }
    }
    return profile;
  }

 private:
  absl::Status InvalidField(absl::string_view path, absl::string_view why) const {
    if (path.empty()) return absl::InvalidArgumentError(absl::StrCat(field_, ": ", why));
    return absl::InvalidArgumentError(absl::StrCat(field_, ": ", path, ": ", why));
  }

  static std::string Join(absl::string_view path, absl::string_view key) {
    return path.empty() ? std::string(key) : absl::StrCat(path, ".", key);
  }

  // Absent and null both mean "not given", as Go's decoder treats them.
  absl::StatusOr<std::optional<std::string>> String(const json& obj, const char* key,
                                                    absl::string_view path) const {
    auto it = obj.find(key);
    if (it == obj.end() || it->is_null()) return std::nullopt;
    if (!it->is_string()) return InvalidField(Join(path, key), "not a string");
    return it->get<std::string>();
  }

  absl::StatusOr<std::optional<uint64_t>> Uint(const json& obj, const char* key, absl::string_view path,
                                               uint64_t max) const {
    auto it = obj.find(key);
    if (it == obj.end() || it->is_null()) return std::nullopt;
    if (!it->is_number_unsigned() && !(it->is_number_integer() && it->get<int64_t>() >= 0)) {
      return InvalidField(Join(path, key), "not a non-negative integer");
    }
    uint64_t value = it->get<uint64_t>();
    if (value > max) return InvalidField(Join(path, key), absl::StrCat(value, " is more than ", max));
    return value;
  }

  absl::StatusOr<std::vector<std::string>> Strings(const json& obj, const char* key,
                                                   absl::string_view path) const {
    std::vector<std::string> out;
    auto it = obj.find(key);
    if (it == obj.end() || it->is_null()) return out;
    if (!it->is_array()) return InvalidField(Join(path, key), "not an array of strings");
    for (const json& s : *it) {
      if (!s.is_string()) return InvalidField(Join(path, key), "not an array of strings");
      out.push_back(s.get<std::string>());
    }
    return out;
  }

  absl::StatusOr<Action> ParseAction(const std::string& name, absl::string_view path) const {
    if (name == "SCMP_ACT_NOTIFY") {
      return InvalidField(path, "SCMP_ACT_NOTIFY is not supported (crius has no seccomp notify listener)");
    }
    const Action* action = Find(kActions, name);
    if (action == nullptr) return InvalidField(path, absl::StrCat("\"", name, "\" is not a seccomp action"));
    return *action;
  }

  // Checks an architecture name; returns libseccomp's name for it.
  absl::StatusOr<const char*> ParseArch(const std::string& name, absl::string_view path) const {
    const char* const* arch = Find(kArches, name);
    if (arch == nullptr) return InvalidField(path, absl::StrCat("\"", name, "\" is not a seccomp architecture"));
    return *arch;
  }

  // "architectures" (OCI) or "archMap" (moby: the native entry's arch and
  // sub-architectures), never both, as moby decides.
  absl::Status ParseArches(const json& doc, Profile* profile) const {
    CRIUS_ASSIGN_OR_RETURN(std::vector<std::string> arches, Strings(doc, "architectures", ""));
    for (size_t i = 0; i < arches.size(); ++i) {
      CRIUS_ASSIGN_OR_RETURN(const char* arch, ParseArch(arches[i], absl::StrCat("architectures[", i, "]")));
      profile->arches.push_back(arch);
    }
    auto map = doc.find("archMap");
    if (map == doc.end() || map->is_null()) return absl::OkStatus();
    if (!map->is_array()) return InvalidField("archMap", "not an array");
    if (!arches.empty()) return InvalidField("archMap", "given together with architectures; use one of them");
    for (size_t i = 0; i < map->size(); ++i) {
      std::string path = absl::StrCat("archMap[", i, "]");
      const json& entry = (*map)[i];
      if (!entry.is_object()) return InvalidField(path, "not an object");
      CRIUS_ASSIGN_OR_RETURN(std::optional<std::string> main, String(entry, "architecture", path));
      if (!main) return InvalidField(Join(path, "architecture"), "missing");
      CRIUS_ASSIGN_OR_RETURN(const char* main_arch, ParseArch(*main, Join(path, "architecture")));
      CRIUS_ASSIGN_OR_RETURN(std::vector<std::string> subs, Strings(entry, "subArchitectures", path));
      std::vector<std::string> resolved = {main_arch};
      for (size_t j = 0; j < subs.size(); ++j) {
        CRIUS_ASSIGN_OR_RETURN(const char* sub,
                               ParseArch(subs[j], absl::StrCat(path, ".subArchitectures[", j, "]")));
        resolved.push_back(sub);
      }
      // The first matching entry wins, as in moby.
      if (*main == NativeOciArch() && profile->arches.empty()) profile->arches = std::move(resolved);
    }
    return absl::OkStatus();
  }

  absl::Status ParseFlag(const std::string& flag, Profile* profile) const {
    if (flag == "SECCOMP_FILTER_FLAG_LOG") {
      profile->log_flag = true;
      return absl::OkStatus();
    }
    // TSYNC: the init is single-threaded when it installs. SPEC_ALLOW: the
    // speculative-store-bypass mitigation stays on, stricter than asked.
    // WAIT_KILLABLE_RECV and TSYNC_ESRCH only refine TSYNC or a listener.
    if (flag == "SECCOMP_FILTER_FLAG_TSYNC" || flag == "SECCOMP_FILTER_FLAG_SPEC_ALLOW" ||
        flag == "SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV" || flag == "SECCOMP_FILTER_FLAG_TSYNC_ESRCH") {
      return absl::OkStatus();
    }
    if (flag == "SECCOMP_FILTER_FLAG_NEW_LISTENER") {
      return InvalidField("flags", "SECCOMP_FILTER_FLAG_NEW_LISTENER is not supported (crius has no seccomp notify listener)");
    }
    return InvalidField("flags", absl::StrCat("\"", flag, "\" is not a seccomp filter flag"));
  }

  bool HasCap(const std::string& name) const {
    const int* cap = Find(kCaps, name);
    return cap != nullptr && std::find(caps_.begin(), caps_.end(), *cap) != caps_.end();
  }

  // moby's "<kernel>.<major>"; nullopt for an absent or empty one.
  absl::StatusOr<std::optional<std::array<unsigned, 2>>> MinKernel(const json& filter, absl::string_view path) const {
    CRIUS_ASSIGN_OR_RETURN(std::optional<std::string> text, String(filter, "minKernel", path));
    if (!text || text->empty()) return std::nullopt;
    std::vector<std::string> parts = absl::StrSplit(*text, '.');
    std::array<unsigned, 2> version = {0, 0};
    bool ok = parts.size() == 2;
    for (size_t i = 0; ok && i < 2; ++i) {
      ok = !parts[i].empty() && parts[i].size() <= 3 &&
           std::all_of(parts[i].begin(), parts[i].end(), [](char c) { return c >= '0' && c <= '9'; });
      if (ok) version[i] = static_cast<unsigned>(std::stoul(parts[i]));
    }
    if (!ok || (version[0] == 0 && version[1] == 0)) {
      return InvalidField(Join(path, "minKernel"), absl::StrCat("\"", *text, "\" is not <kernel>.<major>"));
    }
    return version;
  }

  // moby's conditions: "excludes" drops the entry if any of its conditions
  // holds; "includes" keeps it only if all of them hold.
  absl::StatusOr<bool> Applies(const json& entry, absl::string_view path) const {
    for (bool include : {false, true}) {
      const char* key = include ? "includes" : "excludes";
      auto it = entry.find(key);
      if (it == entry.end() || it->is_null()) continue;
      std::string fpath = Join(path, key);
      if (!it->is_object()) return InvalidField(fpath, "not an object");
      CRIUS_ASSIGN_OR_RETURN(std::vector<std::string> caps, Strings(*it, "caps", fpath));
      CRIUS_ASSIGN_OR_RETURN(std::vector<std::string> arches, Strings(*it, "arches", fpath));
      CRIUS_ASSIGN_OR_RETURN(auto min_kernel, MinKernel(*it, fpath));
      bool native = std::find(arches.begin(), arches.end(), NativeMobyArch()) != arches.end();
      bool kernel_ok = min_kernel && KernelAtLeast((*min_kernel)[0], (*min_kernel)[1]);
      if (include) {
        if (!arches.empty() && !native) return false;
        for (const std::string& cap : caps) {
          if (!HasCap(cap)) return false;
        }
        if (min_kernel && !kernel_ok) return false;
      } else {
        if (native) return false;
        for (const std::string& cap : caps) {
          if (HasCap(cap)) return false;
        }
        if (min_kernel && kernel_ok) return false;
      }
    }
    return true;
  }

  absl::StatusOr<Rule> ParseRule(const json& entry, const std::string& path) const {
    Rule rule;
    CRIUS_ASSIGN_OR_RETURN(std::optional<std::string> name, String(entry, "name", path));
    auto names = entry.find("names");
    bool has_names = names != entry.end() && !names->is_null();
    if (name && has_names) return InvalidField(path, "both name and names given; use names");
    if (!name && !has_names) return InvalidField(path, "no names given");
    if (name) {
      rule.names = {*name};
    } else {
      CRIUS_ASSIGN_OR_RETURN(rule.names, Strings(entry, "names", path));
    }
    CRIUS_ASSIGN_OR_RETURN(std::optional<std::string> action, String(entry, "action", path));
    if (!action) return InvalidField(Join(path, "action"), "missing");
    CRIUS_ASSIGN_OR_RETURN(rule.action, ParseAction(*action, Join(path, "action")));
    CRIUS_ASSIGN_OR_RETURN(std::optional<uint64_t> errno_ret, Uint(entry, "errnoRet", path, 0xffff));
    if (errno_ret) rule.errno_ret = static_cast<uint32_t>(*errno_ret);

    auto args = entry.find("args");
    if (args == entry.end() || args->is_null()) return rule;
    if (!args->is_array()) return InvalidField(Join(path, "args"), "not an array");
    for (size_t i = 0; i < args->size(); ++i) {
      std::string apath = absl::StrCat(path, ".args[", i, "]");
      const json& a = (*args)[i];
      if (!a.is_object()) return InvalidField(apath, "not an object");
      Arg arg;
      // A syscall has six arguments; the index is checked here, not by libseccomp.
      CRIUS_ASSIGN_OR_RETURN(std::optional<uint64_t> index, Uint(a, "index", apath, 5));
      CRIUS_ASSIGN_OR_RETURN(std::optional<uint64_t> value, Uint(a, "value", apath, UINT64_MAX));
      CRIUS_ASSIGN_OR_RETURN(std::optional<uint64_t> value_two, Uint(a, "valueTwo", apath, UINT64_MAX));
      CRIUS_ASSIGN_OR_RETURN(std::optional<std::string> op, String(a, "op", apath));
      arg.index = static_cast<unsigned>(index.value_or(0));
      arg.value = value.value_or(0);
      arg.value_two = value_two.value_or(0);
      if (!op) return InvalidField(Join(apath, "op"), "missing");
      const Op* known = Find(kOps, *op);
      if (known == nullptr) return InvalidField(Join(apath, "op"), absl::StrCat("\"", *op, "\" is not a seccomp comparison"));
      arg.op = *known;
      rule.args.push_back(arg);
    }
    return rule;
  }

  absl::string_view field_;
  const std::vector<int>& caps_;
};

uint32_t ScmpAction(Action action, uint32_t errno_ret) {
  switch (action) {
    case Action::kKillThread: return SCMP_ACT_KILL_THREAD;
    case Action::kKillProcess: return SCMP_ACT_KILL_PROCESS;
    case Action::kTrap: return SCMP_ACT_TRAP;
    case Action::kErrno: return SCMP_ACT_ERRNO(errno_ret);
    case Action::kTrace: return SCMP_ACT_TRACE(errno_ret);
    case Action::kAllow: return SCMP_ACT_ALLOW;
    case Action::kLog: return SCMP_ACT_LOG;
  }
  return SCMP_ACT_KILL_PROCESS;
}

scmp_compare ScmpOp(Op op) {
  switch (op) {
    case Op::kNotEqual: return SCMP_CMP_NE;
    case Op::kLess: return SCMP_CMP_LT;
    case Op::kLessOrEqual: return SCMP_CMP_LE;
    case Op::kEqual: return SCMP_CMP_EQ;
    case Op::kGreaterOrEqual: return SCMP_CMP_GE;
    case Op::kGreater: return SCMP_CMP_GT;
    case Op::kMaskedEqual: return SCMP_CMP_MASKED_EQ;
  }
  return SCMP_CMP_EQ;
}

struct CtxRelease {
  void operator()(void* ctx) const { seccomp_release(ctx); }
};
using Ctx = std::unique_ptr<void, CtxRelease>;

absl::Status AddRule(scmp_filter_ctx ctx, const Rule& rule, uint32_t action, absl::string_view field) {
  std::vector<scmp_arg_cmp> conds;
  std::array<int, 6> per_index = {};
  bool repeated = false;
  for (const Arg& arg : rule.args) {
    conds.push_back(scmp_arg_cmp{arg.index, ScmpOp(arg.op), arg.value, arg.value_two});
    repeated |= ++per_index[arg.index] > 1;
  }
  for (const std::string& name : rule.names) {
    int nr = seccomp_syscall_resolve_name(name.c_str());
    if (nr == __NR_SCMP_ERROR) continue;  // newer than libseccomp or misspelt: skipped, as runc does
    int rc = 0;
    if (!repeated) {
      rc = seccomp_rule_add_array(ctx, action, nr, static_cast<unsigned>(conds.size()), conds.data());
    } else {
      // libseccomp cannot AND two conditions on one argument; runc then adds
      // each condition as a rule of its own, so they OR.
      for (const scmp_arg_cmp& cond : conds) {
        rc = seccomp_rule_add_array(ctx, action, nr, 1, &cond);
        if (rc < 0) break;
      }
    }
    if (rc < 0) return InvalidField(field, absl::StrCat("syscall \"", name, "\": libseccomp refuses the rule: ", strerror(-rc)));
  }
  return absl::OkStatus();
}

absl::StatusOr<std::string> ExportBpf(scmp_filter_ctx ctx, absl::string_view field) {
  UniqueFd fd(::memfd_create("crius-seccomp", MFD_CLOEXEC));
  if (!fd) return ErrnoError(errno, "export seccomp filter: memfd_create");
  int rc = seccomp_export_bpf(ctx, fd.get());
  if (rc < 0) return Annotate(ErrnoError(-rc, "seccomp_export_bpf"), absl::StrCat("compile ", field));
  struct stat st;
  if (::fstat(fd.get(), &st) != 0) return ErrnoError(errno, "export seccomp filter: fstat");
  size_t size = static_cast<size_t>(st.st_size);
  if (size == 0 || size % sizeof(struct sock_filter) != 0) {
    return absl::InternalError(absl::StrCat("compile ", field, ": libseccomp exported ", size, " bytes"));
  }
  if (size / sizeof(struct sock_filter) > BPF_MAXINSNS) {
    return InvalidField(field, absl::StrCat("compiles to ", size / sizeof(struct sock_filter),
                                       " BPF instructions, more than the kernel's limit of ", BPF_MAXINSNS));
  }
  std::string bpf(size, '\0');
  size_t done = 0;
  while (done < size) {
    ssize_t n = ::pread(fd.get(), bpf.data() + done, size - done, static_cast<off_t>(done));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return ErrnoError(n < 0 ? errno : EIO, "export seccomp filter: read back");
    done += static_cast<size_t>(n);
  }
  return bpf;
}

}  // namespace

absl::string_view NativeMobyArch() {
#if defined(__x86_64__) && !defined(__ILP32__)
  return "amd64";
#elif defined(__aarch64__)
  return "arm64";
#elif defined(__riscv) && __riscv_xlen == 64
  return "riscv64";
#elif defined(__powerpc64__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
  return "ppc64le";
#elif defined(__s390x__)
  return "s390x";
#else
  return "";
#endif
}

bool KernelAtLeast(unsigned int major, unsigned int minor) {
  static const std::array<unsigned, 2> running = [] {
    std::array<unsigned, 2> v = {0, 0};
    struct utsname u;
    if (::uname(&u) == 0) sscanf(u.release, "%u.%u", &v[0], &v[1]);
    return v;
  }();
  return running[0] != major ? running[0] > major : running[1] >= minor;
}

absl::StatusOr<SeccompProgram> Compile(const Profile& profile, absl::string_view field) {
  uint32_t default_action = ScmpAction(profile.default_action, profile.default_errno_ret);
  Ctx ctx(seccomp_init(default_action));
  if (!ctx) return absl::InternalError(absl::StrCat("compile ", field, ": seccomp_init failed"));
  // crius sets no_new_privs itself, from the container's spec.
  int rc = seccomp_attr_set(ctx.get(), SCMP_FLTATR_CTL_NNP, 0);
  if (rc < 0) return Annotate(ErrnoError(-rc, "seccomp_attr_set(CTL_NNP)"), absl::StrCat("compile ", field));
  for (const std::string& name : profile.arches) {
    uint32_t arch = seccomp_arch_resolve_name(name.c_str());
    if (arch == 0) continue;  // newer than this libseccomp
    rc = seccomp_arch_add(ctx.get(), arch);
    // EEXIST: the native one. EDOM: the other byte order, which this kernel
    // never runs, so there is nothing to filter.
    if (rc < 0 && rc != -EEXIST && rc != -EDOM) {
      return InvalidField(field, absl::StrCat("architecture ", name, ": libseccomp refuses it: ", strerror(-rc)));
    }
  }
  for (const Rule& rule : profile.rules) {
    uint32_t action = ScmpAction(rule.action, rule.errno_ret);
    if (action == default_action) continue;  // libseccomp refuses it, and it changes nothing
    CRIUS_RETURN_IF_ERROR(AddRule(ctx.get(), rule, action, field));
  }
  SeccompProgram program;
  CRIUS_ASSIGN_OR_RETURN(program.bpf, ExportBpf(ctx.get(), field));
  program.log_flag = profile.log_flag;
  return program;
}

}  // namespace seccomp_internal

absl::StatusOr<SeccompProgram> CompileProfile(absl::string_view json, const std::vector<int>& caps,
                                              absl::string_view field) {
  seccomp_internal::Parser parser(field, caps);
  CRIUS_ASSIGN_OR_RETURN(seccomp_internal::Profile profile, parser.Parse(json));
  return seccomp_internal::Compile(profile, field);
}

absl::StatusOr<SeccompProgram> RuntimeDefaultProgram(const std::vector<int>& caps) {
  return seccomp_internal::Compile(seccomp_internal::RuntimeDefaultProfile(caps), "the RuntimeDefault seccomp profile");
}

}  // namespace crius::sandbox
