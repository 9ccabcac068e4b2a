// Builds small Solo5-style guest ELF images in memory, for tests that need
// well-formed images to break one thing at a time.
#pragma once

#include <elf.h>

#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

#include "unikernel/core/abi/crius_abi.h"
#include "unikernel/core/abi/elf_abi.h"
#include "unikernel/core/abi/mft_abi.h"

namespace crius::unikernel::testing {

struct Segment {
  uint64_t vaddr;
  uint64_t filesz;
  uint64_t memsz;
  uint32_t flags;
};

struct ElfSpec {
  uint16_t machine = EM_X86_64;
  uint64_t entry = 0x100010;
  std::vector<Segment> segments = {{0x100000, 0x100, 0x100, PF_R | PF_X},
                                   {0x101000, 0x80, 0x2000, PF_R | PF_W}};
  bool abi_note = true;
  uint32_t abi_target = HVT_ABI_TARGET;
  uint32_t abi_version = 2;
  bool mft_note = true;
  std::vector<mft_entry> devices;  // entries after the reserved entry 0
  uint32_t mft_version = MFT_VERSION;
  bool shutdown_note = false;
};

inline void Put(std::vector<uint8_t>& out, size_t off, const void* p, size_t n) {
  if (out.size() < off + n) out.resize(off + n);
  std::memcpy(out.data() + off, p, n);
}

inline size_t AppendNote(std::vector<uint8_t>& out, const char* owner, uint32_t type,
                         const std::vector<uint8_t>& payload, size_t align) {
  size_t off = (out.size() + 7) & ~size_t{7};
  solo5_nhdr h{};
  h.n_namesz = static_cast<uint32_t>(std::strlen(owner) + 1);
  std::memcpy(h.n_name, owner, h.n_namesz);
  size_t pad = ((sizeof h + align - 1) & ~(align - 1)) - sizeof h;
  h.n_descsz = static_cast<uint32_t>(pad + payload.size());
  h.n_type = type;
  Put(out, off, &h, sizeof h);
  std::vector<uint8_t> zeros(pad, 0);
  if (pad) Put(out, off + sizeof h, zeros.data(), pad);
  Put(out, off + sizeof h + pad, payload.data(), payload.size());
  return off;
}

inline std::vector<uint8_t> MftPayload(const ElfSpec& s) {
  std::vector<uint8_t> p(sizeof(mft) + (1 + s.devices.size()) * sizeof(mft_entry), 0);
  auto* m = reinterpret_cast<mft*>(p.data());
  m->version = s.mft_version;
  m->entries = static_cast<uint32_t>(1 + s.devices.size());
  m->e[0].type = MFT_RESERVED_FIRST;
  for (size_t i = 0; i < s.devices.size(); i++) m->e[i + 1] = s.devices[i];
  return p;
}

inline mft_entry Device(const char* name, uint32_t type) {
  mft_entry e{};
  std::strncpy(e.name, name, MFT_NAME_SIZE - 1);
  e.type = type;
  return e;
}

// Layout: ELF header, program headers, notes, then segment contents at
// page-aligned file offsets.
inline std::vector<uint8_t> BuildElf(const ElfSpec& s) {
  struct Note {
    size_t off, size;
  };
  std::vector<uint8_t> notes_area;  // built at file offset 0x800
  std::vector<Note> notes;
  const size_t notes_base = 0x800;
  auto add = [&](const char* owner, uint32_t type, const std::vector<uint8_t>& payload,
                 size_t align) {
    std::vector<uint8_t> tmp(notes_area);
    size_t off = AppendNote(tmp, owner, type, payload, align);
    notes.push_back({notes_base + off, tmp.size() - off});
    notes_area = tmp;
  };
  if (s.abi_note) {
    abi1_info i{s.abi_target, s.abi_version, 0, 0};
    add(ABI1_NOTE_NAME, ABI1_NOTE_TYPE,
        std::vector<uint8_t>(reinterpret_cast<uint8_t*>(&i), reinterpret_cast<uint8_t*>(&i + 1)),
        4);
  }
  if (s.mft_note) add(MFT1_NOTE_NAME, MFT1_NOTE_TYPE, MftPayload(s), 8);
  if (s.shutdown_note) {
    crius_shd1_info i{CRIUS_SHD1_VERSION, 0};
    add(CRIUS_NOTE_NAME, CRIUS_SHD1_NOTE_TYPE,
        std::vector<uint8_t>(reinterpret_cast<uint8_t*>(&i), reinterpret_cast<uint8_t*>(&i + 1)),
        4);
  }

  std::vector<uint8_t> out(notes_base, 0);
  if (!notes_area.empty()) Put(out, notes_base, notes_area.data(), notes_area.size());
  std::vector<Elf64_Phdr> ph;
  uint64_t file_off = 0x2000;
  for (const auto& seg : s.segments) {
    Elf64_Phdr p{};
    p.p_type = PT_LOAD;
    p.p_flags = seg.flags;
    p.p_offset = file_off + (seg.vaddr & 0xfff);
    p.p_vaddr = p.p_paddr = seg.vaddr;
    p.p_filesz = seg.filesz;
    p.p_memsz = seg.memsz;
    p.p_align = 0x1000;
    std::vector<uint8_t> content(seg.filesz, 0x90);
    Put(out, p.p_offset, content.data(), content.size());
    file_off = (p.p_offset + seg.filesz + 0xfff) & ~uint64_t{0xfff};
    ph.push_back(p);
  }
  for (const auto& n : notes) {
    Elf64_Phdr p{};
    p.p_type = PT_NOTE;
    p.p_offset = n.off;
    p.p_filesz = p.p_memsz = n.size;
    p.p_align = 8;
    ph.push_back(p);
  }
  Elf64_Ehdr eh{};
  std::memcpy(eh.e_ident, ELFMAG, SELFMAG);
  eh.e_ident[EI_CLASS] = ELFCLASS64;
  eh.e_ident[EI_DATA] = ELFDATA2LSB;
  eh.e_ident[EI_VERSION] = EV_CURRENT;
  eh.e_type = ET_EXEC;
  eh.e_machine = s.machine;
  eh.e_version = EV_CURRENT;
  eh.e_entry = s.entry;
  eh.e_phoff = sizeof eh;
  eh.e_ehsize = sizeof eh;
  eh.e_phentsize = sizeof(Elf64_Phdr);
  eh.e_phnum = static_cast<uint16_t>(ph.size());
  Put(out, 0, &eh, sizeof eh);
  Put(out, sizeof eh, ph.data(), ph.size() * sizeof(Elf64_Phdr));
  return out;
}

}  // namespace crius::unikernel::testing
