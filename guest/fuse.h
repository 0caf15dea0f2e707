/* Raw FUSE relay: /dev/fuse <-> the wheellock.fuse virtio-serial port. The host speaks the
 * FUSE protocol (src/vfs); the agent only moves whole messages, never interprets them. */
#ifndef WL_FUSE_H
#define WL_FUSE_H

#include <stddef.h>
#include <stdint.h>

/* At boot, with wheellock.mounts=1, while /sys is still writable: opens the port and
 * /dev/fuse and mounts the one FUSE filesystem, whose INIT stays unanswered until MOUNT. */
void fuse_boot_mount(void);
/* Starts the relay of the filesystem mounted at boot (once; later calls return 0): from then
 * on the host answers its requests, INIT first. 0, or -1 with errno. */
int fuse_start_relay(void);
/* MOUNT (docs/PROTOCOL.md): starts the relay thread and binds every PATH of the request to
 * its subtree of the filesystem mounted at boot, then replies OK or ERROR naming the path
 * that failed. Returns -1 on a malformed record. */
int fuse_mount_request(uint32_t id, const uint8_t *payload, uint32_t len);
/* Readable (an eventfd) once the relay found its port removed (port.h); -1 without a relay.
 * The main loop polls it and then calls fuse_port_lost, which powers the VM off. */
int fuse_lost_fd(void);
void __attribute__((noreturn)) fuse_port_lost(void);

#endif
