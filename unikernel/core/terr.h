/* Errors in the tenders: a message that names the step and the object,
 * built up outward like "load guest /x.hvt: segment 2: overlaps segment 1". */
#ifndef CRIUS_UNIKERNEL_CORE_TERR_H
#define CRIUS_UNIKERNEL_CORE_TERR_H

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

#define TENDER_EXIT_SETUP 1 /* bad arguments, bad guest image, host failure */
#define TENDER_EXIT_FAULT 1 /* the guest faulted (as upstream; stderr says "guest fault") */

struct terr {
    char msg[1024];
};

/* Sets the message; returns -1 so callers can `return terr_set(...)`. */
int terr_set(struct terr *e, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* Same, with ": strerror(errno)" appended. */
int terr_errno(struct terr *e, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* Prepends "context: " to the message; returns -1. */
int terr_wrap(struct terr *e, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* The program name used in messages ("crius-hvt"). */
extern const char *tender_name;

/* Writes "NAME: message\n" to stderr with a single write(2) and no stdio,
 * so it is safe under the tenders' seccomp filters. */
void tender_log(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
__attribute__((noreturn)) void tender_exit(int status, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

#ifdef __cplusplus
}
#endif

#endif
