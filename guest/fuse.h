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

#endif
