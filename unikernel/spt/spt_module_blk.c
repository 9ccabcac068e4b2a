/* crius-spt block devices: the guest calls pread64/pwrite64 itself; the
 * filter lets through exactly one block at an offset within the device, so
 * a guest can neither grow the file nor read past it. */
#include <errno.h>

#include "unikernel/core/seccomp_install.h"
#include "unikernel/spt/spt.h"

static int setup(struct spt *s, struct terr *e)
{
    for (unsigned i = 1; i < s->mft->entries; i++) {
        const struct mft_entry *x = &s->mft->e[i];
        if (x->type != MFT_DEV_BLOCK_BASIC || !x->attached)
            continue;
        uint64_t fd = (uint64_t)x->b.hostfd;
        uint64_t bs = x->u.block_basic.block_size;
        uint64_t last = x->u.block_basic.capacity - bs;
        TENDER_SCMP_ADD(s->sc, e, "pread64(block)", SCMP_SYS(pread64), 3,
                        SCMP_A0(SCMP_CMP_EQ, fd), SCMP_A2(SCMP_CMP_EQ, bs),
                        SCMP_A3(SCMP_CMP_LE, last));
        TENDER_SCMP_ADD(s->sc, e, "pwrite64(block)", SCMP_SYS(pwrite64), 3,
                        SCMP_A0(SCMP_CMP_EQ, fd), SCMP_A2(SCMP_CMP_EQ, bs),
                        SCMP_A3(SCMP_CMP_LE, last));
    }
    return 0;
}

const struct spt_module spt_module_blk = { .name = "block", .setup = setup };
