#include "unikernel/core/mft.h"

#include <string.h>

const char *mft_type_name(uint32_t type)
{
    switch (type) {
    case MFT_DEV_BLOCK_BASIC: return "block";
    case MFT_DEV_NET_BASIC: return "net";
    default: return "unknown";
    }
}

int mft_validate(const void *payload, size_t size, struct terr *e)
{
    const struct mft *m = payload;
    if (size < sizeof *m)
        return terr_set(e, "manifest: %zu bytes is too short", size);
    if (m->version != MFT_VERSION)
        return terr_set(e, "manifest: version %u, expected %u", m->version, MFT_VERSION);
    if (m->entries < 1 || m->entries > MFT_MAX_ENTRIES)
        return terr_set(e, "manifest: %u entries, expected 1 to %u", m->entries,
                        MFT_MAX_ENTRIES);
    if (size != sizeof *m + m->entries * sizeof(struct mft_entry))
        return terr_set(e, "manifest: size %zu does not match %u entries", size, m->entries);
    if (m->e[0].type != MFT_RESERVED_FIRST || m->e[0].name[0] != 0)
        return terr_set(e, "manifest: entry 0 is not the reserved entry");
    for (unsigned i = 1; i < m->entries; i++) {
        const struct mft_entry *x = &m->e[i];
        if (memchr(x->name, 0, MFT_NAME_SIZE) == NULL)
            return terr_set(e, "manifest: entry %u: name is not NUL-terminated within %d characters",
                            i, MFT_NAME_MAX);
        if (x->name[0] == 0)
            return terr_set(e, "manifest: entry %u: empty name", i);
        if (x->type != MFT_DEV_BLOCK_BASIC && x->type != MFT_DEV_NET_BASIC)
            return terr_set(e, "manifest: entry %u (%s): unknown device type %u", i, x->name,
                            x->type);
        /* Read as a byte: the image may hold any value where a bool goes. */
        if (*(const uint8_t *)&x->attached != 0)
            return terr_set(e, "manifest: entry %u (%s): marked attached in the image", i,
                            x->name);
        for (unsigned j = 1; j < i; j++)
            if (strcmp(m->e[j].name, x->name) == 0)
                return terr_set(e, "manifest: entry %u: name '%s' declared twice", i, x->name);
    }
    return 0;
}

struct mft_entry *mft_find(struct mft *m, const char *name, uint32_t type)
{
    for (unsigned i = 1; i < m->entries; i++)
        if (m->e[i].type == type && strcmp(m->e[i].name, name) == 0)
            return &m->e[i];
    return NULL;
}
