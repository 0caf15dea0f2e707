/* wheellock guest agent: PID 1 of the VM. Boots the root filesystem, then serves the host
 * over one virtio-serial port with a single-threaded poll loop (docs/PROTOCOL.md). */
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "attrib.h"
#include "boot.h"
#include "cmdline.h"
#include "config.h"
#include "disks.h"
#include "exec.h"
#include "files.h"
#include "fuse.h"
#include "harden.h"
#include "netsetup.h"
#include "port.h"
#include "portfwd.h"
#include "proto.h"
#include "spawn.h"
#include "stream.h"
#include "usage.h"
#include "util.h"
#include "wire.h"

/* Retry delay after the host side of the port went away (avoids spinning on HUP). */
#define PORT_RETRY_MS 100
/* Quiet time before cgroup upkeep runs: short, as the agent is otherwise asleep. */
#define IDLE_WORK_MS 1

enum role { R_PORT, R_SIGNAL, R_FUSE_LOST, R_OUT, R_ERR, R_IN, R_CONN };
struct owner {
	enum role role;
	struct stream *s;
};

static int privileged;
static struct port control;

static void send_hello(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_BOOTTIME, &ts);
	uint64_t boot_ms = (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
	uint8_t buf[64];
	struct rec r;
	rec_init(&r, buf, sizeof buf);
	rec_u32(&r, T_HELLO_VERSION, WL_PROTOCOL_VERSION);
	rec_u64(&r, T_HELLO_BOOT_MS, boot_ms);
	rec_str(&r, T_HELLO_AGENT, AGENT_NAME);
	wire_send(FT_HELLO, 0, buf, r.len);
	logmsg("ready after %llu ms", (unsigned long long)boot_ms);
}

static int is_open_op(uint8_t t)
{
	return t == FT_CONFIGURE || t == FT_PING || t == FT_NETWORK_SETUP || t == FT_ATTRIBUTE ||
	       t == FT_USAGE || t == FT_MOUNT || t == FT_EXEC ||
	       t == FT_FILE_WRITE ||
	       t == FT_FILE_READ || t == FT_FILE_LIST || t == FT_FILE_STAT || t == FT_MKDIR ||
	       t == FT_REMOVE || t == FT_PORT_FORWARD || t == FT_DISK_MOUNT;
}

static int open_op(const struct frame *f)
{
	if (stream_find(f->stream)) {
		logmsg("protocol error: stream %u opened twice", f->stream);
		return -1;
	}
	switch (f->type) {
	case FT_CONFIGURE:
		return config_apply(f->stream, f->payload, f->len);
	case FT_PING:
		wire_send(FT_OK, f->stream, NULL, 0);
		return 0;
	case FT_NETWORK_SETUP:
		return netsetup_apply(f->stream, f->payload, f->len);
	case FT_ATTRIBUTE:
		return attrib_query(f->stream, f->payload, f->len);
	case FT_USAGE:
		return usage_report(f->stream);
	case FT_MOUNT:
		return fuse_mount_request(f->stream, f->payload, f->len);
	case FT_EXEC:
		return exec_start(f->stream, f->payload, f->len, privileged);
	case FT_FILE_WRITE:
		return file_write_start(f->stream, f->payload, f->len);
	case FT_FILE_READ:
		return file_read_start(f->stream, f->payload, f->len);
	case FT_FILE_LIST:
		return file_list(f->stream, f->payload, f->len);
	case FT_FILE_STAT:
		return file_stat(f->stream, f->payload, f->len);
	case FT_MKDIR:
		return file_mkdir(f->stream, f->payload, f->len);
	case FT_REMOVE:
		return file_remove(f->stream, f->payload, f->len);
	case FT_PORT_FORWARD:
		return port_start(f->stream, f->payload, f->len);
	case FT_DISK_MOUNT:
		return disk_mount_request(f->stream, f->payload, f->len, privileged);
	}
	return -1;
}

/* Frames on an existing stream. Unknown streams are ignored: they race with our own end. */
static int stream_op(const struct frame *f)
{
	struct stream *s = stream_find(f->stream);
	switch (f->type) {
	case FT_CREDIT:
		if (f->len != 4)
			return -1;
		if (s) {
			uint64_t w = (uint64_t)s->tx_window + get_be32(f->payload);
			/* more than 1 GiB outstanding is nonsense; cap rather than wrap */
			s->tx_window = w > (1u << 30) ? (1u << 30) : (uint32_t)w;
		}
		return 0;
	case FT_STDIN:
		if (!s)
			return 0;
		if (s->kind == S_PORT && s->connecting)
			return -1; /* no socket yet: the host must wait for STARTED */
		if (s->kind == S_EXEC || s->kind == S_PORT)
			return exec_on_stdin(s, f->payload, f->len);
		if (s->kind == S_FILE_WRITE)
			return file_write_data(s, f->payload, f->len);
		return 0;
	case FT_EOF:
		if (f->len != 0)
			return -1;
		if (s && s->kind == S_EXEC)
			exec_on_eof(s);
		else if (s && s->kind == S_FILE_WRITE)
			file_write_eof(s);
		else if (s && s->kind == S_PORT && s->connecting)
			return -1;
		else if (s && s->kind == S_PORT)
			port_on_eof(s);
		return 0;
	case FT_SIGNAL:
		if (f->len != 4)
			return -1;
		if (s && s->kind == S_EXEC)
			exec_on_signal(s, get_be32(f->payload));
		return 0;
	case FT_RESIZE:
		if (f->len != 8)
			return -1;
		if (s && s->kind == S_EXEC)
			exec_on_resize(s, get_be32(f->payload), get_be32(f->payload + 4));
		return 0;
	case FT_CLOSE:
		if (s && s->kind == S_EXEC)
			exec_on_close(s);
		else if (s)
			stream_free(s);
		return 0;
	}
	return -1;
}

static int handle_frame(const struct frame *f)
{
	if (f->type == FT_POWEROFF) {
		logmsg("power off requested");
		boot_poweroff();
	}
	if (f->stream == 0) {
		/* CREDIT on the control stream carries nothing; anything else there is wrong */
		return f->type == FT_CREDIT && f->len == 4 ? 0 : -1;
	}
	return is_open_op(f->type) ? open_op(f) : stream_op(f);
}

static void reap_children(int sfd)
{
	struct signalfd_siginfo si;
	while (read(sfd, &si, sizeof si) > 0)
		;
	int status;
	pid_t pid;
	/* PID 1 inherits every orphan: reap them all, not only our direct children. */
	while ((pid = waitpid(-1, &status, WNOHANG)) > 0)
		exec_child_exited(pid, status);
	attrib_note_exit();
}

/* Runs the deadline checks and file pumps; returns the poll timeout. */
static int service_streams(void)
{
	int timeout = -1;
	int again = 1;
	/* Streams free themselves on completion (the table is compacted), so restart the scan
	 * after a change instead of trusting indices. */
	while (again) {
		again = 0;
		size_t n = stream_count();
		for (size_t i = 0; i < n; i++) {
			struct stream *s = stream_at(i);
			int t = -1;
			if (s->kind == S_EXEC) {
				t = exec_check_done(s);
			} else if (s->kind == S_PORT) {
				t = port_check_done(s);
			} else if (s->kind == S_FILE_READ) {
				if (file_read_pump(s))
					t = 0;
			}
			if (stream_count() != n) {
				again = 1;
				break;
			}
			if (t >= 0 && (timeout < 0 || t < timeout))
				timeout = t;
		}
	}
	return timeout;
}

static void __attribute__((noreturn)) serve(int sfd)
{
	const int port = control.fd;
	static struct pollfd pfd[4 + 3 * MAX_STREAMS];
	static struct owner own[4 + 3 * MAX_STREAMS];
	int port_down_until = 0;
	uint64_t port_retry_at = 0;

	for (;;) {
		int timeout = service_streams();
		size_t n = 0;
		if (port_down_until && now_ms() >= port_retry_at)
			port_down_until = 0;
		if (!port_down_until) {
			pfd[n] = (struct pollfd){port, POLLIN, 0};
			own[n++] = (struct owner){R_PORT, NULL};
		} else {
			int wait = (int)(port_retry_at - now_ms());
			if (timeout < 0 || wait < timeout)
				timeout = wait < 0 ? 0 : wait;
		}
		pfd[n] = (struct pollfd){sfd, POLLIN, 0};
		own[n++] = (struct owner){R_SIGNAL, NULL};
		if (fuse_lost_fd() >= 0) {
			pfd[n] = (struct pollfd){fuse_lost_fd(), POLLIN, 0};
			own[n++] = (struct owner){R_FUSE_LOST, NULL};
		}
		for (size_t i = 0; i < stream_count(); i++) {
			struct stream *s = stream_at(i);
			if (s->kind == S_PORT && s->connecting) {
				pfd[n] = (struct pollfd){s->out_fd, POLLOUT, 0};
				own[n++] = (struct owner){R_CONN, s};
				continue;
			}
			if (s->kind != S_EXEC && s->kind != S_PORT)
				continue;
			/* Without window the fds are left out entirely (even for HUP): the child
			 * blocks on a full pipe, which is the flow control. */
			if (s->tx_window > 0 && s->out_fd >= 0) {
				pfd[n] = (struct pollfd){s->out_fd, POLLIN, 0};
				own[n++] = (struct owner){R_OUT, s};
			}
			if (s->tx_window > 0 && s->err_fd >= 0) {
				pfd[n] = (struct pollfd){s->err_fd, POLLIN, 0};
				own[n++] = (struct owner){R_ERR, s};
			}
			if (s->in_fd >= 0 && s->in_len > 0) {
				pfd[n] = (struct pollfd){s->in_fd, POLLOUT, 0};
				own[n++] = (struct owner){R_IN, s};
			}
		}
		/* Cgroup upkeep waits for a quiet moment (attrib.h). */
		int idle_work = attrib_idle_work();
		if (idle_work && (timeout < 0 || timeout > IDLE_WORK_MS))
			timeout = IDLE_WORK_MS;
		int rc = poll(pfd, n, timeout);
		if (rc == 0 && idle_work)
			attrib_idle();
		if (rc < 0) {
			if (errno != EINTR)
				logmsg("poll: %s", strerror(errno));
			continue;
		}
		/* Children first so EXIT state is current; port last because it can free streams
		 * that later pollfd entries point at. */
		for (size_t i = 0; i < n; i++) {
			if (own[i].role == R_SIGNAL && pfd[i].revents)
				reap_children(sfd);
			if (own[i].role == R_FUSE_LOST && pfd[i].revents)
				fuse_port_lost();
		}
		for (size_t i = 0; i < n; i++) {
			if (!pfd[i].revents)
				continue;
			struct stream *s = own[i].s;
			if (own[i].role == R_CONN)
				port_on_connect(s);
			else if (own[i].role == R_OUT && s->kind == S_PORT && s->out_fd == pfd[i].fd)
				port_on_output(s);
			else if (own[i].role == R_OUT && s->out_fd == pfd[i].fd)
				exec_on_output(s, s->out_fd);
			else if (own[i].role == R_ERR && s->err_fd == pfd[i].fd)
				exec_on_output(s, s->err_fd);
			else if (own[i].role == R_IN && s->in_fd == pfd[i].fd)
				exec_on_stdin_writable(s);
		}
		if (pfd[0].fd == port && own[0].role == R_PORT && pfd[0].revents) {
			long got = (pfd[0].revents & (POLLIN | POLLERR)) ? wire_fill() : 0;
			if (got < 0)
				port_lost(&control, strerror(errno));
			/* Nothing to read but woken: the host end is not connected (normal around a
			 * snapshot), or the port was removed, and then nothing good can come of it
			 * any more: whatever opens its successor is not this agent. */
			if (got == 0 && !port_alive(&control))
				port_lost(&control, "removed");
			if (got == 0) {
				/* The host end is not connected; look again shortly. */
				port_down_until = 1;
				port_retry_at = now_ms() + PORT_RETRY_MS;
				continue;
			}
			struct frame f;
			int fr;
			while ((fr = wire_next(&f)) == 1) {
				if (handle_frame(&f) != 0) {
					logmsg("protocol error on frame type %#x stream %u; powering off",
					       f.type, f.stream);
					boot_poweroff();
				}
			}
			if (fr < 0) {
				logmsg("protocol error: powering off");
				boot_poweroff();
			}
		}
	}
}

int main(void)
{
	if (getpid() != 1) {
		/* Not a supported mode: the agent owns the machine (mounts, reaping, power). */
		logmsg("must run as PID 1 (/init)");
		return 1;
	}
	boot_system();
	privileged = cmdline()->privileged;
	if (cmdline()->mounts)
		fuse_boot_mount();
	/* From here on nobody unbinds a driver, unless the user asked for a privileged sandbox. */
	if (!privileged) {
		boot_lock_sysfs();
		/* One exec must not act as another (its requests would carry that exec's id). */
		if (harden_restrict_ptrace() != 0)
			logmsg("yama ptrace_scope: %s", strerror(errno));
		if (harden_allow_ping() != 0)
			logmsg("ping_group_range: %s", strerror(errno));
		boot_lock_procsys();
	}
	if (config_set_hostname("wheellock") != 0)
		logmsg("hostname: %s", strerror(errno));
	spawn_init();
	attrib_init();
	signal(SIGPIPE, SIG_IGN);

	sigset_t mask;
	sigemptyset(&mask);
	sigaddset(&mask, SIGCHLD);
	sigprocmask(SIG_BLOCK, &mask, NULL);
	int sfd = signalfd(-1, &mask, SFD_NONBLOCK | SFD_CLOEXEC);
	if (sfd < 0) {
		logmsg("signalfd: %s", strerror(errno));
		return 1;
	}
	if (port_open(WL_PORT_CONTROL, &control) != 0)
		return 1;
	wire_init(&control);
	send_hello();
	serve(sfd);
}
