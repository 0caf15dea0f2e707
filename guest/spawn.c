#include "spawn.h"

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <pty.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <stdint.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "attrib.h"
#include "cmdline.h"
#include "harden.h"
#include "util.h"

#ifndef SYS_close_range
#define SYS_close_range 436
#endif
#ifndef SYS_clone3
#define SYS_clone3 435
#endif
#define WL_CLONE_INTO_CGROUP 0x200000000ULL

/* struct clone_args up to .cgroup (CLONE_ARGS_SIZE_VER2, Linux >= 5.7). */
struct clone_args_v2 {
	uint64_t flags, pidfd, child_tid, parent_tid, exit_signal, stack, stack_size, tls;
	uint64_t set_tid, set_tid_size, cgroup;
};
/* Pipe size for a command's stdout and stderr (see spawn_child). */
#define OUTPUT_PIPE_BYTES (1024 * 1024)

static struct rlimit child_nofile;

void spawn_init(void)
{
	/* Every exec costs the agent three fds; PID 1 starts with a soft limit of 1024. */
	getrlimit(RLIMIT_NOFILE, &child_nofile);
	struct rlimit raised = child_nofile;
	raised.rlim_cur = raised.rlim_max;
	setrlimit(RLIMIT_NOFILE, &raised);
}

/* Child side only: report on the child's stderr (which the host sees) and exit. */
static void __attribute__((noreturn)) child_fail(const char *what, int err, int code)
{
	char msg[600];
	int n = snprintf(msg, sizeof msg, "wheellock: %s: %s\n", what, strerror(err));
	if (n > 0)
		(void)!write(2, msg, (size_t)n < sizeof msg ? (size_t)n : sizeof msg - 1);
	_exit(code);
}

static int exit_code_for(int err)
{
	return (err == EACCES || err == EPERM || err == ENOEXEC || err == EISDIR) ? 126 : 127;
}

static const char *env_get(char **envp, const char *key)
{
	size_t kl = strlen(key);
	for (; *envp; envp++)
		if (strncmp(*envp, key, kl) == 0 && (*envp)[kl] == '=')
			return *envp + kl + 1;
	return NULL;
}

/* Like execvpe, but the PATH comes from the child's environment, not the agent's. */
static void __attribute__((noreturn)) exec_search(char **argv, char **envp)
{
	const char *file = argv[0];
	if (strchr(file, '/')) {
		execve(file, argv, envp);
		child_fail(file, errno, exit_code_for(errno));
	}
	const char *path = env_get(envp, "PATH");
	if (!path)
		path = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
	int saw_eacces = 0;
	char full[4096];
	for (const char *p = path;; p++) {
		const char *colon = strchr(p, ':');
		size_t dl = colon ? (size_t)(colon - p) : strlen(p);
		/* an empty PATH entry means the current directory, as in a shell */
		const char *dir = dl ? p : ".";
		size_t dlen = dl ? dl : 1;
		int n = snprintf(full, sizeof full, "%.*s%s%s", (int)dlen, dir,
				 dir[dlen - 1] == '/' ? "" : "/", file);
		if (n > 0 && (size_t)n < sizeof full) {
			execve(full, argv, envp);
			if (errno == EACCES)
				saw_eacces = 1;
			else if (errno != ENOENT && errno != ENOTDIR)
				child_fail(file, errno, exit_code_for(errno));
		}
		if (!colon)
			break;
		p = colon;
	}
	if (saw_eacces)
		child_fail(file, EACCES, 126);
	char msg[600];
	int n = snprintf(msg, sizeof msg, "wheellock: %s: command not found\n", file);
	if (n > 0)
		(void)!write(2, msg, (size_t)n < sizeof msg ? (size_t)n : sizeof msg - 1);
	_exit(127);
}

/* In the child of clone3 or fork. Calls that musl runs on every thread of a threaded process
 * (setrlimit, setgroups, setgid, setuid go through __synccall, and the agent has a FUSE relay
 * thread) are made as plain syscalls: after clone3 the child's libc still believes the
 * parent's threads exist, and the child is single-threaded either way. */
static void __attribute__((noreturn)) child_main(const struct spawn_req *req, int joined, int in,
						 int out, int err, int tty_slave)
{
	if (!joined)
		attrib_child_join(req->cgroup_fd);
	sigset_t none;
	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
	signal(SIGPIPE, SIG_DFL);
	setsid();
	if (tty_slave >= 0) {
		if (ioctl(tty_slave, TIOCSCTTY, 0) != 0)
			_exit(127);
		in = out = err = tty_slave;
	}
	if (dup2(in, 0) < 0 || dup2(out, 1) < 0 || dup2(err, 2) < 0)
		_exit(127);
	/* Everything the agent holds is close-on-exec already; this also covers fds a
	 * future change forgets to mark. */
	syscall(SYS_close_range, 3u, ~0u, 0u);
	syscall(SYS_setrlimit, RLIMIT_NOFILE, &child_nofile);
	umask(022);

	const struct user *u = req->user;
	if (!req->privileged && harden_drop_bounding() != 0)
		child_fail("dropping capabilities", errno, 127);
	if (syscall(SYS_setgroups, (size_t)u->ngroups, u->groups) != 0 ||
	    syscall(SYS_setgid, u->gid) != 0 || syscall(SYS_setuid, u->uid) != 0)
		child_fail("switching user", errno, 127);
	if (chdir(req->cwd) != 0)
		child_fail(req->cwd, errno, 127);
	if (!req->privileged && harden_lock() != 0)
		child_fail("seccomp", errno, 127);
	exec_search(req->argv, req->envp);
}

/* Starts the child in cgroup_fd's cgroup directly with clone3(CLONE_INTO_CGROUP): no move
 * afterwards, so none of the cgroup migration locking a write to cgroup.procs costs. Kernels
 * before 5.7 (ENOSYS, E2BIG, EINVAL) get fork() and the child joins by itself; *joined says
 * which happened. */
static pid_t fork_into(int cgroup_fd, int *joined)
{
	static int clone3_unusable;
	*joined = 0;
	clone3_unusable |= cmdline()->attribution_fork;
	if (cgroup_fd >= 0 && !clone3_unusable) {
		struct clone_args_v2 args = {
			.flags = WL_CLONE_INTO_CGROUP,
			.exit_signal = SIGCHLD,
			.cgroup = (uint64_t)cgroup_fd,
		};
		long pid = syscall(SYS_clone3, &args, sizeof args);
		if (pid >= 0) {
			*joined = 1;
			return (pid_t)pid;
		}
		if (errno == EAGAIN || errno == ENOMEM)
			return -1;
		if (errno == ENOSYS || errno == E2BIG || errno == EINVAL)
			clone3_unusable = 1;
	}
	return fork();
}

static void close_all(int *fds, int n)
{
	for (int i = 0; i < n; i++)
		if (fds[i] >= 0)
			close(fds[i]);
}

pid_t spawn_child(const struct spawn_req *req, struct spawn_fds *fds)
{
	/* p[0..1] stdin, p[2..3] stdout, p[4..5] stderr (read end first) or master/slave. */
	int p[6] = {-1, -1, -1, -1, -1, -1};
	int saved;
	if (req->tty) {
		struct winsize ws = {.ws_row = req->rows ? req->rows : 24,
				     .ws_col = req->cols ? req->cols : 80};
		if (openpty(&p[0], &p[1], NULL, NULL, &ws) != 0)
			return -1;
		fcntl(p[0], F_SETFD, FD_CLOEXEC);
		fcntl(p[1], F_SETFD, FD_CLOEXEC);
		p[2] = fcntl(p[0], F_DUPFD_CLOEXEC, 0); /* separate fd for writes (stdin) */
		if (p[2] < 0)
			goto fail;
	} else {
		if (pipe2(&p[0], O_CLOEXEC) || pipe2(&p[2], O_CLOEXEC) || pipe2(&p[4], O_CLOEXEC))
			goto fail;
		/* Bulk output: a command that fills the default 64 KiB pipe blocks, and every
		 * switch between it and the agent is costly under emulation (a full TLB flush).
		 * A larger pipe lets it run ahead and the agent read whole frames. Best effort;
		 * pages are only used while output waits, and credit still bounds the total. */
		fcntl(p[2], F_SETPIPE_SZ, OUTPUT_PIPE_BYTES);
		fcntl(p[4], F_SETPIPE_SZ, OUTPUT_PIPE_BYTES);
	}
	int joined;
	pid_t pid = fork_into(req->cgroup_fd, &joined);
	if (pid < 0)
		goto fail;
	if (pid == 0) {
		if (req->tty)
			child_main(req, joined, -1, -1, -1, p[1]);
		child_main(req, joined, p[0], p[3], p[5], -1);
	}
	if (req->tty) {
		close(p[1]);
		set_nonblock(p[0]);
		fds->out = p[0];
		fds->in = p[2];
		fds->err = -1;
	} else {
		close(p[0]);
		close(p[3]);
		close(p[5]);
		fds->in = p[1];
		fds->out = p[2];
		fds->err = p[4];
		set_nonblock(fds->in);
		set_nonblock(fds->out);
		set_nonblock(fds->err);
	}
	return pid;
fail:
	saved = errno;
	close_all(p, 6);
	errno = saved;
	return -1;
}
