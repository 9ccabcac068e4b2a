/* Attaching host resources (taps, block files) to the guest's manifest. */
#ifndef CRIUS_UNIKERNEL_CORE_DEVICES_H
#define CRIUS_UNIKERNEL_CORE_DEVICES_H

#include "unikernel/core/abi/mft_abi.h"
#include "unikernel/core/args.h"
#include "unikernel/core/terr.h"

#ifdef __cplusplus
extern "C" {
#endif

#define DEVICES_DEFAULT_BLOCK_SIZE 512
#define DEVICES_NET_MTU 1500

/* Checks that the command line names exactly the manifest's devices (by
 * name and type), then opens each resource and fills in its entry:
 * hostfd, capacity/block_size or mac/mtu, attached. Nothing is opened when
 * the names do not match. */
int devices_attach(struct mft *m, const struct tender_args *a, struct terr *e);

/* Opens an existing tap interface (never creates one). */
int tap_open(const char *ifname, struct terr *e);

/* Opens a block backing file; checks it holds whole blocks, at least one. */
int block_open(const char *path, uint32_t block_size, uint64_t *capacity,
               struct terr *e);

#ifdef __cplusplus
}
#endif

#endif
