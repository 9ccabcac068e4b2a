/* crius-hvt network devices: NET_WRITE and NET_READ on the manifest's
 * attached MFT_DEV_NET_BASIC entries (taps, non-blocking), whose fds are in
 * the POLL wait set under their handle. */
#include <errno.h>
#include <unistd.h>

#include "unikernel/core/seccomp_install.h"
#include "unikernel/hvt/hvt.h"

/* Ethernet frame with VLAN tag, as upstream sizes the guest buffers. */
#define NET_FRAME_MAX(mtu) ((uint64_t)(mtu) + 18)

static struct mft *mft;

static struct mft_entry *net_entry(uint64_t handle)
{
    if (handle >= mft->entries || mft->e[handle].type != MFT_DEV_NET_BASIC ||
        !mft->e[handle].attached)
        return NULL;
    return &mft->e[handle];
}

static void hc_net_write(struct hvt *h, hvt_gpa_t arg)
{
    hvt_arg_net_write *w = hvt_checked_gpa_w(h, arg, sizeof *w, "NET_WRITE argument");
    struct mft_entry *x = net_entry(w->handle);
    if (!x || w->len > NET_FRAME_MAX(x->u.net_basic.mtu)) {
        w->ret = HVT_R_EINVAL;
        return;
    }
    const void *data = hvt_checked_gpa(h, w->data, w->len, "NET_WRITE data");
    ssize_t n;
    do
        n = write(x->b.hostfd, data, w->len);
    while (n < 0 && errno == EINTR);
    w->ret = (n == (ssize_t)w->len) ? HVT_R_OK : HVT_R_EUNSPEC;
}

static void hc_net_read(struct hvt *h, hvt_gpa_t arg)
{
    hvt_arg_net_read *r = hvt_checked_gpa_w(h, arg, sizeof *r, "NET_READ argument");
    struct mft_entry *x = net_entry(r->handle);
    if (!x) {
        r->ret = HVT_R_EINVAL;
        return;
    }
    void *data = hvt_checked_gpa_w(h, r->data, r->len, "NET_READ buffer");
    ssize_t n;
    do
        n = read(x->b.hostfd, data, r->len);
    while (n < 0 && errno == EINTR);
    if (n < 0) {
        r->ret = (errno == EAGAIN || errno == EWOULDBLOCK) ? HVT_R_AGAIN : HVT_R_EUNSPEC;
        return;
    }
    r->len = (uint64_t)n;
    r->ret = HVT_R_OK;
}

static int setup(struct hvt *h, struct terr *e)
{
    mft = h->mft;
    hvt_register_hypercall(HVT_HYPERCALL_NET_WRITE, hc_net_write);
    hvt_register_hypercall(HVT_HYPERCALL_NET_READ, hc_net_read);
    for (unsigned i = 1; i < mft->entries; i++)
        if (mft->e[i].type == MFT_DEV_NET_BASIC && mft->e[i].attached &&
            hvt_register_pollfd(mft->e[i].b.hostfd, i, e) < 0)
            return terr_wrap(e, "net device '%s'", mft->e[i].name);
    return 0;
}

static int seccomp(struct hvt *h, scmp_filter_ctx ctx, struct terr *e)
{
    for (unsigned i = 1; i < h->mft->entries; i++) {
        const struct mft_entry *x = &h->mft->e[i];
        if (x->type != MFT_DEV_NET_BASIC || !x->attached)
            continue;
        TENDER_SCMP_ADD(ctx, e, "read(tap)", SCMP_SYS(read), 1,
                        SCMP_A0(SCMP_CMP_EQ, (uint64_t)x->b.hostfd));
        TENDER_SCMP_ADD(ctx, e, "write(tap)", SCMP_SYS(write), 1,
                        SCMP_A0(SCMP_CMP_EQ, (uint64_t)x->b.hostfd));
    }
    return 0;
}

const struct hvt_module hvt_module_net = { .name = "net", .setup = setup, .seccomp = seccomp };
