// The v2 device program, run here by a small interpreter of the instructions
// it uses, so each rule's meaning is checked without a kernel; the real
// kernel runs it in real_cgroup_test.cc (and the verifier accepts it there).
#include "cgroups/device_program.h"

#include <gtest/gtest.h>

#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

namespace crius::cgroups {
namespace {

// Runs `p` on one device access; returns r0, or -1 for an instruction this
// interpreter does not know (the builder should use none).
int64_t Eval(const DeviceProgram& p, char type, uint32_t major, uint32_t minor, const std::string& access) {
  uint32_t acc = 0;
  for (char c : access) {
    acc |= c == 'r' ? BPF_DEVCG_ACC_READ : c == 'w' ? BPF_DEVCG_ACC_WRITE : BPF_DEVCG_ACC_MKNOD;
  }
  bpf_cgroup_dev_ctx ctx{};
  ctx.access_type = (acc << 16) | (type == 'b' ? BPF_DEVCG_DEV_BLOCK : BPF_DEVCG_DEV_CHAR);
  ctx.major = major;
  ctx.minor = minor;
  uint64_t r[11] = {};
  const auto* mem = reinterpret_cast<const uint8_t*>(&ctx);
  for (size_t pc = 0; pc < p.insns.size(); ++pc) {
    const bpf_insn& i = p.insns[pc];
    uint64_t src = (BPF_SRC(i.code) == BPF_X) ? r[i.src_reg] : static_cast<uint64_t>(int64_t{i.imm});
    switch (i.code) {
      case BPF_LDX | BPF_MEM | BPF_W: {
        if (i.src_reg != 1 || i.off < 0 || i.off + 4 > static_cast<int>(sizeof(ctx))) return -1;
        uint32_t v;
        std::memcpy(&v, mem + i.off, 4);
        r[i.dst_reg] = v;
        break;
      }
      case BPF_ALU64 | BPF_MOV | BPF_X:
      case BPF_ALU64 | BPF_MOV | BPF_K: r[i.dst_reg] = src; break;
      case BPF_ALU64 | BPF_AND | BPF_K:
      case BPF_ALU64 | BPF_AND | BPF_X: r[i.dst_reg] &= src; break;
      case BPF_ALU64 | BPF_RSH | BPF_K: r[i.dst_reg] >>= i.imm; break;
      case BPF_JMP32 | BPF_JNE | BPF_K:
      case BPF_JMP32 | BPF_JNE | BPF_X:
        if (static_cast<uint32_t>(r[i.dst_reg]) != static_cast<uint32_t>(src)) {
          if (i.off < 0) return -1;  // the verifier refuses loops
          pc += i.off;
        }
        break;
      case BPF_JMP | BPF_EXIT: return static_cast<int64_t>(r[0]);
      default: return -1;
    }
  }
  return -1;  // fell off the end
}

DeviceProgram Build(const std::vector<DeviceRule>& rules) {
  auto p = BuildDeviceProgram(rules);
  EXPECT_TRUE(p.ok()) << p.status();
  return p.ok() ? *p : DeviceProgram{};
}

TEST(DeviceProgramTest, NoRulesDeniesEverything) {
  DeviceProgram p = Build({});
  EXPECT_EQ(Eval(p, 'c', 1, 3, "r"), 0);
  EXPECT_EQ(Eval(p, 'b', 8, 0, "m"), 0);
}

TEST(DeviceProgramTest, TheDefaultListAllowsItsDevicesAndMknodOnly) {
  DeviceProgram p = Build(DefaultAllowedDevices());
  EXPECT_EQ(Eval(p, 'c', 1, 3, "rw"), 1);     // null
  EXPECT_EQ(Eval(p, 'c', 1, 9, "r"), 1);      // urandom
  EXPECT_EQ(Eval(p, 'c', 136, 7, "rw"), 1);   // a pts
  EXPECT_EQ(Eval(p, 'c', 10, 200, "rw"), 1);  // tun
  EXPECT_EQ(Eval(p, 'b', 8, 0, "m"), 1);      // making a disk's node...
  EXPECT_EQ(Eval(p, 'b', 8, 0, "r"), 0);      // ...but not reading it
  EXPECT_EQ(Eval(p, 'b', 8, 0, "rw"), 0);
  EXPECT_EQ(Eval(p, 'c', 1, 1, "r"), 0);      // /dev/mem
  EXPECT_EQ(Eval(p, 'c', 1, 11, "w"), 0);     // /dev/kmsg
  EXPECT_EQ(Eval(p, 'c', 10, 232, "rw"), 0);  // /dev/kvm
}

TEST(DeviceProgramTest, EveryAccessAskedForMustBeAllowed) {
  DeviceProgram p = Build({{'c', 1, 11, "r"}});
  EXPECT_EQ(Eval(p, 'c', 1, 11, "r"), 1);
  EXPECT_EQ(Eval(p, 'c', 1, 11, "w"), 0);
  EXPECT_EQ(Eval(p, 'c', 1, 11, "rw"), 0);
  EXPECT_EQ(Eval(p, 'c', 1, 11, "m"), 0);
  EXPECT_EQ(Eval(p, 'b', 1, 11, "r"), 0);  // the type matters
  EXPECT_EQ(Eval(p, 'c', 1, 12, "r"), 0);
  EXPECT_EQ(Eval(p, 'c', 2, 11, "r"), 0);
}

TEST(DeviceProgramTest, WildcardsMatchAnyNumberAndAnyType) {
  DeviceProgram p = Build({{'b', 8, -1, "rw"}, {'c', -1, 5, "w"}});
  EXPECT_EQ(Eval(p, 'b', 8, 0, "rw"), 1);
  EXPECT_EQ(Eval(p, 'b', 8, 17, "r"), 1);
  EXPECT_EQ(Eval(p, 'b', 9, 0, "r"), 0);
  EXPECT_EQ(Eval(p, 'c', 77, 5, "w"), 1);
  EXPECT_EQ(Eval(p, 'c', 77, 5, "r"), 0);
  DeviceProgram all = Build({{'a', -1, -1, "rwm"}});
  EXPECT_EQ(Eval(all, 'b', 8, 0, "rwm"), 1);
  EXPECT_EQ(Eval(all, 'c', 1, 1, "r"), 1);
}

TEST(DeviceProgramTest, NumbersBeyond31BitsCompareAsUnsigned) {
  DeviceProgram p = Build({{'c', 0xfffffffe, 0x80000000, "r"}});
  EXPECT_EQ(Eval(p, 'c', 0xfffffffe, 0x80000000, "r"), 1);
  EXPECT_EQ(Eval(p, 'c', 0xfffffffe, 0, "r"), 0);
}

TEST(DeviceProgramTest, BadRulesAreRefusedNamingTheRule) {
  for (const DeviceRule& bad : std::vector<DeviceRule>{{'x', 1, 3, "r"},
                                                      {'c', 1, 3, "rx"},
                                                      {'c', 1, 3, ""},
                                                      {'c', -2, 3, "r"},
                                                      {'c', 1, int64_t{1} << 32, "r"}}) {
    auto p = BuildDeviceProgram({bad});
    ASSERT_FALSE(p.ok()) << bad.ToString();
    EXPECT_EQ(p.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_NE(p.status().message().find("device rule"), std::string::npos) << p.status();
  }
}

}  // namespace
}  // namespace crius::cgroups
