#include "wire.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>
#include <unistd.h>

#include "port.h"
#include "proto.h"
#include "util.h"

static const struct port *port;
/* Stamped on every frame we send (docs/PROTOCOL.md "Session token"); 0 until CONFIGURE. */
static uint32_t session_token;
/* Room for two maximal frames so a read never has to stop short of a whole frame. */
#define INBUF_SIZE (2 * (WL_HEADER_SIZE + WL_MAX_PAYLOAD))
static uint8_t inbuf[INBUF_SIZE];
static size_t in_start, in_end;

uint32_t get_be32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

void put_be32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)(v >> 24);
	p[1] = (uint8_t)(v >> 16);
	p[2] = (uint8_t)(v >> 8);
	p[3] = (uint8_t)v;
}

void wire_init(const struct port *control)
{
	port = control;
}

void wire_set_token(uint32_t token)
{
	session_token = token;
}

static void put_header(uint8_t *hdr, uint8_t type, uint32_t stream, size_t len)
{
	hdr[0] = WL_MAGIC;
	hdr[1] = type;
	hdr[2] = hdr[3] = 0;
	put_be32(hdr + 4, stream);
	put_be32(hdr + 8, (uint32_t)len);
	put_be32(hdr + 12, session_token);
}

/* Writes every iovec whole. The fd blocks while the host is away, so an error means the port
 * itself is broken (ENODEV: removed); a frame cut short cannot be resumed either. */
static void send_all(struct iovec *v, int cnt)
{
	while (cnt > 0) {
		ssize_t n = writev(port->fd, v, cnt);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			port_lost(port, strerror(errno));
		}
		while (cnt > 0 && (size_t)n >= v->iov_len) {
			n -= (ssize_t)v->iov_len;
			v++;
			cnt--;
		}
		if (cnt > 0) {
			v->iov_base = (char *)v->iov_base + n;
			v->iov_len -= (size_t)n;
		}
	}
}

int wire_send(uint8_t type, uint32_t stream, const void *payload, size_t len)
{
	uint8_t hdr[WL_HEADER_SIZE];
	put_header(hdr, type, stream, len);
	struct iovec iov[2] = {{hdr, sizeof hdr}, {(void *)payload, len}};
	send_all(iov, len ? 2 : 1);
	return 0;
}

int wire_send_framed(uint8_t type, uint32_t stream, uint8_t *frame, size_t len)
{
	put_header(frame, type, stream, len);
	struct iovec iov = {frame, WL_HEADER_SIZE + len};
	send_all(&iov, 1);
	return 0;
}

int wire_send_u32(uint8_t type, uint32_t stream, uint32_t value)
{
	uint8_t b[4];
	put_be32(b, value);
	return wire_send(type, stream, b, 4);
}

void wire_send_error(uint32_t stream, int err, const char *fmt, ...)
{
	char msg[1024];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	uint8_t buf[1100];
	struct rec r;
	rec_init(&r, buf, sizeof buf);
	rec_str(&r, T_ERROR_MESSAGE, msg);
	if (err > 0)
		rec_u32(&r, T_ERROR_ERRNO, (uint32_t)err);
	wire_send(FT_ERROR, stream, buf, r.len);
}

long wire_fill(void)
{
	if (in_start > 0 && in_start == in_end)
		in_start = in_end = 0;
	if (in_end == INBUF_SIZE) {
		/* Compact only when the tail is full: keeps copying rare. */
		memmove(inbuf, inbuf + in_start, in_end - in_start);
		in_end -= in_start;
		in_start = 0;
	}
	for (;;) {
		ssize_t n = read(port->fd, inbuf + in_end, INBUF_SIZE - in_end);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == EAGAIN)
			return 1; /* spurious wakeup; not EOF */
		if (n > 0)
			in_end += (size_t)n;
		return n;
	}
}

static int known_host_type(uint8_t t)
{
	switch (t) {
	case FT_CONFIGURE: case FT_POWEROFF: case FT_PING: case FT_NETWORK_SETUP: case FT_ATTRIBUTE:
	case FT_USAGE: case FT_MOUNT: case FT_EXEC:
	case FT_STDIN:
	case FT_EOF: case FT_SIGNAL: case FT_RESIZE: case FT_CREDIT: case FT_CLOSE:
	case FT_FILE_WRITE: case FT_FILE_READ: case FT_FILE_LIST: case FT_FILE_STAT:
	case FT_MKDIR: case FT_REMOVE: case FT_PORT_FORWARD: case FT_DISK_MOUNT:
		return 1;
	default:
		return 0;
	}
}

int wire_next(struct frame *out)
{
	size_t avail = in_end - in_start;
	if (avail < WL_HEADER_SIZE)
		goto need_more;
	const uint8_t *h = inbuf + in_start;
	uint32_t len = get_be32(h + 8);
	/* The host sends no token (0): it is the guest's frames the token vouches for. */
	if (h[0] != WL_MAGIC || h[2] != 0 || h[3] != 0 || len > WL_MAX_PAYLOAD ||
	    !known_host_type(h[1]) || get_be32(h + 12) != 0) {
		logmsg("protocol error: bad frame header (magic %#x type %#x len %u)", h[0], h[1],
		       len);
		return -1;
	}
	if (avail < WL_HEADER_SIZE + len)
		goto need_more;
	out->type = h[1];
	out->stream = get_be32(h + 4);
	out->len = len;
	out->payload = h + WL_HEADER_SIZE;
	in_start += WL_HEADER_SIZE + len;
	return 1;
need_more:
	/* Make sure a whole frame fits before the end of the buffer. */
	if (in_start > 0 && INBUF_SIZE - in_start < WL_HEADER_SIZE + WL_MAX_PAYLOAD) {
		memmove(inbuf, inbuf + in_start, avail);
		in_start = 0;
		in_end = avail;
	}
	return 0;
}

void rec_init(struct rec *r, uint8_t *buf, size_t cap)
{
	r->buf = buf;
	r->len = 0;
	r->cap = cap;
	r->overflow = 0;
}

void rec_bytes(struct rec *r, uint8_t tag, const void *v, size_t len)
{
	if (r->overflow || len > UINT32_MAX || r->cap - r->len < WL_RECORD_ENTRY_HEADER + len) {
		r->overflow = 1;
		return;
	}
	r->buf[r->len] = tag;
	put_be32(r->buf + r->len + 1, (uint32_t)len);
	if (len)
		memcpy(r->buf + r->len + WL_RECORD_ENTRY_HEADER, v, len);
	r->len += WL_RECORD_ENTRY_HEADER + len;
}

void rec_str(struct rec *r, uint8_t tag, const char *s)
{
	rec_bytes(r, tag, s, strlen(s));
}

void rec_u8(struct rec *r, uint8_t tag, uint8_t v)
{
	rec_bytes(r, tag, &v, 1);
}

void rec_u32(struct rec *r, uint8_t tag, uint32_t v)
{
	uint8_t b[4];
	put_be32(b, v);
	rec_bytes(r, tag, b, 4);
}

void rec_u64(struct rec *r, uint8_t tag, uint64_t v)
{
	uint8_t b[8];
	put_be32(b, (uint32_t)(v >> 32));
	put_be32(b + 4, (uint32_t)v);
	rec_bytes(r, tag, b, 8);
}

void rec_iter(struct rec_it *it, const uint8_t *buf, size_t len)
{
	it->p = buf;
	it->end = buf + len;
}

int rec_next(struct rec_it *it, uint8_t *tag, const uint8_t **val, uint32_t *len)
{
	size_t left = (size_t)(it->end - it->p);
	if (left == 0)
		return 0;
	if (left < WL_RECORD_ENTRY_HEADER)
		return -1;
	uint32_t l = get_be32(it->p + 1);
	if (l > left - WL_RECORD_ENTRY_HEADER)
		return -1;
	*tag = it->p[0];
	*len = l;
	*val = it->p + WL_RECORD_ENTRY_HEADER;
	it->p += WL_RECORD_ENTRY_HEADER + l;
	return 1;
}

int rec_valid(const uint8_t *buf, size_t len)
{
	struct rec_it it;
	uint8_t tag;
	const uint8_t *v;
	uint32_t l;
	int rc;
	rec_iter(&it, buf, len);
	while ((rc = rec_next(&it, &tag, &v, &l)) == 1)
		;
	return rc == 0;
}

int val_u8(const uint8_t *v, uint32_t len, uint8_t *out)
{
	if (len != 1)
		return -1;
	*out = v[0];
	return 0;
}

int val_u32(const uint8_t *v, uint32_t len, uint32_t *out)
{
	if (len != 4)
		return -1;
	*out = get_be32(v);
	return 0;
}

int val_u64(const uint8_t *v, uint32_t len, uint64_t *out)
{
	if (len != 8)
		return -1;
	*out = (uint64_t)get_be32(v) << 32 | get_be32(v + 4);
	return 0;
}

int rec_find_u32(const uint8_t *buf, size_t len, uint8_t want, uint32_t *out)
{
	struct rec_it it;
	uint8_t tag;
	const uint8_t *v;
	uint32_t l;
	int found = 0;
	rec_iter(&it, buf, len);
	while (found >= 0 && rec_next(&it, &tag, &v, &l) == 1)
		if (tag == want)
			found = val_u32(v, l, out) == 0 ? 1 : -1;
	return found;
}

char *val_strdup(const uint8_t *v, uint32_t len)
{
	if (memchr(v, 0, len))
		return NULL;
	char *s = malloc((size_t)len + 1);
	if (!s)
		return NULL;
	memcpy(s, v, len);
	s[len] = '\0';
	return s;
}
