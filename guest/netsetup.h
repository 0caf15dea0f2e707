/* NETWORK_SETUP: the intercept CA (its own file, appended to the system bundles) and the
 * /etc/hosts lines of --add-host, in one request (docs/PROTOCOL.md). */
#ifndef WL_NETSETUP_H
#define WL_NETSETUP_H

#include <stdint.h>

/* Returns -1 on a protocol error (malformed record), else 0 (OK or ERROR sent). */
int netsetup_apply(uint32_t id, const uint8_t *payload, uint32_t len);

#endif
