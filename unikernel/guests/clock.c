/* clock: checks that the monotonic clock advances across a timed wait of
 * wait_ms=N milliseconds (default 100) by at least that, and not wildly
 * more; exits 0 if so. */
#include "lib/guest.h"

MFT1_DECLARE(1);

int guest_main(const char *cmdline)
{
    uint64_t ms = 100;
    const char *v = g_arg(cmdline, "wait_ms");
    if (v)
        g_parse_u64(&v, &ms);
    uint64_t target = ms * 1000000ull;
    uint64_t start = g_monotonic_ns(), now = start;
    while (now - start < target) {
        g_wait(target - (now - start));
        now = g_monotonic_ns();
    }
    uint64_t took = now - start;
    g_puts("clock: waited ");
    g_put_u64(took / 1000000);
    g_puts(" ms\n");
    return took < target + 2000000000ull ? 0 : 1;
}
