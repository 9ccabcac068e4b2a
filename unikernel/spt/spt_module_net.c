/* crius-spt network devices: the guest reads and writes its taps itself;
 * each tap is in the wait set under its handle. */
#include <errno.h>
#include <sys/epoll.h>

#include "unikernel/core/seccomp_install.h"
#include "unikernel/spt/spt.h"

static int setup(struct spt *s, struct terr *e)
{
    for (unsigned i = 1; i < s->mft->entries; i++) {
        const struct mft_entry *x = &s->mft->e[i];
        if (x->type != MFT_DEV_NET_BASIC || !x->attached)
            continue;
        struct epoll_event ev = { .events = EPOLLIN, .data.u64 = i };
        if (epoll_ctl(s->epollfd, EPOLL_CTL_ADD, x->b.hostfd, &ev) < 0)
            return terr_errno(e, "net device '%s': add tap to the wait set", x->name);
        uint64_t fd = (uint64_t)x->b.hostfd;
        TENDER_SCMP_ADD(s->sc, e, "read(tap)", SCMP_SYS(read), 1, SCMP_A0(SCMP_CMP_EQ, fd));
        TENDER_SCMP_ADD(s->sc, e, "write(tap)", SCMP_SYS(write), 1, SCMP_A0(SCMP_CMP_EQ, fd));
    }
    return 0;
}

const struct spt_module spt_module_net = { .name = "net", .setup = setup };
