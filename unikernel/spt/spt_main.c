/*
 * crius-spt: runs a Solo5 spt guest inside this process, at the addresses
 * it was linked for, under a seccomp allowlist installed before the guest's
 * first instruction. Guest memory is [SPT_HOST_MEM_BASE, mem_size) of this
 * address space; the tender itself is a PIE loaded far above it.
 */
#include <asm/prctl.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/mman.h>
#include <sys/personality.h>
#include <sys/signalfd.h>
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
#include "unikernel/spt/spt.h"

extern const char __executable_start;

/* Switches to the guest's stack and jumps to its entry with the boot info
 * as first argument; never returns. */
__attribute__((noreturn)) void spt_launch(uint64_t stack, uint64_t entry, uint64_t boot_info);
__asm__(".text\n"
        ".globl spt_launch\n"
        ".type spt_launch, @function\n"
        "spt_launch:\n"
        "    mov %rdi, %rsp\n"
        "    mov %rdx, %rdi\n"
        "    jmp *%rsi\n"
        ".size spt_launch, . - spt_launch\n");

static void *guest_ptr(uint64_t addr)
{
    return (void *)(uintptr_t)addr;
}

static int map_guest_memory(uint64_t mem_size, struct terr *e)
{
    if (mem_size <= SPT_GUEST_MIN_BASE)
        return terr_set(e, "--mem: guest memory must be more than 1 MiB");
    if (mem_size > (uint64_t)(uintptr_t)&__executable_start)
        return terr_set(e, "--mem=%llu: guest memory would overlap the tender at 0x%llx",
                        (unsigned long long)(mem_size >> 20),
                        (unsigned long long)(uintptr_t)&__executable_start);
    int persona = personality(0xffffffff);
    if (persona < 0 || (persona & READ_IMPLIES_EXEC))
        return terr_set(e, "refusing to run with personality READ_IMPLIES_EXEC (no W^X)");
    void *m = mmap(guest_ptr(SPT_HOST_MEM_BASE), mem_size - SPT_HOST_MEM_BASE,
                   PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE | MAP_FIXED_NOREPLACE, -1, 0);
    if (m == MAP_FAILED)
        return terr_errno(e, "map %llu MiB of guest memory at 0x%x",
                          (unsigned long long)(mem_size >> 20), SPT_HOST_MEM_BASE);
    if (m != guest_ptr(SPT_HOST_MEM_BASE))
        return terr_set(e, "guest memory mapped at %p, not at 0x%x", m, SPT_HOST_MEM_BASE);
    return 0;
}

static int load_segments(const struct elf_image *img, const uint8_t *file, struct terr *e)
{
    for (unsigned i = 0; i < img->nseg; i++) {
        const struct elf_segment *s = &img->seg[i];
        memcpy(guest_ptr(s->vaddr), file + s->offset, s->filesz);
        int prot = (s->r ? PROT_READ : 0) | (s->w ? PROT_WRITE : 0) | (s->x ? PROT_EXEC : 0);
        if (mprotect(guest_ptr(s->start), s->end - s->start, prot) < 0)
            return terr_errno(e, "protect segment at 0x%llx", (unsigned long long)s->start);
    }
    return 0;
}

static int read_guest(struct spt *s, const struct tender_args *a, struct elf_image *img,
                      uint64_t mem_size, struct terr *e)
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
    int rc = -1;
    if (elf_parse(file, st.st_size, SPT_GUEST_MIN_BASE, img, e) < 0 ||
        elf_check_abi(img, SPT_ABI_TARGET, SPT_ABI_VERSION, e) < 0 ||
        mft_validate(img->mft, img->mft_size, e) < 0)
        goto out;
    s->mft = malloc(img->mft_size);
    if (!s->mft) {
        terr_errno(e, "allocate manifest");
        goto out;
    }
    memcpy(s->mft, img->mft, img->mft_size);
    img->mft = NULL; /* points into the file, unmapped below */
    if (devices_attach(s->mft, a, e) < 0)
        goto out;
    if (elf_check_fits(img, mem_size, e) < 0) {
        terr_wrap(e, "--mem=%llu", (unsigned long long)(mem_size >> 20));
        goto out;
    }
    if (map_guest_memory(mem_size, e) < 0 || load_segments(img, file, e) < 0)
        goto out;
    rc = 0;
out:
    if (rc < 0)
        terr_wrap(e, "guest %s", a->elf_path);
    munmap((void *)file, st.st_size);
    return rc;
}

static int write_boot_info(struct spt *s, const struct elf_image *img, uint64_t mem_size,
                           int timerfd, const struct tender_args *a, struct terr *e)
{
    uint64_t pos = SPT_BOOT_INFO_BASE;
    struct spt_boot_info *bi = guest_ptr(pos);
    pos += sizeof *bi;
    bi->mem_size = mem_size;
    bi->kernel_end = img->end;
    bi->epollfd = s->epollfd;
    bi->timerfd = timerfd;
    bi->mft = guest_ptr(pos);
    memcpy(guest_ptr(pos), s->mft, img->mft_size);
    pos += (img->mft_size + 7) & ~7ull;
    bi->cmdline = guest_ptr(pos);
    if (args_guest_cmdline(a, guest_ptr(pos), SPT_CMDLINE_SIZE, e) < 0)
        return -1;
    /* The guest reads its boot info; it never writes it. */
    if (mprotect(guest_ptr(SPT_HOST_MEM_BASE), SPT_GUEST_MIN_BASE - SPT_HOST_MEM_BASE,
                 PROT_READ) < 0)
        return terr_errno(e, "write-protect boot info");
    return 0;
}

/* An opted-in guest finds a shutdown request as an event with data
 * CRIUS_SHUTDOWN_HANDLE in its wait set: SIGTERM is blocked and a signalfd
 * for it joins the set (level-triggered, never read, so it stays reported).
 * Other guests keep SIGTERM's default action: the process ends at once. */
static int setup_shutdown(struct spt *s, struct terr *e)
{
    sigset_t term;
    sigemptyset(&term);
    sigaddset(&term, SIGTERM);
    if (sigprocmask(SIG_BLOCK, &term, NULL) < 0)
        return terr_errno(e, "block SIGTERM");
    int fd = signalfd(-1, &term, SFD_NONBLOCK | SFD_CLOEXEC);
    if (fd < 0)
        return terr_errno(e, "signalfd(SIGTERM)");
    struct epoll_event ev = { .events = EPOLLIN, .data.u64 = CRIUS_SHUTDOWN_HANDLE };
    if (epoll_ctl(s->epollfd, EPOLL_CTL_ADD, fd, &ev) < 0)
        return terr_errno(e, "add SIGTERM signalfd to the wait set");
    return 0;
}

/* Upstream's allowlist; device modules add theirs. */
static int core_rules(struct spt *s, int timerfd, struct terr *e)
{
    TENDER_SCMP_ADD(s->sc, e, "write(1)", SCMP_SYS(write), 1, SCMP_A0(SCMP_CMP_EQ, 1));
    TENDER_SCMP_ADD(s->sc, e, "exit_group", SCMP_SYS(exit_group), 0);
    TENDER_SCMP_ADD(s->sc, e, "epoll_pwait", SCMP_SYS(epoll_pwait), 1,
                    SCMP_A0(SCMP_CMP_EQ, (uint64_t)s->epollfd));
    TENDER_SCMP_ADD(s->sc, e, "timerfd_settime", SCMP_SYS(timerfd_settime), 1,
                    SCMP_A0(SCMP_CMP_EQ, (uint64_t)timerfd));
    TENDER_SCMP_ADD(s->sc, e, "clock_gettime(MONOTONIC)", SCMP_SYS(clock_gettime), 1,
                    SCMP_A0(SCMP_CMP_EQ, CLOCK_MONOTONIC));
    TENDER_SCMP_ADD(s->sc, e, "clock_gettime(REALTIME)", SCMP_SYS(clock_gettime), 1,
                    SCMP_A0(SCMP_CMP_EQ, CLOCK_REALTIME));
    TENDER_SCMP_ADD(s->sc, e, "arch_prctl(ARCH_SET_FS)", SCMP_SYS(arch_prctl), 1,
                    SCMP_A0(SCMP_CMP_EQ, ARCH_SET_FS));
    return 0;
}

int main(int argc, char **argv)
{
    tender_name = "crius-spt";
    struct terr e;
    static struct tender_args a;
    if (args_parse(argc, argv, &a, &e) < 0)
        tender_exit(TENDER_EXIT_SETUP, "%s\n%s", e.msg, args_usage());
    uint64_t mem_size = a.mem_bytes;

    struct spt s = { 0 };
    struct elf_image img;
    if (read_guest(&s, &a, &img, mem_size, &e) < 0)
        tender_exit(TENDER_EXIT_SETUP, "%s", e.msg);

    s.epollfd = epoll_create1(EPOLL_CLOEXEC);
    int timerfd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
    if (s.epollfd < 0 || timerfd < 0)
        tender_exit(TENDER_EXIT_SETUP, "create wait set: %s", strerror(errno));
    struct epoll_event ev = { .events = EPOLLIN, .data.u64 = SPT_INTERNAL_TIMERFD };
    if (epoll_ctl(s.epollfd, EPOLL_CTL_ADD, timerfd, &ev) < 0)
        tender_exit(TENDER_EXIT_SETUP, "add timer to wait set: %s", strerror(errno));

    s.sc = seccomp_init(SCMP_ACT_KILL_PROCESS);
    if (!s.sc)
        tender_exit(TENDER_EXIT_SETUP, "seccomp: init");
    if (core_rules(&s, timerfd, &e) < 0)
        tender_exit(TENDER_EXIT_SETUP, "%s", e.msg);
    for (const struct spt_module *const *m = spt_modules; *m; m++)
        if ((*m)->setup(&s, &e) < 0)
            tender_exit(TENDER_EXIT_SETUP, "set up %s devices: %s", (*m)->name, e.msg);
    if (img.shutdown_aware && setup_shutdown(&s, &e) < 0)
        tender_exit(TENDER_EXIT_SETUP, "%s", e.msg);
    if (write_boot_info(&s, &img, mem_size, timerfd, &a, &e) < 0)
        tender_exit(TENDER_EXIT_SETUP, "%s", e.msg);
    free(s.mft);
    if (seccomp_install(s.sc, &e) < 0)
        tender_exit(TENDER_EXIT_SETUP, "%s", e.msg);
    spt_launch(mem_size - 8, img.entry, SPT_BOOT_INFO_BASE);
}
