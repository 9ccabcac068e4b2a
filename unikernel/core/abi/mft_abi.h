/*
 * Solo5 0.9 guest ABI: the application manifest.
 *
 * A guest declares every device it uses, by name and type, in an ELF note
 * (owner "Solo5", type "MFT1", section .note.solo5.manifest). The tender
 * attaches a host resource to each entry and hands the guest a copy of the
 * manifest, filled in, through the boot info. A guest refers to a device by
 * its index in the manifest (its handle).
 *
 * Plain C, shared by tenders and guests; the layout is binary compatible
 * with upstream Solo5 v0.9.x (x86-64, LP64). See unikernel/ABI.md.
 */
#ifndef CRIUS_UNIKERNEL_ABI_MFT_ABI_H
#define CRIUS_UNIKERNEL_ABI_MFT_ABI_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "elf_abi.h"

#define MFT_VERSION 1
#define MFT_MAX_ENTRIES 64 /* a handle set is a 64-bit mask */
#define MFT_NAME_SIZE 68   /* bytes, terminating NUL included */
#define MFT_NAME_MAX 67    /* characters */

/* Device types. Entry 0 of every manifest has type MFT_RESERVED_FIRST and
 * an empty name; it is never a device, so handle 0 is never a device. */
enum mft_type {
    MFT_DEV_BLOCK_BASIC = 1,
    MFT_DEV_NET_BASIC = 2,
    MFT_RESERVED_FIRST = 1u << 30
};

struct mft_block_basic {
    uint64_t capacity;   /* bytes; filled in by the tender */
    uint16_t block_size; /* bytes; filled in by the tender */
};

struct mft_net_basic {
    uint8_t mac[6]; /* filled in by the tender */
    uint16_t mtu;   /* filled in by the tender */
};

struct mft_entry {
    char name[MFT_NAME_SIZE];
    uint32_t type; /* enum mft_type */
    union {
        struct mft_block_basic block_basic;
        struct mft_net_basic net_basic;
    } u;
    union {
        int hostfd; /* spt: the host fd the guest uses in its syscalls */
        uint64_t data;
    } b;
    bool attached; /* false in the ELF; true once the tender attached it */
};

struct mft {
    uint32_t version; /* MFT_VERSION */
    uint32_t entries; /* 1..MFT_MAX_ENTRIES */
    struct mft_entry e[];
};

CRIUS_ABI_ASSERT(sizeof(struct mft_entry) == 104, "mft_entry layout");
CRIUS_ABI_ASSERT(offsetof(struct mft_entry, type) == 68, "mft_entry.type");
CRIUS_ABI_ASSERT(offsetof(struct mft_entry, u) == 72, "mft_entry.u");
CRIUS_ABI_ASSERT(offsetof(struct mft_entry, b) == 88, "mft_entry.b");
CRIUS_ABI_ASSERT(offsetof(struct mft_entry, attached) == 96, "mft_entry.attached");
CRIUS_ABI_ASSERT(sizeof(struct mft) == 8, "mft header");

/* Owner name and type of the manifest note (type reads "MFT1" in memory). */
#define MFT1_NOTE_NAME "Solo5"
#define MFT1_NOTE_TYPE 0x3154464du
#define MFT1_NOTE_SECTION ".note.solo5.manifest"

/* Largest valid manifest payload (n_descsz). */
#define MFT1_MAX_SIZE (sizeof(struct mft) + MFT_MAX_ENTRIES * sizeof(struct mft_entry))

/*
 * The payload of the manifest note starts 8-byte aligned, 24 bytes into the
 * note (after the 20-byte header and 4 bytes of padding); n_descsz counts that
 * padding, as upstream's tenders and guests do.
 */
#define MFT1_NOTE_PAYLOAD_OFFSET 24

/*
 * For guests: declare a manifest of N entries, entry 0 included (it is added
 * here), e.g. MFT1_DECLARE(2, { .name = "storage", .type = MFT_DEV_BLOCK_BASIC });
 */
#define MFT1_DECLARE(N, ...)                                                 \
    const struct {                                                           \
        struct solo5_nhdr h;                                                 \
        uint32_t pad;                                                        \
        uint32_t version;                                                    \
        uint32_t entries;                                                    \
        struct mft_entry e[(N)];                                             \
    } crius_guest_mft1_note                                                  \
        __attribute__((section(MFT1_NOTE_SECTION), aligned(8), used)) = {    \
        .h = { .n_namesz = sizeof(MFT1_NOTE_NAME),                           \
               .n_descsz = 4 + sizeof(struct mft) + (N) * sizeof(struct mft_entry), \
               .n_type = MFT1_NOTE_TYPE,                                     \
               .n_name = MFT1_NOTE_NAME },                                   \
        .version = MFT_VERSION,                                              \
        .entries = (N),                                                      \
        .e = { { .name = "", .type = MFT_RESERVED_FIRST }, __VA_ARGS__ }     \
    }

#endif
