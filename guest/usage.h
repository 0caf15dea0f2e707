/* USAGE: what the host cannot see from outside the VM (docs/PROTOCOL.md "USAGE"). */
#ifndef WL_USAGE_H
#define WL_USAGE_H

#include <stdint.h>

/* Replies OK with the bytes written to the guest's block devices since boot. */
int usage_report(uint32_t id);

#endif
