/* For the tender targets: a guest's manifest with its devices attached as
 * devices_attach leaves them, except that a datagram socketpair stands in
 * for each tap (the tender's end is the device's fd, the other the
 * network's) and block devices are temporary files opened by block_open.
 * Handles: 1 net "service0", 2 block "storage" (512-byte blocks), 3 net
 * "service1", 4 block "big" (4096-byte blocks). */
#ifndef CRIUS_TESTS_FUZZ_TENDER_DEVICES_H
#define CRIUS_TESTS_FUZZ_TENDER_DEVICES_H

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "unikernel/core/devices.h"
#include "unikernel/core/mft.h"

#define FUZZ_DEVICES 5

struct fuzz_devices {
    struct mft *mft;
    size_t mft_size;
    int peer[FUZZ_DEVICES]; /* net: the network's end of the socketpair, else -1 */
};

static inline void fuzz_devices_fail(const char *what, const struct terr *e)
{
    fprintf(stderr, "tender devices: %s: %s\n", what, e ? e->msg : "");
    abort();
}

static inline void fuzz_devices_make(struct fuzz_devices *d)
{
    static const struct { const char *name; uint32_t type; uint32_t block_size, blocks; } devs[] = {
        { "", MFT_RESERVED_FIRST, 0, 0 },
        { "service0", MFT_DEV_NET_BASIC, 0, 0 },
        { "storage", MFT_DEV_BLOCK_BASIC, 512, 16 },
        { "service1", MFT_DEV_NET_BASIC, 0, 0 },
        { "big", MFT_DEV_BLOCK_BASIC, 4096, 4 },
    };
    struct terr e;
    d->mft_size = sizeof(struct mft) + FUZZ_DEVICES * sizeof(struct mft_entry);
    d->mft = calloc(1, d->mft_size);
    d->mft->version = MFT_VERSION;
    d->mft->entries = FUZZ_DEVICES;
    for (unsigned i = 0; i < FUZZ_DEVICES; i++) {
        strcpy(d->mft->e[i].name, devs[i].name);
        d->mft->e[i].type = devs[i].type;
        d->peer[i] = -1;
    }
    /* The manifest as a guest image carries it, then attached. */
    if (mft_validate(d->mft, d->mft_size, &e) < 0)
        fuzz_devices_fail("manifest", &e);
    for (unsigned i = 1; i < FUZZ_DEVICES; i++) {
        struct mft_entry *x = &d->mft->e[i];
        int fd;
        if (x->type == MFT_DEV_NET_BASIC) {
            int pair[2];
            if (socketpair(AF_UNIX, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, pair) < 0)
                fuzz_devices_fail("socketpair", NULL);
            fd = pair[0];
            d->peer[i] = pair[1];
            memcpy(x->u.net_basic.mac, "\x02\x00\x00\x00\x00\x01", 6);
            x->u.net_basic.mtu = DEVICES_NET_MTU;
        } else {
            char path[] = "/tmp/crius-fuzz-block-XXXXXX";
            int tmp = mkstemp(path);
            if (tmp < 0 || ftruncate(tmp, (off_t)devs[i].block_size * devs[i].blocks) < 0)
                fuzz_devices_fail("block file", NULL);
            close(tmp);
            uint64_t capacity;
            fd = block_open(path, devs[i].block_size, &capacity, &e);
            unlink(path);
            if (fd < 0)
                fuzz_devices_fail("block_open", &e);
            x->u.block_basic.capacity = capacity;
            x->u.block_basic.block_size = (uint16_t)devs[i].block_size;
        }
        x->b.data = 0;
        x->b.hostfd = fd;
        x->attached = true;
    }
}

/* Back to the state of a fresh start: nothing waiting on either end of a
 * net device, block devices zeroed. */
static inline void fuzz_devices_reset(const struct fuzz_devices *d)
{
    char frame[65536];
    for (unsigned i = 1; i < FUZZ_DEVICES; i++) {
        const struct mft_entry *x = &d->mft->e[i];
        if (x->type == MFT_DEV_NET_BASIC) {
            while (recv(x->b.hostfd, frame, sizeof frame, MSG_DONTWAIT) >= 0) {
            }
            while (recv(d->peer[i], frame, sizeof frame, MSG_DONTWAIT) >= 0) {
            }
        } else if (ftruncate(x->b.hostfd, 0) < 0 ||
                   ftruncate(x->b.hostfd, (off_t)x->u.block_basic.capacity) < 0) {
            fuzz_devices_fail("reset block file", NULL);
        }
    }
}

#endif
