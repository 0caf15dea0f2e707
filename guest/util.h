/* Small helpers shared by every part of the agent: console logging, time, fd tweaks. */
#ifndef WL_UTIL_H
#define WL_UTIL_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define AGENT_NAME "wheellock-agent/0.1"

void log_open_console(void);
void logmsg(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

uint64_t now_ms(void); /* CLOCK_MONOTONIC */
int set_nonblock(int fd);
int write_all(int fd, const void *buf, size_t len);
/* mkdir -p; an existing directory (or symlink to one) is fine. */
int mkdir_p(const char *path, mode_t mode);
/* mkdir -p of the directory that holds path, 0755 (nothing for a path in /). */
int mkdir_parents(const char *path);
/* Replaces path (which may be a symlink in the image: the link itself is replaced) with a
 * regular 0644 file holding data, through a temporary file renamed over it. */
int replace_file(const char *path, const void *data, size_t len);
/* Reads a small regular file whole (NUL-terminated), at most max bytes. Caller frees. NULL
 * for anything else (a FIFO, a device, a symlink: opened without blocking or following). */
char *read_small_file(const char *path, size_t max, size_t *len_out);
/* The same from an open descriptor (left open); NULL only when out of memory. */
char *read_small_fd(int fd, size_t max, size_t *len_out);
/* Replaces bytes that are not well-formed UTF-8 with '?' (in place). */
void make_utf8(char *s, size_t len);

#endif
