#include "exec.h"

#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include "attrib.h"
#include "proto.h"
#include "spawn.h"
#include "user.h"
#include "util.h"
#include "wire.h"

/* After the process exits, output is forwarded until EOF or this long without any. */
#define DRAIN_IDLE_MS 100
/* One read's worth: a whole frame, so bulk output moves in as few frames as possible. */
#define OUTPUT_CHUNK WL_MAX_PAYLOAD
#define DEFAULT_PATH "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

/* Room for the frame header in front of the data (wire_send_framed). */
static uint8_t iobuf[WL_HEADER_SIZE + OUTPUT_CHUNK];

static void free_strv(char **v)
{
	if (!v)
		return;
	for (char **p = v; *p; p++)
		free(*p);
	free(v);
}

static int env_has(char **envp, size_t n, const char *key)
{
	size_t kl = strlen(key);
	for (size_t i = 0; i < n; i++)
		if (strncmp(envp[i], key, kl) == 0 && envp[i][kl] == '=')
			return 1;
	return 0;
}

static void env_add(char **envp, size_t *n, const char *key, const char *value)
{
	if (env_has(envp, *n, key))
		return;
	size_t len = strlen(key) + strlen(value) + 2;
	char *s = malloc(len);
	if (!s)
		return;
	snprintf(s, len, "%s=%s", key, value);
	envp[(*n)++] = s;
}

int exec_start(uint32_t id, const uint8_t *payload, uint32_t len, int privileged)
{
	if (!rec_valid(payload, len))
		return -1;
	struct rec_it it;
	uint8_t tag;
	const uint8_t *v;
	uint32_t l;
	size_t nargv = 0, nenv = 0;
	rec_iter(&it, payload, len);
	while (rec_next(&it, &tag, &v, &l) == 1) {
		nargv += tag == T_EXEC_ARGV;
		nenv += tag == T_EXEC_ENV;
	}
	char **argv = calloc(nargv + 1, sizeof *argv);
	char **envp = calloc(nenv + 5, sizeof *envp); /* + HOME USER LOGNAME PATH */
	char *cwd = NULL, *uspec = NULL;
	uint8_t tty = 0;
	uint32_t rows = 0, cols = 0;
	size_t ia = 0, ie = 0;
	const char *bad = NULL;
	if (!argv || !envp) {
		bad = "out of memory";
		goto out;
	}
	rec_iter(&it, payload, len);
	while (!bad && rec_next(&it, &tag, &v, &l) == 1) {
		char *s = NULL;
		switch (tag) {
		case T_EXEC_ARGV:
		case T_EXEC_ENV:
		case T_EXEC_CWD:
		case T_EXEC_USER:
			if (!(s = val_strdup(v, l))) {
				bad = "invalid string in EXEC";
				break;
			}
			if (tag == T_EXEC_ARGV)
				argv[ia++] = s;
			else if (tag == T_EXEC_ENV) {
				if (!strchr(s, '=')) {
					free(s);
					bad = "ENV entry without '='";
					break;
				}
				envp[ie++] = s;
			} else if (tag == T_EXEC_CWD) {
				free(cwd);
				cwd = s;
			} else {
				free(uspec);
				uspec = s;
			}
			break;
		case T_EXEC_TTY:
			if (val_u8(v, l, &tty))
				bad = "bad TTY field";
			break;
		case T_EXEC_ROWS:
			if (val_u32(v, l, &rows))
				bad = "bad ROWS field";
			break;
		case T_EXEC_COLS:
			if (val_u32(v, l, &cols))
				bad = "bad COLS field";
			break;
		default:
			break;
		}
	}
	if (!bad && ia == 0)
		bad = "EXEC needs ARGV";
	if (!bad && argv[0][0] == '\0')
		bad = "empty argv[0]";
	if (bad)
		goto out;

	struct user u;
	char uerr[300];
	if (user_resolve(uspec, &u, uerr, sizeof uerr) != 0) {
		wire_send_error(id, 0, "%s", uerr);
		goto done;
	}
	if (u.has_entry) {
		env_add(envp, &ie, "HOME", u.home);
		env_add(envp, &ie, "USER", u.name);
		env_add(envp, &ie, "LOGNAME", u.name);
	} else {
		env_add(envp, &ie, "HOME", "/");
	}
	if (!env_has(envp, ie, "PATH") && (envp[ie] = strdup(DEFAULT_PATH)))
		ie++;

	struct stream *s = stream_new(id, S_EXEC);
	if (!s) {
		wire_send_error(id, errno, "cannot open stream: %s", strerror(errno));
		goto done;
	}
	struct spawn_req req = {
		.argv = argv,
		.envp = envp,
		.cwd = cwd ? cwd : "/",
		.user = &u,
		.tty = tty == 1,
		.rows = (unsigned short)(rows > 0xffff ? 0xffff : rows),
		.cols = (unsigned short)(cols > 0xffff ? 0xffff : cols),
		.privileged = privileged,
	};
	struct spawn_fds fds;
	req.cgroup_fd = attrib_exec_prepare(id);
	pid_t pid = spawn_child(&req, &fds);
	attrib_exec_spawned();
	if (pid < 0) {
		int e = errno;
		stream_free(s);
		wire_send_error(id, e, "cannot start process: %s", strerror(e));
		goto done;
	}
	s->pid = pid;
	s->tty = req.tty;
	s->in_fd = fds.in;
	s->out_fd = fds.out;
	s->err_fd = fds.err;
	uint8_t buf[16];
	struct rec r;
	rec_init(&r, buf, sizeof buf);
	rec_u32(&r, T_STARTED_PID, (uint32_t)pid);
	wire_send(FT_STARTED, id, buf, r.len);
	goto done;
out:
	wire_send_error(id, bad && strcmp(bad, "out of memory") == 0 ? ENOMEM : EINVAL, "%s",
			bad);
done:
	free_strv(argv);
	free_strv(envp);
	free(cwd);
	free(uspec);
	return 0;
}

static void give_credit(struct stream *s, uint32_t n)
{
	if (n == 0)
		return;
	s->rx_window += n;
	wire_send_u32(FT_CREDIT, s->id, n);
}

static void close_stdin(struct stream *s)
{
	if (s->in_fd >= 0 && s->kind == S_PORT)
		shutdown(s->in_fd, SHUT_WR); /* the fd is a dup: only shutdown sends the FIN */
	if (s->in_fd >= 0)
		close(s->in_fd);
	s->in_fd = -1;
}

/* The child will never read again: forget what is buffered but hand its credit back so a
 * host still writing is not stuck forever. */
static void stdin_broken(struct stream *s)
{
	s->stdin_broken = 1;
	uint32_t dropped = (uint32_t)s->in_len;
	s->in_len = s->in_head = 0;
	close_stdin(s);
	give_credit(s, dropped);
}

/* Writes what the child takes now; returns bytes written (-1 when stdin is broken). */
static ssize_t write_stdin(struct stream *s, const uint8_t *p, size_t len)
{
	ssize_t n = write(s->in_fd, p, len);
	if (n >= 0)
		return n;
	if (errno == EAGAIN || errno == EINTR)
		return 0;
	return -1;
}

int exec_on_stdin(struct stream *s, const uint8_t *data, uint32_t len)
{
	if (len > s->rx_window)
		return -1;
	s->rx_window -= len;
	if (s->stdin_broken || s->in_fd < 0 || (s->eof_requested && !s->tty)) {
		give_credit(s, len);
		return 0;
	}
	uint32_t done = 0;
	if (s->in_len == 0) {
		ssize_t n = write_stdin(s, data, len);
		if (n < 0) {
			give_credit(s, len);
			stdin_broken(s);
			return 0;
		}
		done = (uint32_t)n;
	}
	if (done < len) {
		/* Bounded: the host never has more than INITIAL_WINDOW bytes unconsumed. */
		if (!s->inbuf && !(s->inbuf = malloc(WL_INITIAL_WINDOW))) {
			give_credit(s, len);
			stdin_broken(s);
			return 0;
		}
		if (s->in_head + s->in_len + (len - done) > WL_INITIAL_WINDOW) {
			memmove(s->inbuf, s->inbuf + s->in_head, s->in_len);
			s->in_head = 0;
		}
		memcpy(s->inbuf + s->in_head + s->in_len, data + done, len - done);
		s->in_len += len - done;
	}
	give_credit(s, done);
	return 0;
}

void exec_on_stdin_writable(struct stream *s)
{
	if (s->in_fd < 0 || s->in_len == 0)
		return;
	ssize_t n = write_stdin(s, s->inbuf + s->in_head, s->in_len);
	if (n < 0) {
		stdin_broken(s);
		return;
	}
	s->in_head += (size_t)n;
	s->in_len -= (size_t)n;
	if (s->in_len == 0)
		s->in_head = 0;
	give_credit(s, (uint32_t)n);
	if (s->in_len == 0 && s->eof_requested && !s->tty)
		close_stdin(s);
}

void exec_on_eof(struct stream *s)
{
	s->eof_requested = 1;
	if (!s->tty && s->in_len == 0)
		close_stdin(s);
}

void exec_on_signal(struct stream *s, uint32_t sig)
{
	if (sig == 0 || sig > 64)
		return;
	/* The process group outlives its leader while children remain; it is the target
	 * even after the leader has exited. */
	kill(-s->pid, (int)sig);
}

void exec_on_resize(struct stream *s, uint32_t rows, uint32_t cols)
{
	if (!s->tty || s->in_fd < 0)
		return;
	struct winsize ws = {.ws_row = (unsigned short)(rows > 0xffff ? 0xffff : rows),
			     .ws_col = (unsigned short)(cols > 0xffff ? 0xffff : cols)};
	ioctl(s->in_fd, TIOCSWINSZ, &ws);
}

void exec_on_close(struct stream *s)
{
	if (!s->exited)
		kill(-s->pid, SIGKILL);
	stream_free(s);
}

void exec_on_output(struct stream *s, int fd)
{
	if (s->tx_window == 0)
		return; /* never pull from the child without window: this is the backpressure */
	size_t want = s->tx_window < OUTPUT_CHUNK ? s->tx_window : OUTPUT_CHUNK;
	ssize_t n = read(fd, iobuf + WL_HEADER_SIZE, want);
	if (n < 0 && (errno == EAGAIN || errno == EINTR))
		return;
	if (n > 0) {
		s->tx_window -= (uint32_t)n;
		s->idle_since_ms = now_ms();
		wire_send_framed(fd == s->err_fd ? FT_STDERR : FT_STDOUT, s->id, iobuf, (size_t)n);
		return;
	}
	/* EOF, or EIO from a PTY master whose last slave fd closed. */
	if (fd == s->out_fd) {
		close(s->out_fd);
		s->out_fd = -1;
	} else {
		close(s->err_fd);
		s->err_fd = -1;
	}
}

void exec_child_exited(pid_t pid, int status)
{
	for (size_t i = 0; i < stream_count(); i++) {
		struct stream *s = stream_at(i);
		if (s->kind != S_EXEC || s->pid != pid || s->exited)
			continue;
		s->exited = 1;
		if (WIFSIGNALED(status)) {
			s->exit_code = -1;
			s->exit_signal = WTERMSIG(status);
		} else {
			s->exit_code = WEXITSTATUS(status);
			s->exit_signal = 0;
		}
		s->idle_since_ms = now_ms();
		return;
	}
}

/* 1 if a read of stdout or stderr would not block (data waiting, or end of file). */
static int output_pending(const struct stream *s)
{
	struct pollfd p[2] = {{s->out_fd, POLLIN, 0}, {s->err_fd, POLLIN, 0}};
	return poll(p, 2, 0) > 0;
}

int exec_check_done(struct stream *s)
{
	if (!s->exited)
		return -1;
	uint64_t now = now_ms();
	if (s->out_fd >= 0 || s->err_fd >= 0) {
		if (s->tx_window == 0) {
			/* Output may be waiting for credit: the idle clock only runs while we could
			 * actually read. */
			s->idle_since_ms = now;
			return -1;
		}
		uint64_t idle = now - s->idle_since_ms;
		if (idle < DRAIN_IDLE_MS)
			return (int)(DRAIN_IDLE_MS - idle);
		/* "Idle" must mean the pipes had nothing, not that the agent was busy elsewhere
		 * (a frame write the host drained slowly, a loaded machine) while output waited:
		 * what is readable now, data or end of file, is read first. */
		if (output_pending(s)) {
			s->idle_since_ms = now;
			return 0;
		}
	}
	uint8_t b[8];
	put_be32(b, (uint32_t)s->exit_code);
	put_be32(b + 4, (uint32_t)s->exit_signal);
	uint32_t id = s->id;
	stream_free(s);
	wire_send(FT_EXIT, id, b, sizeof b);
	attrib_note_exit();
	return -1;
}
