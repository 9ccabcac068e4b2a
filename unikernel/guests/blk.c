/* blk: writes a pattern to every block of device "storage" (at most
 * blocks=N of them, default 64), reads each back, checks it, and checks that
 * I/O beyond the device and of a wrong length is refused. */
#include "lib/guest.h"

MFT1_DECLARE(2, { .name = "storage", .type = MFT_DEV_BLOCK_BASIC });

static uint8_t wbuf[32768], rbuf[32768];

static int fail(const char *what, uint64_t block)
{
    g_puts("blk: FAIL: ");
    g_puts(what);
    g_puts(" at block ");
    g_put_u64(block);
    g_puts("\n");
    return 1;
}

int guest_main(const char *cmdline)
{
    uint64_t h;
    const struct mft_entry *e;
    if (!g_device("storage", MFT_DEV_BLOCK_BASIC, &h, &e))
        return fail("no storage device", 0);
    uint64_t bs = e->u.block_basic.block_size;
    uint64_t nblocks = e->u.block_basic.capacity / bs;
    uint64_t limit = 64;
    const char *v = g_arg(cmdline, "blocks");
    if (v)
        g_parse_u64(&v, &limit);
    if (nblocks > limit)
        nblocks = limit;
    for (uint64_t b = 0; b < nblocks; b++) {
        for (uint64_t i = 0; i < bs; i++)
            wbuf[i] = (uint8_t)(b * 7 + i);
        if (g_block_write(h, b * bs, wbuf, bs) != G_OK)
            return fail("write", b);
    }
    for (uint64_t b = 0; b < nblocks; b++) {
        for (uint64_t i = 0; i < bs; i++)
            wbuf[i] = (uint8_t)(b * 7 + i);
        memset(rbuf, 0, bs);
        if (g_block_read(h, b * bs, rbuf, bs) != G_OK)
            return fail("read", b);
        if (memcmp(wbuf, rbuf, bs) != 0)
            return fail("read back different data", b);
    }
    if (g_block_write(h, e->u.block_basic.capacity, wbuf, bs) != G_EINVAL)
        return fail("write past the end was not refused", nblocks);
    if (g_block_read(h, 0, rbuf, bs / 2) != G_EINVAL)
        return fail("short read was not refused", 0);
    g_puts("blk: ok, ");
    g_put_u64(nblocks);
    g_puts(" blocks of ");
    g_put_u64(bs);
    g_puts(" bytes\n");
    return 0;
}
