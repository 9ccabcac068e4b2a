/* shutdown / sleeper: waits (in the ABI's wait) until a shutdown request,
 * or for ever. Built as "shutdown" with crius's SHD1 note (it then says so
 * and exits with status=N, default 0) and as "sleeper" without it. */
#include "lib/guest.h"

MFT1_DECLARE(1);
#ifdef GUEST_SHUTDOWN_AWARE
CRIUS_SHD1_DECLARE();
#endif

int guest_main(const char *cmdline)
{
    g_puts("waiting for shutdown\n");
    for (;;) {
        uint64_t ready = g_wait(1000000000ull);
        if (ready & CRIUS_SHUTDOWN_BIT)
            break;
    }
    g_puts("shutdown requested, exiting\n");
    uint64_t status = 0;
    const char *v = g_arg(cmdline, "status");
    if (v)
        g_parse_u64(&v, &status);
    return (int)status;
}
