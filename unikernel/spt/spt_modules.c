/* The device modules crius-spt is built with; the core names none. */
#include "unikernel/spt/spt.h"

extern const struct spt_module spt_module_net;
extern const struct spt_module spt_module_blk;

const struct spt_module *const spt_modules[] = { &spt_module_net, &spt_module_blk, NULL };
