/* What the agent last learned about a process it was asked about (attrib.c): its exec and its
 * command line, so that a client's next connection costs neither /proc read. */
#ifndef WL_PROCMEMO_H
#define WL_PROCMEMO_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* Whose a process is: its exec (attrib.c's exec_of: > 0 an exec's stream id, 0 no exec's) and
 * the id of its cgroup2 cgroup (0 where the agent has no hierarchy), which the SYN stamp
 * carries too (synstamp.h). */
struct proc_owner {
	long exec;
	uint64_t cgroup;
};

/* 1 when pid is remembered and is still the process, running the program, it was when
 * remembered: *owner and its command line (*argv, *argv_len bytes, NULs between arguments)
 * are then that process's. 0: ask /proc (and procmemo_put what it says). */
int procmemo_get(pid_t pid, struct proc_owner *owner, const char **argv, size_t *argv_len);
/* On a miss, before reading /proc about pid: the file procmemo_put keeps (or -1). Opened
 * first, so that a process replacing its program while it is being read is read again next
 * time. */
int procmemo_open(pid_t pid);
/* Remembers pid's owner and command line (owner->exec < 0, gone: closes memfd only); forgets
 * the least recently used process if full. */
void procmemo_put(pid_t pid, int memfd, const struct proc_owner *owner, const char *argv,
		  size_t argv_len);

#endif
