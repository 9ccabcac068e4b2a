/*
 * crius-hvt: runs a Solo5 hvt guest in its own KVM virtual machine.
 *
 * The core: command line, guest image, boot info, the hypercalls that are
 * not devices (WALLTIME, PUTS, POLL, HALT), shutdown requests and the
 * tender's own seccomp filter. The VM itself is the backend's
 * (hvt_kvm_x86_64.c); devices are modules (hvt_modules.c).
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

#include "unikernel/core/abi/crius_abi.h"
#include "unikernel/core/args.h"
#include "unikernel/core/devices.h"
#include "unikernel/core/elf_image.h"
#include "unikernel/core/mft.h"
#include "unikernel/core/seccomp_install.h"
#include "unikernel/hvt/hvt.h"

#define HVT_PAGE_2M (2ull << 20)
/* As solo5-hvt: 2048 pages of 2 MiB, what four page directories map. The
 * backend keeps the APIC window below 4 GiB out of it. */
#define HVT_MAX_MEM (2048 * HVT_PAGE_2M)
#define HVT_INTERNAL_TIMER (~1ull)

static hvt_hypercall_fn hypercalls[HVT_HYPERCALL_MAX];
static int waitset = -1, timer = -1;
static unsigned npollfds;
static volatile sig_atomic_t shutdown_requested;
static sigset_t wait_mask; /* the thread's mask with SIGTERM deliverable */

void hvt_register_hypercall(enum hvt_hypercall nr, hvt_hypercall_fn fn)
{
    hypercalls[nr] = fn;
}

int hvt_register_pollfd(int fd, uint64_t handle, struct terr *e)
{
    struct epoll_event ev = { .events = EPOLLIN, .data.u64 = handle };
    if (epoll_ctl(waitset, EPOLL_CTL_ADD, fd, &ev) < 0)
        return terr_errno(e, "add fd %d to the wait set", fd);
    npollfds++;
    return 0;
}

void *hvt_checked_gpa(const struct hvt *h, hvt_gpa_t gpa, uint64_t len, const char *what)
{
    void *p = hvt_gpa(h, gpa, len);
    if (!p)
        tender_exit(TENDER_EXIT_FAULT,
                    "guest fault: %s at 0x%llx (+%llu bytes) is outside guest memory",
                    what, (unsigned long long)gpa, (unsigned long long)len);
    return p;
}

void *hvt_checked_gpa_w(const struct hvt *h, hvt_gpa_t gpa, uint64_t len, const char *what)
{
    if (gpa < HVT_GUEST_MIN_BASE)
        tender_exit(TENDER_EXIT_FAULT,
                    "guest fault: %s at 0x%llx is below the guest's writable memory (0x%x)",
                    what, (unsigned long long)gpa, HVT_GUEST_MIN_BASE);
    void *p = hvt_checked_gpa(h, gpa, len, what);
    for (unsigned i = 0; i < h->nro; i++)
        if (gpa < h->ro[i].end && gpa + len > h->ro[i].start)
            tender_exit(TENDER_EXIT_FAULT,
                        "guest fault: %s at 0x%llx (+%llu bytes) is in a read-only segment "
                        "of the guest (0x%llx-0x%llx)", what, (unsigned long long)gpa,
                        (unsigned long long)len, (unsigned long long)h->ro[i].start,
                        (unsigned long long)h->ro[i].end);
    return p;
}

/* Makes [start, end) of guest memory read-only, for the guest and for what
 * the tender writes on its behalf. */
static int protect_segment(struct hvt *h, uint64_t start, uint64_t end, struct terr *e)
{
    if (hvt_backend_protect(h, start, end, e) < 0)
        return -1;
    h->ro[h->nro].start = start;
    h->ro[h->nro].end = end;
    h->nro++;
    return 0;
}

static void hc_walltime(struct hvt *h, hvt_gpa_t arg)
{
    hvt_arg_walltime *t = hvt_checked_gpa_w(h, arg, sizeof *t, "WALLTIME argument");
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    t->nsecs = (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static void hc_puts(struct hvt *h, hvt_gpa_t arg)
{
    hvt_arg_puts *p = hvt_checked_gpa(h, arg, sizeof *p, "PUTS argument");
    uint64_t len = p->len;
    const char *data = hvt_checked_gpa(h, p->data, len, "PUTS data");
    while (len > 0) {
        ssize_t n = write(1, data, len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break; /* console gone: the guest's output is lost, as with a closed tty */
        data += n;
        len -= (uint64_t)n;
    }
}

static void hc_poll(struct hvt *h, hvt_gpa_t arg)
{
    hvt_arg_poll *p = hvt_checked_gpa_w(h, arg, sizeof *p, "POLL argument");
    struct epoll_event ev[MFT_MAX_ENTRIES + 1];
    uint64_t timeout = p->timeout_nsecs;
    struct itimerspec it = {
        .it_value = { .tv_sec = (time_t)(timeout / 1000000000ull),
                      .tv_nsec = (long)(timeout % 1000000000ull) | 1 },
    };
    if (!shutdown_requested && timerfd_settime(timer, 0, &it, NULL) < 0)
        tender_exit(TENDER_EXIT_SETUP, "POLL: arm timer: %s", strerror(errno));
    int n;
    do {
        if (shutdown_requested) {
            p->ready_set = CRIUS_SHUTDOWN_BIT;
            p->ret = 1;
            return;
        }
        n = epoll_pwait(waitset, ev, (int)npollfds + 1, -1,
                        h->shutdown_aware ? &wait_mask : NULL);
    } while (n < 0 && errno == EINTR);
    if (n < 0)
        tender_exit(TENDER_EXIT_SETUP, "POLL: wait: %s", strerror(errno));
    uint64_t ready = 0;
    int count = 0;
    for (int i = 0; i < n; i++) {
        if (ev[i].data.u64 == HVT_INTERNAL_TIMER)
            continue;
        ready |= 1ull << ev[i].data.u64;
        count++;
    }
    p->ready_set = ready;
    p->ret = count;
}

bool hvt_core_hypercall(struct hvt *h, unsigned nr, hvt_gpa_t arg, int *status)
{
    if (nr == HVT_HYPERCALL_HALT) {
        hvt_arg_halt *t = hvt_checked_gpa(h, arg, sizeof *t, "HALT argument");
        *status = t->exit_status;
        return true;
    }
    if (nr >= HVT_HYPERCALL_MAX || !hypercalls[nr])
        tender_exit(TENDER_EXIT_FAULT, "guest fault: unknown hypercall %u", nr);
    hypercalls[nr](h, arg);
    return false;
}

static void on_sigterm(int sig)
{
    (void)sig;
    shutdown_requested = 1;
}

/* A guest that opted in learns of SIGTERM through POLL. SIGTERM stays
 * blocked except inside the POLL wait: a request that comes while the guest
 * computes waits for its next POLL, and none is lost between checking the
 * flag and waiting. Other guests keep the default action: SIGTERM ends the
 * tender at once. */
static int setup_shutdown(struct terr *e)
{
    sigset_t term;
    sigemptyset(&term);
    sigaddset(&term, SIGTERM);
    if (sigprocmask(SIG_BLOCK, &term, &wait_mask) < 0)
        return terr_errno(e, "block SIGTERM");
    sigdelset(&wait_mask, SIGTERM);
    struct sigaction sa = { .sa_handler = on_sigterm };
    sigfillset(&sa.sa_mask);
    if (sigaction(SIGTERM, &sa, NULL) < 0)
        return terr_errno(e, "install SIGTERM handler");
    return 0;
}

static int core_seccomp(struct hvt *h, scmp_filter_ctx ctx, struct terr *e)
{
    TENDER_SCMP_ADD(ctx, e, "write(1)", SCMP_SYS(write), 1, SCMP_A0(SCMP_CMP_EQ, 1));
    TENDER_SCMP_ADD(ctx, e, "write(2)", SCMP_SYS(write), 1, SCMP_A0(SCMP_CMP_EQ, 2));
    TENDER_SCMP_ADD(ctx, e, "exit_group", SCMP_SYS(exit_group), 0);
    TENDER_SCMP_ADD(ctx, e, "clock_gettime(REALTIME)", SCMP_SYS(clock_gettime), 1,
                    SCMP_A0(SCMP_CMP_EQ, CLOCK_REALTIME));
    TENDER_SCMP_ADD(ctx, e, "clock_gettime(MONOTONIC)", SCMP_SYS(clock_gettime), 1,
                    SCMP_A0(SCMP_CMP_EQ, CLOCK_MONOTONIC));
    TENDER_SCMP_ADD(ctx, e, "epoll_pwait", SCMP_SYS(epoll_pwait), 1,
                    SCMP_A0(SCMP_CMP_EQ, (uint64_t)waitset));
    TENDER_SCMP_ADD(ctx, e, "timerfd_settime", SCMP_SYS(timerfd_settime), 1,
                    SCMP_A0(SCMP_CMP_EQ, (uint64_t)timer));
    if (h->shutdown_aware)
        TENDER_SCMP_ADD(ctx, e, "rt_sigreturn", SCMP_SYS(rt_sigreturn), 0);
    return 0;
}

static int lock_down(struct hvt *h, struct terr *e)
{
    scmp_filter_ctx ctx = seccomp_init(SCMP_ACT_KILL_PROCESS);
    if (!ctx)
        return terr_set(e, "seccomp: init");
    int rc = core_seccomp(h, ctx, e);
    if (rc == 0)
        rc = hvt_backend_seccomp(h, ctx, e);
    for (const struct hvt_module *const *m = hvt_modules; rc == 0 && *m; m++)
        if ((*m)->seccomp && (*m)->seccomp(h, ctx, e) < 0)
            rc = terr_wrap(e, "module %s", (*m)->name);
    if (rc < 0) {
        seccomp_release(ctx);
        return -1;
    }
    return seccomp_install(ctx, e);
}

static int write_boot_info(struct hvt *h, const struct elf_image *img,
                           const struct tender_args *a, struct terr *e)
{
    uint64_t pos = HVT_BOOT_INFO_BASE;
    struct hvt_boot_info *bi = (struct hvt_boot_info *)(h->mem + pos);
    pos += sizeof *bi;
    bi->mem_size = h->mem_size;
    bi->kernel_end = img->end;
    bi->cpu_cycle_freq = h->cpu_cycle_freq;
    bi->mft = pos;
    memcpy(h->mem + pos, h->mft, img->mft_size);
    pos += (img->mft_size + 7) & ~7ull;
    bi->cmdline = pos;
    return args_guest_cmdline(a, (char *)h->mem + pos, HVT_CMDLINE_SIZE, e);
}

static int load_guest(struct hvt *h, const struct tender_args *a, struct terr *e)
{
    int fd = open(a->elf_path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return terr_errno(e, "open guest %s", a->elf_path);
    struct stat st;
    if (fstat(fd, &st) < 0) {
        close(fd);
        return terr_errno(e, "stat guest %s", a->elf_path);
    }
    if (st.st_size == 0) {
        close(fd);
        return terr_set(e, "guest %s: truncated: empty file", a->elf_path);
    }
    const uint8_t *file = mmap(NULL, st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
    close(fd);
    if (file == MAP_FAILED)
        return terr_errno(e, "map guest %s", a->elf_path);

    struct elf_image img;
    int rc = -1;
    if (elf_parse(file, st.st_size, HVT_GUEST_MIN_BASE, &img, e) < 0 ||
        elf_check_abi(&img, HVT_ABI_TARGET, HVT_ABI_VERSION, e) < 0 ||
        mft_validate(img.mft, img.mft_size, e) < 0)
        goto out;
    /* A writable copy of the manifest, filled in as devices attach. */
    h->mft = malloc(img.mft_size);
    if (!h->mft) {
        terr_errno(e, "allocate manifest");
        goto out;
    }
    memcpy(h->mft, img.mft, img.mft_size);
    h->shutdown_aware = img.shutdown_aware;
    if (devices_attach(h->mft, a, e) < 0)
        goto out;
    if (elf_check_fits(&img, h->mem_size, e) < 0) {
        terr_wrap(e, "--mem=%llu", (unsigned long long)(h->mem_size >> 20));
        goto out;
    }
    if (hvt_backend_create(h, h->mem_size, e) < 0)
        goto out;
    elf_copy_segments(&img, file, h->mem);
    for (unsigned i = 0; i < img.nseg; i++)
        if (!img.seg[i].w && protect_segment(h, img.seg[i].start, img.seg[i].end, e) < 0)
            goto out;
    /* The vCPU first: the boot info carries its TSC frequency. */
    if (hvt_backend_vcpu_init(h, img.entry, e) < 0 || write_boot_info(h, &img, a, e) < 0)
        goto out;
    rc = 0;
out:
    if (rc < 0)
        terr_wrap(e, "guest %s", a->elf_path);
    munmap((void *)file, st.st_size);
    return rc;
}

/* Guest memory as solo5-hvt sizes it, with its messages: --mem rounded down
 * to whole 2 MiB pages (one at least), at most HVT_MAX_MEM. */
static uint64_t guest_mem_size(uint64_t requested)
{
    uint64_t mem = requested & ~(HVT_PAGE_2M - 1);
    if (mem == 0)
        mem = HVT_PAGE_2M;
    if (mem != requested)
        tender_log("adjusting memory to %llu bytes", (unsigned long long)mem);
    if (mem > HVT_MAX_MEM)
        tender_exit(TENDER_EXIT_SETUP, "guest memory size %llu bytes exceeds the max size %llu bytes",
                    (unsigned long long)mem, HVT_MAX_MEM);
    return mem;
}

int main(int argc, char **argv)
{
    tender_name = "crius-hvt";
    struct terr e;
    static struct tender_args a;
    if (args_parse(argc, argv, &a, &e) < 0)
        tender_exit(TENDER_EXIT_SETUP, "%s\n%s", e.msg, args_usage());

    struct hvt h = { 0 };
    h.mem_size = guest_mem_size(a.mem_bytes);

    waitset = epoll_create1(EPOLL_CLOEXEC);
    timer = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
    if (waitset < 0 || timer < 0)
        tender_exit(TENDER_EXIT_SETUP, "create wait set: %s", strerror(errno));
    struct epoll_event ev = { .events = EPOLLIN, .data.u64 = HVT_INTERNAL_TIMER };
    if (epoll_ctl(waitset, EPOLL_CTL_ADD, timer, &ev) < 0)
        tender_exit(TENDER_EXIT_SETUP, "add timer to wait set: %s", strerror(errno));

    hvt_register_hypercall(HVT_HYPERCALL_WALLTIME, hc_walltime);
    hvt_register_hypercall(HVT_HYPERCALL_PUTS, hc_puts);
    hvt_register_hypercall(HVT_HYPERCALL_POLL, hc_poll);

    if (load_guest(&h, &a, &e) < 0)
        tender_exit(TENDER_EXIT_SETUP, "%s", e.msg);
    for (const struct hvt_module *const *m = hvt_modules; *m; m++)
        if ((*m)->setup && (*m)->setup(&h, &e) < 0)
            tender_exit(TENDER_EXIT_SETUP, "set up %s devices: %s", (*m)->name, e.msg);
    if (h.shutdown_aware && setup_shutdown(&e) < 0)
        tender_exit(TENDER_EXIT_SETUP, "%s", e.msg);
    if (lock_down(&h, &e) < 0)
        tender_exit(TENDER_EXIT_SETUP, "%s", e.msg);
    _exit(hvt_backend_run(&h));
}
