#ifndef WL_FUSE_NOTIFY_H
#define WL_FUSE_NOTIFY_H

#include <stddef.h>
#include <stdint.h>

/* Host-sent cache invalidations (unique 0) go to /dev/fuse from their own thread: the kernel
 * takes the directory's or the pages' locks to apply one, and a guest process may hold those
 * locks while it waits for a reply that only the relay thread can deliver. Written from the
 * relay, a notification could deadlock the mount. */

/* Starts the writer on a dup of `fuse_fd`; returns 0, or -1 (notifications are then dropped
 * and the host's cache timeouts alone apply). */
int fuse_notify_start(int fuse_fd);
/* Queues one whole notification; returns 0, or -1 when it was dropped (the queue is full:
 * bounded memory; or no writer runs), which the caller must report to the host. */
int fuse_notify_queue(const uint8_t *msg, size_t len);
/* Asks the writer to exit and close its descriptor (the relay is stopping). */
void fuse_notify_stop(void);

#endif
