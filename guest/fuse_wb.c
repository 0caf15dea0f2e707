#include "fuse_wb.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "proto.h"
#include "util.h"

/* Linux fuse.h opcodes and offsets used here (kernel 6.1, protocol 7.31+). */
enum {
	OP_LOOKUP = 1, OP_FORGET = 2, OP_GETATTR = 3, OP_SETATTR = 4, OP_SYMLINK = 6, OP_MKNOD = 8,
	OP_MKDIR = 9, OP_LINK = 13, OP_OPEN = 14, OP_WRITE = 16, OP_RELEASE = 18, OP_FSYNC = 20,
	OP_FLUSH = 25, OP_RELEASEDIR = 29, OP_CREATE = 35, OP_FALLOCATE = 43,
	OP_COPY_FILE_RANGE = 47, OP_UNLINK = 10, OP_RMDIR = 11, OP_RENAME = 12, OP_READLINK = 5,
	OP_READ = 15, OP_STATFS = 17, OP_GETXATTR = 22, OP_LISTXATTR = 23, OP_OPENDIR = 27,
	OP_READDIR = 28, OP_FSYNCDIR = 30, OP_ACCESS = 34, OP_INTERRUPT = 36, OP_BATCH_FORGET = 42,
	OP_READDIRPLUS = 44, OP_RENAME2 = 45, OP_LSEEK = 46,
};
#define IN_HDR 40u
#define OUT_HDR 16u
#define ATTR_BYTES 88u
#define ENTRY_OUT_ATTR 40u /* fuse_entry_out: nodeid gen entry_valid attr_valid (u64) 2 x u32 */
#define ATTR_OUT_ATTR 16u  /* fuse_attr_out: attr_valid u64, nsec u32, dummy u32 */
/* fuse_setattr_in.valid */
#define FA_MODE (1u << 0)
#define FA_UID (1u << 1)
#define FA_GID (1u << 2)
#define FA_SIZE (1u << 3)
#define FA_ATIME (1u << 4)
#define FA_MTIME (1u << 5)
#define FA_FH (1u << 6)
#define FA_ATIME_NOW (1u << 7)
#define FA_MTIME_NOW (1u << 8)
#define FA_LOCKOWNER (1u << 9)
#define FA_CTIME (1u << 10)
#define FA_PREDICTABLE                                                                         \
	(FA_MODE | FA_UID | FA_GID | FA_SIZE | FA_ATIME | FA_MTIME | FA_FH | FA_ATIME_NOW |    \
	 FA_MTIME_NOW | FA_LOCKOWNER | FA_CTIME)
#define FA_ATTRIBUTES (FA_MODE | FA_UID | FA_GID | FA_SIZE | FA_ATIME | FA_MTIME | FA_ATIME_NOW | FA_MTIME_NOW)

/* Bounds: write-behind bytes the host has not answered yet (past it requests stay
 * synchronous, so the host's in-flight limits still throttle the guest), the largest request
 * written behind, the batch, and one port write (virtio_console takes 32 KiB at most). */
#define WB_MAX_BYTES (4u << 20)
#define WB_MAX_REQUEST (128u << 10)
#define WB_BATCH_BYTES (256u << 10)
#define PORT_WRITE_MAX (32u << 10)
#define WB_IDLE_MS 2

/* fuse_attr, as the kernel lays it out. */
struct wb_attr {
	uint64_t ino, size, blocks, atime, mtime, ctime;
	uint32_t atimensec, mtimensec, ctimensec, mode, nlink, uid, gid, rdev, blksize, flags;
};

struct node {
	uint64_t id; /* 0: free slot */
	struct wb_attr attr;
	uint8_t attr_known;
	int sticky;		/* first error of a write-behind request, for the next FLUSH/FSYNC */
	uint32_t outstanding;	/* write-behind requests the host has not answered */
	uint32_t open_writers;	/* handles open for writing (CREATE/OPEN replies, RELEASE) */
	/* The host said its writes may fail for lack of space (WL_RELAY_SYNC_WRITES): nothing of
	 * it goes behind, so write() itself reports ENOSPC/EDQUOT. */
	uint8_t sync_writes;
	/* A directory's attributes pushed by the host (WL_RELAY_NODE_ATTR) after a guest change,
	 * for the next GETATTR; until dattr_until (CLOCK_MONOTONIC ns). */
	struct wb_attr dattr;
	uint64_t dattr_until;
	uint8_t dattr_ok;
	uint32_t dchanging; /* requests changing its entries sent and not answered yet */
};

struct pending {
	uint64_t unique; /* 0: free slot */
	uint64_t nodeid, nodeid2; /* nodeid2: a RENAME's new directory */
	uint32_t opcode, flags;
	uint8_t changing; /* counted in dchanging of nodeid (and nodeid2) */
};

/* Requests written behind, oldest first: the host runs them in this order and reports them
 * done in WL_RELAY_BEHIND_DONE messages (a count, and the errors among them). */
struct behind {
	uint64_t unique, nodeid; /* nodeid 0: no node accounting (RELEASE) */
	uint32_t bytes;
};
#define BEHIND_SLOTS 1024u
static struct behind behind_q[BEHIND_SLOTS];
static size_t behind_head, behind_count;

#define NODE_SLOTS 4096u
#define NODE_MAX 3072u
#define PENDING_SLOTS 2048u
#define PENDING_MAX 1536u
static struct node nodes[NODE_SLOTS];
static size_t node_count;
static struct pending pend[PENDING_SLOTS];
static size_t pend_count;
static size_t evict_cursor;

static uint8_t batch[WB_BATCH_BYTES];
static size_t batch_len, batch_off;
static int flush_now;
static uint64_t wb_bytes;

static size_t slot_of(uint64_t key, size_t slots)
{
	return (size_t)((key * 0x9E3779B97F4A7C15ull) >> 40) & (slots - 1);
}

/* Linear probing over slots whose first member is the 64-bit key (0 = free). */
#define KEY(base, size, i) (*(uint64_t *)((uint8_t *)(base) + (size) * (i)))

static size_t probe(void *base, size_t size, size_t slots, uint64_t key)
{
	size_t i = slot_of(key, slots);
	while (KEY(base, size, i) != 0 && KEY(base, size, i) != key)
		i = (i + 1) & (slots - 1);
	return i;
}

/* Deletes slot i, shifting later entries of the same run back (no tombstones). */
static void erase(void *base, size_t size, size_t slots, size_t i)
{
	size_t j = i;
	for (;;) {
		memset((uint8_t *)base + size * i, 0, size);
		for (;;) {
			j = (j + 1) & (slots - 1);
			if (KEY(base, size, j) == 0)
				return;
			size_t home = slot_of(KEY(base, size, j), slots);
			/* j's entry may move to i when i lies cyclically in [home, j). */
			if ((j > i && (home <= i || home > j)) || (j < i && home <= i && home > j))
				break;
		}
		memcpy((uint8_t *)base + size * i, (uint8_t *)base + size * j, size);
		i = j;
	}
}

static struct node *node_find(uint64_t id)
{
	if (id == 0)
		return NULL;
	size_t i = probe(nodes, sizeof *nodes, NODE_SLOTS, id);
	return nodes[i].id == id ? &nodes[i] : NULL;
}

static int node_idle(const struct node *n)
{
	return n->outstanding == 0 && n->open_writers == 0 && n->sticky == 0;
}

static struct node *node_get(uint64_t id)
{
	struct node *n = node_find(id);
	if (n || id == 0)
		return n;
	/* Full: drop one entry that holds only attributes (they are a cache). */
	for (size_t tries = 0; node_count >= NODE_MAX && tries < NODE_SLOTS; tries++) {
		size_t i = evict_cursor++ & (NODE_SLOTS - 1);
		if (nodes[i].id != 0 && node_idle(&nodes[i])) {
			erase(nodes, sizeof *nodes, NODE_SLOTS, i);
			node_count--;
		}
	}
	if (node_count >= NODE_MAX)
		return NULL;
	size_t i = probe(nodes, sizeof *nodes, NODE_SLOTS, id);
	memset(&nodes[i], 0, sizeof nodes[i]);
	nodes[i].id = id;
	node_count++;
	return &nodes[i];
}

static void node_forget_attr(uint64_t id)
{
	struct node *n = node_find(id);
	if (n)
		n->attr_known = n->dattr_ok = 0;
}

static uint64_t mono_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static struct pending *pend_add(uint64_t unique)
{
	if (unique == 0 || pend_count >= PENDING_MAX)
		return NULL;
	size_t i = probe(pend, sizeof *pend, PENDING_SLOTS, unique);
	if (pend[i].unique == unique)
		return NULL; /* the kernel never reuses one while it is pending */
	memset(&pend[i], 0, sizeof pend[i]);
	pend[i].unique = unique;
	pend_count++;
	return &pend[i];
}

static void now_ts(uint64_t *sec, uint32_t *nsec)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	*sec = (uint64_t)ts.tv_sec;
	*nsec = (uint32_t)ts.tv_nsec;
}

static void answer(int fuse_fd, uint64_t unique, int error, const void *body, size_t body_len)
{
	uint8_t out[OUT_HDR + 8 + 8 + ATTR_BYTES];
	uint32_t len = (uint32_t)(OUT_HDR + body_len);
	int32_t err = -error;
	memcpy(out, &len, 4);
	memcpy(out + 4, &err, 4);
	memcpy(out + 8, &unique, 8);
	if (body_len)
		memcpy(out + OUT_HDR, body, body_len);
	/* ENOENT: the request was interrupted meanwhile; it still reaches the host. */
	if (write(fuse_fd, out, len) < 0 && errno != ENOENT)
		logmsg("fuse wb: write to /dev/fuse: %s", strerror(errno));
}

/* Room for `len` more bytes in the batch; a batch past one port write goes out. */
static int batch_append(const uint8_t *req, size_t len)
{
	if (batch_len + len > sizeof batch)
		return -1;
	memcpy(batch + batch_len, req, len);
	batch_len += len;
	if (batch_len - batch_off >= PORT_WRITE_MAX)
		flush_now = 1;
	return 0;
}

/* Marks, queues and records a request answered here; -1 (nothing done) if it cannot be. */
static int write_behind(uint8_t *req, size_t len, uint64_t unique, uint32_t opcode,
			uint64_t nodeid, struct node *n)
{
	(void)opcode;
	if (len > WB_MAX_REQUEST || wb_bytes + len > WB_MAX_BYTES ||
	    batch_len + len > sizeof batch || behind_count >= BEHIND_SLOTS)
		return -1;
	struct behind *b = &behind_q[(behind_head + behind_count++) & (BEHIND_SLOTS - 1)];
	b->unique = unique;
	b->nodeid = n ? nodeid : 0;
	b->bytes = (uint32_t)len;
	uint32_t flags;
	memcpy(&flags, req + 36, 4);
	flags |= WL_FUSE_RELAY_ANSWERED;
	memcpy(req + 36, &flags, 4);
	batch_append(req, len);
	wb_bytes += len;
	if (n)
		n->outstanding++;
	return 0;
}

static struct pending *track(uint64_t unique, uint32_t opcode, uint64_t nodeid, uint32_t flags)
{
	struct pending *p = pend_add(unique);
	if (!p)
		return NULL;
	p->opcode = opcode;
	p->nodeid = nodeid;
	p->flags = flags;
	return p;
}

/* A request that changes directory `dir`'s entries: a push about it is used only while this
 * is the one such request in flight (another one's push might describe an older state). An
 * untracked one is never answered here, so the directory takes no push again. */
static void changing(struct pending *p, uint64_t dir)
{
	struct node *n = node_get(dir);
	if (!n)
		return;
	n->dattr_ok = 0;
	n->dchanging++;
	if (p)
		p->changing = 1;
}

static void changed(uint64_t dir)
{
	struct node *n = node_find(dir);
	if (n && n->dchanging)
		n->dchanging--;
}

/* Requests that leave a node's attributes as they are (the kernel's own view of atime aside). */
static int keeps_attr(uint32_t opcode)
{
	switch (opcode) {
	case OP_LOOKUP: case OP_FORGET: case OP_GETATTR: case OP_READLINK: case OP_OPEN:
	case OP_READ: case OP_STATFS: case OP_RELEASE: case OP_GETXATTR: case OP_LISTXATTR:
	case OP_FLUSH: case OP_OPENDIR: case OP_READDIR: case OP_RELEASEDIR: case OP_FSYNCDIR:
	case OP_ACCESS: case OP_INTERRUPT: case OP_BATCH_FORGET: case OP_READDIRPLUS:
	case OP_LSEEK: case OP_FSYNC:
		return 1;
	default:
		return 0;
	}
}

/* GETATTR of a directory whose attributes the host pushed after the last change to it. */
static int on_getattr(uint64_t unique, uint64_t nodeid, uint32_t flags, int fuse_fd)
{
	struct node *n = node_find(nodeid);
	uint64_t now = mono_ns();
	if (!n || !n->dattr_ok || now >= n->dattr_until) {
		track(unique, OP_GETATTR, nodeid, flags);
		return WB_PASS;
	}
	uint64_t left = n->dattr_until - now, sec = left / 1000000000ull;
	uint32_t nsec = (uint32_t)(left % 1000000000ull);
	uint8_t out[16 + ATTR_BYTES];
	memset(out, 0, 16);
	memcpy(out, &sec, 8);
	memcpy(out + 8, &nsec, 4);
	memcpy(out + 16, &n->dattr, ATTR_BYTES);
	answer(fuse_fd, unique, 0, out, sizeof out);
	return WB_TAKEN;
}

/* WL_RELAY_NODE_ATTR: {u64 nodeid, fuse_attr_out}. */
static void on_node_attr(const uint8_t *msg, size_t len)
{
	uint64_t id, valid_s;
	uint32_t valid_ns;
	if (len < OUT_HDR + 8 + 16 + ATTR_BYTES)
		return;
	memcpy(&id, msg + OUT_HDR, 8);
	memcpy(&valid_s, msg + OUT_HDR + 8, 8);
	memcpy(&valid_ns, msg + OUT_HDR + 16, 4);
	struct node *n = node_get(id);
	if (!n || n->dchanging != 1 || (valid_s == 0 && valid_ns == 0) || valid_s > 86400)
		return;
	memcpy(&n->dattr, msg + OUT_HDR + 24, ATTR_BYTES);
	n->dattr_until = mono_ns() + valid_s * 1000000000ull + valid_ns;
	n->dattr_ok = 1;
}

/* The attributes SETATTR `in` will leave, from what the relay knows; -1 if unpredictable. */
static int predict_setattr(const uint8_t *in, size_t in_len, const struct node *n,
			   struct wb_attr *a)
{
	if (in_len < 88 || !n || !n->attr_known || n->open_writers == 0 || n->sticky ||
	    n->sync_writes)
		return -1;
	uint32_t valid, mode, uid, gid, atimensec, mtimensec;
	uint64_t size, atime, mtime;
	memcpy(&valid, in, 4);
	memcpy(&size, in + 16, 8);
	memcpy(&atime, in + 32, 8);
	memcpy(&mtime, in + 40, 8);
	memcpy(&atimensec, in + 56, 4);
	memcpy(&mtimensec, in + 60, 4);
	memcpy(&mode, in + 68, 4);
	memcpy(&uid, in + 76, 4);
	memcpy(&gid, in + 80, 4);
	/* Anything else, and the attribute-less SETATTR (the host clears set-id bits), waits. */
	if ((valid & ~FA_PREDICTABLE) || !(valid & FA_ATTRIBUTES))
		return -1;
	*a = n->attr;
	int reg = (a->mode & S_IFMT) == S_IFREG;
	uint64_t now;
	uint32_t now_ns;
	now_ts(&now, &now_ns);
	if (valid & FA_MODE) {
		/* Set-id and sticky bits: the host may strip them (host_fs does). */
		if ((mode & 07000) || ((mode & S_IFMT) && (mode & S_IFMT) != (a->mode & S_IFMT)))
			return -1;
		a->mode = (a->mode & S_IFMT) | (mode & 07777);
	}
	/* A chown that changes owners may be refused (host-dir: EPERM); one that does not
	 * still clears set-id bits of a regular file, as does a truncate. */
	if (((valid & FA_UID) && uid != a->uid) || ((valid & FA_GID) && gid != a->gid))
		return -1;
	if ((valid & (FA_UID | FA_GID | FA_SIZE)) && reg && (a->mode & 06000))
		return -1;
	if (valid & FA_SIZE) {
		if (!reg)
			return -1;
		a->size = size;
		a->blocks = (size + 511) / 512;
		a->mtime = now;
		a->mtimensec = now_ns;
	}
	if (valid & FA_ATIME_NOW) {
		a->atime = now;
		a->atimensec = now_ns;
	} else if (valid & FA_ATIME) {
		a->atime = atime;
		a->atimensec = atimensec;
	}
	if (valid & FA_MTIME_NOW) {
		a->mtime = now;
		a->mtimensec = now_ns;
	} else if (valid & FA_MTIME) {
		a->mtime = mtime;
		a->mtimensec = mtimensec;
	}
	a->ctime = now;
	a->ctimensec = now_ns;
	return 0;
}

static int on_setattr(uint8_t *req, size_t len, uint64_t unique, uint64_t nodeid, int fuse_fd)
{
	struct node *n = node_find(nodeid);
	struct wb_attr a;
	if (predict_setattr(req + IN_HDR, len - IN_HDR, n, &a) != 0 ||
	    write_behind(req, len, unique, OP_SETATTR, nodeid, n) != 0) {
		track(unique, OP_SETATTR, nodeid, 0);
		return WB_PASS;
	}
	n->attr = a;
	/* attr_valid 0: the kernel keeps these only until its next look, which asks the host. */
	uint8_t out[16 + ATTR_BYTES];
	memset(out, 0, 16);
	memcpy(out + 16, &a, ATTR_BYTES);
	answer(fuse_fd, unique, 0, out, sizeof out);
	return WB_TAKEN;
}

static int on_write(uint8_t *req, size_t len, uint64_t unique, uint64_t nodeid, int fuse_fd)
{
	struct node *n = node_get(nodeid);
	uint64_t off;
	uint32_t size;
	if (len < IN_HDR + 40)
		return WB_PASS;
	memcpy(&off, req + IN_HDR + 8, 8);
	memcpy(&size, req + IN_HDR + 16, 4);
	/* A node with an error not reported yet writes synchronously: its writer sees it now. */
	if (!n || n->sticky || n->sync_writes || size != len - IN_HDR - 40 ||
	    write_behind(req, len, unique, OP_WRITE, nodeid, n) != 0) {
		node_forget_attr(nodeid);
		return WB_PASS;
	}
	if (n->attr_known && off + size > n->attr.size) {
		n->attr.size = off + size;
		n->attr.blocks = (n->attr.size + 511) / 512;
	}
	uint8_t out[8] = {0};
	memcpy(out, &size, 4);
	answer(fuse_fd, unique, 0, out, sizeof out);
	return WB_TAKEN;
}

static int on_release(uint8_t *req, size_t len, uint64_t unique, uint32_t opcode,
		      uint64_t nodeid, int fuse_fd)
{
	if (len < IN_HDR + 24)
		return WB_PASS;
	uint32_t flags;
	memcpy(&flags, req + IN_HDR + 8, 4);
	struct node *n = node_find(nodeid);
	if (n && opcode == OP_RELEASE && (flags & O_ACCMODE) != O_RDONLY && n->open_writers)
		n->open_writers--;
	/* Nothing waits for a release, but a reply still crosses the relay: none is waited for. */
	if (write_behind(req, len, unique, opcode, nodeid, NULL) != 0)
		return WB_PASS;
	answer(fuse_fd, unique, 0, NULL, 0);
	return WB_TAKEN;
}

/* close(2) of a node with requests written behind waits here, not at the host, until the
 * host reported them done; then it returns their first error (NFS-like: close reports what
 * writing failed to do). At most HELD_FLUSHES wait; more go to the host, whose reply (after
 * those requests, fuse-server.ts orders it) is turned into that error. */
#define HELD_FLUSHES 64u
static struct {
	uint64_t unique, nodeid;
} held[HELD_FLUSHES];
static size_t held_count;

static int take_sticky(struct node *n)
{
	int err = n ? n->sticky : 0;
	if (n)
		n->sticky = 0;
	return err;
}

static int on_flush(uint64_t unique, uint64_t nodeid, int fuse_fd)
{
	struct node *n = node_find(nodeid);
	if (n && n->outstanding > 0) {
		if (held_count == HELD_FLUSHES) {
			track(unique, OP_FLUSH, nodeid, 0);
			return WB_PASS;
		}
		held[held_count].unique = unique;
		held[held_count++].nodeid = nodeid;
		if (batch_off < batch_len)
			flush_now = 1;
		return WB_TAKEN;
	}
	answer(fuse_fd, unique, take_sticky(n), NULL, 0);
	return WB_TAKEN;
}

static void answer_held(int fuse_fd)
{
	for (size_t i = 0; i < held_count;) {
		struct node *n = node_find(held[i].nodeid);
		if (n && n->outstanding > 0) {
			i++;
			continue;
		}
		answer(fuse_fd, held[i].unique, take_sticky(n), NULL, 0);
		held[i] = held[--held_count];
	}
}

/* Anything forwarded: the batch goes first, in the same port write when it fits. */
static int forward(uint8_t *req, size_t len)
{
	if (batch_len == batch_off)
		return WB_PASS;
	flush_now = 1;
	return batch_append(req, len) == 0 ? WB_TAKEN : WB_PASS;
}

int wb_on_request(uint8_t *req, size_t len, int fuse_fd)
{
	if (len < IN_HDR)
		return forward(req, len);
	uint32_t opcode;
	uint64_t unique, nodeid, other;
	memcpy(&opcode, req + 4, 4);
	memcpy(&unique, req + 8, 8);
	memcpy(&nodeid, req + 16, 8);
	uint32_t flags = 0;
	if (len >= IN_HDR + 4)
		memcpy(&flags, req + IN_HDR, 4);
	int r = WB_PASS;
	if (!keeps_attr(opcode)) {
		struct node *d = node_find(nodeid);
		if (d)
			d->dattr_ok = 0;
	}
	switch (opcode) {
	case OP_GETATTR:
		r = on_getattr(unique, nodeid, flags, fuse_fd);
		break;
	case OP_UNLINK:
	case OP_RMDIR:
		changing(track(unique, opcode, nodeid, flags), nodeid);
		break;
	case OP_RENAME:
	case OP_RENAME2: {
		struct pending *p = track(unique, opcode, nodeid, flags);
		changing(p, nodeid);
		if (len >= IN_HDR + 8) {
			memcpy(&other, req + IN_HDR, 8);
			if (other != nodeid) {
				struct node *d = node_find(other);
				if (d)
					d->dattr_ok = 0;
				changing(p, other);
				if (p)
					p->nodeid2 = other;
			}
		}
		break;
	}
	case OP_WRITE:
		r = on_write(req, len, unique, nodeid, fuse_fd);
		break;
	case OP_SETATTR:
		r = on_setattr(req, len, unique, nodeid, fuse_fd);
		break;
	case OP_RELEASE:
	case OP_RELEASEDIR:
		r = on_release(req, len, unique, opcode, nodeid, fuse_fd);
		break;
	case OP_FLUSH:
		r = on_flush(unique, nodeid, fuse_fd);
		if (r == WB_TAKEN)
			return r; /* not forwarded at all */
		break;
	case OP_FSYNC:
	case OP_LOOKUP:
	case OP_OPEN:
		track(unique, opcode, nodeid, flags);
		break;
	case OP_MKDIR:
	case OP_MKNOD:
	case OP_SYMLINK:
	case OP_CREATE:
		changing(track(unique, opcode, nodeid, flags), nodeid);
		break;
	case OP_LINK:
		if (len >= IN_HDR + 8) {
			memcpy(&other, req + IN_HDR, 8);
			node_forget_attr(other); /* its link count changes */
		}
		changing(track(unique, opcode, nodeid, flags), nodeid);
		break;
	case OP_FALLOCATE:
		node_forget_attr(nodeid);
		break;
	case OP_COPY_FILE_RANGE:
		if (len >= IN_HDR + 24) {
			memcpy(&other, req + IN_HDR + 16, 8);
			node_forget_attr(other);
		}
		break;
	default:
		break;
	}
	return r == WB_TAKEN ? r : forward(req, len);
}

int wb_drain(int port_fd)
{
	if (!flush_now)
		return 0;
	while (batch_off < batch_len) {
		size_t n = batch_len - batch_off;
		ssize_t put = write(port_fd, batch + batch_off, n > PORT_WRITE_MAX ? PORT_WRITE_MAX : n);
		if (put < 0 && errno != EAGAIN && errno != EINTR)
			return -1;
		if (put <= 0)
			return 1;
		batch_off += (size_t)put;
	}
	batch_len = batch_off = 0;
	flush_now = 0;
	return 0;
}

int wb_wants_port(void)
{
	return flush_now && batch_off < batch_len;
}

int wb_poll_timeout(void)
{
	return batch_off < batch_len && !flush_now ? WB_IDLE_MS : -1;
}

void wb_idle(void)
{
	if (batch_off < batch_len)
		flush_now = 1;
}

/* Attributes from a reply the relay may use for predictions: only while nothing written
 * behind is pending for the node (the reply may predate those requests). */
static void learn(uint64_t nodeid, const uint8_t *attr)
{
	struct node *n = node_get(nodeid);
	if (!n)
		return;
	if (n->outstanding) {
		n->attr_known = 0;
		return;
	}
	memcpy(&n->attr, attr, ATTR_BYTES);
	n->attr_known = 1;
}

static void on_notification(const uint8_t *msg, size_t len)
{
	int32_t code;
	uint64_t a = 0, b = 0;
	memcpy(&code, msg + 4, 4);
	if (code < 1 || code > 7)
		return; /* not the kernel's (another private message) */
	if (len >= OUT_HDR + 8)
		memcpy(&a, msg + OUT_HDR, 8);
	/* inval_inode {ino}, inval_entry {parent}, delete {parent, child}: drop what is held. */
	if (code == 6 && len >= OUT_HDR + 16)
		memcpy(&b, msg + OUT_HDR + 8, 8);
	node_forget_attr(a);
	node_forget_attr(b);
}

/* WL_RELAY_BEHIND_DONE: {u32 count, u32 errors, errors x {u64 unique, i32 errno, u32 0}}:
 * the oldest `count` requests written behind are done, these of them failed. */
static void on_behind_done(const uint8_t *msg, size_t len, int fuse_fd)
{
	uint32_t count, errors;
	if (len < OUT_HDR + 8)
		return;
	memcpy(&count, msg + OUT_HDR, 4);
	memcpy(&errors, msg + OUT_HDR + 4, 4);
	if (count > behind_count)
		count = (uint32_t)behind_count;
	for (uint32_t e = 0; e < errors && OUT_HDR + 8 + 16 * (size_t)(e + 1) <= len; e++) {
		const uint8_t *at = msg + OUT_HDR + 8 + 16 * (size_t)e;
		uint64_t unique;
		int32_t err;
		memcpy(&unique, at, 8);
		memcpy(&err, at + 8, 4);
		for (uint32_t k = 0; k < count; k++) {
			struct behind *b = &behind_q[(behind_head + k) & (BEHIND_SLOTS - 1)];
			struct node *n = b->unique == unique ? node_find(b->nodeid) : NULL;
			if (!n || err <= 0)
				continue;
			n->attr_known = 0;
			/* ENOSYS from FLUSH would stop the kernel sending FLUSH at all. */
			if (n->sticky == 0)
				n->sticky = err == ENOSYS ? EIO : err;
		}
	}
	for (uint32_t k = 0; k < count; k++) {
		struct behind *b = &behind_q[behind_head];
		struct node *n = node_find(b->nodeid);
		if (n && n->outstanding)
			n->outstanding--;
		wb_bytes -= b->bytes;
		behind_head = (behind_head + 1) & (BEHIND_SLOTS - 1);
		behind_count--;
	}
	answer_held(fuse_fd);
}

int wb_on_host_message(const uint8_t *msg, size_t len, int fuse_fd)
{
	uint64_t unique;
	int32_t error;
	memcpy(&unique, msg + 8, 8);
	memcpy(&error, msg + 4, 4);
	if (unique == 0) {
		if ((uint32_t)error == WL_RELAY_BEHIND_DONE) {
			on_behind_done(msg, len, fuse_fd);
			return 1;
		}
		if ((uint32_t)error == WL_RELAY_NODE_ATTR) {
			on_node_attr(msg, len);
			return 1;
		}
		if ((uint32_t)error == WL_RELAY_SYNC_WRITES) {
			uint64_t id;
			struct node *n = NULL;
			if (len >= OUT_HDR + 8) {
				memcpy(&id, msg + OUT_HDR, 8);
				n = node_get(id);
			}
			if (n)
				n->sync_writes = 1;
			return 1;
		}
		on_notification(msg, len);
		return 0;
	}
	size_t i = probe(pend, sizeof *pend, PENDING_SLOTS, unique);
	if (pend[i].unique != unique)
		return 0;
	struct pending p = pend[i];
	erase(pend, sizeof *pend, PENDING_SLOTS, i);
	pend_count--;
	if (p.changing) {
		changed(p.nodeid);
		if (p.nodeid2)
			changed(p.nodeid2);
	}
	struct node *n = node_find(p.nodeid);
	if (error != 0) {
		if (p.opcode == OP_SETATTR)
			node_forget_attr(p.nodeid);
		return 0;
	}
	switch (p.opcode) {
	case OP_FLUSH:
	case OP_FSYNC:
		if (n && n->sticky) {
			answer(fuse_fd, unique, take_sticky(n), NULL, 0);
			return 1;
		}
		break;
	case OP_GETATTR:
	case OP_SETATTR:
		if (len >= OUT_HDR + ATTR_OUT_ATTR + ATTR_BYTES)
			learn(p.nodeid, msg + OUT_HDR + ATTR_OUT_ATTR);
		break;
	case OP_OPEN:
		if ((p.flags & O_ACCMODE) != O_RDONLY && (n = node_get(p.nodeid)))
			n->open_writers++;
		break;
	case OP_LOOKUP:
	case OP_MKDIR:
	case OP_MKNOD:
	case OP_SYMLINK:
	case OP_LINK:
	case OP_CREATE:
		if (len >= OUT_HDR + ENTRY_OUT_ATTR + ATTR_BYTES) {
			uint64_t id;
			memcpy(&id, msg + OUT_HDR, 8);
			learn(id, msg + OUT_HDR + ENTRY_OUT_ATTR);
			if (p.opcode == OP_CREATE && (p.flags & O_ACCMODE) != O_RDONLY &&
			    (n = node_get(id)))
				n->open_writers++;
		}
		break;
	default:
		break;
	}
	return 0;
}

void wb_notify_lost(void)
{
	for (size_t i = 0; i < NODE_SLOTS; i++)
		nodes[i].attr_known = nodes[i].dattr_ok = 0;
}
