/*
 * crius-hvt backend for Linux KVM on x86-64: one VM, one vCPU, started
 * directly in 64-bit long mode with identity-mapped page tables.
 *
 * Guest-physical layout below HVT_GUEST_MIN_BASE (1 MiB):
 *   0x00000-0x0ffff  not mapped in the guest: zero page, GDT at 0x1000,
 *                    page tables at 0x2000-0x8fff
 *   0x10000-0xfffff  mapped read-only: boot info, manifest, command line
 * From 1 MiB to mem_size: read-write (2 MiB pages above 2 MiB). The host
 * mapping of the guest's read-only segments is read-only too, so a guest
 * write there stops KVM_RUN with EFAULT: a guest fault.
 *
 * Guest memory is one host mapping, and the guest's addresses 0..mem_size
 * are offsets into it, as the ABI says. Guest-physical memory skips the top
 * GiB of the 32-bit space, where x86 has its IOAPIC (0xfec00000) and local
 * APIC (0xfee00000) and KVM may put pages of its own (VMX's APIC-access
 * page, TSS and identity map): memory slot 0 is [0, 3 GiB), slot 1 holds
 * the rest from 4 GiB up, and the page tables map guest addresses from
 * 3 GiB on to guest-physical ones 1 GiB higher.
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/kvm.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>

#include "unikernel/core/seccomp_install.h"
#include "unikernel/hvt/hvt.h"

#define GDT_BASE 0x1000
#define PML4_BASE 0x2000
#define PDPT_BASE 0x3000
#define PD_BASE 0x4000 /* 4 pages: up to 4 GiB */
#define PT0_BASE 0x8000 /* 4 KiB pages of the first 2 MiB */

/* Guest addresses from LOW_MEM_END on are guest-physical + HIGH_MEM_SHIFT. */
#define LOW_MEM_END (3ull << 30)
#define HIGH_MEM_SHIFT (1ull << 30)

#define PTE_P 0x1ull
#define PTE_RW 0x2ull
#define PTE_PS 0x80ull

#define CR0_PE (1ull << 0)
#define CR0_NE (1ull << 5)
#define CR0_WP (1ull << 16)
#define CR0_PG (1ull << 31)
#define CR4_PAE (1ull << 5)
#define CR4_OSFXSR (1ull << 9)
#define CR4_OSXMMEXCPT (1ull << 10)
#define EFER_LME (1ull << 8)
#define EFER_LMA (1ull << 10)

struct hvt_backend {
    int kvm, vm, vcpu;
    struct kvm_run *run;
};

static struct hvt_backend backend = { -1, -1, -1, NULL };

int hvt_backend_create(struct hvt *h, uint64_t mem_size, struct terr *e)
{
    struct hvt_backend *b = &backend;
    h->b = b;
    b->kvm = open("/dev/kvm", O_RDWR | O_CLOEXEC);
    if (b->kvm < 0)
        return terr_errno(e, "open /dev/kvm");
    int version = ioctl(b->kvm, KVM_GET_API_VERSION, 0);
    if (version != KVM_API_VERSION)
        return terr_set(e, "KVM API version %d, expected %d", version, KVM_API_VERSION);
    b->vm = ioctl(b->kvm, KVM_CREATE_VM, 0);
    if (b->vm < 0)
        return terr_errno(e, "KVM: create VM");
    /* Untouched guest memory costs nothing: no reservation, no clearing. */
    h->mem = mmap(NULL, mem_size, PROT_READ | PROT_WRITE,
                  MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (h->mem == MAP_FAILED)
        return terr_errno(e, "map %llu MiB of guest memory", (unsigned long long)(mem_size >> 20));
    h->mem_size = mem_size;
    uint64_t low = mem_size < LOW_MEM_END ? mem_size : LOW_MEM_END;
    struct kvm_userspace_memory_region region = {
        .slot = 0,
        .guest_phys_addr = 0,
        .memory_size = low,
        .userspace_addr = (uint64_t)(uintptr_t)h->mem,
    };
    if (ioctl(b->vm, KVM_SET_USER_MEMORY_REGION, &region) < 0)
        return terr_errno(e, "KVM: set guest memory below 3 GiB");
    if (mem_size > LOW_MEM_END) {
        region = (struct kvm_userspace_memory_region){
            .slot = 1,
            .guest_phys_addr = LOW_MEM_END + HIGH_MEM_SHIFT,
            .memory_size = mem_size - LOW_MEM_END,
            .userspace_addr = (uint64_t)(uintptr_t)(h->mem + LOW_MEM_END),
        };
        if (ioctl(b->vm, KVM_SET_USER_MEMORY_REGION, &region) < 0)
            return terr_errno(e, "KVM: set guest memory above 4 GiB");
    }
    b->vcpu = ioctl(b->vm, KVM_CREATE_VCPU, 0);
    if (b->vcpu < 0)
        return terr_errno(e, "KVM: create vCPU");
    int run_size = ioctl(b->kvm, KVM_GET_VCPU_MMAP_SIZE, 0);
    if (run_size < (int)sizeof(struct kvm_run))
        return terr_errno(e, "KVM: get vCPU mmap size");
    b->run = mmap(NULL, run_size, PROT_READ | PROT_WRITE, MAP_SHARED, b->vcpu, 0);
    if (b->run == MAP_FAILED)
        return terr_errno(e, "KVM: map vCPU run area");
    return 0;
}

int hvt_backend_protect(struct hvt *h, uint64_t start, uint64_t end, struct terr *e)
{
    if (mprotect(h->mem + start, end - start, PROT_READ) < 0)
        return terr_errno(e, "write-protect guest pages 0x%llx-0x%llx",
                          (unsigned long long)start, (unsigned long long)end);
    return 0;
}

/* The guest-physical address of guest address a (a < mem_size). */
static uint64_t guest_phys(uint64_t a)
{
    return a < LOW_MEM_END ? a : a + HIGH_MEM_SHIFT;
}

/* The guest address of guest-physical pa, if pa is guest memory. */
static bool guest_addr(const struct hvt *h, uint64_t pa, uint64_t *a)
{
    *a = pa < LOW_MEM_END ? pa : pa - HIGH_MEM_SHIFT;
    return (pa < LOW_MEM_END || pa >= LOW_MEM_END + HIGH_MEM_SHIFT) && *a < h->mem_size;
}

static void setup_page_tables(struct hvt *h)
{
    uint64_t *pml4 = (uint64_t *)(h->mem + PML4_BASE);
    uint64_t *pdpt = (uint64_t *)(h->mem + PDPT_BASE);
    uint64_t *pd = (uint64_t *)(h->mem + PD_BASE);
    uint64_t *pt0 = (uint64_t *)(h->mem + PT0_BASE);
    pml4[0] = PDPT_BASE | PTE_P | PTE_RW;
    for (int i = 0; i < 4; i++)
        pdpt[i] = (PD_BASE + 0x1000ull * i) | PTE_P | PTE_RW;
    pd[0] = PT0_BASE | PTE_P | PTE_RW;
    for (uint64_t a = HVT_BOOT_INFO_BASE; a < (2ull << 20); a += 0x1000)
        pt0[a >> 12] = a | PTE_P | (a >= HVT_GUEST_MIN_BASE ? PTE_RW : 0);
    for (uint64_t a = 2ull << 20; a < h->mem_size; a += 2ull << 20)
        pd[a >> 21] = guest_phys(a) | PTE_P | PTE_RW | PTE_PS;
}

static struct kvm_segment segment(uint16_t index, uint8_t type, uint8_t l, uint8_t db)
{
    return (struct kvm_segment){ .base = 0, .limit = 0xffffffff, .selector = index * 8,
                                 .type = type, .present = 1, .dpl = 0, .db = db, .s = 1,
                                 .l = l, .g = 1 };
}

/* The GDT entry matching a kvm_segment (flat, 4 KiB granularity). */
static uint64_t gdt_entry(const struct kvm_segment *s)
{
    uint64_t limit = s->limit >> 12;
    return (limit & 0xffff) | ((uint64_t)(limit >> 16) << 48) |
           ((uint64_t)s->type << 40) | ((uint64_t)s->s << 44) | ((uint64_t)s->dpl << 45) |
           ((uint64_t)s->present << 47) | ((uint64_t)s->l << 53) | ((uint64_t)s->db << 54) |
           ((uint64_t)s->g << 55);
}

/* The guest-physical address width CPUID tells the guest (leaf 0x80000008,
 * EAX[7:0]); 0 when the leaf is missing. */
static unsigned cpuid_phys_bits(const struct kvm_cpuid2 *c)
{
    for (unsigned i = 0; i < c->nent; i++)
        if (c->entries[i].function == 0x80000008)
            return c->entries[i].eax & 0xff;
    return 0;
}

static int setup_cpuid(struct hvt *h, struct hvt_backend *b, struct terr *e)
{
    enum { MAX_ENTRIES = 128 };
    struct kvm_cpuid2 *c = calloc(1, sizeof *c + MAX_ENTRIES * sizeof c->entries[0]);
    if (!c)
        return terr_errno(e, "allocate CPUID table");
    c->nent = MAX_ENTRIES;
    int rc = 0;
    if (ioctl(b->kvm, KVM_GET_SUPPORTED_CPUID, c) < 0)
        rc = terr_errno(e, "KVM: get supported CPUID");
    else if (h->mem_size > LOW_MEM_END &&
             cpuid_phys_bits(c) < 64u - (unsigned)__builtin_clzll(guest_phys(h->mem_size - 1)))
        rc = terr_set(e, "KVM: the vCPU's physical addresses have %u bits, too few for "
                      "guest memory above 4 GiB", cpuid_phys_bits(c));
    else if (ioctl(b->vcpu, KVM_SET_CPUID2, c) < 0)
        rc = terr_errno(e, "KVM: set vCPU CPUID");
    free(c);
    return rc;
}

int hvt_backend_vcpu_init(struct hvt *h, uint64_t entry, struct terr *e)
{
    struct hvt_backend *b = h->b;
    setup_page_tables(h);
    struct kvm_segment code = segment(1, 11 /* execute/read, accessed */, 1, 0);
    struct kvm_segment data = segment(2, 3 /* read/write, accessed */, 0, 1);
    uint64_t *gdt = (uint64_t *)(h->mem + GDT_BASE);
    gdt[0] = 0;
    gdt[1] = gdt_entry(&code);
    gdt[2] = gdt_entry(&data);

    if (setup_cpuid(h, b, e) < 0)
        return -1;
    struct kvm_sregs sregs;
    if (ioctl(b->vcpu, KVM_GET_SREGS, &sregs) < 0)
        return terr_errno(e, "KVM: get vCPU special registers");
    sregs.cr0 = CR0_PE | CR0_NE | CR0_WP | CR0_PG;
    sregs.cr3 = PML4_BASE;
    sregs.cr4 = CR4_PAE | CR4_OSFXSR | CR4_OSXMMEXCPT;
    sregs.efer = EFER_LME | EFER_LMA;
    sregs.cs = code;
    sregs.ds = sregs.es = sregs.fs = sregs.gs = sregs.ss = data;
    sregs.gdt.base = GDT_BASE;
    sregs.gdt.limit = 3 * 8 - 1;
    sregs.tr = (struct kvm_segment){ .limit = 0, .type = 11 /* 64-bit TSS, busy */, .present = 1 };
    sregs.ldt = (struct kvm_segment){ .unusable = 1 };
    if (ioctl(b->vcpu, KVM_SET_SREGS, &sregs) < 0)
        return terr_errno(e, "KVM: set vCPU special registers");

    if (ioctl(b->kvm, KVM_CHECK_EXTENSION, KVM_CAP_GET_TSC_KHZ) != 1)
        return terr_set(e, "KVM: host cannot report the TSC frequency (KVM_CAP_GET_TSC_KHZ)");
    int khz = ioctl(b->vcpu, KVM_GET_TSC_KHZ, 0);
    if (khz <= 0)
        return terr_errno(e, "KVM: get TSC frequency");
    h->cpu_cycle_freq = (uint64_t)khz * 1000;

    /* SysV x86-64 entry convention: (rsp + 8) % 16 == 0, first argument in rdi. */
    struct kvm_regs regs = {
        .rip = entry,
        .rflags = 0x2,
        .rsp = h->mem_size - 8,
        .rdi = HVT_BOOT_INFO_BASE,
    };
    if (ioctl(b->vcpu, KVM_SET_REGS, &regs) < 0)
        return terr_errno(e, "KVM: set vCPU registers");
    return 0;
}

int hvt_backend_seccomp(struct hvt *h, scmp_filter_ctx ctx, struct terr *e)
{
    struct hvt_backend *b = h->b;
    TENDER_SCMP_ADD(ctx, e, "ioctl(KVM_RUN)", SCMP_SYS(ioctl), 2,
                    SCMP_A0(SCMP_CMP_EQ, (uint64_t)b->vcpu), SCMP_A1(SCMP_CMP_EQ, KVM_RUN));
    TENDER_SCMP_ADD(ctx, e, "ioctl(KVM_GET_REGS)", SCMP_SYS(ioctl), 2,
                    SCMP_A0(SCMP_CMP_EQ, (uint64_t)b->vcpu), SCMP_A1(SCMP_CMP_EQ, KVM_GET_REGS));
    return 0;
}

static unsigned long long guest_rip(struct hvt_backend *b)
{
    struct kvm_regs regs;
    if (ioctl(b->vcpu, KVM_GET_REGS, &regs) < 0)
        return ~0ull;
    return regs.rip;
}

int hvt_backend_run(struct hvt *h)
{
    struct hvt_backend *b = h->b;
    struct kvm_run *run = b->run;
    uint64_t addr;
    for (;;) {
        if (ioctl(b->vcpu, KVM_RUN, 0) < 0) {
            if (errno == EINTR)
                continue; /* a signal interrupted the run; carry on */
            if (errno == EFAULT)
                tender_exit(TENDER_EXIT_FAULT,
                            "guest fault: host/guest translation fault (write to a read-only "
                            "segment?) at rip=0x%llx", guest_rip(b));
            const char *why = strerror(errno);
            tender_exit(TENDER_EXIT_FAULT, "KVM: run vCPU: %s at rip=0x%llx", why, guest_rip(b));
        }
        switch (run->exit_reason) {
        case KVM_EXIT_IO: {
            unsigned port = run->io.port;
            if (run->io.direction != KVM_EXIT_IO_OUT || run->io.size != 4 ||
                run->io.count != 1 || port < HVT_HYPERCALL_PIO_BASE ||
                port >= HVT_HYPERCALL_PIO_BASE + HVT_HYPERCALL_MAX)
                tender_exit(TENDER_EXIT_FAULT,
                            "guest fault: invalid I/O port access: port=0x%x size=%u at "
                            "rip=0x%llx", port, run->io.size, guest_rip(b));
            uint32_t arg;
            memcpy(&arg, (uint8_t *)run + run->io.data_offset, sizeof arg);
            int status;
            if (hvt_core_hypercall(h, port - HVT_HYPERCALL_PIO_BASE, arg, &status))
                return status;
            break;
        }
        case KVM_EXIT_MMIO:
            /* Inside guest memory, an MMIO exit is a write the host mapping
             * refuses: a read-only segment (W^X). Where KVM reports this as
             * EFAULT instead, upstream says "host/guest translation fault";
             * the suite (and users' scripts) look for those words. */
            if (guest_addr(h, run->mmio.phys_addr, &addr))
                tender_exit(TENDER_EXIT_FAULT,
                            "guest fault: host/guest translation fault: write to read-only "
                            "guest memory at 0x%llx (%u bytes) at rip=0x%llx",
                            (unsigned long long)addr, run->mmio.len, guest_rip(b));
            tender_exit(TENDER_EXIT_FAULT,
                        "guest fault: access to unmapped guest-physical address 0x%llx "
                        "(MMIO exit, %s %u bytes) at rip=0x%llx",
                        (unsigned long long)run->mmio.phys_addr,
                        run->mmio.is_write ? "write" : "read", run->mmio.len, guest_rip(b));
        case KVM_EXIT_SHUTDOWN:
            tender_exit(TENDER_EXIT_FAULT,
                        "guest fault: triple fault (unhandled exception) at rip=0x%llx",
                        guest_rip(b));
        case KVM_EXIT_HLT:
            tender_exit(TENDER_EXIT_FAULT,
                        "guest fault: HLT instruction without the HALT hypercall at rip=0x%llx",
                        guest_rip(b));
        case KVM_EXIT_FAIL_ENTRY:
            tender_exit(TENDER_EXIT_FAULT, "KVM: vCPU entry failed: reason 0x%llx",
                        (unsigned long long)run->fail_entry.hardware_entry_failure_reason);
        case KVM_EXIT_INTERNAL_ERROR:
            tender_exit(TENDER_EXIT_FAULT, "KVM: internal error %u at rip=0x%llx",
                        run->internal.suberror, guest_rip(b));
        default:
            tender_exit(TENDER_EXIT_FAULT, "KVM: unhandled exit reason %u at rip=0x%llx",
                        run->exit_reason, guest_rip(b));
        }
    }
}
