/* The guest's manifest, as the tender sees it: validated once, then filled
 * in with the host resources given on the command line. */
#ifndef CRIUS_UNIKERNEL_CORE_MFT_H
#define CRIUS_UNIKERNEL_CORE_MFT_H

#include <stddef.h>

#include "unikernel/core/abi/mft_abi.h"
#include "unikernel/core/terr.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Validates untrusted manifest bytes (the note payload). */
int mft_validate(const void *payload, size_t size, struct terr *e);

/* The entry named `name` of type `type`, or NULL. */
struct mft_entry *mft_find(struct mft *m, const char *name, uint32_t type);

const char *mft_type_name(uint32_t type);

#ifdef __cplusplus
}
#endif

#endif
