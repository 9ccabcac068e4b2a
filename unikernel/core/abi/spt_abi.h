/*
 * Solo5 0.9 guest ABI, spt flavour (x86-64 Linux): the guest runs inside the
 * tender's own process, at the addresses it was linked for, under a seccomp
 * filter; it calls the host kernel directly with the few syscalls the filter
 * allows (unikernel/ABI.md lists them).
 *
 * Plain C, shared by crius-spt and guests; binary compatible with upstream
 * Solo5 v0.9.x spt guests.
 */
#ifndef CRIUS_UNIKERNEL_ABI_SPT_ABI_H
#define CRIUS_UNIKERNEL_ABI_SPT_ABI_H

#include <stddef.h>
#include <stdint.h>

#include "elf_abi.h"

#define SPT_ABI_VERSION 2

#define SPT_GUEST_MIN_BASE 0x100000u
/* Guest memory is mapped at [SPT_HOST_MEM_BASE, mem_size) in the tender. */
#define SPT_HOST_MEM_BASE 0x10000u
/* Where the tender puts the boot info (RDI at entry points to it). */
#define SPT_BOOT_INFO_BASE (SPT_HOST_MEM_BASE + 0x1000u)
#define SPT_CMDLINE_SIZE 8192

struct spt_boot_info {
    uint64_t mem_size;   /* bytes */
    uint64_t kernel_end; /* first address after the loaded image */
    const char *cmdline; /* NUL-terminated */
    const void *mft;     /* struct mft, devices filled in (hostfd set) */
    int epollfd;         /* wait set: the guest's epoll_pwait target */
    int timerfd;         /* the guest arms it with timerfd_settime to bound a wait */
};

/* epoll data of the timerfd's event in the wait set; not a device handle. */
#define SPT_INTERNAL_TIMERFD (~1u)

CRIUS_ABI_ASSERT(sizeof(struct spt_boot_info) == 40, "spt_boot_info layout");

#endif
