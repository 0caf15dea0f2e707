/* EXEC streams: start a process, move its I/O under credit flow control, report EXIT. */
#ifndef WL_EXEC_H
#define WL_EXEC_H

#include <stdint.h>
#include <sys/types.h>

#include "stream.h"

/* Returns -1 on a protocol error (malformed record), else 0 (reply already sent). */
int exec_start(uint32_t id, const uint8_t *payload, uint32_t len, int privileged);
/* -1: the host overran the window (protocol error). */
int exec_on_stdin(struct stream *s, const uint8_t *data, uint32_t len);
void exec_on_eof(struct stream *s);
void exec_on_signal(struct stream *s, uint32_t sig);
void exec_on_resize(struct stream *s, uint32_t rows, uint32_t cols);
void exec_on_close(struct stream *s);

void exec_on_output(struct stream *s, int fd);
void exec_on_stdin_writable(struct stream *s);
void exec_child_exited(pid_t pid, int status);
/* Sends EXIT and frees the stream once its rules are met. Returns how many ms until
 * it should be checked again, or -1 for "no deadline" (also when the stream is gone). */
int exec_check_done(struct stream *s);

#endif
