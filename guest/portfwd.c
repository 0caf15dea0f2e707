#include "portfwd.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "proto.h"
#include "util.h"
#include "wire.h"

/* Room for the frame header in front of the data (wire_send_framed). */
static uint8_t iobuf[WL_HEADER_SIZE + WL_MAX_PAYLOAD];

int port_start(uint32_t id, const uint8_t *payload, uint32_t len)
{
	if (!rec_valid(payload, len))
		return -1;
	struct rec_it it;
	uint8_t tag;
	const uint8_t *v;
	uint32_t l, port = 0;
	int have = 0;
	rec_iter(&it, payload, len);
	while (rec_next(&it, &tag, &v, &l) == 1) {
		if (tag != T_PORT_FORWARD_PORT)
			continue;
		if (have || val_u32(v, l, &port) != 0) {
			wire_send_error(id, EINVAL, "bad PORT field");
			return 0;
		}
		have = 1;
	}
	if (!have || port == 0 || port > 65535) {
		wire_send_error(id, EINVAL, "PORT must be 1-65535");
		return 0;
	}
	struct stream *s = stream_new(id, S_PORT);
	if (!s) {
		wire_send_error(id, errno, "port forward: %s", strerror(errno));
		return 0;
	}
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		int err = errno;
		stream_free(s);
		wire_send_error(id, err, "socket: %s", strerror(err));
		return 0;
	}
	struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	s->out_fd = fd;
	s->pid = (pid_t)port; /* only for messages */
	s->connecting = 1;
	/* A single-threaded agent must never block on connect: finish it from poll(). */
	if (connect(fd, (struct sockaddr *)&sa, sizeof sa) != 0 && errno != EINPROGRESS) {
		int err = errno;
		stream_free(s);
		wire_send_error(id, err, "connect 127.0.0.1:%u: %s", port, strerror(err));
		return 0;
	}
	return 0;
}

void port_on_connect(struct stream *s)
{
	int err = 0;
	socklen_t el = sizeof err;
	if (getsockopt(s->out_fd, SOL_SOCKET, SO_ERROR, &err, &el) != 0)
		err = errno;
	if (err == 0 && (s->in_fd = dup(s->out_fd)) < 0)
		err = errno;
	uint32_t id = s->id;
	if (err != 0) {
		unsigned port = (unsigned)s->pid;
		stream_free(s);
		wire_send_error(id, err, "connect 127.0.0.1:%u: %s", port, strerror(err));
		return;
	}
	s->connecting = 0;
	wire_send(FT_STARTED, id, NULL, 0);
}

void port_on_output(struct stream *s)
{
	if (s->tx_window == 0 || s->out_fd < 0)
		return; /* without window the socket is not read: TCP backpressure does the rest */
	size_t want = s->tx_window < WL_MAX_PAYLOAD ? s->tx_window : WL_MAX_PAYLOAD;
	ssize_t n = read(s->out_fd, iobuf + WL_HEADER_SIZE, want);
	if (n < 0 && (errno == EAGAIN || errno == EINTR))
		return;
	if (n > 0) {
		s->tx_window -= (uint32_t)n;
		wire_send_framed(FT_STDOUT, s->id, iobuf, (size_t)n);
		return;
	}
	/* The service closed its end (or reset it): tell the host, keep the write side. */
	shutdown(s->out_fd, SHUT_RD);
	close(s->out_fd);
	s->out_fd = -1;
	wire_send(FT_EOF, s->id, NULL, 0);
}

void port_on_eof(struct stream *s)
{
	s->eof_requested = 1;
	if (s->in_len == 0 && s->in_fd >= 0) {
		shutdown(s->in_fd, SHUT_WR);
		close(s->in_fd);
		s->in_fd = -1;
	}
}

int port_check_done(struct stream *s)
{
	if (s->connecting || s->out_fd >= 0)
		return -1;
	/* The host's data may still be draining into the socket. */
	if (s->in_fd >= 0 && !(s->stdin_broken || (s->eof_requested && s->in_len == 0)))
		return -1;
	uint32_t id = s->id;
	stream_free(s);
	wire_send(FT_OK, id, NULL, 0);
	return -1;
}
