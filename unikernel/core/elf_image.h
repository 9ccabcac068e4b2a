/* Parsing and loading a Solo5 guest ELF (x86-64 ELF64 ET_EXEC) from an
 * in-memory copy of the file. Everything in the file is untrusted. */
#ifndef CRIUS_UNIKERNEL_CORE_ELF_IMAGE_H
#define CRIUS_UNIKERNEL_CORE_ELF_IMAGE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "unikernel/core/abi/elf_abi.h"
#include "unikernel/core/abi/mft_abi.h"
#include "unikernel/core/terr.h"

#ifdef __cplusplus
extern "C" {
#endif

#define ELF_MAX_SEGMENTS 16
#define ELF_PAGE_SIZE 0x1000u
/* No guest image may claim more than this (the largest hvt guest memory). */
#define ELF_MAX_IMAGE_END (4ull << 30)

struct elf_segment {
    uint64_t vaddr, filesz, memsz, offset;
    uint64_t start, end; /* page-aligned extent */
    bool r, w, x;
};

struct elf_image {
    uint64_t entry;
    uint64_t end; /* highest page-aligned end of any segment */
    unsigned nseg;
    struct elf_segment seg[ELF_MAX_SEGMENTS];
    struct abi1_info abi;
    const struct mft *mft; /* points into the file buffer, validated */
    size_t mft_size;
    bool shutdown_aware; /* carries crius's SHD1 note */
};

/* Parses and validates headers, segments and notes. Does not require the
 * manifest to be valid beyond its framing; call mft_validate for that. */
int elf_parse(const uint8_t *file, size_t len, uint64_t min_base,
              struct elf_image *img, struct terr *e);

/* Refuses a guest built for another target or ABI version. */
int elf_check_abi(const struct elf_image *img, uint32_t target,
                  uint32_t version, struct terr *e);

/* Refuses an image that does not fit in mem_size bytes of guest memory. */
int elf_check_fits(const struct elf_image *img, uint64_t mem_size,
                   struct terr *e);

/* Copies file contents of each segment to mem (guest address 0 at mem).
 * mem must be zero-filled (fresh anonymous memory): bss is not cleared. */
void elf_copy_segments(const struct elf_image *img, const uint8_t *file,
                       uint8_t *mem);

#ifdef __cplusplus
}
#endif

#endif
