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
/* Reads a small file whole (NUL-terminated), at most max bytes. Caller frees. */
char *read_small_file(const char *path, size_t max, size_t *len_out);

#endif
