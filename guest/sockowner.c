#include "sockowner.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "proto.h"

#ifndef SYS_pidfd_open
#define SYS_pidfd_open 434
#endif
#ifndef SYS_pidfd_getfd
#define SYS_pidfd_getfd 438
#endif

/* Owners found last, newest first: the host asks about every new connection, and the process
 * that made the last one usually makes the next (a client's loop, a pool). */
#define RECENT_OWNERS 8
/* Pids read from /proc before their fds are looked at (newest first); more: in batches. */
#define PID_BATCH 1024

/* A recent owner, with what makes asking it again cheap: a pidfd (which also tells that the
 * pid still names the same process) and its /proc fd directory open, and the fd its last
 * socket had (a client that closes a socket and opens the next usually gets the same
 * number back). pid 0 = empty. */
struct owner {
	pid_t pid;
	int pidfd, fddir, lastfd;
};

static struct owner recent[RECENT_OWNERS];
static pid_t batch[PID_BATCH];
/* 1: a socket's port is read from the socket itself (pidfd_getfd, Linux 5.6+); 0: from
 * /proc/net/{tcp,udp}, which walks every bucket of the kernel's socket hash tables (about
 * a millisecond under TCG however few sockets there are); -1: not tried yet. */
static int direct = -1;

static int direct_lookup(void)
{
	if (direct < 0) {
		int self = (int)syscall(SYS_pidfd_open, getpid(), 0);
		int fd = self >= 0 ? (int)syscall(SYS_pidfd_getfd, self, 0, 0) : -1;
		direct = fd >= 0;
		if (fd >= 0)
			close(fd);
		if (self >= 0)
			close(self);
	}
	return direct;
}

/* Marks the inode of each socket key of `kind` whose local port is in `table`. */
static void find_inodes(const char *table, struct sock_key *keys, size_t n, uint8_t kind)
{
	FILE *f = fopen(table, "re");
	if (!f)
		return;
	char line[256];
	if (!fgets(line, sizeof line, f)) { /* header */
		fclose(f);
		return;
	}
	while (fgets(line, sizeof line, f)) {
		unsigned port, state;
		unsigned long inode;
		/* sl local rem st tx:rx tr:when retrnsmt uid timeout inode */
		/* Addresses as hex digits of any length: /proc/net/tcp6 lists 128-bit ones. */
		if (sscanf(line,
			   " %*d: %*[0-9A-Fa-f]:%x %*[0-9A-Fa-f]:%*x %x %*x:%*x %*x:%*x %*x %*u %*u %lu",
			   &port, &state, &inode) != 3)
			continue;
		if (inode == 0 || (kind == WL_ATTRIBUTION_KIND_TCP && state == 0x0A)) /* LISTEN */
			continue;
		for (size_t i = 0; i < n; i++)
			if (keys[i].kind == kind && keys[i].key == port && keys[i].inode == 0)
				keys[i].inode = inode;
	}
	fclose(f);
}

/* Marks the inode of each socket key still without one whose socket the kernel lists. */
static void find_all_inodes(struct sock_key *keys, size_t n)
{
	int tcp = 0, udp = 0;
	for (size_t i = 0; i < n; i++) {
		tcp |= keys[i].kind == WL_ATTRIBUTION_KIND_TCP && keys[i].inode == 0;
		udp |= keys[i].kind == WL_ATTRIBUTION_KIND_UDP && keys[i].inode == 0;
	}
	/* The *6 tables (absent without CONFIG_IPV6) list dual-stack sockets, IPv4 flows too. */
	if (tcp) {
		find_inodes("/proc/net/tcp", keys, n, WL_ATTRIBUTION_KIND_TCP);
		find_inodes("/proc/net/tcp6", keys, n, WL_ATTRIBUTION_KIND_TCP);
	}
	if (udp) {
		find_inodes("/proc/net/udp", keys, n, WL_ATTRIBUTION_KIND_UDP);
		find_inodes("/proc/net/udp6", keys, n, WL_ATTRIBUTION_KIND_UDP);
	}
}

static void forget(struct owner *o)
{
	if (o->pidfd >= 0)
		close(o->pidfd);
	if (o->fddir >= 0)
		close(o->fddir);
	*o = (struct owner){0, -1, -1, -1};
}

/* Moves pid to the front of the recent owners; takes pidfd (or closes it). */
static void remember(pid_t pid, int pidfd, int lastfd)
{
	size_t at = RECENT_OWNERS - 1;
	for (size_t i = 0; i < RECENT_OWNERS; i++)
		if (recent[i].pid == pid) {
			at = i;
			break;
		}
	struct owner o = recent[at];
	if (o.pid != pid) {
		if (o.pid != 0)
			forget(&o);
		char path[64];
		snprintf(path, sizeof path, "/proc/%d/fd", pid);
		o = (struct owner){pid, -1, open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC), -1};
	}
	if (pidfd >= 0 && o.pidfd < 0)
		o.pidfd = pidfd;
	else if (pidfd >= 0 && pidfd != o.pidfd)
		close(pidfd);
	if (lastfd >= 0)
		o.lastfd = lastfd;
	memmove(recent + 1, recent, at * sizeof recent[0]);
	recent[0] = o;
}

/* The kind and local port of socket `fd` (the agent's copy of a process's socket); 0 when it
 * is neither a TCP nor a UDP socket, or a listening one. Socket options only: nothing that
 * could reach a filesystem, should the process have swapped the fd for a file meanwhile. */
static uint8_t socket_port(int fd, uint32_t *port)
{
	int proto = 0, listening = 0;
	socklen_t len = sizeof proto;
	if (getsockopt(fd, SOL_SOCKET, SO_PROTOCOL, &proto, &len) != 0)
		return 0;
	uint8_t kind = proto == IPPROTO_TCP   ? WL_ATTRIBUTION_KIND_TCP
		       : proto == IPPROTO_UDP ? WL_ATTRIBUTION_KIND_UDP
					      : 0;
	len = sizeof listening;
	if (kind == WL_ATTRIBUTION_KIND_TCP &&
	    (getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &listening, &len) != 0 || listening))
		return 0;
	struct sockaddr_storage addr;
	len = sizeof addr;
	if (kind == 0 || getsockname(fd, (struct sockaddr *)&addr, &len) != 0)
		return 0;
	if (addr.ss_family == AF_INET)
		*port = ntohs(((struct sockaddr_in *)&addr)->sin_port);
	else if (addr.ss_family == AF_INET6)
		*port = ntohs(((struct sockaddr_in6 *)&addr)->sin6_port);
	else
		return 0;
	return kind;
}

/* Marks the keys that socket `inode` (fd `fd` of the process behind `pidfd`) answers;
 * returns how many. */
static size_t match_socket(pid_t pid, int pidfd, int fd, unsigned long inode,
			   struct sock_key *keys, size_t n)
{
	size_t found = 0;
	if (pidfd < 0) {
		for (size_t i = 0; i < n; i++)
			if (keys[i].inode == inode && keys[i].pid == 0) {
				keys[i].pid = pid;
				found++;
			}
		return found;
	}
	int copy = (int)syscall(SYS_pidfd_getfd, pidfd, fd, 0);
	if (copy < 0)
		return 0;
	uint32_t port = 0;
	uint8_t kind = socket_port(copy, &port);
	close(copy);
	for (size_t i = 0; kind != 0 && i < n; i++)
		if (keys[i].kind == kind && keys[i].key == port && keys[i].pid == 0) {
			keys[i].inode = inode;
			keys[i].pid = pid;
			found++;
		}
	return found;
}

/* Looks through pid's fds for the sockets still unowned; returns how many it found. */
static size_t scan_fds(pid_t pid, struct sock_key *keys, size_t n, size_t left)
{
	char path[64], link[64];
	snprintf(path, sizeof path, "/proc/%d/fd", pid);
	DIR *fds = opendir(path);
	if (!fds)
		return 0;
	int pidfd = -1;
	if (direct && (pidfd = (int)syscall(SYS_pidfd_open, pid, 0)) < 0) {
		closedir(fds);
		return 0; /* gone */
	}
	size_t found = 0;
	int lastfd = -1;
	struct dirent *fe;
	while (found < left && (fe = readdir(fds))) {
		/* Sockets only: the agent must never hold a copy of a file (closing it would flush). */
		ssize_t len = readlinkat(dirfd(fds), fe->d_name, link, sizeof link - 1);
		if (len <= 8 || strncmp(link, "socket:[", 8) != 0)
			continue;
		link[len] = '\0';
		unsigned long inode = strtoul(link + 8, NULL, 10);
		size_t got = match_socket(pid, pidfd, atoi(fe->d_name), inode, keys, n);
		if (got)
			lastfd = atoi(fe->d_name);
		found += got;
	}
	closedir(fds);
	if (found)
		remember(pid, pidfd, lastfd);
	else if (pidfd >= 0)
		close(pidfd);
	return found;
}

/* Asks a recent owner's fd that held its last socket whether it is one of the keys now: a
 * handful of syscalls where a scan of its fds takes a few times as many (and under emulation
 * each costs tens of microseconds). */
static size_t try_last_fd(struct owner *o, struct sock_key *keys, size_t n)
{
	if (o->pidfd < 0 || o->fddir < 0 || o->lastfd < 0)
		return 0;
	char name[16], link[64];
	snprintf(name, sizeof name, "%d", o->lastfd);
	/* Sockets only, as in scan_fds. */
	ssize_t len = readlinkat(o->fddir, name, link, sizeof link - 1);
	if (len <= 8 || strncmp(link, "socket:[", 8) != 0)
		return 0;
	link[len] = '\0';
	return match_socket(o->pid, o->pidfd, o->lastfd, strtoul(link + 8, NULL, 10), keys, n);
}

static int was_recent(pid_t pid)
{
	for (size_t i = 0; i < RECENT_OWNERS; i++)
		if (recent[i].pid == pid)
			return 1;
	return 0;
}

/* Scans a batch of pids, highest (newest, until pids wrap) first: a new connection is most
 * often a new process's. */
static size_t scan_batch(size_t count, struct sock_key *keys, size_t n, size_t left)
{
	size_t found = 0;
	for (size_t i = count; i-- > 0 && found < left;)
		if (!was_recent(batch[i]))
			found += scan_fds(batch[i], keys, n, left - found);
	return found;
}

/* Finds the process holding each socket: the recent owners first, then every process. The
 * agent (PID 1) holds no guest flows. */
static void find_owners(struct sock_key *keys, size_t n)
{
	size_t left = 0;
	for (size_t i = 0; i < n; i++)
		left += direct ? keys[i].kind != WL_ATTRIBUTION_KIND_PID : keys[i].inode != 0;
	if (direct && left > 0 && recent[0].pid > 1)
		left -= try_last_fd(&recent[0], keys, n);
	pid_t tried[RECENT_OWNERS];
	for (size_t i = 0; i < RECENT_OWNERS; i++) /* scan_fds reorders `recent` */
		tried[i] = recent[i].pid;
	for (size_t i = 0; i < RECENT_OWNERS && left > 0; i++)
		if (tried[i] > 1)
			left -= scan_fds(tried[i], keys, n, left);
	if (left > 0 && direct) {
		/* Before walking every process: only for sockets that still exist (a guest that
		 * opens and closes flows at once must not make each question a walk of /proc). */
		find_all_inodes(keys, n);
		left = 0;
		for (size_t i = 0; i < n; i++)
			left += keys[i].kind != WL_ATTRIBUTION_KIND_PID && keys[i].pid == 0 &&
				keys[i].inode != 0;
	}
	DIR *proc = left ? opendir("/proc") : NULL;
	if (!proc)
		return;
	size_t count = 0;
	struct dirent *de;
	while (left > 0 && (de = readdir(proc))) {
		pid_t pid = (pid_t)atoi(de->d_name);
		if (pid <= 1)
			continue;
		batch[count++] = pid;
		if (count == PID_BATCH) {
			left -= scan_batch(count, keys, n, left);
			count = 0;
		}
	}
	if (left > 0)
		scan_batch(count, keys, n, left);
	closedir(proc);
}

void sock_owners(struct sock_key *keys, size_t n)
{
	static int ready;
	if (!ready) {
		for (size_t i = 0; i < RECENT_OWNERS; i++)
			recent[i] = (struct owner){0, -1, -1, -1};
		ready = 1;
	}
	if (!direct_lookup())
		find_all_inodes(keys, n);
	find_owners(keys, n);
}
