#include "unikernel/core/devices.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/if.h>
#include <linux/if_tun.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include "unikernel/core/mft.h"

int tap_open(const char *ifname, struct terr *e)
{
    if (strlen(ifname) >= IFNAMSIZ)
        return terr_set(e, "tap '%s': name longer than %d characters", ifname, IFNAMSIZ - 1);
    /* TUNSETIFF would create a missing interface; insist that it exists. */
    int sock = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (sock < 0)
        return terr_errno(e, "tap '%s': socket", ifname);
    struct ifreq ifr;
    memset(&ifr, 0, sizeof ifr);
    strcpy(ifr.ifr_name, ifname);
    int rc = ioctl(sock, SIOCGIFFLAGS, &ifr);
    close(sock);
    if (rc < 0)
        return terr_errno(e, "tap '%s': no such interface", ifname);

    int fd = open("/dev/net/tun", O_RDWR | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0)
        return terr_errno(e, "tap '%s': open /dev/net/tun", ifname);
    memset(&ifr, 0, sizeof ifr);
    strcpy(ifr.ifr_name, ifname);
    ifr.ifr_flags = IFF_TAP | IFF_NO_PI;
    if (ioctl(fd, TUNSETIFF, &ifr) < 0) {
        terr_errno(e, "tap '%s': attach (TUNSETIFF)", ifname);
        close(fd);
        return -1;
    }
    if (strcmp(ifr.ifr_name, ifname) != 0) {
        close(fd);
        return terr_set(e, "tap '%s': kernel attached '%s' instead", ifname, ifr.ifr_name);
    }
    return fd;
}

int block_open(const char *path, uint32_t block_size, uint64_t *capacity, struct terr *e)
{
    int fd = open(path, O_RDWR | O_CLOEXEC);
    if (fd < 0)
        return terr_errno(e, "block file %s: open", path);
    struct stat st;
    if (fstat(fd, &st) < 0) {
        terr_errno(e, "block file %s: stat", path);
        close(fd);
        return -1;
    }
    off_t size = st.st_size;
    if (S_ISBLK(st.st_mode))
        size = lseek(fd, 0, SEEK_END);
    else if (!S_ISREG(st.st_mode)) {
        close(fd);
        return terr_set(e, "block file %s: not a regular file or block device", path);
    }
    if (size < (off_t)block_size) {
        close(fd);
        return terr_set(e, "block file %s: Backing storage must be at least 1 block "
                        "(%u bytes) in size, it has %lld", path, block_size, (long long)size);
    }
    if (size % block_size != 0) {
        close(fd);
        return terr_set(e, "block file %s: Backing storage size must be block aligned "
                        "(%u bytes), it has %lld", path, block_size, (long long)size);
    }
    *capacity = (uint64_t)size;
    return fd;
}

static int random_mac(uint8_t mac[6], struct terr *e)
{
    if (getrandom(mac, 6, 0) != 6)
        return terr_errno(e, "generate MAC address: getrandom");
    mac[0] = (mac[0] & 0xfe) | 0x02; /* unicast, locally administered */
    return 0;
}

int devices_attach(struct mft *m, const struct tender_args *a, struct terr *e)
{
    for (unsigned i = 0; i < a->ndev; i++)
        if (!mft_find(m, a->dev[i].name, a->dev[i].type))
            return terr_set(e, "--%s:%s given, but the guest declares no %s device '%s'",
                            mft_type_name(a->dev[i].type), a->dev[i].name,
                            mft_type_name(a->dev[i].type), a->dev[i].name);
    for (unsigned i = 1; i < m->entries; i++) {
        bool given = false;
        for (unsigned j = 0; j < a->ndev; j++)
            if (a->dev[j].type == m->e[i].type && strcmp(a->dev[j].name, m->e[i].name) == 0)
                given = true;
        if (!given)
            return terr_set(e, "the guest declares %s device '%s', but no --%s:%s=%s was given",
                            mft_type_name(m->e[i].type), m->e[i].name,
                            mft_type_name(m->e[i].type), m->e[i].name,
                            m->e[i].type == MFT_DEV_NET_BASIC ? "TAP" : "FILE");
    }
    for (unsigned i = 0; i < a->ndev; i++) {
        const struct dev_request *d = &a->dev[i];
        struct mft_entry *x = mft_find(m, d->name, d->type);
        int fd;
        if (d->type == MFT_DEV_NET_BASIC) {
            fd = tap_open(d->path, e);
            if (fd < 0)
                return terr_wrap(e, "attach net device '%s'", d->name);
            if (d->has_mac)
                memcpy(x->u.net_basic.mac, d->mac, 6);
            else if (random_mac(x->u.net_basic.mac, e) < 0)
                return terr_wrap(e, "attach net device '%s'", d->name);
            x->u.net_basic.mtu = DEVICES_NET_MTU;
        } else {
            uint32_t bs = d->block_size ? d->block_size : DEVICES_DEFAULT_BLOCK_SIZE;
            uint64_t capacity;
            fd = block_open(d->path, bs, &capacity, e);
            if (fd < 0)
                return terr_wrap(e, "attach block device '%s'", d->name);
            x->u.block_basic.capacity = capacity;
            x->u.block_basic.block_size = (uint16_t)bs;
        }
        x->b.data = 0;
        x->b.hostfd = fd;
        x->attached = true;
    }
    return 0;
}
