/* hello: prints its command line, exits with the status given by exit=N. */
#include "lib/guest.h"

MFT1_DECLARE(1);

int guest_main(const char *cmdline)
{
    g_puts("hello from a crius guest: ");
    g_puts(cmdline);
    g_puts("\n");
    uint64_t status = 0;
    const char *v = g_arg(cmdline, "exit");
    if (v && !g_parse_u64(&v, &status))
        status = 1;
    return (int)status;
}
