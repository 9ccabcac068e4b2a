#include "unikernel/core/args.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

const char *args_usage(void)
{
    return "usage: [--mem=MiB] [--net:NAME=TAP]... [--net-mac:NAME=HWADDR]...\n"
           "       [--block:NAME=FILE]... [--block-sector-size:NAME=BYTES]...\n"
           "       [--] GUEST [GUEST ARGS...]";
}

static int parse_u64(const char *s, uint64_t *out)
{
    if (*s < '0' || *s > '9')
        return -1;
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno || *end)
        return -1;
    *out = v;
    return 0;
}

/* Splits "NAME=VALUE" (after the option prefix); NAME is [A-Za-z0-9]+. */
static int split_named(const char *opt, const char *rest, char name[MFT_NAME_SIZE],
                       const char **value, struct terr *e)
{
    const char *eq = strchr(rest, '=');
    size_t n = eq ? (size_t)(eq - rest) : 0;
    if (!eq || n == 0 || eq[1] == 0)
        return terr_set(e, "%s: expected NAME=VALUE", opt);
    if (n > MFT_NAME_MAX)
        return terr_set(e, "%s: device name longer than %d characters", opt, MFT_NAME_MAX);
    for (size_t i = 0; i < n; i++) {
        char c = rest[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')))
            return terr_set(e, "%s: device name must be letters and digits", opt);
    }
    memcpy(name, rest, n);
    name[n] = 0;
    *value = eq + 1;
    return 0;
}

static struct dev_request *find_req(struct tender_args *a, const char *name)
{
    for (unsigned i = 0; i < a->ndev; i++)
        if (strcmp(a->dev[i].name, name) == 0)
            return &a->dev[i];
    return NULL;
}

/* The request for device `name` of `type`, added if new; NULL (and `e`)
 * when the name is taken by a device of the other type, or there are too
 * many. */
static struct dev_request *request_for(struct tender_args *a, const char *opt,
                                       const char name[MFT_NAME_SIZE], uint32_t type,
                                       struct terr *e)
{
    struct dev_request *d = find_req(a, name);
    if (d && d->type != type) {
        terr_set(e, "%s: '%s' is already given as a %s device", opt, name,
                 d->type == MFT_DEV_NET_BASIC ? "net" : "block");
        return NULL;
    }
    if (d)
        return d;
    if (a->ndev == MFT_MAX_ENTRIES - 1) {
        terr_set(e, "%s: more than %d devices", opt, MFT_MAX_ENTRIES - 1);
        return NULL;
    }
    d = &a->dev[a->ndev++];
    memcpy(d->name, name, MFT_NAME_SIZE);
    d->type = type;
    return d;
}

static int add_device(struct tender_args *a, uint32_t type, const char *opt,
                      const char *rest, struct terr *e)
{
    char name[MFT_NAME_SIZE];
    const char *value;
    if (split_named(opt, rest, name, &value, e) < 0)
        return -1;
    struct dev_request *d = request_for(a, opt, name, type, e);
    if (!d)
        return -1;
    if (d->path)
        return terr_set(e, "%s: device '%s' given twice", opt, name);
    d->path = value;
    return 0;
}

static int hex_digit(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* "02:42:ac:11:00:02": six pairs of hex digits joined by ':', unicast. */
static int parse_mac(const char *s, uint8_t mac[6])
{
    for (int i = 0; i < 6; i++) {
        int hi = hex_digit(s[0]), lo = hi < 0 ? -1 : hex_digit(s[1]);
        if (lo < 0)
            return -1;
        mac[i] = (uint8_t)(hi << 4 | lo);
        s += 2;
        if (*s != (i == 5 ? 0 : ':'))
            return -1;
        if (i < 5)
            s++;
    }
    return (mac[0] & 1) ? -1 : 0;
}

static int set_mac(struct tender_args *a, const char *opt, const char *rest, struct terr *e)
{
    char name[MFT_NAME_SIZE];
    const char *value;
    uint8_t mac[6];
    if (split_named(opt, rest, name, &value, e) < 0)
        return -1;
    if (parse_mac(value, mac) < 0)
        return terr_set(e, "%s: expected a unicast MAC address as xx:xx:xx:xx:xx:xx", opt);
    struct dev_request *d = request_for(a, opt, name, MFT_DEV_NET_BASIC, e);
    if (!d)
        return -1;
    if (d->has_mac)
        return terr_set(e, "%s: MAC of '%s' given twice", opt, name);
    d->has_mac = 1;
    memcpy(d->mac, mac, 6);
    return 0;
}

static int set_sector_size(struct tender_args *a, const char *opt, const char *rest,
                           struct terr *e)
{
    char name[MFT_NAME_SIZE];
    const char *value;
    uint64_t v;
    if (split_named(opt, rest, name, &value, e) < 0)
        return -1;
    if (parse_u64(value, &v) < 0 || v < 512 || v > 32768 || (v & (v - 1)))
        return terr_set(e, "%s: Block size must be a multiple of 2 greater than or equal 512 "
                        "(a power of two from 512 to 32768)", opt);
    struct dev_request *d = request_for(a, opt, name, MFT_DEV_BLOCK_BASIC, e);
    if (!d)
        return -1;
    d->block_size = (uint32_t)v;
    return 0;
}

int args_parse(int argc, char **argv, struct tender_args *a, struct terr *e)
{
    memset(a, 0, sizeof *a);
    a->mem_bytes = (uint64_t)TENDER_DEFAULT_MEM_MIB << 20;
    int i = 1;
    for (; i < argc; i++) {
        const char *s = argv[i];
        if (strcmp(s, "--") == 0) {
            i++;
            break;
        }
        if (s[0] != '-')
            break;
        int rc;
        if (strncmp(s, "--mem=", 6) == 0) {
            uint64_t mib;
            /* Upstream's words; each tender sizes and caps what it is given. */
            if (parse_u64(s + 6, &mib) < 0 || mib == 0 || mib >= (1ull << 44))
                return terr_set(e, "Malformed argument to --mem: %s: expected a size in MiB", s);
            a->mem_bytes = mib << 20;
            rc = 0;
        } else if (strncmp(s, "--net:", 6) == 0) {
            rc = add_device(a, MFT_DEV_NET_BASIC, s, s + 6, e);
        } else if (strncmp(s, "--net-mac:", 10) == 0) {
            rc = set_mac(a, s, s + 10, e);
        } else if (strncmp(s, "--block:", 8) == 0) {
            rc = add_device(a, MFT_DEV_BLOCK_BASIC, s, s + 8, e);
        } else if (strncmp(s, "--block-sector-size:", 20) == 0) {
            rc = set_sector_size(a, s, s + 20, e);
        } else {
            return terr_set(e, "unknown option %s", s);
        }
        if (rc < 0)
            return -1;
    }
    if (i >= argc)
        return terr_set(e, "no guest ELF given");
    for (unsigned d = 0; d < a->ndev; d++) {
        if (a->dev[d].path)
            continue;
        if (a->dev[d].type == MFT_DEV_NET_BASIC)
            return terr_set(e, "--net-mac:%s given without --net:%s=TAP", a->dev[d].name,
                            a->dev[d].name);
        return terr_set(e, "--block-sector-size:%s given without --block:%s=FILE",
                        a->dev[d].name, a->dev[d].name);
    }
    a->elf_path = argv[i];
    a->guest_argc = argc - i - 1;
    a->guest_argv = argv + i + 1;
    return 0;
}

int args_guest_cmdline(const struct tender_args *a, char *buf, size_t size, struct terr *e)
{
    size_t pos = 0;
    buf[0] = 0;
    for (int i = 0; i < a->guest_argc; i++) {
        size_t n = strlen(a->guest_argv[i]);
        size_t need = n + (i > 0 ? 1 : 0);
        if (need >= size - pos)
            return terr_set(e, "guest command line too long (max %zu characters)", size - 1);
        if (i > 0)
            buf[pos++] = ' ';
        memcpy(buf + pos, a->guest_argv[i], n);
        pos += n;
        buf[pos] = 0;
    }
    return 0;
}
