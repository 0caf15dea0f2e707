/* DISK_MOUNT: the user's extra disks of a VM that may be saved or was restored. */
#ifndef WL_DISKS_H
#define WL_DISKS_H

#include <stdint.h>

/* DISK_MOUNT (docs/PROTOCOL.md): record i (PATH, or READONLY_PATH) mounts extra disk i, its
 * device probed afresh first (boot.c). Replies OK, or ERROR naming the disk that failed.
 * Returns -1 on a malformed record. */
int disk_mount_request(uint32_t id, const uint8_t *payload, uint32_t len, int privileged);

#endif
