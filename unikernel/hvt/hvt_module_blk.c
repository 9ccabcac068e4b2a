/* crius-hvt block devices: BLOCK_WRITE and BLOCK_READ on the manifest's
 * attached MFT_DEV_BLOCK_BASIC entries, whole blocks, within capacity. */
#include <errno.h>
#include <unistd.h>

#include "unikernel/core/seccomp_install.h"
#include "unikernel/hvt/hvt.h"

static struct mft *mft;

static struct mft_entry *block_entry(uint64_t handle)
{
    if (handle >= mft->entries || mft->e[handle].type != MFT_DEV_BLOCK_BASIC ||
        !mft->e[handle].attached)
        return NULL;
    return &mft->e[handle];
}

/* Solo5 block I/O is exactly one block at a block-aligned offset. */
static bool request_ok(const struct mft_entry *x, uint64_t offset, uint64_t len)
{
    uint64_t bs = x->u.block_basic.block_size;
    return len == bs && offset % bs == 0 && offset < x->u.block_basic.capacity &&
           len <= x->u.block_basic.capacity - offset;
}

static int full_io(bool write, int fd, void *buf, uint64_t len, uint64_t off)
{
    uint8_t *p = buf;
    while (len > 0) {
        ssize_t n = write ? pwrite(fd, p, len, (off_t)off) : pread(fd, p, len, (off_t)off);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return -1;
        p += n;
        off += (uint64_t)n;
        len -= (uint64_t)n;
    }
    return 0;
}

static void hc_block_write(struct hvt *h, hvt_gpa_t arg)
{
    hvt_arg_block_write *w = hvt_checked_gpa_w(h, arg, sizeof *w, "BLOCK_WRITE argument");
    struct mft_entry *x = block_entry(w->handle);
    if (!x || !request_ok(x, w->offset, w->len)) {
        w->ret = HVT_R_EINVAL;
        return;
    }
    void *data = hvt_checked_gpa(h, w->data, w->len, "BLOCK_WRITE data");
    w->ret = full_io(true, x->b.hostfd, data, w->len, w->offset) == 0 ? HVT_R_OK : HVT_R_EUNSPEC;
}

static void hc_block_read(struct hvt *h, hvt_gpa_t arg)
{
    hvt_arg_block_read *r = hvt_checked_gpa_w(h, arg, sizeof *r, "BLOCK_READ argument");
    struct mft_entry *x = block_entry(r->handle);
    if (!x || !request_ok(x, r->offset, r->len)) {
        r->ret = HVT_R_EINVAL;
        return;
    }
    void *data = hvt_checked_gpa_w(h, r->data, r->len, "BLOCK_READ data");
    r->ret = full_io(false, x->b.hostfd, data, r->len, r->offset) == 0 ? HVT_R_OK : HVT_R_EUNSPEC;
}

static int setup(struct hvt *h, struct terr *e)
{
    (void)e;
    mft = h->mft;
    hvt_register_hypercall(HVT_HYPERCALL_BLOCK_WRITE, hc_block_write);
    hvt_register_hypercall(HVT_HYPERCALL_BLOCK_READ, hc_block_read);
    return 0;
}

static int seccomp(struct hvt *h, scmp_filter_ctx ctx, struct terr *e)
{
    for (unsigned i = 1; i < h->mft->entries; i++) {
        const struct mft_entry *x = &h->mft->e[i];
        if (x->type != MFT_DEV_BLOCK_BASIC || !x->attached)
            continue;
        uint64_t fd = (uint64_t)x->b.hostfd;
        uint64_t bs = x->u.block_basic.block_size;
        uint64_t last = x->u.block_basic.capacity - bs;
        TENDER_SCMP_ADD(ctx, e, "pread64(block)", SCMP_SYS(pread64), 3, SCMP_A0(SCMP_CMP_EQ, fd),
                        SCMP_A2(SCMP_CMP_EQ, bs), SCMP_A3(SCMP_CMP_LE, last));
        TENDER_SCMP_ADD(ctx, e, "pwrite64(block)", SCMP_SYS(pwrite64), 3,
                        SCMP_A0(SCMP_CMP_EQ, fd), SCMP_A2(SCMP_CMP_EQ, bs),
                        SCMP_A3(SCMP_CMP_LE, last));
    }
    return 0;
}

const struct hvt_module hvt_module_blk = { .name = "block", .setup = setup, .seccomp = seccomp };
