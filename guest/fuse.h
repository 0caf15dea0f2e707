/* Raw FUSE relay: /dev/fuse <-> the wheellock.fuse virtio-serial port. The host speaks the
 * FUSE protocol (src/vfs); the agent only moves whole messages, never interprets them. */
#ifndef WL_FUSE_H
#define WL_FUSE_H

#include <poll.h>
#include <stddef.h>

/* Mounts the host filesystem at every path of wheellock.fuse=/a:/b (none: a no-op). Pumps
 * the relay itself until the mounts are done, so they exist before the agent says hello.
 * Failures are logged, never fatal: exec must still work. */
void fuse_setup(void);
/* Adds the relay's fds to a poll set; returns how many (0, 1 or 2) were added. */
size_t fuse_poll_fds(struct pollfd *pfd);
/* Moves what the poll reported for the entries fuse_poll_fds added at pfd. */
void fuse_on_events(const struct pollfd *pfd, size_t n);

#endif
