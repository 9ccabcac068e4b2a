/*
 * crius's own extension to the Solo5 0.9 guest ABI: shutdown notification.
 *
 * A guest opts in with the ELF note below (owner "Crius", type "SHD1", in a
 * PT_NOTE segment of its own). When the tender receives SIGTERM, an opted-in
 * guest sees bit CRIUS_SHUTDOWN_HANDLE of the ready set of its next (or
 * current) wait:
 *   hvt: hvt_hc_poll.ready_set, and the POLL returns at once;
 *   spt: epoll_pwait on the boot info's epollfd reports an event whose data
 *        is CRIUS_SHUTDOWN_HANDLE (level-triggered: it stays reported).
 * Handle 0 is the manifest's reserved entry, never a device, so a guest that
 * does not know the extension cannot mistake it for device readiness; and a
 * guest without the note never sees it: SIGTERM ends its tender at once.
 * See unikernel/ABI.md.
 */
#ifndef CRIUS_UNIKERNEL_ABI_CRIUS_ABI_H
#define CRIUS_UNIKERNEL_ABI_CRIUS_ABI_H

#include <stdint.h>

#include "elf_abi.h"

#define CRIUS_NOTE_NAME "Crius"
#define CRIUS_SHD1_NOTE_TYPE 0x31444853u /* "SHD1" */
#define CRIUS_SHD1_NOTE_SECTION ".note.crius.shutdown"
#define CRIUS_SHD1_VERSION 1

#define CRIUS_SHUTDOWN_HANDLE 0
#define CRIUS_SHUTDOWN_BIT (1ull << CRIUS_SHUTDOWN_HANDLE)

struct crius_shd1_info {
    uint32_t version; /* CRIUS_SHD1_VERSION */
    uint32_t flags;   /* 0; reserved */
};

struct crius_shd1_note {
    struct solo5_nhdr h;
    struct crius_shd1_info i;
};

/* For guests: declare that this guest handles shutdown requests. */
#define CRIUS_SHD1_DECLARE()                                                    \
    const struct crius_shd1_note crius_guest_shd1_note                          \
        __attribute__((section(CRIUS_SHD1_NOTE_SECTION), aligned(4), used)) = { \
            .h = { .n_namesz = sizeof(CRIUS_NOTE_NAME),                         \
                   .n_descsz = sizeof(struct crius_shd1_info),                  \
                   .n_type = CRIUS_SHD1_NOTE_TYPE,                              \
                   .n_name = CRIUS_NOTE_NAME },                                 \
            .i = { .version = CRIUS_SHD1_VERSION, .flags = 0 }                  \
        }

#endif
