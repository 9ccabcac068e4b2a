/* The device modules crius-hvt is built with; the core names none. */
#include "unikernel/hvt/hvt.h"

extern const struct hvt_module hvt_module_net;
extern const struct hvt_module hvt_module_blk;

const struct hvt_module *const hvt_modules[] = { &hvt_module_net, &hvt_module_blk, NULL };
