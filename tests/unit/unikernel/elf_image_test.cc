#include "unikernel/core/elf_image.h"

#include <gtest/gtest.h>

#include <string>

#include "tests/unit/unikernel/elf_fixture.h"
#include "unikernel/core/abi/hvt_abi.h"
#include "unikernel/core/mft.h"

namespace crius::unikernel::testing {
namespace {

struct Parsed {
  int rc;
  elf_image img;
  std::string error;
};

Parsed Parse(const std::vector<uint8_t>& file) {
  Parsed p{};
  terr e{};
  p.rc = elf_parse(file.data(), file.size(), HVT_GUEST_MIN_BASE, &p.img, &e);
  p.error = e.msg;
  return p;
}

void ExpectRefused(const std::vector<uint8_t>& file, const std::string& fragment) {
  Parsed p = Parse(file);
  EXPECT_EQ(p.rc, -1);
  EXPECT_NE(p.error.find(fragment), std::string::npos) << "error was: " << p.error;
}

TEST(ElfImage, ParsesAWellFormedGuest) {
  ElfSpec spec;
  spec.devices = {Device("storage", MFT_DEV_BLOCK_BASIC)};
  const auto file = BuildElf(spec);  // img.mft points into it
  Parsed p = Parse(file);
  ASSERT_EQ(p.rc, 0) << p.error;
  EXPECT_EQ(p.img.entry, 0x100010u);
  EXPECT_EQ(p.img.nseg, 2u);
  EXPECT_EQ(p.img.end, 0x103000u);
  EXPECT_TRUE(p.img.seg[0].x);
  EXPECT_FALSE(p.img.seg[0].w);
  EXPECT_EQ(p.img.abi.abi_target, uint32_t{HVT_ABI_TARGET});
  EXPECT_EQ(p.img.abi.abi_version, 2u);
  ASSERT_NE(p.img.mft, nullptr);
  EXPECT_EQ(p.img.mft_size, sizeof(mft) + 2 * sizeof(mft_entry));
  EXPECT_EQ(p.img.mft->entries, 2u);
  EXPECT_FALSE(p.img.shutdown_aware);
}

TEST(ElfImage, SeesTheShutdownNote) {
  ElfSpec spec;
  spec.shutdown_note = true;
  Parsed p = Parse(BuildElf(spec));
  ASSERT_EQ(p.rc, 0) << p.error;
  EXPECT_TRUE(p.img.shutdown_aware);
}

TEST(ElfImage, RefusesEveryTruncation) {
  auto file = BuildElf(ElfSpec{});
  for (size_t len : {size_t{0}, size_t{10}, size_t{63}, size_t{64}, size_t{100}, size_t{0x900},
                     size_t{0x2050}}) {
    std::vector<uint8_t> cut(file.begin(), file.begin() + len);
    Parsed p = Parse(cut);
    EXPECT_EQ(p.rc, -1) << "accepted a file cut at " << len;
    EXPECT_NE(p.error.find("truncated"), std::string::npos) << len << ": " << p.error;
  }
}

TEST(ElfImage, RefusesOtherMachines) {
  ElfSpec spec;
  spec.machine = EM_AARCH64;
  ExpectRefused(BuildElf(spec), "not x86-64");
}

TEST(ElfImage, RefusesNonElf) {
  std::vector<uint8_t> file(4096, 'x');
  ExpectRefused(file, "not an ELF file");
}

TEST(ElfImage, RefusesOverlappingSegments) {
  ElfSpec spec;
  spec.segments = {{0x100000, 0x100, 0x2000, PF_R | PF_X}, {0x101000, 0x80, 0x80, PF_R}};
  ExpectRefused(BuildElf(spec), "overlap");
}

TEST(ElfImage, RefusesHugeSegments) {
  ElfSpec spec;
  spec.segments.push_back({0x200000, 0x10, uint64_t{1} << 40, PF_R | PF_W});
  ExpectRefused(BuildElf(spec), "huge");
}

TEST(ElfImage, RefusesWritableAndExecutableSegments) {
  ElfSpec spec;
  spec.segments[1].flags = PF_R | PF_W | PF_X;
  ExpectRefused(BuildElf(spec), "W+X");
}

TEST(ElfImage, RefusesSegmentsBelowTheGuestBase) {
  ElfSpec spec;
  spec.segments.push_back({0x1000, 0x10, 0x10, PF_R});
  ExpectRefused(BuildElf(spec), "below the guest base");
}

TEST(ElfImage, RefusesAnEntryOutsideTheCode) {
  for (uint64_t entry : {uint64_t{0}, uint64_t{0x101010}, uint64_t{0x100100}, uint64_t{~0ull}}) {
    ElfSpec spec;
    spec.entry = entry;
    ExpectRefused(BuildElf(spec), "entry point");
  }
}

TEST(ElfImage, RefusesAMissingAbiNote) {
  ElfSpec spec;
  spec.abi_note = false;
  ExpectRefused(BuildElf(spec), "no Solo5 ABI note");
}

TEST(ElfImage, RefusesAMissingManifest) {
  ElfSpec spec;
  spec.mft_note = false;
  ExpectRefused(BuildElf(spec), "no Solo5 manifest note");
}

TEST(ElfImage, RefusesAnOversizedManifestNote) {
  ElfSpec spec;
  for (int i = 0; i < 70; i++) spec.devices.push_back(Device("d", MFT_DEV_NET_BASIC));
  ExpectRefused(BuildElf(spec), "malformed Solo5 note");
}

TEST(ElfImage, RefusesANoteLongerThanItsSegment) {
  auto file = BuildElf(ElfSpec{});
  // The ABI note's descsz is at offset 4 of the first note (file offset 0x800).
  uint32_t huge = 4096;
  std::memcpy(file.data() + 0x804, &huge, sizeof huge);
  ExpectRefused(file, "malformed Solo5 note");
}

TEST(ElfImageAbi, AcceptsItsOwnTarget) {
  Parsed p = Parse(BuildElf(ElfSpec{}));
  ASSERT_EQ(p.rc, 0);
  terr e{};
  EXPECT_EQ(elf_check_abi(&p.img, HVT_ABI_TARGET, 2, &e), 0);
}

TEST(ElfImageAbi, RefusesAnotherTargetByName) {
  ElfSpec spec;
  spec.abi_target = SPT_ABI_TARGET;
  Parsed p = Parse(BuildElf(spec));
  ASSERT_EQ(p.rc, 0);
  terr e{};
  EXPECT_EQ(elf_check_abi(&p.img, HVT_ABI_TARGET, 2, &e), -1);
  EXPECT_NE(std::string(e.msg).find("built for the Solo5 spt target"), std::string::npos) << e.msg;
}

TEST(ElfImageAbi, RefusesAnotherAbiVersion) {
  ElfSpec spec;
  spec.abi_version = 1;
  Parsed p = Parse(BuildElf(spec));
  ASSERT_EQ(p.rc, 0);
  terr e{};
  EXPECT_EQ(elf_check_abi(&p.img, HVT_ABI_TARGET, 2, &e), -1);
  EXPECT_NE(std::string(e.msg).find("ABI version 1"), std::string::npos) << e.msg;
}

TEST(ElfImageFits, RefusesMemoryBelowTheImage) {
  Parsed p = Parse(BuildElf(ElfSpec{}));
  ASSERT_EQ(p.rc, 0);
  terr e{};
  EXPECT_EQ(elf_check_fits(&p.img, 0x102000, &e), -1);
  EXPECT_NE(std::string(e.msg).find("beyond guest memory"), std::string::npos) << e.msg;
  EXPECT_EQ(elf_check_fits(&p.img, 0x103000, &e), 0);
}

TEST(ElfImageCopy, CopiesFileBytesAndLeavesBssAlone) {
  auto file = BuildElf(ElfSpec{});
  Parsed p = Parse(file);
  ASSERT_EQ(p.rc, 0);
  std::vector<uint8_t> mem(0x104000, 0);
  elf_copy_segments(&p.img, file.data(), mem.data());
  EXPECT_EQ(mem[0x100000], 0x90);
  EXPECT_EQ(mem[0x1000ff], 0x90);
  EXPECT_EQ(mem[0x100100], 0);
  EXPECT_EQ(mem[0x10107f], 0x90);
  EXPECT_EQ(mem[0x101080], 0);
}

// Every single-byte corruption of the headers and notes is either refused
// or yields an image whose segments and manifest lie inside the file and
// guest limits (run under ASan to catch out-of-bounds reads as well).
TEST(ElfImageRobustness, SurvivesEveryByteCorruptionOfHeadersAndNotes) {
  ElfSpec spec;
  spec.devices = {Device("storage", MFT_DEV_BLOCK_BASIC)};
  spec.shutdown_note = true;
  const auto good = BuildElf(spec);
  const size_t header_end = 0x800 + 0x200;  // ELF header, phdrs, notes
  int accepted = 0;
  for (size_t i = 0; i < header_end && i < good.size(); i++) {
    for (uint8_t value : {uint8_t{0x00}, uint8_t{0xff}, uint8_t{0x80}, uint8_t(good[i] ^ 1)}) {
      auto bad = good;
      bad[i] = value;
      Parsed p = Parse(bad);
      if (p.rc != 0) continue;
      accepted++;
      for (unsigned s = 0; s < p.img.nseg; s++) {
        EXPECT_LE(p.img.seg[s].offset + p.img.seg[s].filesz, bad.size());
        EXPECT_LE(p.img.seg[s].end, ELF_MAX_IMAGE_END);
        EXPECT_FALSE(p.img.seg[s].w && p.img.seg[s].x);
      }
      const auto* mft_bytes = reinterpret_cast<const uint8_t*>(p.img.mft);
      EXPECT_GE(mft_bytes, bad.data());
      EXPECT_LE(mft_bytes + p.img.mft_size, bad.data() + bad.size());
      terr e{};
      mft_validate(p.img.mft, p.img.mft_size, &e);  // must not crash either way
    }
  }
  EXPECT_GT(accepted, 0) << "the corruptions should include harmless ones";
}

}  // namespace
}  // namespace crius::unikernel::testing
