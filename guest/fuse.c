#include "fuse.h"

#include <errno.h>
#include <pthread.h>
#include <fcntl.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <signal.h>
#include <sys/eventfd.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fuse_dircache.h"
#include "fuse_notify.h"
#include "fuse_wb.h"
#include "port.h"
#include "proto.h"
#include "util.h"
#include "wire.h"
/* Where the one FUSE filesystem is mounted; each guest path is a bind mount of a subdir. */
#define FUSE_ROOT "/run/wheellock/vfs"
/* The kernel wants a read buffer of at least max_write (1 MiB) plus the request headers. */
#define MSG_MAX ((1u << 20) + 8192u)
#define OUT_HEADER_BYTES 16u
#define MAX_MOUNTS 16
#define MAX_MOUNT_PATH 256

static int fuse_fd = -1;
static struct port fport = {WL_PORT_FUSE, -1, -1};
/* Signalled by the relay thread when its port is gone; the main loop powers off. */
static int lost_fd = -1;
/* One request at a time travels to the host: /dev/fuse is not read while it is pending, so
 * a slow host throttles the kernel instead of growing our buffer. */
static uint8_t to_host[MSG_MAX];
static size_t to_host_len, to_host_off;
/* Replies from the host, reassembled until one whole message can go to /dev/fuse. */
static uint8_t from_host[MSG_MAX];
static size_t from_host_len;
/* A host notification was dropped and the host has not been told yet (relay thread only). */
static int notify_lost;
#define IN_HEADER_BYTES 40u

/* The host went away or broke the stream: closing /dev/fuse aborts the connection, so guest
 * processes get ENOTCONN instead of hanging, and the relay leaves the poll set for good.
 * A port that is gone (port.h) is worse: whatever opens its successor could feed the host
 * FUSE requests, so the main loop is told to power off. */
static void close_relay_fds(void)
{
	int *fds[] = {&fuse_fd, &fport.fd, &fport.sysfs_dir};
	for (size_t i = 0; i < sizeof fds / sizeof fds[0]; i++) {
		if (*fds[i] >= 0)
			close(*fds[i]);
		*fds[i] = -1;
	}
}

static void relay_stop(const char *why)
{
	int lost = fport.fd >= 0 && !port_alive(&fport);
	logmsg("fuse relay stopped: %s", lost ? "port removed" : why);
	fuse_notify_stop();
	close_relay_fds();
	if (lost && lost_fd >= 0 && eventfd_write(lost_fd, 1) != 0)
		logmsg("fuse: cannot report the lost port: %s", strerror(errno));
}

int fuse_lost_fd(void)
{
	return lost_fd;
}

void fuse_port_lost(void)
{
	port_lost(&fport, "the relay saw it disappear");
}

/* The message that tells the host a notification was lost: a bare fuse_in_header. */
static void queue_lost_report(void)
{
	memset(to_host, 0, IN_HEADER_BYTES);
	uint32_t len = IN_HEADER_BYTES, opcode = WL_FUSE_NOTIFY_LOST;
	memcpy(to_host, &len, 4);
	memcpy(to_host + 4, &opcode, 4);
	to_host_len = IN_HEADER_BYTES;
	to_host_off = 0;
	notify_lost = 0;
}

/* FUSE_IOCTL: the host serves no ioctls (ENOSYS, which the kernel turns into ENOTTY), and the
 * kernel does not remember that as it does for other unimplemented requests. So each isatty()
 * of a file in a mount (Python's open() asks once per file, perl's too) would cross to the
 * host for the same answer; the relay gives it here. 1 when answered. */
#define FUSE_OPCODE_IOCTL 39u
static int answer_ioctl_here(const uint8_t *req, size_t len)
{
	uint32_t opcode;
	if (len < IN_HEADER_BYTES)
		return 0;
	memcpy(&opcode, req + 4, 4);
	if (opcode != FUSE_OPCODE_IOCTL)
		return 0;
	uint8_t out[OUT_HEADER_BYTES];
	uint32_t out_len = OUT_HEADER_BYTES;
	int32_t err = -ENOSYS;
	memcpy(out, &out_len, 4);
	memcpy(out + 4, &err, 4);
	memcpy(out + 8, req + 8, 8); /* unique */
	if (write(fuse_fd, out, sizeof out) < 0 && errno != ENOENT)
		logmsg("fuse relay: ioctl reply: %s", strerror(errno));
	return 1;
}

static void relay_to_host(void)
{
	if (to_host_len == 0 && notify_lost)
		queue_lost_report();
	/* The directory cache's own messages (forgets, listing requests) when nothing else waits. */
	if (to_host_len == 0 && !wb_wants_port())
		to_host_len = dircache_outgoing(to_host, sizeof to_host);
	if (to_host_len == 0 && !wb_wants_port()) {
		ssize_t got = read(fuse_fd, to_host, sizeof to_host);
		if (got <= 0) {
			/* ENODEV: unmounted; EAGAIN/EINTR: nothing now; ENOENT: interrupted request. */
			if (got < 0 && errno == ENODEV) {
				close(fuse_fd);
				fuse_fd = -1;
			}
			return;
		}
		if (answer_ioctl_here(to_host, (size_t)got))
			return;
		/* The directory cache sees every request (and may answer a LOOKUP: 0), then
		 * write-behind; no room is given for the cache's queued messages here, so what
		 * write-behind takes is the request alone. */
		to_host_len = dircache_on_request(to_host, (size_t)got, (size_t)got, fuse_fd);
		to_host_off = 0;
		if (to_host_len > 0 && wb_on_request(to_host, to_host_len, fuse_fd) == WB_TAKEN)
			to_host_len = 0;
	}
	/* Requests written behind go first (fuse_wb.c), then this one. */
	int behind = wb_drain(fport.fd);
	if (behind != 0 || to_host_len == 0) {
		if (behind < 0)
			relay_stop("port write failed");
		return;
	}
	while (to_host_off < to_host_len) {
		ssize_t put = write(fport.fd, to_host + to_host_off, to_host_len - to_host_off);
		if (put < 0 && errno != EAGAIN && errno != EINTR) {
			relay_stop("port write failed");
			return;
		}
		if (put <= 0)
			return; /* EAGAIN: the poll loop waits for POLLOUT */
		to_host_off += (size_t)put;
	}
	to_host_len = to_host_off = 0;
}

static void relay_to_kernel(void)
{
	ssize_t got = read(fport.fd, from_host + from_host_len, sizeof from_host - from_host_len);
	if (got == 0 || (got < 0 && errno != EAGAIN && errno != EINTR)) {
		relay_stop("host closed the port");
		return;
	}
	if (got < 0)
		return;
	from_host_len += (size_t)got;
	while (from_host_len >= OUT_HEADER_BYTES) {
		uint32_t len;
		memcpy(&len, from_host, 4);
		if (len < OUT_HEADER_BYTES || len > MSG_MAX) {
			/* The stream is out of step: nothing after this can be trusted. */
			logmsg("fuse relay: bad reply length %u", len);
			relay_stop("protocol error");
			return;
		}
		if (from_host_len < len)
			return;
		uint64_t unique;
		memcpy(&unique, from_host + 8, 8);
		/* One write per reply; an error (e.g. an interrupted request's reply) is the
		 * kernel refusing that reply only. Unique 0 is a notification: another thread. */
		if (dircache_on_host_message(from_host, len))
			; /* the directory cache's own message: never for the kernel */
		else if (wb_on_host_message(from_host, len, fuse_fd))
			; /* write-behind's own message, or a reply it answered already */
		else if (unique == 0) {
			if (fuse_notify_queue(from_host, len) != 0) {
				notify_lost = 1;
				wb_notify_lost();
			}
		} else if (fuse_fd >= 0 && write(fuse_fd, from_host, len) < 0 && errno != ENOENT)
			logmsg("fuse relay: write to /dev/fuse: %s", strerror(errno));
		memmove(from_host, from_host + len, from_host_len - len);
		from_host_len -= len;
	}
}

static size_t fuse_poll_fds(struct pollfd *pfd)
{
	if (fuse_fd < 0 || fport.fd < 0)
		return 0;
	short port_events = POLLIN;
	/* A pending lost report goes out as soon as the port takes it, ahead of new requests. */
	int port_first =
		to_host_len > 0 || notify_lost || wb_wants_port() || dircache_has_outgoing();
	if (port_first)
		port_events |= POLLOUT;
	pfd[0] = (struct pollfd){fport.fd, port_events, 0};
	if (port_first)
		return 1;
	pfd[1] = (struct pollfd){fuse_fd, POLLIN, 0};
	return 2;
}

static void fuse_on_events(const struct pollfd *pfd, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		if (!pfd[i].revents)
			continue;
		if (pfd[i].fd == fport.fd && (pfd[i].revents & (POLLIN | POLLHUP | POLLERR)))
			relay_to_kernel();
		if (fport.fd >= 0 && pfd[i].fd == fport.fd && (pfd[i].revents & POLLOUT))
			relay_to_host();
		if (fuse_fd >= 0 && pfd[i].fd == fuse_fd && (pfd[i].revents & POLLIN))
			relay_to_host();
	}
}

/* The kernel offers FUSE the default 128 KiB readahead; reads then travel in 128 KiB
 * requests although max_pages allows 1 MiB. Raising the mount's bdi window to 4 MiB lets
 * sequential reads use whole 1 MiB requests, up to four of them in flight, so the host's
 * file reads overlap the transfer of earlier replies through the port (docs/PERFORMANCE.md,
 * "Sequential read through a mount, session 14"). The host's INIT allows the same window
 * (MAX_READAHEAD_BYTES). Called at boot, while /sys is still writable; the device number
 * comes from mountinfo, because a stat() of the mount would wait for the INIT reply that
 * only comes after MOUNT. */
static void raise_readahead(void)
{
	FILE *f = fopen("/proc/self/mountinfo", "re");
	if (!f)
		return;
	char line[512], mountpoint[256];
	unsigned maj, min;
	int found = 0;
	while (!found && fgets(line, sizeof line, f))
		found = sscanf(line, "%*u %*u %u:%u %*s %255s", &maj, &min, mountpoint) == 3 &&
			strcmp(mountpoint, FUSE_ROOT) == 0;
	fclose(f);
	if (!found)
		return;
	char path[96];
	snprintf(path, sizeof path, "/sys/class/bdi/%u:%u/read_ahead_kb", maj, min);
	int fd = open(path, O_WRONLY | O_CLOEXEC);
	if (fd < 0)
		return;
	if (write(fd, "4096", 4) != 4)
		logmsg("fuse: %s: %s", path, strerror(errno));
	close(fd);
}

/* A bind mount needs a target of the source's kind: a directory, or for a single-file mount
 * (the host serves a regular file at that path) an empty file in a created parent. */
static int make_target(const char *src, const char *target)
{
	struct stat st;
	if (stat(src, &st) != 0)
		return -1;
	if (!S_ISREG(st.st_mode))
		return mkdir_p(target, 0755);
	if (mkdir_parents(target) != 0)
		return -1;
	int fd = open(target, O_WRONLY | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0644);
	if (fd < 0)
		return -1;
	close(fd);
	return 0;
}

/* The sooner of write-behind's idle flush and the directory cache's expiry sweep (-1: none). */
static int relay_poll_timeout(void)
{
	int wb = wb_poll_timeout(), dc = dircache_poll_timeout_ms();
	if (wb < 0)
		return dc;
	return dc < 0 || wb < dc ? wb : dc;
}

/* The relay runs on its own thread: the agent's main loop makes blocking file system calls
 * (the files API, a symlink that leads into a mount), and a FUSE request they cause must
 * still reach the host. Relayed on the main loop, it would wait for that very loop. */
static void *relay_loop(void *unused)
{
	(void)unused;
	for (;;) {
		struct pollfd pfd[2];
		size_t k = fuse_poll_fds(pfd);
		if (k == 0)
			return NULL; /* stopped: the fds are closed */
		int ready = poll(pfd, k, relay_poll_timeout());
		if (ready > 0)
			fuse_on_events(pfd, k);
		else if (ready == 0) {
			wb_idle();
			relay_to_host();
		}
	}
}

static int relay_start(void)
{
	pthread_t thread;
	pthread_attr_t attr;
	pthread_attr_init(&attr);
	pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
	/* Every signal stays with the main thread (its signalfd wants SIGCHLD blocked here). */
	sigset_t all, old;
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	int err = pthread_create(&thread, &attr, relay_loop, NULL);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	pthread_attr_destroy(&attr);
	if (err != 0) {
		errno = err;
		return -1;
	}
	return 0;
}

/* The host validates these too (absolute, [A-Za-z0-9/_.-], no ".."); refuse anything else. */
static int valid_mount_path(const char *p)
{
	size_t n = strlen(p);
	return n > 1 && n < MAX_MOUNT_PATH && p[0] == '/' && !strstr(p, "..") &&
	       strspn(p, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789/_.-") == n;
}

/* Opens the port and /dev/fuse and mounts the one FUSE filesystem; 0 or -1 (logged). */
static int relay_open(void)
{
	if (port_open(WL_PORT_FUSE, &fport) != 0 ||
	    (fuse_fd = open("/dev/fuse", O_RDWR | O_CLOEXEC | O_NONBLOCK)) < 0 ||
	    set_nonblock(fport.fd) != 0 || mkdir_p(FUSE_ROOT, 0755) != 0 ||
	    (lost_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK)) < 0) {
		logmsg("fuse: cannot start the relay: %s", strerror(errno));
		return -1;
	}
	char opts[160];
	snprintf(opts, sizeof opts,
		 "fd=%d,rootmode=40000,user_id=0,group_id=0,allow_other,default_permissions",
		 fuse_fd);
	if (mount("wheellock", FUSE_ROOT, "fuse.wheellock", MS_NOSUID | MS_NODEV, opts) != 0) {
		logmsg("fuse: mount: %s", strerror(errno));
		return -1;
	}
	if (fuse_notify_start(fuse_fd) != 0)
		logmsg("fuse: no invalidation writer: %s", strerror(errno));
	return 0;
}

static void relay_abandon(void)
{
	close_relay_fds();
	if (lost_fd >= 0)
		close(lost_fd);
	lost_fd = -1;
}

/* 0 once fuse_boot_mount mounted the filesystem, else why MOUNT cannot bind anything. */
static int boot_mount_errno = ENODEV;

/* Mounting at boot takes the mount itself off the restore path (it is in every snapshot of
 * a sandbox with mounts), yet no snapshot holds a FUSE session: the kernel's INIT request
 * waits in /dev/fuse, unread, until MOUNT starts the relay after the boot or restore. So no
 * restored guest inherits node ids or cached pages of the VM that saved it, and each sees
 * the host files as they are now. */
void fuse_boot_mount(void)
{
	if (relay_open() != 0) {
		boot_mount_errno = errno ? errno : EIO;
		relay_abandon();
		return;
	}
	raise_readahead();
	boot_mount_errno = 0;
}

int fuse_start_relay(void)
{
	static int running;
	if (running)
		return 0;
	if (boot_mount_errno) {
		errno = boot_mount_errno;
		return -1;
	}
	if (relay_start() != 0)
		return -1;
	running = 1;
	return 0;
}

/* Why the last bind_path failed, for the host's one-line error. */
static char bind_failure[128];

/* The bind of one guest path to its subtree; its LOOKUPs are answered by the relay thread. */
static int bind_path(const char *path)
{
	char src[512];
	snprintf(src, sizeof src, "%s%s", FUSE_ROOT, path);
	const char *step = "cannot create the mount point";
	if (make_target(src, path) == 0) {
		step = "cannot bind it";
		if (mount(src, path, NULL, MS_BIND, NULL) == 0)
			return 0;
	}
	int e = errno;
	/* A file mount's target is opened without following links: ELOOP means the image has
	 * a symbolic link there, which a mount must not follow out of place. */
	if (e == ELOOP)
		snprintf(bind_failure, sizeof bind_failure,
			 "the image has a symbolic link at that path");
	else
		snprintf(bind_failure, sizeof bind_failure, "%s: %s", step, strerror(e));
	logmsg("fuse: bind %s: %s", path, bind_failure);
	return -1;
}

/* MOUNT after a boot or a restore, before the first command. Once per guest. */
int fuse_mount_request(uint32_t id, const uint8_t *payload, uint32_t len)
{
	static int requested;
	if (!rec_valid(payload, len))
		return -1;
	char *paths[MAX_MOUNTS];
	int n = 0, bad = 0;
	struct rec_it it;
	uint8_t tag;
	const uint8_t *v;
	uint32_t l;
	rec_iter(&it, payload, len);
	while (rec_next(&it, &tag, &v, &l) == 1) {
		if (tag != T_MOUNT_PATH)
			continue;
		char *p = n < MAX_MOUNTS ? val_strdup(v, l) : NULL;
		if (!p || !valid_mount_path(p)) {
			free(p);
			bad = 1;
			break;
		}
		paths[n++] = p;
	}
	int err = 0;
	const char *why = NULL;
	if (bad) {
		err = EINVAL;
		why = "invalid or too many paths";
	} else if (requested) {
		err = EBUSY;
		why = "mounts were set up already";
	}
	requested = 1;
	int failed = 0;
	if (!err && n > 0) {
		if (fuse_start_relay() != 0) {
			err = errno;
			why = boot_mount_errno ? "no FUSE filesystem was mounted at boot"
					       : "cannot start the relay thread";
		}
		/* On a failure the relay runs on: the host stops a sandbox whose mounts failed. */
		for (int i = 0; !err && !failed && i < n; i++)
			if (bind_path(paths[i]) != 0)
				failed = 1 + i;
	}
	if (failed)
		wire_send_error(id, EIO, "mount %s failed: %s", paths[failed - 1], bind_failure);
	else if (err)
		wire_send_error(id, err, "%s", why);
	else
		wire_send(FT_OK, id, NULL, 0);
	for (int i = 0; i < n; i++)
		free(paths[i]);
	return 0;
}
