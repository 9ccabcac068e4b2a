/* Guest platform for the hvt tender: hypercalls by OUT to port 0x500+n. */
#include "guest.h"
#include "unikernel/core/abi/hvt_abi.h"

ABI1_DECLARE(HVT_ABI_TARGET, HVT_ABI_VERSION);

static uint64_t cycle_freq;

__attribute__((noreturn)) void _start(const struct hvt_boot_info *bi)
{
    guest_boot.mem_size = bi->mem_size;
    guest_boot.kernel_end = bi->kernel_end;
    guest_boot.cmdline = bi->cmdline;
    guest_boot.mft = bi->mft;
    cycle_freq = bi->cpu_cycle_freq;
    g_exit(guest_main(bi->cmdline));
}

void g_write(const char *s, size_t len)
{
    volatile struct hvt_hc_puts a = { .data = s, .len = len };
    hvt_do_hypercall(HVT_HYPERCALL_PUTS, &a);
}

void g_exit(int status)
{
    volatile struct hvt_hc_halt a = { .cookie = 0, .exit_status = status };
    for (;;)
        hvt_do_hypercall(HVT_HYPERCALL_HALT, &a);
}

uint64_t g_monotonic_ns(void)
{
    uint32_t lo, hi;
    __asm__ __volatile__("rdtsc" : "=a"(lo), "=d"(hi));
    uint64_t tsc = ((uint64_t)hi << 32) | lo;
    return tsc / cycle_freq * 1000000000ull + tsc % cycle_freq * 1000000000ull / cycle_freq;
}

uint64_t g_wait(uint64_t timeout_ns)
{
    volatile struct hvt_hc_poll a = { .timeout_nsecs = timeout_ns };
    hvt_do_hypercall(HVT_HYPERCALL_POLL, &a);
    return a.ready_set;
}

int g_block_write(uint64_t handle, uint64_t offset, const void *buf, uint64_t len)
{
    volatile struct hvt_hc_block_write a = { .handle = handle, .offset = offset, .data = buf,
                                             .len = len };
    hvt_do_hypercall(HVT_HYPERCALL_BLOCK_WRITE, &a);
    return a.ret;
}

int g_block_read(uint64_t handle, uint64_t offset, void *buf, uint64_t len)
{
    volatile struct hvt_hc_block_read a = { .handle = handle, .offset = offset, .data = buf,
                                            .len = len };
    hvt_do_hypercall(HVT_HYPERCALL_BLOCK_READ, &a);
    return a.ret;
}

int g_net_write(uint64_t handle, const void *buf, uint64_t len)
{
    volatile struct hvt_hc_net_write a = { .handle = handle, .data = buf, .len = len };
    hvt_do_hypercall(HVT_HYPERCALL_NET_WRITE, &a);
    return a.ret;
}

int g_net_read(uint64_t handle, void *buf, uint64_t size, uint64_t *len)
{
    volatile struct hvt_hc_net_read a = { .handle = handle, .data = buf, .len = size };
    hvt_do_hypercall(HVT_HYPERCALL_NET_READ, &a);
    *len = a.len;
    return a.ret;
}
