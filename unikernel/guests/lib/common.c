#include "guest.h"

struct guest_boot guest_boot;

void *memcpy(void *d, const void *s, size_t n)
{
    uint8_t *dp = d;
    const uint8_t *sp = s;
    while (n--)
        *dp++ = *sp++;
    return d;
}

void *memmove(void *d, const void *s, size_t n)
{
    uint8_t *dp = d;
    const uint8_t *sp = s;
    if (dp < sp)
        return memcpy(d, s, n);
    while (n--)
        dp[n] = sp[n];
    return d;
}

void *memset(void *d, int c, size_t n)
{
    uint8_t *dp = d;
    while (n--)
        *dp++ = (uint8_t)c;
    return d;
}

int memcmp(const void *a, const void *b, size_t n)
{
    const uint8_t *x = a, *y = b;
    for (; n; n--, x++, y++)
        if (*x != *y)
            return *x - *y;
    return 0;
}

size_t g_strlen(const char *s)
{
    size_t n = 0;
    while (s[n])
        n++;
    return n;
}

bool g_streq(const char *a, const char *b)
{
    while (*a && *a == *b)
        a++, b++;
    return *a == *b;
}

bool g_prefix(const char *s, const char *prefix)
{
    while (*prefix)
        if (*s++ != *prefix++)
            return false;
    return true;
}

void g_puts(const char *s)
{
    size_t n = g_strlen(s);
    if (n > 0) /* each write is a round trip to the tender */
        g_write(s, n);
}

void g_put_u64(uint64_t v)
{
    char buf[21];
    int i = sizeof buf;
    do
        buf[--i] = (char)('0' + v % 10);
    while ((v /= 10) != 0);
    g_write(buf + i, sizeof buf - i);
}

bool g_parse_u64(const char **s, uint64_t *v)
{
    const char *p = *s;
    uint64_t x = 0;
    if (*p < '0' || *p > '9')
        return false;
    while (*p >= '0' && *p <= '9')
        x = x * 10 + (uint64_t)(*p++ - '0');
    *s = p;
    *v = x;
    return true;
}

const char *g_arg(const char *cmdline, const char *key)
{
    size_t klen = g_strlen(key);
    const char *p = cmdline;
    while (*p) {
        while (*p == ' ')
            p++;
        if (g_prefix(p, key) && p[klen] == '=')
            return p + klen + 1;
        while (*p && *p != ' ')
            p++;
    }
    return NULL;
}

bool g_device(const char *name, uint32_t type, uint64_t *handle, const struct mft_entry **e)
{
    const struct mft *m = guest_boot.mft;
    for (uint32_t i = 1; i < m->entries; i++)
        if (m->e[i].type == type && g_streq(m->e[i].name, name) && m->e[i].attached) {
            *handle = i;
            if (e)
                *e = &m->e[i];
            return true;
        }
    return false;
}
