/* Raw FUSE relay: /dev/fuse <-> the wheellock.fuse virtio-serial port. The host speaks the
 * FUSE protocol (src/vfs); the agent only moves whole messages, never interprets them. */
#ifndef WL_FUSE_H
#define WL_FUSE_H

#include <stddef.h>

/* Mounts the host filesystem at every path of wheellock.fuse=/a:/b (none: a no-op). Pumps
 * the relay itself until the mounts are done, so they exist before the agent says hello,
 * then leaves it to a thread of its own. Failures are logged, never fatal: exec must still
 * work. */
void fuse_setup(void);
/* Readable (an eventfd) once the relay found its port removed (port.h); -1 without a relay.
 * The main loop polls it and then calls fuse_port_lost, which powers the VM off. */
int fuse_lost_fd(void);
void __attribute__((noreturn)) fuse_port_lost(void);

#endif
