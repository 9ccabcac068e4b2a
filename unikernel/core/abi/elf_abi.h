/*
 * Solo5 0.9 guest ABI: the ELF note every guest carries to say which tender
 * flavour (target) and which version of that flavour's ABI it was built for.
 *
 * Plain C, shared by the crius tenders and by guests; binary compatible with
 * guests built by upstream Solo5 v0.9.x. See unikernel/ABI.md.
 */
#ifndef CRIUS_UNIKERNEL_ABI_ELF_ABI_H
#define CRIUS_UNIKERNEL_ABI_ELF_ABI_H

#include <stddef.h>
#include <stdint.h>

/* Layout checks, in C and in C++ (the unit tests include these headers). */
#ifdef __cplusplus
#define CRIUS_ABI_ASSERT static_assert
#else
#define CRIUS_ABI_ASSERT _Static_assert
#endif

/* Values of abi1_info.abi_target. crius runs HVT and SPT guests only. */
enum abi_target {
    HVT_ABI_TARGET = 1,
    SPT_ABI_TARGET = 2,
    VIRTIO_ABI_TARGET = 3,
    MUEN_ABI_TARGET = 4,
    GENODE_ABI_TARGET = 5,
    XEN_ABI_TARGET = 6
};

/* Owner name and type of the ABI note (type reads "ABI1" in memory). */
#define ABI1_NOTE_NAME "Solo5"
#define ABI1_NOTE_TYPE 0x31494241u

/* An ELF note header whose owner name is "Solo5\0" padded to 8 bytes. */
struct solo5_nhdr {
    uint32_t n_namesz; /* 6: strlen("Solo5") + 1 */
    uint32_t n_descsz;
    uint32_t n_type;
    char n_name[8];
};

struct abi1_info {
    uint32_t abi_target;  /* enum abi_target */
    uint32_t abi_version; /* HVT_ABI_VERSION or SPT_ABI_VERSION */
    uint32_t reserved0;
    uint32_t reserved1;
};

struct abi1_note {
    struct solo5_nhdr h;
    struct abi1_info i;
};

CRIUS_ABI_ASSERT(sizeof(struct solo5_nhdr) == 20, "note header is 20 bytes");
CRIUS_ABI_ASSERT(sizeof(struct abi1_info) == 16, "ABI note payload is 16 bytes");

/* Guests place the note in this section, in a PT_NOTE segment of its own. */
#define ABI1_NOTE_SECTION ".note.solo5.abi"

/* For guests: declare the target and ABI version this guest is built for. */
#define ABI1_DECLARE(TARGET, VERSION)                                         \
    const struct abi1_note crius_guest_abi1_note                              \
        __attribute__((section(ABI1_NOTE_SECTION), aligned(4), used)) = {    \
            .h = { .n_namesz = sizeof(ABI1_NOTE_NAME),                        \
                   .n_descsz = sizeof(struct abi1_info),                      \
                   .n_type = ABI1_NOTE_TYPE,                                  \
                   .n_name = ABI1_NOTE_NAME },                                \
            .i = { .abi_target = (TARGET), .abi_version = (VERSION) }         \
        }

#endif
