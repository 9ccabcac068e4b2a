/*
 * crius-hvt's hypercalls as a guest makes them: the input writes argument
 * structs and buffers anywhere in guest memory (read-only segments and
 * addresses out of range included), puts frames on the wire of a net
 * device, and makes hypercalls by number with a 32-bit argument address,
 * the OUT's value, as the KVM backend hands them to the core
 * (hvt_core_hypercall). The tender's state is built as crius-hvt builds it:
 * guest memory of the chosen size as the backend maps it, with nothing
 * mapped either side of it, a guest's text and rodata write-protected
 * (W^X), the manifest of tender_devices.h attached, the core's hypercalls
 * and then each module's from the module table. Guest memory and devices
 * start afresh for every input. A guest fault ends the run (tender_exit is
 * wrapped, and must say "guest fault"); an access outside guest memory, or
 * a write where guest memory is read-only, is a bug.
 *
 * The input: a byte of settings (guest memory size; the guest opted into
 * shutdown; a shutdown was asked for), then operations, each an op byte
 * (low 2 bits: what; bit 2: the address counts back from the end of guest
 * memory) and its operands, little-endian:
 *   0 write:     u32 address, u8 length, the bytes
 *   1 hypercall: u8 number, u32 address
 *   2 frame:     u8 device handle, u16 length, the bytes (to the guest)
 *   3 u64 write: u32 address, u64 value
 */
#include <setjmp.h>
#include <stdarg.h>

/* The core's hypercalls are static and registered by its main: included
 * here, they are called as the backend calls them. */
#define main crius_hvt_main
#include "unikernel/hvt/hvt_main.c"
#undef main

#include "tests/fuzz/tender_devices.h"

#define GUARD (2ull << 20)
#define TEXT_START HVT_GUEST_MIN_BASE /* as guests/lib/guest.ld lays a guest out */
#define TEXT_END (TEXT_START + 0x1000)
#define RODATA_END (TEXT_END + 0x1000)

static const uint64_t mem_sizes[] = { 2ull << 20, 32ull << 20, 512ull << 20, HVT_MAX_MEM };
static uint8_t *mems[4];
static struct hvt h;
static struct fuzz_devices devices;
static jmp_buf halted;

__attribute__((noreturn)) void __wrap_tender_exit(int status, const char *fmt, ...)
{
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (strncmp(msg, "guest fault: ", 13) != 0) {
        fprintf(stderr, "fuzz_hvt_hypercall: the tender exited (%d), not for a guest fault: %s\n",
                status, msg);
        abort();
    }
    longjmp(halted, 1);
}

static void setup(void)
{
    struct terr e;
    /* PUTS goes to the tender's stdout. */
    int null = open("/dev/null", O_WRONLY | O_CLOEXEC);
    if (null < 0 || dup2(null, 1) < 0)
        abort();
    close(null);
    /* As main: the wait set with its timer, the core's hypercalls. */
    waitset = epoll_create1(EPOLL_CLOEXEC);
    timer = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
    struct epoll_event ev = { .events = EPOLLIN, .data.u64 = HVT_INTERNAL_TIMER };
    if (waitset < 0 || timer < 0 || epoll_ctl(waitset, EPOLL_CTL_ADD, timer, &ev) < 0)
        abort();
    sigprocmask(SIG_BLOCK, NULL, &wait_mask);
    hvt_register_hypercall(HVT_HYPERCALL_WALLTIME, hc_walltime);
    hvt_register_hypercall(HVT_HYPERCALL_PUTS, hc_puts);
    hvt_register_hypercall(HVT_HYPERCALL_POLL, hc_poll);
    /* Guest memory as the backend maps it, one mapping per size, each
     * between two inaccessible guards; the guest's read-only segments
     * protected as load_guest protects them. */
    for (unsigned i = 0; i < 4; i++) {
        uint8_t *m = mmap(NULL, mem_sizes[i] + 2 * GUARD, PROT_NONE,
                          MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
        if (m == MAP_FAILED || mprotect(m + GUARD, mem_sizes[i], PROT_READ | PROT_WRITE) < 0)
            abort();
        mems[i] = m + GUARD;
        h.mem = mems[i];
        h.mem_size = mem_sizes[i];
        h.nro = 0;
        if (protect_segment(&h, TEXT_START, TEXT_END, &e) < 0 ||
            protect_segment(&h, TEXT_END, RODATA_END, &e) < 0)
            abort();
    }
    fuzz_devices_make(&devices);
    h.mft = devices.mft;
    h.cpu_cycle_freq = 1000000000;
    for (const struct hvt_module *const *m = hvt_modules; *m; m++)
        if ((*m)->setup && (*m)->setup(&h, &e) < 0)
            abort();
}

/* The guest address an operation names, or where it counts back from. */
static uint64_t address(const uint8_t *p, unsigned op)
{
    uint32_t a;
    memcpy(&a, p, 4);
    return (op & 4) ? h.mem_size - a : a;
}

/* The guest writing its own memory: only inside it, and through the
 * guest's own page protection no more than the guest could (a read-only
 * segment is the image's content, written here as the loader wrote it). */
static void guest_write(uint64_t a, const void *data, uint64_t len)
{
    if (a >= h.mem_size)
        return;
    if (len > h.mem_size - a)
        len = h.mem_size - a;
    bool ro = a < RODATA_END && a + len > TEXT_START;
    if (ro)
        mprotect(h.mem + TEXT_START, RODATA_END - TEXT_START, PROT_READ | PROT_WRITE);
    memcpy(h.mem + a, data, len);
    if (ro)
        mprotect(h.mem + TEXT_START, RODATA_END - TEXT_START, PROT_READ);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static bool ready;
    if (!ready) {
        setup();
        ready = true;
    }
    if (size == 0)
        return 0;
    unsigned settings = data[0];
    h.mem = mems[settings & 3];
    h.mem_size = mem_sizes[settings & 3];
    h.shutdown_aware = settings & 4;
    shutdown_requested = h.shutdown_aware && (settings & 8);
    madvise(h.mem, h.mem_size, MADV_DONTNEED);
    fuzz_devices_reset(&devices);

    /* Reached again through longjmp when the guest faults or halts. */
    static const uint8_t *p, *end;
    p = data + 1;
    end = data + size;
    if (setjmp(halted) != 0)
        return 0;
    while (p < end) {
        unsigned op = *p++;
        switch (op & 3) {
        case 0: {
            if (end - p < 5 || end - p - 5 < p[4])
                return 0;
            guest_write(address(p, op), p + 5, p[4]);
            p += 5 + p[4];
            break;
        }
        case 1: {
            if (end - p < 5)
                return 0;
            unsigned nr = p[0];
            uint32_t arg = (uint32_t)address(p + 1, op); /* an OUT carries 32 bits */
            p += 5;
            if (nr == HVT_HYPERCALL_POLL && arg < h.mem_size &&
                h.mem_size - arg >= sizeof(struct hvt_hc_poll)) {
                /* A guest may wait as long as it likes; not here. */
                uint64_t timeout;
                memcpy(&timeout, h.mem + arg, sizeof timeout);
                if (timeout > 100000) {
                    timeout = 100000;
                    guest_write(arg, &timeout, sizeof timeout);
                }
            }
            int status;
            if (hvt_core_hypercall(&h, nr, arg, &status))
                return 0;
            break;
        }
        case 2: {
            if (end - p < 3)
                return 0;
            unsigned handle = p[0] % FUZZ_DEVICES;
            size_t len = (size_t)(p[1] | p[2] << 8);
            if ((size_t)(end - p - 3) < len)
                len = (size_t)(end - p - 3);
            if (devices.peer[handle] >= 0)
                (void)send(devices.peer[handle], p + 3, len, MSG_DONTWAIT);
            p += 3 + len;
            break;
        }
        case 3: {
            if (end - p < 12)
                return 0;
            guest_write(address(p, op), p + 4, 8);
            p += 12;
            break;
        }
        }
    }
    return 0;
}
