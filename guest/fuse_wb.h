#ifndef WL_FUSE_WB_H
#define WL_FUSE_WB_H

#include <stddef.h>
#include <stdint.h>

/* Write-behind in the FUSE relay (relay thread only; docs/PROTOCOL.md "Write-behind in the
 * FUSE relay"). WRITE, RELEASE, RELEASEDIR and the SETATTRs whose result the relay can
 * predict are answered to the kernel at once, marked (WL_FUSE_RELAY_ANSWERED) and queued to
 * the host in batches; the host's replies to them are dropped here, and their first error
 * per node is what the node's next FLUSH (close) or FSYNC returns. */

#define WB_PASS 0  /* forward the request as usual (after wb_drain says the batch is out) */
#define WB_TAKEN 1 /* the request is handled here: answered, and/or queued in the batch */

/* A request just read from /dev/fuse; may answer the kernel, mark and queue the request. */
int wb_on_request(uint8_t *req, size_t len, int fuse_fd);
/* Writes the batch to the port once it must go: -1 on a port error, 1 while bytes that must
 * go first are still queued (EAGAIN: wait for POLLOUT), 0 when nothing must go first. */
int wb_drain(int port_fd);
/* Whether the batch must go out before anything else is read or written. */
int wb_wants_port(void);
/* The poll timeout: a batch waiting for more requests goes out after a short idle moment. */
int wb_poll_timeout(void);
/* That moment passed without a request: the batch goes out now. */
void wb_idle(void);
/* A whole message from the host: returns 1 when it was consumed here (the reply to a request
 * answered already, or one answered here with a write-behind error), 0 to relay it. */
int wb_on_host_message(const uint8_t *msg, size_t len, int fuse_fd);
/* A host notification was dropped: no attribute held here can be trusted. */
void wb_notify_lost(void);

#endif
