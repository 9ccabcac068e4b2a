#include "unikernel/core/seccomp_install.h"

#include <errno.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

int seccomp_install(scmp_filter_ctx ctx, struct terr *e)
{
    int fd = memfd_create("crius-seccomp", MFD_CLOEXEC);
    if (fd < 0) {
        seccomp_release(ctx);
        return terr_errno(e, "seccomp: memfd_create");
    }
    int rc = seccomp_export_bpf(ctx, fd);
    seccomp_release(ctx);
    if (rc < 0) {
        close(fd);
        errno = -rc;
        return terr_errno(e, "seccomp: export filter");
    }
    /* Read back into static storage: the kernel copies the program, and
     * nothing is left to free once the filter is in force. */
    static struct sock_filter insns[BPF_MAXINSNS];
    off_t size = lseek(fd, 0, SEEK_CUR);
    if (size <= 0 || size % sizeof insns[0] != 0 || (size_t)size > sizeof insns) {
        close(fd);
        return terr_set(e, "seccomp: exported filter has a bad size (%lld bytes)",
                        (long long)size);
    }
    ssize_t n = pread(fd, insns, size, 0);
    close(fd);
    if (n != size)
        return terr_errno(e, "seccomp: read back exported filter");
    struct sock_fprog prog = {
        .len = (unsigned short)(size / sizeof insns[0]),
        .filter = insns,
    };
    if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
        return terr_errno(e, "seccomp: prctl(PR_SET_NO_NEW_PRIVS)");
    if (syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, 0, &prog) < 0)
        return terr_errno(e, "seccomp: install filter");
    return 0;
}
