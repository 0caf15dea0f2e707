/* PORT_FORWARD streams: a TCP connection to 127.0.0.1:PORT in the guest, relayed as
 * STDIN/STDOUT data under the same credits as exec (docs/PROTOCOL.md). */
#ifndef WL_PORTFWD_H
#define WL_PORTFWD_H

#include <stdint.h>

#include "stream.h"

/* -1 on a protocol error (malformed record), else 0 (connecting, or ERROR already sent). */
int port_start(uint32_t id, const uint8_t *payload, uint32_t len);
/* The socket became writable while connecting: STARTED, or ERROR and the stream is gone. */
void port_on_connect(struct stream *s);
void port_on_output(struct stream *s);
void port_on_eof(struct stream *s);
/* Sends OK and frees the stream once both directions are finished. Always returns -1. */
int port_check_done(struct stream *s);

#endif
