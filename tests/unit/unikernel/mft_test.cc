#include "unikernel/core/mft.h"

#include <gtest/gtest.h>

#include <string>

#include "tests/unit/unikernel/elf_fixture.h"

namespace crius::unikernel::testing {
namespace {

std::string Validate(std::vector<uint8_t> payload) {
  terr e{};
  if (mft_validate(payload.data(), payload.size(), &e) == 0) return "";
  return e.msg;
}

TEST(Manifest, AcceptsDevicesOfBothTypes) {
  ElfSpec s;
  s.devices = {Device("service0", MFT_DEV_NET_BASIC), Device("storage", MFT_DEV_BLOCK_BASIC)};
  EXPECT_EQ(Validate(MftPayload(s)), "");
}

TEST(Manifest, AcceptsTheMaximumOf64Entries) {
  ElfSpec s;
  for (int i = 1; i < MFT_MAX_ENTRIES; i++)
    s.devices.push_back(Device(("d" + std::to_string(i)).c_str(), MFT_DEV_BLOCK_BASIC));
  EXPECT_EQ(Validate(MftPayload(s)), "");
  s.devices.push_back(Device("one-too-many", MFT_DEV_BLOCK_BASIC));
  EXPECT_NE(Validate(MftPayload(s)).find("entries"), std::string::npos);
}

TEST(Manifest, RefusesAnotherVersion) {
  ElfSpec s;
  s.mft_version = 2;
  EXPECT_NE(Validate(MftPayload(s)).find("version 2"), std::string::npos);
}

TEST(Manifest, RefusesASizeNotMatchingItsEntries) {
  ElfSpec s;
  s.devices = {Device("storage", MFT_DEV_BLOCK_BASIC)};
  auto p = MftPayload(s);
  p.resize(p.size() - 8);
  EXPECT_NE(Validate(p).find("does not match"), std::string::npos);
  EXPECT_NE(Validate(std::vector<uint8_t>(4, 0)).find("too short"), std::string::npos);
}

TEST(Manifest, RefusesAMissingReservedEntry) {
  ElfSpec s;
  auto p = MftPayload(s);
  reinterpret_cast<mft*>(p.data())->e[0].type = MFT_DEV_NET_BASIC;
  EXPECT_NE(Validate(p).find("reserved"), std::string::npos);
}

TEST(Manifest, RefusesUnterminatedNames) {
  ElfSpec s;
  mft_entry d = Device("x", MFT_DEV_NET_BASIC);
  std::memset(d.name, 'a', MFT_NAME_SIZE);
  s.devices = {d};
  EXPECT_NE(Validate(MftPayload(s)).find("NUL-terminated"), std::string::npos);
}

TEST(Manifest, Accepts67CharacterNames) {
  ElfSpec s;
  s.devices = {Device(std::string(67, 'n').c_str(), MFT_DEV_NET_BASIC)};
  EXPECT_EQ(Validate(MftPayload(s)), "");
}

TEST(Manifest, RefusesUnknownTypesDuplicatesAndPreattachedEntries) {
  ElfSpec s;
  s.devices = {Device("x", 77)};
  EXPECT_NE(Validate(MftPayload(s)).find("unknown device type"), std::string::npos);
  s.devices = {Device("x", MFT_DEV_NET_BASIC), Device("x", MFT_DEV_NET_BASIC)};
  EXPECT_NE(Validate(MftPayload(s)).find("declared twice"), std::string::npos);
  mft_entry d = Device("x", MFT_DEV_NET_BASIC);
  d.attached = true;
  s.devices = {d};
  EXPECT_NE(Validate(MftPayload(s)).find("attached"), std::string::npos);
}

TEST(Manifest, FindsEntriesByNameAndType) {
  ElfSpec s;
  s.devices = {Device("a", MFT_DEV_NET_BASIC), Device("b", MFT_DEV_BLOCK_BASIC)};
  auto p = MftPayload(s);
  auto* m = reinterpret_cast<mft*>(p.data());
  EXPECT_EQ(mft_find(m, "b", MFT_DEV_BLOCK_BASIC), &m->e[2]);
  EXPECT_EQ(mft_find(m, "b", MFT_DEV_NET_BASIC), nullptr);
  EXPECT_EQ(mft_find(m, "", MFT_RESERVED_FIRST), nullptr);
}

}  // namespace
}  // namespace crius::unikernel::testing
