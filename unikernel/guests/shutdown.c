/* shutdown / sleeper: waits (in the ABI's wait) until a shutdown request,
 * or for ever. Built as "shutdown" with crius's SHD1 note (it then says so
 * and exits with status=N, default 0) and as "sleeper" without it. With
 * busy_ms=N it first computes for N ms without waiting, so a request can
 * arrive while it is not in the wait. */
#include "lib/guest.h"

MFT1_DECLARE(1);
#ifdef GUEST_SHUTDOWN_AWARE
CRIUS_SHD1_DECLARE();
#endif

int guest_main(const char *cmdline)
{
    uint64_t busy_ms = 0;
    const char *v = g_arg(cmdline, "busy_ms");
    if (v)
        g_parse_u64(&v, &busy_ms);
    if (busy_ms) {
        g_puts("busy\n");
        uint64_t end = g_monotonic_ns() + busy_ms * 1000000ull;
        while (g_monotonic_ns() < end)
            ;
    }
    g_puts("waiting for shutdown\n");
    for (;;) {
        uint64_t ready = g_wait(1000000000ull);
        if (ready & CRIUS_SHUTDOWN_BIT)
            break;
    }
    g_puts("shutdown requested, exiting\n");
    uint64_t status = 0;
    v = g_arg(cmdline, "status");
    if (v)
        g_parse_u64(&v, &status);
    return (int)status;
}
