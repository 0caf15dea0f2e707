#include "procmemo.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

/* Processes remembered: the recent socket owners (sockowner.c keeps 8) and a few more. */
#define MEMO_SLOTS 16
/* As much of a command line as attrib.c reports. */
#define MEMO_ARGV_BYTES 512

/*
 * Each memo keeps the process's /proc/PID/mem open. That file is bound to the address space
 * (mm) the process had when it was opened, and reading it says whether the process still has
 * it: once the process has exited or replaced its program (execve gives it a new mm, and a
 * command line can only change that way, or by the process writing over its own), the read
 * finds the old mm unused and returns 0 (end of file); while the mm lives, a read at address
 * 0 (never mapped) fails with EIO. One syscall instead of opening and reading
 * /proc/PID/cgroup and /proc/PID/cmdline: under TCG each /proc file costs ~0.3 ms.
 * A pid reused by another process has another mm, so the check also catches that. The exec
 * cannot change while the mm lives: a process leaves its exec's cgroup only by a write to
 * cgroup.procs in the agent's detached hierarchy (privileged commands could mount their own
 * and move: then the memo keeps the exec the process was first seen in).
 */
struct memo {
	pid_t pid; /* 0 = free */
	int memfd;
	struct proc_owner owner;
	unsigned long used; /* for least recently used */
	size_t argv_len;
	char argv[MEMO_ARGV_BYTES];
};

static struct memo memos[MEMO_SLOTS];
static unsigned long clock_ticks;

static void drop(struct memo *m)
{
	if (m->memfd >= 0)
		close(m->memfd);
	m->pid = 0;
	m->memfd = -1;
}

/* 1 while the mm the memo's file was opened on still lives. */
static int same_mm(int memfd)
{
	char c;
	ssize_t n = pread(memfd, &c, 1, 0);
	return n > 0 || (n < 0 && errno == EIO);
}

int procmemo_get(pid_t pid, struct proc_owner *owner, const char **argv, size_t *argv_len)
{
	for (size_t i = 0; i < MEMO_SLOTS; i++) {
		struct memo *m = &memos[i];
		if (m->pid != pid || pid <= 0)
			continue;
		if (!same_mm(m->memfd)) {
			drop(m);
			return 0;
		}
		m->used = ++clock_ticks;
		*owner = m->owner;
		*argv = m->argv;
		*argv_len = m->argv_len;
		return 1;
	}
	return 0;
}

int procmemo_open(pid_t pid)
{
	char path[64];
	snprintf(path, sizeof path, "/proc/%d/mem", pid);
	return pid > 0 ? open(path, O_RDONLY | O_CLOEXEC) : -1;
}

void procmemo_put(pid_t pid, int memfd, const struct proc_owner *owner, const char *argv,
		  size_t argv_len)
{
	if (memfd < 0)
		return;
	if (pid <= 0 || owner->exec < 0 || argv_len > MEMO_ARGV_BYTES) {
		close(memfd);
		return;
	}
	struct memo *slot = &memos[0];
	for (size_t i = 0; i < MEMO_SLOTS; i++) {
		struct memo *m = &memos[i];
		if (m->pid == pid || m->pid == 0) {
			slot = m;
			break;
		}
		if (m->used < slot->used)
			slot = m;
	}
	if (slot->pid != 0)
		drop(slot);
	*slot = (struct memo){.pid = pid, .memfd = memfd, .owner = *owner, .used = ++clock_ticks,
			      .argv_len = argv_len};
	memcpy(slot->argv, argv, argv_len);
}
