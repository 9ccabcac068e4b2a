/*
 * What an spt guest may ask of the host: its hypercalls are system calls
 * it makes itself, and crius-spt's seccomp filter is all that checks their
 * arguments. The filter is built as crius-spt builds it (the core's rules,
 * then each module's from the module table for the manifest of
 * tender_devices.h, attached), exported as the tender exports it, and run
 * here, by a classic BPF interpreter of its own, on the system call the
 * input makes up: number, architecture, instruction pointer, arguments.
 * Its verdict must be unikernel/ABI.md's allowlist, no more and no less,
 * and anything it refuses must kill.
 *
 * The input, little-endian: i32 number, u32 architecture, u64 instruction
 * pointer, then for each of the six arguments a selector byte (below
 * ninteresting: that value of interesting[], the tender's own descriptors,
 * block sizes and offsets among them; else the raw value) and a raw u64.
 * A short input reads as if zero-padded.
 */
#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <sys/syscall.h>

/* The core's rules are static, added by its main: included here, they are
 * added as main adds them. */
#define main crius_spt_main
#include "unikernel/spt/spt_main.c"
#undef main

#include "tests/fuzz/tender_devices.h"

static struct spt s;
static int timerfd;
static struct fuzz_devices devices;
static struct sock_filter prog[BPF_MAXINSNS];
static unsigned prog_len;
static uint64_t interesting[32];
static unsigned ninteresting;

__attribute__((noreturn)) static void fail(const char *why)
{
    fprintf(stderr, "fuzz_spt_syscall: %s\n", why);
    abort();
}

static void setup(void)
{
    struct terr e;
    fuzz_devices_make(&devices);
    s.mft = devices.mft;
    /* As main: wait set and timer, the core's rules, the modules'. */
    s.epollfd = epoll_create1(EPOLL_CLOEXEC);
    timerfd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
    struct epoll_event ev = { .events = EPOLLIN, .data.u64 = SPT_INTERNAL_TIMERFD };
    if (s.epollfd < 0 || timerfd < 0 || epoll_ctl(s.epollfd, EPOLL_CTL_ADD, timerfd, &ev) < 0)
        fail("wait set");
    s.sc = seccomp_init(SCMP_ACT_KILL_PROCESS);
    if (!s.sc || core_rules(&s, timerfd, &e) < 0)
        fail(e.msg);
    for (const struct spt_module *const *m = spt_modules; *m; m++)
        if ((*m)->setup(&s, &e) < 0)
            fail(e.msg);
    /* Exported as seccomp_install exports it, but not installed. */
    int fd = memfd_create("crius-fuzz-seccomp", MFD_CLOEXEC);
    if (fd < 0 || seccomp_export_bpf(s.sc, fd) < 0)
        fail("export the filter");
    seccomp_release(s.sc);
    off_t size = lseek(fd, 0, SEEK_CUR);
    if (size <= 0 || size % sizeof prog[0] != 0 || (size_t)size > sizeof prog ||
        pread(fd, prog, size, 0) != size)
        fail("read the filter back");
    close(fd);
    prog_len = (unsigned)(size / sizeof prog[0]);

    uint64_t values[] = { 0, 1, 2, (uint64_t)s.epollfd, (uint64_t)timerfd, CLOCK_REALTIME,
                          CLOCK_MONOTONIC, ARCH_SET_FS, ARCH_GET_FS, 1ull << 32 | 1, ~0ull };
    for (unsigned i = 0; i < sizeof values / sizeof values[0]; i++)
        interesting[ninteresting++] = values[i];
    for (unsigned i = 1; i < FUZZ_DEVICES; i++) {
        const struct mft_entry *x = &devices.mft->e[i];
        interesting[ninteresting++] = (uint64_t)x->b.hostfd;
        if (x->type != MFT_DEV_BLOCK_BASIC)
            continue;
        uint64_t bs = x->u.block_basic.block_size, last = x->u.block_basic.capacity - bs;
        interesting[ninteresting++] = bs;
        interesting[ninteresting++] = last;
        interesting[ninteresting++] = last + 1;
        interesting[ninteresting++] = last + bs;
    }
}

/* Classic BPF as the kernel runs a seccomp filter over seccomp_data. */
static uint32_t run_filter(const struct seccomp_data *d)
{
    uint32_t a = 0, x = 0, mem[BPF_MEMWORDS] = { 0 };
    for (unsigned pc = 0; pc < prog_len; pc++) {
        const struct sock_filter *f = &prog[pc];
        uint32_t k = f->k, src = BPF_SRC(f->code) == BPF_X ? x : k;
        switch (BPF_CLASS(f->code)) {
        case BPF_LD:
        case BPF_LDX: {
            uint32_t v;
            switch (BPF_MODE(f->code)) {
            case BPF_IMM: v = k; break;
            case BPF_MEM:
                if (k >= BPF_MEMWORDS)
                    fail("filter reads past its scratch memory");
                v = mem[k];
                break;
            case BPF_LEN: v = sizeof *d; break;
            case BPF_ABS:
                if (BPF_SIZE(f->code) != BPF_W || k % 4 != 0 || k >= sizeof *d)
                    fail("filter loads outside seccomp_data");
                memcpy(&v, (const uint8_t *)d + k, 4);
                break;
            default: fail("filter instruction the kernel refuses");
            }
            if (BPF_CLASS(f->code) == BPF_LD)
                a = v;
            else
                x = v;
            break;
        }
        case BPF_ST:
        case BPF_STX:
            if (k >= BPF_MEMWORDS)
                fail("filter writes past its scratch memory");
            mem[k] = BPF_CLASS(f->code) == BPF_ST ? a : x;
            break;
        case BPF_ALU:
            switch (BPF_OP(f->code)) {
            case BPF_ADD: a += src; break;
            case BPF_SUB: a -= src; break;
            case BPF_MUL: a *= src; break;
            case BPF_DIV: a = src ? a / src : 0; break;
            case BPF_MOD: a = src ? a % src : 0; break;
            case BPF_OR: a |= src; break;
            case BPF_AND: a &= src; break;
            case BPF_XOR: a ^= src; break;
            case BPF_LSH: a = src < 32 ? a << src : 0; break;
            case BPF_RSH: a = src < 32 ? a >> src : 0; break;
            case BPF_NEG: a = -a; break;
            default: fail("filter instruction the kernel refuses");
            }
            break;
        case BPF_JMP: {
            unsigned next;
            bool taken;
            switch (BPF_OP(f->code)) {
            case BPF_JA:
                if (k >= prog_len - pc - 1)
                    fail("filter jumps past its end");
                pc += k;
                continue;
            case BPF_JEQ: taken = a == src; break;
            case BPF_JGT: taken = a > src; break;
            case BPF_JGE: taken = a >= src; break;
            case BPF_JSET: taken = (a & src) != 0; break;
            default: fail("filter instruction the kernel refuses");
            }
            next = taken ? f->jt : f->jf;
            if (next >= prog_len - pc - 1)
                fail("filter jumps past its end");
            pc += next;
            break;
        }
        case BPF_RET:
            return BPF_RVAL(f->code) == BPF_A ? a : k;
        case BPF_MISC:
            if (BPF_MISCOP(f->code) == BPF_TAX)
                x = a;
            else
                a = x;
            break;
        }
    }
    fail("filter runs off its end");
}

static bool device_fd(uint64_t fd, uint32_t type, const struct mft_entry **found)
{
    for (unsigned i = 1; i < FUZZ_DEVICES; i++) {
        const struct mft_entry *x = &devices.mft->e[i];
        if (x->type == type && fd == (uint64_t)x->b.hostfd) {
            *found = x;
            return true;
        }
    }
    return false;
}

/* unikernel/ABI.md, spt: what the guest may call, and on what. */
static bool abi_allows(const struct seccomp_data *d)
{
    const __u64 *a = d->args;
    const struct mft_entry *x;
    if (d->arch != AUDIT_ARCH_X86_64)
        return false;
    switch (d->nr) {
    case SYS_write: return a[0] == 1 || device_fd(a[0], MFT_DEV_NET_BASIC, &x);
    case SYS_read: return device_fd(a[0], MFT_DEV_NET_BASIC, &x);
    case SYS_exit_group: return true;
    case SYS_epoll_pwait: return a[0] == (uint64_t)s.epollfd;
    case SYS_timerfd_settime: return a[0] == (uint64_t)timerfd;
    case SYS_clock_gettime: return a[0] == CLOCK_MONOTONIC || a[0] == CLOCK_REALTIME;
    case SYS_arch_prctl: return a[0] == ARCH_SET_FS;
    case SYS_pread64:
    case SYS_pwrite64:
        return device_fd(a[0], MFT_DEV_BLOCK_BASIC, &x) && a[2] == x->u.block_basic.block_size &&
               a[3] <= x->u.block_basic.capacity - x->u.block_basic.block_size;
    }
    return false;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static bool ready;
    if (!ready) {
        setup();
        ready = true;
    }
    uint8_t in[16 + 6 * 9] = { 0 };
    memcpy(in, data, size < sizeof in ? size : sizeof in);
    struct seccomp_data d;
    memcpy(&d.nr, in, 4);
    memcpy(&d.arch, in + 4, 4);
    memcpy(&d.instruction_pointer, in + 8, 8);
    for (unsigned i = 0; i < 6; i++) {
        const uint8_t *arg = in + 16 + 9 * i;
        memcpy(&d.args[i], arg + 1, 8);
        if (arg[0] < ninteresting)
            d.args[i] = interesting[arg[0]];
    }
    uint32_t verdict = run_filter(&d) & SECCOMP_RET_ACTION_FULL;
    bool allowed = verdict == SECCOMP_RET_ALLOW;
    if (!allowed && verdict != SECCOMP_RET_KILL_PROCESS && verdict != SECCOMP_RET_KILL_THREAD) {
        fprintf(stderr, "fuzz_spt_syscall: system call %d refused without a kill (0x%x)\n", d.nr, verdict);
        abort();
    }
    if (allowed != abi_allows(&d)) {
        fprintf(stderr, "fuzz_spt_syscall: system call %d (arch 0x%x, args 0x%llx 0x%llx 0x%llx 0x%llx) "
                "%s by the filter, %s by the ABI\n", d.nr, d.arch, (unsigned long long)d.args[0],
                (unsigned long long)d.args[1], (unsigned long long)d.args[2],
                (unsigned long long)d.args[3], allowed ? "allowed" : "refused",
                allowed ? "refused" : "allowed");
        abort();
    }
    return 0;
}
