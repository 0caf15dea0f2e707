/* Frames and TLV records (docs/PROTOCOL.md). Sending blocks: the host always drains the port. */
#ifndef WL_WIRE_H
#define WL_WIRE_H

#include <stddef.h>
#include <stdint.h>

struct frame {
	uint8_t type;
	uint32_t stream;
	uint32_t len;
	const uint8_t *payload;
};

struct port;
void wire_init(const struct port *control);
/* The session token for every frame from now on (CONFIGURE's TOKEN). */
void wire_set_token(uint32_t token);
/* Sends one frame; len must be <= WL_MAX_PAYLOAD. Returns 0; a port that fails to take it
 * ends the VM (port_lost), since a stream cut mid-frame cannot be resumed. */
int wire_send(uint8_t type, uint32_t stream, const void *payload, size_t len);
/* The same from a buffer that holds the payload at frame + WL_HEADER_SIZE: the header is
 * written in front of it and the frame leaves in one write. The virtio-console port turns
 * every write() into its own buffer, a QEMU exit and a host socket write, so a separate
 * 16-byte header costs as much as a payload chunk. */
int wire_send_framed(uint8_t type, uint32_t stream, uint8_t *frame, size_t len);
int wire_send_u32(uint8_t type, uint32_t stream, uint32_t value);
/* Terminal ERROR frame on a stream. err may be 0 (no ERRNO field). */
void wire_send_error(uint32_t stream, int err, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* Reads what the port has into the input buffer (call when poll says POLLIN).
 * Returns bytes read, 0 when the host end is not connected (or the port is gone: check
 * port_alive), -1 on error. */
long wire_fill(void);
/* Takes the next complete frame from the input buffer: 1 = got one, 0 = need more,
 * -1 = protocol error (message logged). The frame payload is valid until the next call. */
int wire_next(struct frame *out);

/* Record builder writing into caller memory; overflow is sticky and checked once at the end. */
struct rec {
	uint8_t *buf;
	size_t len, cap;
	int overflow;
};
void rec_init(struct rec *r, uint8_t *buf, size_t cap);
void rec_bytes(struct rec *r, uint8_t tag, const void *v, size_t len);
void rec_str(struct rec *r, uint8_t tag, const char *s);
void rec_u8(struct rec *r, uint8_t tag, uint8_t v);
void rec_u32(struct rec *r, uint8_t tag, uint32_t v);
void rec_u64(struct rec *r, uint8_t tag, uint64_t v);

/* Record reader. */
struct rec_it {
	const uint8_t *p, *end;
};
void rec_iter(struct rec_it *it, const uint8_t *buf, size_t len);
/* 1 = entry, 0 = end, -1 = truncated (a protocol error). */
int rec_next(struct rec_it *it, uint8_t *tag, const uint8_t **val, uint32_t *len);
/* Checks a record is well-formed as a whole, so handlers can iterate without error paths. */
int rec_valid(const uint8_t *buf, size_t len);
/* Field decoders: -1 when the width is wrong or a string holds NUL. */
int val_u8(const uint8_t *v, uint32_t len, uint8_t *out);
int val_u32(const uint8_t *v, uint32_t len, uint32_t *out);
int val_u64(const uint8_t *v, uint32_t len, uint64_t *out);
/* The last field with this tag of a well-formed record, as a u32: 1 = found, 0 = absent,
 * -1 = not 4 bytes wide. */
int rec_find_u32(const uint8_t *buf, size_t len, uint8_t tag, uint32_t *out);
/* Copies a string value into a new NUL-terminated heap string. */
char *val_strdup(const uint8_t *v, uint32_t len);

uint32_t get_be32(const uint8_t *p);
void put_be32(uint8_t *p, uint32_t v);

#endif
