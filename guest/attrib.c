#include "attrib.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cmdline.h"
#include "proto.h"
#include "sockowner.h"
#include "stream.h"
#include "util.h"
#include "wire.h"

/* Cgroups of execs whose processes may still live; one more exec beyond runs unattributed. */
#define MAX_GROUPS 256
/* Keys one request may ask about (the host batches at most this many). */
#define MAX_KEYS 64
/* Command line reported per process: bytes read, arguments kept. */
#define MAX_CMDLINE_BYTES 512
#define MAX_ARGS 16
/* Where the hierarchy is mounted for the moment it takes to open it. */
#define CGROUP_MNT "/run/wheellock/cgroup"

static int cg_root = -1;
static int pending_fd = -1;
static uint32_t groups[MAX_GROUPS]; /* exec stream ids; 0 = free slot */
static uint8_t replybuf[WL_MAX_PAYLOAD];

void attrib_init(void)
{
	if (cmdline()->attribution_off)
		return;
	if (mkdir_p(CGROUP_MNT, 0700) != 0 ||
	    mount("cgroup2", CGROUP_MNT, "cgroup2", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL) != 0) {
		logmsg("cgroup2: %s; execs are attributed by parent pid only", strerror(errno));
		rmdir(CGROUP_MNT);
		return;
	}
	cg_root = open(CGROUP_MNT, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	/* Detached, the hierarchy is reachable through cg_root alone: a command cannot move
	 * itself (or another exec's processes) to another cgroup without mounting cgroup2,
	 * which needs CAP_SYS_ADMIN. */
	umount2(CGROUP_MNT, MNT_DETACH);
	rmdir(CGROUP_MNT);
}

/* Removes the cgroups of finished execs once nothing runs in them (rmdir says EBUSY until
 * then). */
static void sweep(void)
{
	char name[16];
	for (size_t i = 0; i < MAX_GROUPS; i++) {
		if (groups[i] == 0)
			continue;
		struct stream *s = stream_find(groups[i]);
		if (s && s->kind == S_EXEC)
			continue;
		snprintf(name, sizeof name, "e%u", groups[i]);
		if (unlinkat(cg_root, name, AT_REMOVEDIR) == 0 || errno == ENOENT)
			groups[i] = 0;
	}
}

void attrib_exec_prepare(uint32_t id)
{
	pending_fd = -1;
	if (cg_root < 0 || id == 0)
		return;
	sweep();
	size_t slot = MAX_GROUPS;
	for (size_t i = 0; i < MAX_GROUPS; i++) {
		if (groups[i] == id) {
			slot = i;
			break;
		}
		if (groups[i] == 0 && slot == MAX_GROUPS)
			slot = i;
	}
	if (slot == MAX_GROUPS)
		return;
	char name[32];
	snprintf(name, sizeof name, "e%u", id);
	/* EEXIST: left by an exec of the same id in a snapshot's session; empty by now. */
	if (mkdirat(cg_root, name, 0755) != 0 && errno != EEXIST)
		return;
	groups[slot] = id;
	snprintf(name, sizeof name, "e%u/cgroup.procs", id);
	pending_fd = openat(cg_root, name, O_WRONLY | O_CLOEXEC);
}

void attrib_child_join(void)
{
	if (pending_fd >= 0)
		(void)!write(pending_fd, "0", 1); /* "0": the writer itself */
}

void attrib_exec_spawned(void)
{
	if (pending_fd >= 0)
		close(pending_fd);
	pending_fd = -1;
}

/* The exec that started pid by the process tree: up the parent chain to an exec's first
 * process. Used without cgroups; a daemon re-parented to PID 1 is then nobody's. */
static long exec_by_ancestry(pid_t pid)
{
	char path[64], buf[512];
	for (int depth = 0; depth < 64 && pid > 1; depth++) {
		for (size_t i = 0; i < stream_count(); i++) {
			struct stream *s = stream_at(i);
			if (s->kind == S_EXEC && s->pid == pid)
				return (long)s->id;
		}
		snprintf(path, sizeof path, "/proc/%d/stat", pid);
		int fd = open(path, O_RDONLY | O_CLOEXEC);
		if (fd < 0)
			return depth == 0 ? -1 : 0;
		ssize_t len = read(fd, buf, sizeof buf - 1);
		close(fd);
		if (len <= 0)
			return depth == 0 ? -1 : 0;
		buf[len] = '\0';
		/* "pid (comm) state ppid ...": comm may hold spaces and parentheses */
		char *end = strrchr(buf, ')');
		int ppid = 0;
		if (!end || sscanf(end + 1, " %*c %d", &ppid) != 1)
			return 0;
		pid = ppid;
	}
	return 0;
}

/* Exec stream id of pid; 0 = no exec's; -1 = no such process. */
static long exec_of(pid_t pid)
{
	if (cg_root < 0)
		return exec_by_ancestry(pid);
	char path[64];
	snprintf(path, sizeof path, "/proc/%d/cgroup", pid);
	char *text = read_small_file(path, 1024, NULL);
	if (!text)
		return -1;
	long id = 0;
	/* cgroup2 only: "0::/e12" (deeper when a privileged command made sub-groups) */
	char *line = strstr(text, "0::/e");
	if (line && (line == text || line[-1] == '\n')) {
		char *end;
		unsigned long v = strtoul(line + 5, &end, 10);
		if (end != line + 5 && (*end == '\n' || *end == '/' || *end == '\0') && v <= UINT32_MAX)
			id = (long)v;
	}
	free(text);
	return id;
}

/* Length of the well-formed UTF-8 sequence at s (RFC 3629: no overlongs, no surrogates,
 * nothing above U+10FFFF), or 0. */
static size_t utf8_seq(const unsigned char *s, size_t left)
{
	unsigned char c = s[0];
	size_t need;
	unsigned char lo = 0x80, hi = 0xBF; /* allowed range of the second byte */
	if (c < 0x80)
		return 1;
	if (c >= 0xC2 && c <= 0xDF)
		need = 1;
	else if (c >= 0xE0 && c <= 0xEF) {
		need = 2;
		if (c == 0xE0)
			lo = 0xA0;
		if (c == 0xED)
			hi = 0x9F;
	} else if (c >= 0xF0 && c <= 0xF4) {
		need = 3;
		if (c == 0xF0)
			lo = 0x90;
		if (c == 0xF4)
			hi = 0x8F;
	} else
		return 0;
	if (need >= left || s[1] < lo || s[1] > hi)
		return 0;
	for (size_t k = 2; k <= need; k++)
		if ((s[k] & 0xC0) != 0x80)
			return 0;
	return need + 1;
}

/* Replaces bytes that are not well-formed UTF-8 with '?': records carry UTF-8 only, and the
 * host ends a session that sends anything else. */
static void make_utf8(char *s, size_t len)
{
	size_t i = 0;
	while (i < len) {
		size_t n = utf8_seq((const unsigned char *)s + i, len - i);
		if (n == 0)
			s[i++] = '?';
		else
			i += n;
	}
}

/* The process's command line as ARG fields (at most MAX_ARGS, MAX_CMDLINE_BYTES). */
static void add_cmdline(struct rec *r, pid_t pid)
{
	char path[64], buf[MAX_CMDLINE_BYTES + 1];
	snprintf(path, sizeof path, "/proc/%d/cmdline", pid);
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	ssize_t len = fd >= 0 ? read(fd, buf, MAX_CMDLINE_BYTES) : -1;
	if (fd >= 0)
		close(fd);
	if (len <= 0)
		return; /* a kernel thread, or gone */
	buf[len] = '\0';
	make_utf8(buf, (size_t)len);
	int args = 0;
	for (char *p = buf; p < buf + len && args < MAX_ARGS; p += strlen(p) + 1, args++)
		rec_str(r, T_ATTRIBUTION_ARG, p);
}

static void add_entry(struct rec *out, const struct sock_key *k)
{
	uint8_t entry[MAX_CMDLINE_BYTES + MAX_ARGS * WL_RECORD_ENTRY_HEADER + 64];
	struct rec r;
	rec_init(&r, entry, sizeof entry);
	rec_u8(&r, T_ATTRIBUTION_KIND, k->kind);
	rec_u32(&r, T_ATTRIBUTION_KEY, k->key);
	long exec = k->pid > 0 ? exec_of(k->pid) : -1;
	if (exec < 0) {
		rec_u8(&r, T_ATTRIBUTION_STATE, WL_ATTRIBUTION_STATE_GONE);
	} else {
		rec_u8(&r, T_ATTRIBUTION_STATE,
		       exec > 0 ? WL_ATTRIBUTION_STATE_EXEC : WL_ATTRIBUTION_STATE_NO_EXEC);
		if (exec > 0)
			rec_u32(&r, T_ATTRIBUTION_EXEC, (uint32_t)exec);
		rec_u32(&r, T_ATTRIBUTION_PID, (uint32_t)k->pid);
		add_cmdline(&r, k->pid);
	}
	rec_bytes(out, T_ATTRIBUTE_OK_ENTRY, entry, r.len);
}

int attrib_query(uint32_t id, const uint8_t *payload, uint32_t len)
{
	if (!rec_valid(payload, len))
		return -1;
	struct sock_key keys[MAX_KEYS];
	size_t n = 0;
	struct rec_it it;
	uint8_t tag;
	const uint8_t *v;
	uint32_t l;
	rec_iter(&it, payload, len);
	while (rec_next(&it, &tag, &v, &l) == 1) {
		uint8_t kind = tag == T_ATTRIBUTE_PID	     ? WL_ATTRIBUTION_KIND_PID
			       : tag == T_ATTRIBUTE_TCP_PORT ? WL_ATTRIBUTION_KIND_TCP
			       : tag == T_ATTRIBUTE_UDP_PORT ? WL_ATTRIBUTION_KIND_UDP
							     : 0;
		if (kind == 0)
			continue;
		uint32_t key;
		if (val_u32(v, l, &key) != 0) {
			wire_send_error(id, EINVAL, "bad ATTRIBUTE key");
			return 0;
		}
		if (n == MAX_KEYS) {
			wire_send_error(id, E2BIG, "more than %d ATTRIBUTE keys", MAX_KEYS);
			return 0;
		}
		keys[n] = (struct sock_key){kind, key, 0, kind == WL_ATTRIBUTION_KIND_PID ? (pid_t)key : 0};
		if (kind == WL_ATTRIBUTION_KIND_PID && (key == 0 || key > 0x3fffffff))
			keys[n].pid = 0;
		n++;
	}
	sock_owners(keys, n);
	struct rec out;
	rec_init(&out, replybuf, sizeof replybuf);
	for (size_t i = 0; i < n; i++)
		add_entry(&out, &keys[i]);
	wire_send(FT_OK, id, replybuf, out.len);
	return 0;
}
