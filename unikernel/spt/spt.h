/* crius-spt: shared by the core and the device modules. */
#ifndef CRIUS_UNIKERNEL_SPT_SPT_H
#define CRIUS_UNIKERNEL_SPT_SPT_H

#include <seccomp.h>

#include "unikernel/core/abi/mft_abi.h"
#include "unikernel/core/abi/spt_abi.h"
#include "unikernel/core/terr.h"

struct spt {
    struct mft *mft; /* attached manifest (the copy the guest gets) */
    int epollfd;     /* the guest's wait set */
    scmp_filter_ctx sc;
};

/* A device module: adds its fds to the wait set and allows the guest the
 * syscalls it needs on them, and nothing else. */
struct spt_module {
    const char *name;
    int (*setup)(struct spt *s, struct terr *e);
};

/* The explicit module table (spt_modules.c), NULL-terminated. */
extern const struct spt_module *const spt_modules[];

#endif
