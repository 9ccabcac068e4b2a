/* Guest platform for the spt tender: raw Linux syscalls, only those the
 * tender's seccomp filter allows. */
#include "guest.h"
#include "unikernel/core/abi/spt_abi.h"

ABI1_DECLARE(SPT_ABI_TARGET, SPT_ABI_VERSION);

enum {
    SYS_read = 0, SYS_write = 1, SYS_pread64 = 17, SYS_pwrite64 = 18,
    SYS_clock_gettime = 228, SYS_exit_group = 231, SYS_epoll_pwait = 281,
    SYS_timerfd_settime = 286
};
enum { CLOCK_MONOTONIC = 1, EAGAIN = 11 };

static int epollfd, timerfd;

static long sys6(long n, long a, long b, long c, long d, long e, long f)
{
    long ret;
    register long r10 __asm__("r10") = d;
    register long r8 __asm__("r8") = e;
    register long r9 __asm__("r9") = f;
    __asm__ __volatile__("syscall"
                         : "=a"(ret)
                         : "a"(n), "D"(a), "S"(b), "d"(c), "r"(r10), "r"(r8), "r"(r9)
                         : "rcx", "r11", "memory");
    return ret;
}

__attribute__((noreturn)) void _start(const struct spt_boot_info *bi)
{
    guest_boot.mem_size = bi->mem_size;
    guest_boot.kernel_end = bi->kernel_end;
    guest_boot.cmdline = bi->cmdline;
    guest_boot.mft = bi->mft;
    epollfd = bi->epollfd;
    timerfd = bi->timerfd;
    g_exit(guest_main(bi->cmdline));
}

void g_write(const char *s, size_t len)
{
    sys6(SYS_write, 1, (long)s, (long)len, 0, 0, 0);
}

void g_exit(int status)
{
    for (;;)
        sys6(SYS_exit_group, status, 0, 0, 0, 0, 0);
}

struct ts { long sec, nsec; };

uint64_t g_monotonic_ns(void)
{
    struct ts t;
    sys6(SYS_clock_gettime, CLOCK_MONOTONIC, (long)&t, 0, 0, 0, 0);
    return (uint64_t)t.sec * 1000000000ull + (uint64_t)t.nsec;
}

struct epoll_event_packed {
    uint32_t events;
    uint64_t data;
} __attribute__((packed));

uint64_t g_wait(uint64_t timeout_ns)
{
    struct ts it[2] = { { 0, 0 },
                        { (long)(timeout_ns / 1000000000ull),
                          (long)(timeout_ns % 1000000000ull) | 1 } };
    sys6(SYS_timerfd_settime, timerfd, 0, (long)it, 0, 0, 0);
    struct epoll_event_packed ev[MFT_MAX_ENTRIES + 2];
    long n = sys6(SYS_epoll_pwait, epollfd, (long)ev, MFT_MAX_ENTRIES + 2, -1, 0, 8);
    uint64_t ready = 0;
    for (long i = 0; i < n; i++)
        if (ev[i].data != SPT_INTERNAL_TIMERFD)
            ready |= 1ull << ev[i].data;
    return ready;
}

static const struct mft_entry *entry(uint64_t handle, uint32_t type)
{
    const struct mft *m = guest_boot.mft;
    if (handle >= m->entries || m->e[handle].type != type || !m->e[handle].attached)
        return NULL;
    return &m->e[handle];
}

static int block_io(long nr, uint64_t handle, uint64_t offset, const void *buf, uint64_t len)
{
    const struct mft_entry *e = entry(handle, MFT_DEV_BLOCK_BASIC);
    if (!e)
        return G_EINVAL;
    uint64_t bs = e->u.block_basic.block_size;
    if (len != bs || offset % bs || offset >= e->u.block_basic.capacity)
        return G_EINVAL;
    long n = sys6(nr, e->b.hostfd, (long)buf, (long)len, (long)offset, 0, 0);
    return n == (long)len ? G_OK : G_EUNSPEC;
}

int g_block_write(uint64_t handle, uint64_t offset, const void *buf, uint64_t len)
{
    return block_io(SYS_pwrite64, handle, offset, buf, len);
}

int g_block_read(uint64_t handle, uint64_t offset, void *buf, uint64_t len)
{
    return block_io(SYS_pread64, handle, offset, buf, len);
}

int g_net_write(uint64_t handle, const void *buf, uint64_t len)
{
    const struct mft_entry *e = entry(handle, MFT_DEV_NET_BASIC);
    if (!e)
        return G_EINVAL;
    long n = sys6(SYS_write, e->b.hostfd, (long)buf, (long)len, 0, 0, 0);
    return n == (long)len ? G_OK : G_EUNSPEC;
}

int g_net_read(uint64_t handle, void *buf, uint64_t size, uint64_t *len)
{
    const struct mft_entry *e = entry(handle, MFT_DEV_NET_BASIC);
    if (!e)
        return G_EINVAL;
    long n = sys6(SYS_read, e->b.hostfd, (long)buf, (long)size, 0, 0, 0);
    if (n == -EAGAIN)
        return G_AGAIN;
    if (n < 0)
        return G_EUNSPEC;
    *len = (uint64_t)n;
    return G_OK;
}
