/* The table of open streams (one per host operation still in progress). */
#ifndef WL_STREAM_H
#define WL_STREAM_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define MAX_STREAMS 1024

enum stream_kind { S_EXEC, S_FILE_WRITE, S_FILE_READ, S_PORT };

struct stream {
	uint32_t id;
	enum stream_kind kind;
	/* guest->host window (STDOUT+STDERR), refilled by the host's CREDIT. */
	uint32_t tx_window;
	/* host->guest window we still grant; the host must not send beyond it. */
	uint32_t rx_window;

	/* exec */
	pid_t pid; /* also the process group id (setsid) */
	int tty;
	int out_fd, err_fd, in_fd; /* parent ends; -1 once closed */
	int exited, exit_code, exit_signal;
	uint64_t idle_since_ms; /* last output read (or exit), for the 100 ms drain rule */
	int eof_requested;      /* host sent EOF; close stdin once the buffer drains */
	int stdin_broken;       /* child closed its stdin: discard (but credit) further data */
	uint8_t *inbuf;         /* stdin bytes the child has not taken yet */
	size_t in_head, in_len;

	/* port forward: the socket is out_fd, a dup of it in_fd (closing that one alone must
	 * not end the read side) */
	int connecting;

	/* files */
	int file_fd;
	uint64_t file_bytes;
};

struct stream *stream_find(uint32_t id);
/* NULL (errno set) if the id is in use or the table is full. */
struct stream *stream_new(uint32_t id, enum stream_kind kind);
/* Closes fds, frees buffers, and forgets the stream; sends nothing. */
void stream_free(struct stream *s);
size_t stream_count(void);
struct stream *stream_at(size_t i);

#endif
