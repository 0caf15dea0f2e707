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
#include "procmemo.h"
#include "proto.h"
#include "sockowner.h"
#include "stream.h"
#include "synstamp.h"
#include "util.h"
#include "wire.h"

/* Cgroups of execs whose processes may still live, plus the ready ones; one more exec beyond
 * runs unattributed. */
#define MAX_GROUPS 256
/* Empty cgroups kept made in advance, so an exec's child starts in one without a mkdir on the
 * exec's path (a burst beyond them makes its own). */
#define READY_GROUPS 2
/* Keys one request may ask about (the host batches at most this many). */
#define MAX_KEYS 64
/* Command line reported per process: bytes read, arguments kept. */
#define MAX_CMDLINE_BYTES 512
#define MAX_ARGS 16
/* Where the hierarchy is mounted for the moment it takes to open it. */
#define CGROUP_MNT "/run/wheellock/cgroup"

/* One cgroup "g<seq>" of the private hierarchy. Names are never reused (a cgroup2 directory
 * cannot be renamed), so a name read from /proc/PID/cgroup means one exec for as long as the
 * cgroup exists. */
struct group {
	uint32_t seq;  /* 0 = free slot */
	uint32_t exec; /* exec stream id; 0 = ready, waiting for an exec */
	int fd;	       /* the directory, open while ready (for CLONE_INTO_CGROUP) */
	uint64_t id;   /* the cgroup's id (its directory's inode number), as the SYN stamp has it */
};

static int cg_root = -1;
static uint64_t cg_root_id; /* the hierarchy's root: processes of no exec */
static struct group groups[MAX_GROUPS];
static uint32_t next_seq = 1;
static struct group *pending; /* prepared for the exec being spawned */
static int sweep_due;	      /* an exec ended or a process exited since the last sweep */
static int refill_failed;     /* a mkdir failed: no retry before something ends */
static uint8_t replybuf[WL_MAX_PAYLOAD];

/* "favordynmods" (Linux >= 6.0) keeps the lock that guards moving processes between cgroups
 * in the mode where taking it for writing needs no RCU grace period: moving the child of a
 * kernel without clone3 costs a write instead of a wait, at the price of a slightly dearer
 * fork. Older kernels refuse the option; the hierarchy works without it. */
static int mount_hierarchy(void)
{
	if (mount("cgroup2", CGROUP_MNT, "cgroup2", MS_NOSUID | MS_NODEV | MS_NOEXEC,
		  "favordynmods") == 0)
		return 0;
	return mount("cgroup2", CGROUP_MNT, "cgroup2", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL);
}

void attrib_init(void)
{
	if (cmdline()->attribution_off)
		return;
	if (mkdir_p(CGROUP_MNT, 0700) != 0 || mount_hierarchy() != 0) {
		logmsg("cgroup2: %s; execs are attributed by parent pid only", strerror(errno));
		rmdir(CGROUP_MNT);
		return;
	}
	cg_root = open(CGROUP_MNT, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	struct stat st;
	if (cg_root >= 0 && fstat(cg_root, &st) == 0)
		cg_root_id = st.st_ino;
	/* ENOSYS, EINVAL: a kernel without the BPF syscall or cgroup BPF; the host then asks
	 * about every connection, as it always may. */
	if (cg_root >= 0 && synstamp_attach(cg_root) != 0 && errno != ENOSYS && errno != EINVAL)
		logmsg("SYN stamp: %s; connections are attributed by asking", strerror(errno));
	/* Detached, the hierarchy is reachable through cg_root alone: a command cannot move
	 * itself (or another exec's processes) to another cgroup without mounting cgroup2,
	 * which needs CAP_SYS_ADMIN. */
	umount2(CGROUP_MNT, MNT_DETACH);
	rmdir(CGROUP_MNT);
}

/* 1 when the cgroup's `cgroup.events` says "frozen 1" (or it is gone). */
static int group_frozen(uint32_t seq)
{
	char path[48];
	snprintf(path, sizeof path, "g%u/cgroup.events", seq);
	int fd = openat(cg_root, path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return errno == ENOENT;
	char buf[256];
	ssize_t n = read(fd, buf, sizeof buf - 1);
	close(fd);
	if (n <= 0)
		return 0;
	buf[n] = 0;
	return strstr(buf, "frozen 1") != NULL;
}

int attrib_freeze(int on)
{
	if (cg_root < 0)
		return 0;
	char path[48];
	for (size_t i = 0; i < MAX_GROUPS; i++) {
		/* Ready groups hold no process: an exec started in one must not start frozen. */
		if (groups[i].seq == 0 || (on && groups[i].exec == 0))
			continue;
		snprintf(path, sizeof path, "g%u/cgroup.freeze", groups[i].seq);
		int fd = openat(cg_root, path, O_WRONLY | O_CLOEXEC);
		if (fd < 0) {
			if (errno == ENOENT)
				continue;
			return -1;
		}
		ssize_t n = write(fd, on ? "1" : "0", 1);
		int saved = errno;
		close(fd);
		if (n != 1) {
			errno = n < 0 ? saved : EIO;
			return -1;
		}
	}
	if (!on)
		return 0;
	for (int tries = 0; tries < 100; tries++) {
		int all = 1;
		for (size_t i = 0; i < MAX_GROUPS && all; i++)
			if (groups[i].seq != 0 && groups[i].exec != 0 && !group_frozen(groups[i].seq))
				all = 0;
		if (all)
			return 0;
		usleep(5000);
	}
	logmsg("freeze: a cgroup did not report frozen within 500 ms");
	return 0;
}

/* Makes one empty cgroup and returns its slot, ready (exec 0, directory open), or NULL. */
static struct group *make_group(void)
{
	struct group *g = NULL;
	for (size_t i = 0; i < MAX_GROUPS && !g; i++)
		if (groups[i].seq == 0)
			g = &groups[i];
	if (!g)
		return NULL;
	char name[16];
	uint32_t seq = next_seq++;
	snprintf(name, sizeof name, "g%u", seq);
	/* EEXIST only if the counter wrapped onto a cgroup that still lives: skip the name. */
	if (mkdirat(cg_root, name, 0755) != 0)
		return NULL;
	int fd = openat(cg_root, name, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0) {
		unlinkat(cg_root, name, AT_REMOVEDIR);
		return NULL;
	}
	struct stat st;
	*g = (struct group){seq, 0, fd, fstat(fd, &st) == 0 ? st.st_ino : 0};
	return g;
}

static size_t ready_count(void)
{
	size_t n = 0;
	for (size_t i = 0; i < MAX_GROUPS; i++)
		n += groups[i].seq != 0 && groups[i].exec == 0;
	return n;
}

/* Removes the cgroup of one finished exec once nothing runs in it (rmdir says EBUSY until
 * then); returns 1 if it removed one. all = 0 stops after the first removal. */
static int sweep(int all)
{
	char name[16];
	int removed = 0;
	for (size_t i = 0; i < MAX_GROUPS; i++) {
		struct group *g = &groups[i];
		if (g->seq == 0 || g->exec == 0 || g == pending)
			continue;
		struct stream *s = stream_find(g->exec);
		if (s && s->kind == S_EXEC)
			continue;
		snprintf(name, sizeof name, "g%u", g->seq);
		if (unlinkat(cg_root, name, AT_REMOVEDIR) == 0 || errno == ENOENT) {
			g->seq = 0;
			removed = 1;
			if (!all)
				return 1;
		}
	}
	return removed;
}

int attrib_exec_prepare(uint32_t id)
{
	pending = NULL;
	if (cg_root < 0 || id == 0)
		return -1;
	struct group *g = NULL;
	for (size_t i = 0; i < MAX_GROUPS && !g; i++)
		if (groups[i].seq != 0 && groups[i].exec == 0)
			g = &groups[i];
	if (!g)
		g = make_group();
	if (!g && sweep(1))
		g = make_group();
	if (!g)
		return -1;
	g->exec = id;
	pending = g;
	return g->fd;
}

void attrib_child_join(int cgroup_fd)
{
	if (cgroup_fd < 0)
		return;
	int fd = openat(cgroup_fd, "cgroup.procs", O_WRONLY | O_CLOEXEC);
	if (fd >= 0)
		(void)!write(fd, "0", 1); /* "0": the writer itself */
}

void attrib_exec_spawned(void)
{
	if (pending && pending->fd >= 0)
		close(pending->fd);
	if (pending)
		pending->fd = -1;
	pending = NULL;
}

void attrib_note_exit(void)
{
	sweep_due = 1;
	refill_failed = 0;
}

int attrib_idle_work(void)
{
	return cg_root >= 0 && (sweep_due || (!refill_failed && ready_count() < READY_GROUPS));
}

void attrib_idle(void)
{
	if (cg_root < 0)
		return;
	/* One step at a time: the caller looks for frames between steps, so an exec that
	 * arrives meanwhile waits for at most one mkdir or rmdir. */
	if (sweep_due && sweep(0))
		return;
	sweep_due = 0;
	if (!refill_failed && ready_count() < READY_GROUPS && !make_group()) {
		logmsg("cgroup2: cannot make an exec cgroup: %s", strerror(errno));
		refill_failed = 1;
	}
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

/* The cgroup "g<seq>"; NULL for none. */
static const struct group *group_of(unsigned long seq)
{
	for (size_t i = 0; i < MAX_GROUPS; i++)
		if (groups[i].seq != 0 && groups[i].seq == seq)
			return &groups[i];
	return NULL;
}

/* The id of the cgroup at path (from /proc/PID/cgroup, "/..." below the root); 0 unknown. */
static uint64_t cgroup_id_at(const char *path, size_t len)
{
	if (len == 1)
		return cg_root_id;
	char rel[256];
	if (len - 1 >= sizeof rel)
		return 0;
	memcpy(rel, path + 1, len - 1);
	rel[len - 1] = '\0';
	struct stat st;
	return fstatat(cg_root, rel, &st, 0) == 0 ? st.st_ino : 0;
}

/* Whose pid is: owner->exec is its exec's stream id, 0 = no exec's, -1 = no such process. */
static void owner_of(pid_t pid, struct proc_owner *owner)
{
	*owner = (struct proc_owner){0, 0};
	if (cg_root < 0) {
		owner->exec = exec_by_ancestry(pid);
		return;
	}
	char path[64];
	snprintf(path, sizeof path, "/proc/%d/cgroup", pid);
	char *text = read_small_file(path, 1024, NULL);
	if (!text) {
		owner->exec = -1;
		return;
	}
	/* cgroup2 only: "0::/g12" (deeper when a privileged command made sub-groups) */
	char *line = strstr(text, "0::/");
	if (line && (line == text || line[-1] == '\n')) {
		char *cg = line + 3;
		size_t len = strcspn(cg, "\n");
		char *end;
		unsigned long v = cg[1] == 'g' ? strtoul(cg + 2, &end, 10) : 0;
		const struct group *g = v != 0 && end != cg + 2 ? group_of(v) : NULL;
		if (g) {
			owner->exec = (long)g->exec;
			owner->cgroup = end == cg + len ? g->id : cgroup_id_at(cg, len);
		} else {
			owner->cgroup = cgroup_id_at(cg, len);
		}
	}
	free(text);
}

/* Reads the process's command line (at most MAX_CMDLINE_BYTES, made UTF-8) into buf;
 * returns its length, 0 for none (a kernel thread, or gone). */
static size_t read_cmdline(pid_t pid, char *buf)
{
	char path[64];
	snprintf(path, sizeof path, "/proc/%d/cmdline", pid);
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	ssize_t len = fd >= 0 ? read(fd, buf, MAX_CMDLINE_BYTES) : -1;
	if (fd >= 0)
		close(fd);
	if (len <= 0)
		return 0;
	make_utf8(buf, (size_t)len);
	return (size_t)len;
}

/* A command line as ARG fields (at most MAX_ARGS). */
static void add_args(struct rec *r, const char *argv, size_t len)
{
	char buf[MAX_CMDLINE_BYTES + 1];
	memcpy(buf, argv, len);
	buf[len] = '\0';
	int args = 0;
	for (char *p = buf; p < buf + len && args < MAX_ARGS; p += strlen(p) + 1, args++)
		rec_str(r, T_ATTRIBUTION_ARG, p);
}

/* The owner and command line of pid: remembered (procmemo.c) or read from /proc (owner as
 * owner_of says); *argv points at *len bytes valid until the next call. */
static void owner_and_cmdline(pid_t pid, struct proc_owner *owner, const char **argv,
			      size_t *len)
{
	static char buf[MAX_CMDLINE_BYTES];
	if (procmemo_get(pid, owner, argv, len))
		return;
	int memfd = procmemo_open(pid);
	owner_of(pid, owner);
	*len = owner->exec >= 0 ? read_cmdline(pid, buf) : 0;
	*argv = buf;
	procmemo_put(pid, memfd, owner, buf, *len);
}

static void add_entry(struct rec *out, const struct sock_key *k)
{
	uint8_t entry[MAX_CMDLINE_BYTES + MAX_ARGS * WL_RECORD_ENTRY_HEADER + 64];
	struct rec r;
	rec_init(&r, entry, sizeof entry);
	rec_u8(&r, T_ATTRIBUTION_KIND, k->kind);
	rec_u32(&r, T_ATTRIBUTION_KEY, k->key);
	const char *argv = NULL;
	size_t argv_len = 0;
	struct proc_owner owner = {-1, 0};
	if (k->pid > 0)
		owner_and_cmdline(k->pid, &owner, &argv, &argv_len);
	long exec = owner.exec;
	if (exec < 0) {
		rec_u8(&r, T_ATTRIBUTION_STATE, WL_ATTRIBUTION_STATE_GONE);
	} else {
		rec_u8(&r, T_ATTRIBUTION_STATE,
		       exec > 0 ? WL_ATTRIBUTION_STATE_EXEC : WL_ATTRIBUTION_STATE_NO_EXEC);
		if (exec > 0)
			rec_u32(&r, T_ATTRIBUTION_EXEC, (uint32_t)exec);
		rec_u32(&r, T_ATTRIBUTION_PID, (uint32_t)k->pid);
		add_args(&r, argv, argv_len);
		if (owner.cgroup != 0)
			rec_u64(&r, T_ATTRIBUTION_CGROUP, owner.cgroup);
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
