/* Starts one child process: pipes or a PTY, new session, user, hardening, PATH search. */
#ifndef WL_SPAWN_H
#define WL_SPAWN_H

#include <sys/types.h>

#include "user.h"

struct spawn_req {
	char **argv;
	char **envp;
	const char *cwd;
	const struct user *user;
	int tty;
	unsigned short rows, cols;
	int privileged;
	int cgroup_fd; /* the exec's cgroup (attrib.h), or -1 */
};

struct spawn_fds {
	int in, out, err; /* parent ends, non-blocking, close-on-exec; err = -1 with a tty */
};

/* Raises the agent's own fd limit and remembers the original for children. */
void spawn_init(void);
/* Returns the child's pid, or -1 with errno set (nothing is left open). */
pid_t spawn_child(const struct spawn_req *req, struct spawn_fds *fds);

#endif
