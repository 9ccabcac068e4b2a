/* The tenders' shared command line:
 *   TENDER [--mem=MiB] [--net:NAME=TAP]... [--net-mac:NAME=HWADDR]...
 *          [--block:NAME=FILE]... [--block-sector-size:NAME=BYTES]...
 *          [--] GUEST.elf [GUEST ARGS...]
 */
#ifndef CRIUS_UNIKERNEL_CORE_ARGS_H
#define CRIUS_UNIKERNEL_CORE_ARGS_H

#include <stdint.h>

#include "unikernel/core/abi/mft_abi.h"
#include "unikernel/core/terr.h"

#ifdef __cplusplus
extern "C" {
#endif

#define TENDER_DEFAULT_MEM_MIB 512

struct dev_request {
    uint32_t type; /* MFT_DEV_NET_BASIC or MFT_DEV_BLOCK_BASIC */
    char name[MFT_NAME_SIZE];
    const char *path; /* tap name or block file */
    uint32_t block_size; /* 0: default (512) */
    int has_mac;         /* --net-mac given: mac, else a random one */
    uint8_t mac[6];
};

struct tender_args {
    uint64_t mem_bytes;
    unsigned ndev;
    struct dev_request dev[MFT_MAX_ENTRIES];
    const char *elf_path;
    int guest_argc;
    char **guest_argv; /* argv of the guest, after the ELF path */
};

int args_parse(int argc, char **argv, struct tender_args *a, struct terr *e);

/* Joins argv with spaces into buf (size bytes, NUL included). */
int args_guest_cmdline(const struct tender_args *a, char *buf, size_t size,
                       struct terr *e);

const char *args_usage(void);

#ifdef __cplusplus
}
#endif

#endif
