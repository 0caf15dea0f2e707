/* CONFIGURE: session token, wall clock, entropy and hostname. */
#ifndef WL_CONFIG_H
#define WL_CONFIG_H

#include <stdint.h>

/* Returns -1 on a protocol error (malformed record), else 0 (reply sent). */
int config_apply(uint32_t id, const uint8_t *payload, uint32_t len);
/* At boot: moves /etc/hosts and /etc/hostname onto tmpfs files bind-mounted over them, so
 * CONFIGURE rewrites them without ext4 or overlayfs (see config.c). Failures only log. */
void config_prepare_etc_files(void);
/* sethostname + /etc/hostname + /etc/hosts; 0 or -1 with errno. */
int config_set_hostname(const char *name);

#endif
