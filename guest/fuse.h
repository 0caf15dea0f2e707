/* Raw FUSE relay: /dev/fuse <-> the wheellock.fuse virtio-serial port. The host speaks the
 * FUSE protocol (src/vfs); the agent only moves whole messages, never interprets them. */
#ifndef WL_FUSE_H
#define WL_FUSE_H

#include <stddef.h>
#include <stdint.h>

/* MOUNT (docs/PROTOCOL.md): mounts the host filesystem at every PATH of the request. Pumps
 * the relay itself until the mounts are done, then leaves it to a thread of its own, and
 * replies OK or ERROR naming the path that failed. Returns -1 on a malformed record. */
int fuse_mount_request(uint32_t id, const uint8_t *payload, uint32_t len, int privileged);
/* Readable (an eventfd) once the relay found its port removed (port.h); -1 without a relay.
 * The main loop polls it and then calls fuse_port_lost, which powers the VM off. */
int fuse_lost_fd(void);
void __attribute__((noreturn)) fuse_port_lost(void);

#endif
