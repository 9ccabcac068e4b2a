/* Installing a libseccomp filter so that nothing outside the filter runs
 * afterwards: the BPF program is exported and the libseccomp context freed
 * first, then the kernel is handed the raw program. */
#ifndef CRIUS_UNIKERNEL_CORE_SECCOMP_INSTALL_H
#define CRIUS_UNIKERNEL_CORE_SECCOMP_INSTALL_H

#include <errno.h>
#include <seccomp.h>

#include "unikernel/core/terr.h"

/* Adds `rule` failing with a message naming `what`. */
#define TENDER_SCMP_ADD(ctx, e, what, ...)                                       \
    do {                                                                         \
        int rc_ = seccomp_rule_add((ctx), SCMP_ACT_ALLOW, __VA_ARGS__);          \
        if (rc_ < 0) {                                                           \
            errno = -rc_;                                                        \
            return terr_errno((e), "seccomp rule %s", (what));                   \
        }                                                                        \
    } while (0)

/* Consumes ctx (released on success and on failure). */
int seccomp_install(scmp_filter_ctx ctx, struct terr *e);

#endif
