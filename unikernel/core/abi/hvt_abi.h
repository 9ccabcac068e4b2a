/*
 * Solo5 0.9 guest ABI, hvt flavour (x86-64): the guest runs in a KVM virtual
 * machine and calls the tender with a 32-bit OUT to I/O port
 * HVT_HYPERCALL_PIO_BASE + n, whose value is the address of an argument
 * struct below 4 GiB: the guest's own pointer, an offset into its memory
 * (upstream's "guest-physical", which it is below 3 GiB). The tender
 * bounds-checks that address and every address inside the struct before
 * touching guest memory.
 *
 * Plain C, shared by crius-hvt and guests; binary compatible with upstream
 * Solo5 v0.9.x hvt guests. See unikernel/ABI.md.
 */
#ifndef CRIUS_UNIKERNEL_ABI_HVT_ABI_H
#define CRIUS_UNIKERNEL_ABI_HVT_ABI_H

#include <stddef.h>
#include <stdint.h>

#include "elf_abi.h"

#define HVT_ABI_VERSION 2

/* Lowest address a guest segment may be loaded at. */
#define HVT_GUEST_MIN_BASE 0x100000u
#define HVT_HYPERCALL_PIO_BASE 0x500u

/* Guest addresses are integers on the host, pointers in a guest. */
#ifdef HVT_HOST
typedef uint64_t hvt_gpa_t;
#define HVT_GUEST_PTR(T) hvt_gpa_t
#else
#define HVT_GUEST_PTR(T) T
#endif

/* Where the tender puts the boot info (RDI at entry points to it). */
#define HVT_BOOT_INFO_BASE 0x10000u
#define HVT_CMDLINE_SIZE 8192

struct hvt_boot_info {
    uint64_t mem_size;                   /* guest memory, bytes */
    uint64_t kernel_end;                 /* first address after the loaded image */
    uint64_t cpu_cycle_freq;             /* TSC frequency, Hz */
    HVT_GUEST_PTR(const char *) cmdline; /* NUL-terminated */
    HVT_GUEST_PTR(const void *) mft;     /* struct mft, devices filled in */
};

enum hvt_hypercall {
    HVT_HYPERCALL_WALLTIME = 1,
    HVT_HYPERCALL_PUTS = 2,
    HVT_HYPERCALL_POLL = 3,
    HVT_HYPERCALL_BLOCK_WRITE = 4,
    HVT_HYPERCALL_BLOCK_READ = 5,
    HVT_HYPERCALL_NET_WRITE = 6,
    HVT_HYPERCALL_NET_READ = 7,
    HVT_HYPERCALL_HALT = 8,
    HVT_HYPERCALL_MAX = 9
};

/* Result codes in the ret fields (solo5_result_t). */
enum hvt_result {
    HVT_R_OK = 0,
    HVT_R_AGAIN = 1,
    HVT_R_EINVAL = 2,
    HVT_R_EUNSPEC = 3
};

struct hvt_hc_walltime {
    uint64_t nsecs; /* out: CLOCK_REALTIME */
};

struct hvt_hc_puts {
    HVT_GUEST_PTR(const char *) data; /* in */
    uint64_t len;                     /* in */
};

struct hvt_hc_block_write {
    uint64_t handle;                  /* in */
    uint64_t offset;                  /* in, bytes */
    HVT_GUEST_PTR(const void *) data; /* in */
    uint64_t len;                     /* in */
    int32_t ret;                      /* out */
};

struct hvt_hc_block_read {
    uint64_t handle;            /* in */
    uint64_t offset;            /* in, bytes */
    HVT_GUEST_PTR(void *) data; /* in */
    uint64_t len;               /* in/out */
    int32_t ret;                /* out */
};

struct hvt_hc_net_write {
    uint64_t handle;                  /* in */
    HVT_GUEST_PTR(const void *) data; /* in */
    uint64_t len;                     /* in */
    int32_t ret;                      /* out */
};

struct hvt_hc_net_read {
    uint64_t handle;            /* in */
    HVT_GUEST_PTR(void *) data; /* in */
    uint64_t len;               /* in: buffer size; out: frame size */
    int32_t ret;                /* out */
};

/* Wait until a device is ready or timeout_nsecs pass. ready_set has bit h
 * set for each ready handle h; ret is the number of bits set. */
struct hvt_hc_poll {
    uint64_t timeout_nsecs; /* in, relative */
    uint64_t ready_set;     /* out */
    int32_t ret;            /* out */
};

/* Guest exit. cookie, if non-zero, points at up to HVT_HALT_COOKIE_MAX
 * bytes the guest leaves for a debugger; crius ignores it. */
#define HVT_HALT_COOKIE_MAX 512

struct hvt_hc_halt {
    HVT_GUEST_PTR(void *) cookie; /* in */
    int32_t exit_status;          /* in */
};

CRIUS_ABI_ASSERT(sizeof(struct hvt_boot_info) == 40, "hvt_boot_info layout");
CRIUS_ABI_ASSERT(sizeof(struct hvt_hc_block_write) == 40, "block_write layout");
CRIUS_ABI_ASSERT(sizeof(struct hvt_hc_net_read) == 32, "net_read layout");
CRIUS_ABI_ASSERT(sizeof(struct hvt_hc_poll) == 24, "poll layout");
CRIUS_ABI_ASSERT(sizeof(struct hvt_hc_halt) == 16, "halt layout");

#ifndef HVT_HOST
/* For guests: make hypercall n with argument struct arg (below 4 GiB). */
static inline void hvt_do_hypercall(int n, volatile void *arg)
{
    __asm__ __volatile__("outl %0, %1"
                         :
                         : "a"((uint32_t)(uint64_t)arg),
                           "d"((uint16_t)(HVT_HYPERCALL_PIO_BASE + n))
                         : "memory");
}
#endif

#endif
