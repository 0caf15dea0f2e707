#include "sockowner.h"

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "proto.h"

/* Owners found last, newest first: the host asks about every new connection, and the process
 * that made the last one usually makes the next (a client's loop, a pool). */
#define RECENT_OWNERS 8
/* Pids read from /proc before their fds are looked at (newest first); more: in batches. */
#define PID_BATCH 1024

static pid_t recent[RECENT_OWNERS];
static pid_t batch[PID_BATCH];

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
		if (sscanf(line, " %*d: %*x:%x %*x:%*x %x %*x:%*x %*x:%*x %*x %*u %*u %lu", &port,
			   &state, &inode) != 3)
			continue;
		if (inode == 0 || (kind == WL_ATTRIBUTION_KIND_TCP && state == 0x0A)) /* LISTEN */
			continue;
		for (size_t i = 0; i < n; i++)
			if (keys[i].kind == kind && keys[i].key == port && keys[i].inode == 0)
				keys[i].inode = inode;
	}
	fclose(f);
}

static void remember(pid_t pid)
{
	size_t at = RECENT_OWNERS - 1;
	for (size_t i = 0; i < RECENT_OWNERS; i++)
		if (recent[i] == pid) {
			at = i;
			break;
		}
	memmove(recent + 1, recent, at * sizeof recent[0]);
	recent[0] = pid;
}

/* Looks through pid's fds for the sockets still unowned; returns how many it found. */
static size_t scan_fds(pid_t pid, struct sock_key *keys, size_t n, size_t left)
{
	char path[64], link[64];
	snprintf(path, sizeof path, "/proc/%d/fd", pid);
	DIR *fds = opendir(path);
	if (!fds)
		return 0;
	size_t found = 0;
	struct dirent *fe;
	while (found < left && (fe = readdir(fds))) {
		ssize_t len = readlinkat(dirfd(fds), fe->d_name, link, sizeof link - 1);
		if (len <= 8 || strncmp(link, "socket:[", 8) != 0)
			continue;
		link[len] = '\0';
		unsigned long inode = strtoul(link + 8, NULL, 10);
		for (size_t i = 0; i < n; i++)
			if (keys[i].inode == inode && keys[i].pid == 0) {
				keys[i].pid = pid;
				found++;
			}
	}
	closedir(fds);
	if (found)
		remember(pid);
	return found;
}

static int was_recent(pid_t pid)
{
	for (size_t i = 0; i < RECENT_OWNERS; i++)
		if (recent[i] == pid)
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
		left += keys[i].inode != 0;
	pid_t tried[RECENT_OWNERS];
	memcpy(tried, recent, sizeof tried); /* scan_fds reorders `recent` */
	for (size_t i = 0; i < RECENT_OWNERS && left > 0; i++)
		if (tried[i] > 1)
			left -= scan_fds(tried[i], keys, n, left);
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
	int tcp = 0, udp = 0;
	for (size_t i = 0; i < n; i++) {
		tcp |= keys[i].kind == WL_ATTRIBUTION_KIND_TCP;
		udp |= keys[i].kind == WL_ATTRIBUTION_KIND_UDP;
	}
	if (tcp)
		find_inodes("/proc/net/tcp", keys, n, WL_ATTRIBUTION_KIND_TCP);
	if (udp)
		find_inodes("/proc/net/udp", keys, n, WL_ATTRIBUTION_KIND_UDP);
	find_owners(keys, n);
}
