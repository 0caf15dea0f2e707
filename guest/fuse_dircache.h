/* The FUSE relay's directory cache: LOOKUPs in a directory whose complete listing the host
 * gave the relay are answered here, without a round trip (docs/PROTOCOL.md, "Directory
 * listings held by the FUSE relay"). Relay thread only. */
#ifndef WL_FUSE_DIRCACHE_H
#define WL_FUSE_DIRCACHE_H

#include <stddef.h>
#include <stdint.h>

/* A request just read from /dev/fuse sits at buf[0..len); returns how many bytes of buf go
 * to the host now: 0 when the relay answered it itself (reply written to fuse_fd) and has
 * nothing of its own to send, else the request (unless answered) followed by whatever the
 * cache has queued for the host (forgets, listing requests and releases) that fits in cap. */
size_t dircache_on_request(uint8_t *buf, size_t len, size_t cap, int fuse_fd);
/* Fills buf with the messages queued for the host (0: none); when the relay has nothing
 * of the kernel's to send. */
size_t dircache_outgoing(uint8_t *buf, size_t cap);
/* True while messages wait for the port; also drops expired listings now and then. */
int dircache_has_outgoing(void);
/* A whole message from the host: 1 when it was the cache's own (consumed: it must not go
 * to the kernel), 0 otherwise. A kernel notification is looked at (what it touches is
 * dropped here) and left for the caller to pass on. */
int dircache_on_host_message(const uint8_t *msg, size_t len);
/* The poll timeout while listings are held (to expire them), else -1. */
int dircache_poll_timeout_ms(void);

#endif
