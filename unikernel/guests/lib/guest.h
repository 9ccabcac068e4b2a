/* The small runtime crius's own test guests are written against. Each guest
 * is built twice, linked with hvt.c (hypercalls) or spt.c (raw syscalls);
 * both speak the Solo5 0.9 ABI through unikernel/core/abi/. */
#ifndef CRIUS_GUESTS_GUEST_H
#define CRIUS_GUESTS_GUEST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "unikernel/core/abi/crius_abi.h"
#include "unikernel/core/abi/mft_abi.h"

/* Result codes of device calls (same values as the ABI's solo5_result_t). */
enum { G_OK = 0, G_AGAIN = 1, G_EINVAL = 2, G_EUNSPEC = 3 };

struct guest_boot {
    uint64_t mem_size;
    uint64_t kernel_end;
    const char *cmdline;
    const struct mft *mft;
};
extern struct guest_boot guest_boot;

/* Each guest defines this; its return value is the exit status. */
int guest_main(const char *cmdline);

/* Platform (hvt.c / spt.c). */
void g_write(const char *s, size_t len);
__attribute__((noreturn)) void g_exit(int status);
uint64_t g_monotonic_ns(void);
/* Waits until a device is ready or timeout_ns passes; returns the ready set
 * (bit h for handle h; CRIUS_SHUTDOWN_BIT for a shutdown request). */
uint64_t g_wait(uint64_t timeout_ns);
int g_block_write(uint64_t handle, uint64_t offset, const void *buf, uint64_t len);
int g_block_read(uint64_t handle, uint64_t offset, void *buf, uint64_t len);
int g_net_write(uint64_t handle, const void *buf, uint64_t len);
int g_net_read(uint64_t handle, void *buf, uint64_t size, uint64_t *len);

/* Common (common.c). */
void g_puts(const char *s);
void g_put_u64(uint64_t v);
size_t g_strlen(const char *s);
bool g_streq(const char *a, const char *b);
bool g_prefix(const char *s, const char *prefix);
/* Parses a decimal number at *s, advancing *s; false if none. */
bool g_parse_u64(const char **s, uint64_t *v);
/* The argument starting with `key=` in cmdline, or NULL (value pointer). */
const char *g_arg(const char *cmdline, const char *key);
/* Manifest entry by name and type: handle and entry, or false. */
bool g_device(const char *name, uint32_t type, uint64_t *handle, const struct mft_entry **e);

void *memcpy(void *d, const void *s, size_t n);
void *memset(void *d, int c, size_t n);
void *memmove(void *d, const void *s, size_t n);
int memcmp(const void *a, const void *b, size_t n);

#endif
