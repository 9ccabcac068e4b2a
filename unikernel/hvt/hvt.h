/* crius-hvt: the core's view of a VM, shared by the core, the KVM backend
 * and the device modules. */
#ifndef CRIUS_UNIKERNEL_HVT_HVT_H
#define CRIUS_UNIKERNEL_HVT_HVT_H

#define HVT_HOST 1

#include <seccomp.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "unikernel/core/abi/hvt_abi.h"
#include "unikernel/core/abi/mft_abi.h"
#include "unikernel/core/elf_image.h"
#include "unikernel/core/terr.h"

struct hvt_backend; /* owned by the backend (hvt_kvm_x86_64.c) */

struct hvt {
    uint8_t *mem;      /* guest address 0; guest addresses are offsets into it */
    uint64_t mem_size; /* bytes, a multiple of 2 MiB, at most 4 GiB */
    uint64_t cpu_cycle_freq;
    struct mft *mft;   /* the guest's manifest, attached */
    bool shutdown_aware;
    /* The guest's read-only segments, [start, end): the backend protects
     * them from the guest, hvt_checked_gpa_w from the tender's own writes. */
    struct { uint64_t start, end; } ro[ELF_MAX_SEGMENTS];
    unsigned nro;
    struct hvt_backend *b;
};

/* Guest memory for [gpa, gpa + len), or NULL if any byte is outside it. */
static inline void *hvt_gpa(const struct hvt *h, hvt_gpa_t gpa, uint64_t len)
{
    if (gpa >= h->mem_size || len > h->mem_size - gpa)
        return NULL;
    return h->mem + gpa;
}

/* Like hvt_gpa, but a bad address from the guest is a guest fault. For
 * memory the tender reads. */
void *hvt_checked_gpa(const struct hvt *h, hvt_gpa_t gpa, uint64_t len, const char *what);
/* The same for memory the tender writes: it must also lie at or above
 * HVT_GUEST_MIN_BASE and outside the guest's read-only segments, so a guest
 * cannot have the tender rewrite what the guest itself may not (page
 * tables, GDT, boot info, its own code). */
void *hvt_checked_gpa_w(const struct hvt *h, hvt_gpa_t gpa, uint64_t len, const char *what);

/* A hypercall's argument struct where the guest put it: at any address, so
 * the tender assumes no alignment (the guest's C does; the guest may not). */
typedef struct hvt_hc_walltime __attribute__((aligned(1))) hvt_arg_walltime;
typedef struct hvt_hc_puts __attribute__((aligned(1))) hvt_arg_puts;
typedef struct hvt_hc_poll __attribute__((aligned(1))) hvt_arg_poll;
typedef struct hvt_hc_halt __attribute__((aligned(1))) hvt_arg_halt;
typedef struct hvt_hc_block_write __attribute__((aligned(1))) hvt_arg_block_write;
typedef struct hvt_hc_block_read __attribute__((aligned(1))) hvt_arg_block_read;
typedef struct hvt_hc_net_write __attribute__((aligned(1))) hvt_arg_net_write;
typedef struct hvt_hc_net_read __attribute__((aligned(1))) hvt_arg_net_read;

typedef void (*hvt_hypercall_fn)(struct hvt *h, hvt_gpa_t arg);

/* A device module: its setup registers hypercalls and poll fds; its
 * seccomp hook allows the syscalls its hypercalls make, on its fds only. */
struct hvt_module {
    const char *name;
    int (*setup)(struct hvt *h, struct terr *e);
    int (*seccomp)(struct hvt *h, scmp_filter_ctx ctx, struct terr *e);
};

/* The explicit module table (hvt_modules.c), NULL-terminated. */
extern const struct hvt_module *const hvt_modules[];

/* Core services for modules. */
void hvt_register_hypercall(enum hvt_hypercall nr, hvt_hypercall_fn fn);
int hvt_register_pollfd(int fd, uint64_t handle, struct terr *e);

/* Backend (one per host/arch). */
int hvt_backend_create(struct hvt *h, uint64_t mem_size, struct terr *e);
/* Makes [start, end) of guest memory read-only for the guest (W^X). */
int hvt_backend_protect(struct hvt *h, uint64_t start, uint64_t end, struct terr *e);
int hvt_backend_vcpu_init(struct hvt *h, uint64_t entry, struct terr *e);
int hvt_backend_seccomp(struct hvt *h, scmp_filter_ctx ctx, struct terr *e);
/* Runs the guest; returns its exit status, or ends the process on a fault. */
int hvt_backend_run(struct hvt *h);
/* Core's hypercall dispatch, called by the backend's run loop; returns true
 * and sets *status when the guest halted. */
bool hvt_core_hypercall(struct hvt *h, unsigned nr, hvt_gpa_t arg, int *status);

#endif
