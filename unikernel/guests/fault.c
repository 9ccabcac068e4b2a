/* fault: faults on purpose, in the way its first argument names:
 *   zeropage  write to address 0 (never mapped)
 *   text      write to its own code (W^X)
 *   ud2       execute an invalid instruction
 *   badarg    (hvt) hand the tender a console buffer outside guest memory
 *   mmio      (hvt) install page tables mapping memory the VM lacks, touch it
 *   lowarg    (hvt) have the tender write a POLL result over the boot info
 *   overmem   touch every page of its memory, say how much, then the page
 *             just past its end
 *   edges     write and read back words on each side of 3 GiB and in its
 *             last page, have the tender print a line from its last page,
 *             then touch the byte just past its end (what overmem shows of
 *             a 4 GiB guest, without touching all of it)
 */
#include "lib/guest.h"
#ifdef GUEST_FLAVOUR_HVT
#include "unikernel/core/abi/hvt_abi.h"
#endif

MFT1_DECLARE(1);

/* Identity map of the first 1 GiB with 2 MiB pages, in the guest's bss. */
static uint64_t pml4[512] __attribute__((aligned(4096)));
static uint64_t pdpt[512] __attribute__((aligned(4096)));
static uint64_t pd[512] __attribute__((aligned(4096)));

static void touch_unbacked_memory(void)
{
    for (uint64_t i = 0; i < 512; i++)
        pd[i] = (i << 21) | 0x83; /* present, writable, 2 MiB */
    pdpt[0] = (uint64_t)pd | 0x3;
    pml4[0] = (uint64_t)pdpt | 0x3;
    __asm__ __volatile__("mov %0, %%cr3" : : "r"(pml4) : "memory");
    /* Beyond guest memory but mapped: the access leaves the VM as MMIO. */
    volatile uint64_t *p = (volatile uint64_t *)(guest_boot.mem_size + 4096);
    *p = 42;
}

/* Touches every page from the end of the image to the end of guest memory
 * (rewriting each byte it reads, so the stack above survives), then the
 * first byte past it. */
static void touch_all_memory_and_beyond(void)
{
    uint64_t start = (guest_boot.kernel_end + 4095) & ~4095ull;
    for (uint64_t a = start; a < guest_boot.mem_size; a += 4096) {
        volatile uint8_t *p = (volatile uint8_t *)a;
        *p = *p;
    }
    g_puts("fault: touched ");
    g_put_u64((guest_boot.mem_size - start) >> 20);
    g_puts(" MiB\n");
    *(volatile uint8_t *)guest_boot.mem_size = 1;
}

/* hvt's guest-physical memory breaks at 3 GiB; the guest's must not. */
static void touch_edges_and_beyond(void)
{
    const uint64_t gib3 = 3ull << 30, end = guest_boot.mem_size;
    const uint64_t at[] = { gib3 - 4096, gib3 - 8, gib3, gib3 + 4096, end - 4096 };
    uint64_t start = (guest_boot.kernel_end + 4095) & ~4095ull, n = 0;
    for (int pass = 0; pass < 2; pass++)
        for (unsigned i = 0; i < sizeof at / sizeof at[0]; i++) {
            /* The last page also holds the stack: only its first words. */
            if (at[i] < start || (at[i] >= end - 4096 && i != 4))
                continue;
            volatile uint64_t *p = (volatile uint64_t *)at[i];
            uint64_t want = at[i] ^ 0x5a5a5a5a5a5a5a5aull;
            if (pass == 0) {
                *p = want;
            } else if (*p != want) {
                g_puts("fault: edges: word at ");
                g_put_u64(at[i]);
                g_puts(" changed\n");
                return;
            } else {
                n++;
            }
        }
    g_puts("fault: edges: ");
    g_put_u64(n);
    g_puts(" words kept\n");
    /* The tender reads guest memory where the guest wrote it. */
    static const char line[] = "fault: printed from the last page\n";
    char *buf = (char *)(end - 4096 + 64);
    memcpy(buf, line, sizeof line - 1);
    g_write(buf, sizeof line - 1);
    *(volatile uint8_t *)end = 1;
}

int guest_main(const char *cmdline)
{
    g_puts("fault: ");
    g_puts(cmdline);
    g_puts("\n");
    if (g_prefix(cmdline, "zeropage")) {
        *(volatile int *)0 = 1;
    } else if (g_prefix(cmdline, "text")) {
        *(volatile uint8_t *)(void *)guest_main = 0xc3;
    } else if (g_prefix(cmdline, "ud2")) {
        __asm__ __volatile__("ud2");
    } else if (g_prefix(cmdline, "badarg")) {
        g_write((const char *)(guest_boot.mem_size - 16), 4096);
    } else if (g_prefix(cmdline, "overmem")) {
        touch_all_memory_and_beyond();
    } else if (g_prefix(cmdline, "edges")) {
        touch_edges_and_beyond();
    } else if (g_prefix(cmdline, "mmio")) {
        touch_unbacked_memory();
#ifdef GUEST_FLAVOUR_HVT
    } else if (g_prefix(cmdline, "lowarg")) {
        hvt_do_hypercall(HVT_HYPERCALL_POLL, (void *)(uintptr_t)HVT_BOOT_INFO_BASE);
#endif
    } else {
        g_puts("fault: unknown mode\n");
        return 2;
    }
    g_puts("fault: still running\n");
    return 3;
}
