/*
 * net: a network guest that is its own IP host on device "service0":
 * answers ARP for its address, ICMP echo, a UDP key/value store on port
 * 7000 ("put KEY VALUE" -> "ok", "get KEY" -> VALUE or "missing") and HTTP/1.0
 * on TCP port 80 (any request -> 200 "hello"). Arguments: ip=A.B.C.D[/PREFIX].
 * Opts into crius's shutdown notification and exits 0 on a request.
 */
#include "lib/guest.h"

MFT1_DECLARE(2, { .name = "service0", .type = MFT_DEV_NET_BASIC });
CRIUS_SHD1_DECLARE();

#define ETH_ARP 0x0806
#define ETH_IP 0x0800
#define KV_PORT 7000
#define HTTP_PORT 80

static uint64_t nic;
static uint8_t my_mac[6];
static uint8_t my_ip[4];
static uint8_t rx[2048], tx[2048];

static uint16_t get16(const uint8_t *p) { return (uint16_t)(p[0] << 8 | p[1]); }
static uint32_t get32(const uint8_t *p) { return (uint32_t)get16(p) << 16 | get16(p + 2); }
static void put16(uint8_t *p, uint16_t v) { p[0] = (uint8_t)(v >> 8); p[1] = (uint8_t)v; }
static void put32(uint8_t *p, uint32_t v) { put16(p, (uint16_t)(v >> 16)); put16(p + 2, (uint16_t)v); }

static uint32_t sum16(const uint8_t *p, size_t len, uint32_t sum)
{
    for (; len > 1; p += 2, len -= 2)
        sum += get16(p);
    if (len)
        sum += (uint32_t)p[0] << 8;
    return sum;
}

static uint16_t fold(uint32_t sum)
{
    while (sum >> 16)
        sum = (sum & 0xffff) + (sum >> 16);
    return (uint16_t)~sum;
}

static bool parse_ip(const char *s, uint8_t ip[4])
{
    for (int i = 0; i < 4; i++) {
        uint64_t v;
        if (!g_parse_u64(&s, &v) || v > 255 || (i < 3 && *s++ != '.'))
            return false;
        ip[i] = (uint8_t)v;
    }
    return *s == 0 || *s == ' ' || *s == '/'; /* A.B.C.D or A.B.C.D/PREFIX */
}

/* Sends tx: Ethernet header to `dst`, then `len` bytes of payload. */
static void send_eth(const uint8_t dst[6], uint16_t type, size_t len)
{
    memcpy(tx, dst, 6);
    memcpy(tx + 6, my_mac, 6);
    put16(tx + 12, type);
    g_net_write(nic, tx, 14 + len);
}

static void handle_arp(const uint8_t *a, size_t len)
{
    if (len < 28 || get16(a) != 1 || get16(a + 2) != ETH_IP || get16(a + 6) != 1 ||
        memcmp(a + 24, my_ip, 4) != 0)
        return;
    uint8_t *r = tx + 14;
    memcpy(r, a, 6);
    put16(r + 6, 2); /* reply */
    memcpy(r + 8, my_mac, 6);
    memcpy(r + 14, my_ip, 4);
    memcpy(r + 18, a + 8, 10); /* requester's MAC and IP */
    send_eth(a + 8, ETH_ARP, 28);
}

/* Builds an IPv4 header at tx+14 for `plen` bytes of protocol `proto`. */
static uint8_t *ip_reply(const uint8_t *ip, uint8_t proto, size_t plen)
{
    uint8_t *r = tx + 14;
    memset(r, 0, 20);
    r[0] = 0x45;
    put16(r + 2, (uint16_t)(20 + plen));
    r[8] = 64;
    r[9] = proto;
    memcpy(r + 12, my_ip, 4);
    memcpy(r + 16, ip + 12, 4);
    put16(r + 10, fold(sum16(r, 20, 0)));
    return r + 20;
}

static void handle_icmp(const uint8_t *eth, const uint8_t *ip, const uint8_t *p, size_t len)
{
    if (len < 8 || p[0] != 8 || fold(sum16(p, len, 0)) != 0 || len > 1400)
        return;
    uint8_t *r = ip_reply(ip, 1, len);
    memcpy(r, p, len);
    r[0] = 0; /* echo reply */
    put16(r + 2, 0);
    put16(r + 2, fold(sum16(r, len, 0)));
    send_eth(eth + 6, ETH_IP, 20 + len);
}

/* Checksum of a UDP/TCP segment with the IPv4 pseudo-header. */
static uint16_t l4_sum(const uint8_t *src, const uint8_t *dst, uint8_t proto, const uint8_t *seg,
                       size_t len)
{
    uint32_t s = sum16(src, 4, 0);
    s = sum16(dst, 4, s);
    s += proto;
    s += (uint32_t)len;
    return fold(sum16(seg, len, s));
}

#define KV_SLOTS 32
#define KV_LEN 64
static struct { char key[KV_LEN], value[KV_LEN]; bool used; } kv[KV_SLOTS];

static size_t word(const char *s, size_t n, size_t *start)
{
    size_t i = *start;
    while (i < n && s[i] == ' ')
        i++;
    size_t b = i;
    while (i < n && s[i] != ' ' && s[i] != '\n')
        i++;
    *start = i;
    return i - b;
}

static const char *kv_answer(const char *q, size_t n)
{
    static char out[KV_LEN + 2];
    size_t pos = 0, klen, vlen;
    size_t cmd_len = word(q, n, &pos);
    const char *cmd = q + pos - cmd_len;
    klen = word(q, n, &pos);
    const char *key = q + pos - klen;
    if (klen == 0 || klen >= KV_LEN)
        return "error\n";
    int slot = -1, free_slot = -1;
    for (int i = 0; i < KV_SLOTS; i++) {
        if (kv[i].used && g_strlen(kv[i].key) == klen && memcmp(kv[i].key, key, klen) == 0)
            slot = i;
        if (!kv[i].used && free_slot < 0)
            free_slot = i;
    }
    if (cmd_len == 3 && memcmp(cmd, "get", 3) == 0) {
        if (slot < 0)
            return "missing\n";
        size_t l = g_strlen(kv[slot].value);
        memcpy(out, kv[slot].value, l);
        out[l] = '\n';
        out[l + 1] = 0;
        return out;
    }
    if (cmd_len == 3 && memcmp(cmd, "put", 3) == 0) {
        vlen = word(q, n, &pos);
        if (vlen == 0 || vlen >= KV_LEN || (slot < 0 && free_slot < 0))
            return "error\n";
        if (slot < 0)
            slot = free_slot;
        memcpy(kv[slot].key, key, klen);
        kv[slot].key[klen] = 0;
        memcpy(kv[slot].value, q + pos - vlen, vlen);
        kv[slot].value[vlen] = 0;
        kv[slot].used = true;
        return "ok\n";
    }
    return "error\n";
}

static void handle_udp(const uint8_t *eth, const uint8_t *ip, const uint8_t *u, size_t len)
{
    if (len < 8 || get16(u + 2) != KV_PORT || get16(u + 4) > len || get16(u + 4) < 8)
        return;
    const char *answer = kv_answer((const char *)u + 8, get16(u + 4) - 8u);
    size_t alen = g_strlen(answer);
    uint8_t *r = ip_reply(ip, 17, 8 + alen);
    put16(r, KV_PORT);
    put16(r + 2, get16(u));
    put16(r + 4, (uint16_t)(8 + alen));
    put16(r + 6, 0);
    memcpy(r + 8, answer, alen);
    put16(r + 6, l4_sum(my_ip, ip + 12, 17, r, 8 + alen));
    send_eth(eth + 6, ETH_IP, 28 + alen);
}

/* HTTP/1.0 over a deliberately small TCP: one request segment per
 * connection, answered at once with the whole response and FIN. */
enum { TCP_FIN = 1, TCP_SYN = 2, TCP_RST = 4, TCP_PSH = 8, TCP_ACK = 16 };
static const char http_response[] =
    "HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 6\r\n\r\nhello\n";
#define ISN 0x10000000u

static void tcp_send(const uint8_t *eth, const uint8_t *ip, const uint8_t *t, uint32_t seq,
                     uint32_t ack, uint8_t flags, const char *data, size_t dlen)
{
    uint8_t *r = ip_reply(ip, 6, 20 + dlen);
    memset(r, 0, 20);
    put16(r, HTTP_PORT);
    put16(r + 2, get16(t));
    put32(r + 4, seq);
    put32(r + 8, ack);
    r[12] = 5 << 4;
    r[13] = flags;
    put16(r + 14, 8192);
    memcpy(r + 20, data, dlen);
    put16(r + 16, l4_sum(my_ip, ip + 12, 6, r, 20 + dlen));
    send_eth(eth + 6, ETH_IP, 40 + dlen);
}

static void handle_tcp(const uint8_t *eth, const uint8_t *ip, const uint8_t *t, size_t len)
{
    if (len < 20 || get16(t + 2) != HTTP_PORT || (t[12] >> 4) * 4u > len)
        return;
    uint8_t flags = t[13];
    uint32_t seq = get32(t + 4), ack = get32(t + 8);
    size_t dlen = len - (t[12] >> 4) * 4u;
    if (flags & TCP_RST)
        return;
    if (flags & TCP_SYN) {
        tcp_send(eth, ip, t, ISN, seq + 1, TCP_SYN | TCP_ACK, 0, 0);
        return;
    }
    if (!(flags & TCP_ACK) || ack - (ISN + 1) > sizeof http_response)
        return; /* not a connection we know: stay silent */
    if (dlen > 0 && ack == ISN + 1) {
        /* The request: answer it whole and close our side. */
        size_t rlen = sizeof http_response - 1;
        tcp_send(eth, ip, t, ISN + 1, seq + (uint32_t)dlen, TCP_ACK | TCP_PSH | TCP_FIN,
                 http_response, rlen);
    } else if (flags & TCP_FIN) {
        tcp_send(eth, ip, t, ack, seq + (uint32_t)dlen + 1, TCP_ACK, 0, 0);
    }
}

static void handle_ip(const uint8_t *eth, const uint8_t *ip, size_t len)
{
    if (len < 20 || (ip[0] >> 4) != 4 || (ip[0] & 15) * 4u > len || memcmp(ip + 16, my_ip, 4))
        return;
    size_t hl = (ip[0] & 15) * 4u, total = get16(ip + 2);
    if (total > len || total < hl || fold(sum16(ip, hl, 0)) != 0 || (get16(ip + 6) & 0x3fff))
        return; /* bad header or a fragment */
    const uint8_t *p = ip + hl;
    size_t plen = total - hl;
    if (ip[9] == 1)
        handle_icmp(eth, ip, p, plen);
    else if (ip[9] == 17)
        handle_udp(eth, ip, p, plen);
    else if (ip[9] == 6)
        handle_tcp(eth, ip, p, plen);
}

int guest_main(const char *cmdline)
{
    const struct mft_entry *e;
    const char *ip = g_arg(cmdline, "ip");
    if (!ip || !parse_ip(ip, my_ip)) {
        g_puts("net: usage: ip=A.B.C.D\n");
        return 2;
    }
    if (!g_device("service0", MFT_DEV_NET_BASIC, &nic, &e)) {
        g_puts("net: no service0 device\n");
        return 2;
    }
    memcpy(my_mac, e->u.net_basic.mac, 6);
    g_puts("net: serving on ");
    g_puts(ip);
    g_puts("\n");
    for (;;) {
        uint64_t ready = g_wait(1000000000ull);
        if (ready & CRIUS_SHUTDOWN_BIT) {
            g_puts("net: shutdown requested, exiting\n");
            return 0;
        }
        if (!(ready & (1ull << nic)))
            continue;
        uint64_t n;
        while (g_net_read(nic, rx, sizeof rx, &n) == G_OK) {
            if (n < 14)
                continue;
            uint16_t type = get16(rx + 12);
            if (type == ETH_ARP)
                handle_arp(rx + 14, n - 14);
            else if (type == ETH_IP)
                handle_ip(rx, rx + 14, n - 14);
        }
    }
}
