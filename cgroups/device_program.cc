#include "cgroups/device_program.h"

#include <bpf/bpf.h>

#include <cerrno>
#include <cstdint>
#include <cstring>
#include <vector>

#include "absl/strings/str_cat.h"
#include "common/status.h"
#include "common/unique_fd.h"

namespace crius::cgroups {
namespace {

// Registers: r1 holds the bpf_cgroup_dev_ctx on entry; the prologue loads
// its fields once, and r1 is scratch afterwards.
constexpr uint8_t kCtx = 1, kType = 2, kAccess = 3, kMajor = 4, kMinor = 5, kScratch = 1, kRet = 0;

bpf_insn Insn(uint8_t code, uint8_t dst, uint8_t src, int16_t off, int32_t imm) {
  bpf_insn insn{};
  insn.code = code;
  insn.dst_reg = dst & 0xf;
  insn.src_reg = src & 0xf;
  insn.off = off;
  insn.imm = imm;
  return insn;
}

bpf_insn LoadWord(uint8_t dst, int16_t off) { return Insn(BPF_LDX | BPF_MEM | BPF_W, dst, kCtx, off, 0); }
bpf_insn MoveReg(uint8_t dst, uint8_t src) { return Insn(BPF_ALU64 | BPF_MOV | BPF_X, dst, src, 0, 0); }
bpf_insn MoveImm(uint8_t dst, int32_t imm) { return Insn(BPF_ALU64 | BPF_MOV | BPF_K, dst, 0, 0, imm); }
bpf_insn AndImm(uint8_t dst, int32_t imm) { return Insn(BPF_ALU64 | BPF_AND | BPF_K, dst, 0, 0, imm); }
bpf_insn ShiftRight(uint8_t dst, int32_t bits) { return Insn(BPF_ALU64 | BPF_RSH | BPF_K, dst, 0, 0, bits); }
// 32-bit compares: the context's fields are u32, and imm is sign-extended in
// a 64-bit compare.
bpf_insn JumpIfNotImm(uint8_t reg, uint32_t imm) {
  return Insn(BPF_JMP32 | BPF_JNE | BPF_K, reg, 0, 0, static_cast<int32_t>(imm));
}
bpf_insn JumpIfNotReg(uint8_t dst, uint8_t src) { return Insn(BPF_JMP32 | BPF_JNE | BPF_X, dst, src, 0, 0); }
bpf_insn Exit() { return Insn(BPF_JMP | BPF_EXIT, 0, 0, 0, 0); }

absl::StatusOr<uint32_t> AccessMask(const DeviceRule& rule) {
  uint32_t mask = 0;
  for (char c : rule.access) {
    switch (c) {
      case 'r': mask |= BPF_DEVCG_ACC_READ; break;
      case 'w': mask |= BPF_DEVCG_ACC_WRITE; break;
      case 'm': mask |= BPF_DEVCG_ACC_MKNOD; break;
      default:
        return absl::InvalidArgumentError(
            absl::StrCat("device rule \"", rule.ToString(), "\": access may hold only r, w and m"));
    }
  }
  if (mask == 0) {
    return absl::InvalidArgumentError(absl::StrCat("device rule \"", rule.ToString(), "\": no access"));
  }
  return mask;
}

absl::Status CheckNumber(const DeviceRule& rule, int64_t n) {
  if (n < -1 || n > int64_t{UINT32_MAX}) {
    return absl::InvalidArgumentError(
        absl::StrCat("device rule \"", rule.ToString(), "\": device number ", n, " out of range"));
  }
  return absl::OkStatus();
}

// The programs attached to the cgroup under kDeviceProgramName, open.
absl::StatusOr<std::vector<UniqueFd>> OwnPrograms(int cgroup_fd, const std::string& what) {
  std::vector<uint32_t> ids(64);
  uint32_t count = static_cast<uint32_t>(ids.size());
  uint32_t flags = 0;
  if (bpf_prog_query(cgroup_fd, BPF_CGROUP_DEVICE, 0, &flags, ids.data(), &count) < 0) {
    return ErrnoError(errno, absl::StrCat("list the device programs of ", what));
  }
  std::vector<UniqueFd> own;
  for (uint32_t i = 0; i < count && i < ids.size(); ++i) {
    UniqueFd fd(bpf_prog_get_fd_by_id(ids[i]));
    if (!fd) continue;  // detached meanwhile
    bpf_prog_info info{};
    uint32_t len = sizeof(info);
    if (bpf_obj_get_info_by_fd(fd.get(), &info, &len) < 0) continue;
    if (std::strncmp(info.name, kDeviceProgramName, sizeof(info.name)) == 0) own.push_back(std::move(fd));
  }
  return own;
}

}  // namespace

absl::StatusOr<DeviceProgram> BuildDeviceProgram(const std::vector<DeviceRule>& allow) {
  DeviceProgram p;
  auto& out = p.insns;
  // access_type is (access << 16) | type.
  out.push_back(LoadWord(kType, offsetof(bpf_cgroup_dev_ctx, access_type)));
  out.push_back(MoveReg(kAccess, kType));
  out.push_back(AndImm(kType, 0xffff));
  out.push_back(ShiftRight(kAccess, 16));
  out.push_back(LoadWord(kMajor, offsetof(bpf_cgroup_dev_ctx, major)));
  out.push_back(LoadWord(kMinor, offsetof(bpf_cgroup_dev_ctx, minor)));
  for (const DeviceRule& rule : allow) {
    CRIUS_ASSIGN_OR_RETURN(uint32_t mask, AccessMask(rule));
    CRIUS_RETURN_IF_ERROR(CheckNumber(rule, rule.major));
    CRIUS_RETURN_IF_ERROR(CheckNumber(rule, rule.minor));
    std::vector<size_t> to_next;  // the jumps to the next rule, patched below
    switch (rule.type) {
      case 'a': break;
      case 'b':
      case 'c':
        to_next.push_back(out.size());
        out.push_back(JumpIfNotImm(kType, rule.type == 'b' ? BPF_DEVCG_DEV_BLOCK : BPF_DEVCG_DEV_CHAR));
        break;
      default:
        return absl::InvalidArgumentError(
            absl::StrCat("device rule \"", rule.ToString(), "\": the type is a, b or c"));
    }
    constexpr uint32_t kAll = BPF_DEVCG_ACC_READ | BPF_DEVCG_ACC_WRITE | BPF_DEVCG_ACC_MKNOD;
    if (mask != kAll) {  // every access asked for must be allowed
      out.push_back(MoveReg(kScratch, kAccess));
      out.push_back(AndImm(kScratch, static_cast<int32_t>(mask)));
      to_next.push_back(out.size());
      out.push_back(JumpIfNotReg(kScratch, kAccess));
    }
    if (rule.type != 'a' && rule.major >= 0) {
      to_next.push_back(out.size());
      out.push_back(JumpIfNotImm(kMajor, static_cast<uint32_t>(rule.major)));
    }
    if (rule.type != 'a' && rule.minor >= 0) {
      to_next.push_back(out.size());
      out.push_back(JumpIfNotImm(kMinor, static_cast<uint32_t>(rule.minor)));
    }
    out.push_back(MoveImm(kRet, 1));
    out.push_back(Exit());
    for (size_t at : to_next) out[at].off = static_cast<int16_t>(out.size() - at - 1);
  }
  out.push_back(MoveImm(kRet, 0));
  out.push_back(Exit());
  if (out.size() > BPF_MAXINSNS) {
    return absl::InvalidArgumentError(absl::StrCat(allow.size(), " device rules: too many for one program"));
  }
  return p;
}

absl::Status AttachDeviceProgram(int cgroup_fd, const DeviceProgram& program, const std::string& what) {
  CRIUS_ASSIGN_OR_RETURN(std::vector<UniqueFd> old, OwnPrograms(cgroup_fd, what));
  UniqueFd prog(bpf_prog_load(BPF_PROG_TYPE_CGROUP_DEVICE, kDeviceProgramName, "Apache-2.0",
                              program.insns.data(), program.insns.size(), nullptr));
  if (!prog) {
    int err = errno;
    // Again with the verifier's log, to say why.
    std::vector<char> log(64 * 1024);
    LIBBPF_OPTS(bpf_prog_load_opts, opts, .log_level = 1, .log_size = static_cast<uint32_t>(log.size()),
                .log_buf = log.data());
    UniqueFd retry(bpf_prog_load(BPF_PROG_TYPE_CGROUP_DEVICE, kDeviceProgramName, "Apache-2.0",
                                 program.insns.data(), program.insns.size(), &opts));
    std::string why(log.data(), strnlen(log.data(), log.size()));
    return ErrnoError(err, absl::StrCat("load the device program of ", what,
                                        why.empty() ? "" : absl::StrCat(" (verifier: ", why, ")")));
  }
  if (bpf_prog_attach(prog.get(), cgroup_fd, BPF_CGROUP_DEVICE, BPF_F_ALLOW_MULTI) < 0) {
    return ErrnoError(errno, absl::StrCat("attach the device program to ", what));
  }
  for (const UniqueFd& fd : old) {
    if (bpf_prog_detach2(fd.get(), cgroup_fd, BPF_CGROUP_DEVICE) < 0 && errno != ENOENT) {
      return ErrnoError(errno, absl::StrCat("detach the previous device program of ", what));
    }
  }
  return absl::OkStatus();
}

}  // namespace crius::cgroups
