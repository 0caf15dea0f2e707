/* The FUSE relay's directory cache (docs/PROTOCOL.md, "Directory listings held by the FUSE
 * relay"). For a directory whose complete listing the host sent (an empty one after a guest
 * MKDIR, or a whole one asked for with WL_FUSE_LIST_DIR on the first LOOKUP that missed in a
 * directory the relay did not know), a LOOKUP is answered here: a listed name with an entry
 * not handed out yet gets that entry (the host counted one lookup of its node for it), a name
 * not listed gets a negative entry; anything else still goes to the host. The host keeps the
 * listings current with pushes written before the reply of the guest request that changed
 * the directory; host-side changes arrive as kernel notifications, which drop what they touch
 * here before the kernel sees them. Nothing is used past the validity the host gave. Entries
 * dropped unused are handed back (FORGET). Relay thread only. */
#include "fuse_dircache.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "proto.h"
#include "util.h"

#define IN_HDR 40u
#define OUT_HDR 16u
#define ENTRY_OUT 128u
#define LIST_DIR_BYTES (IN_HDR + 8u)
#define MAX_DIRS 4096u
#define MAX_ENTRIES 32768u
#define DIR_BUCKETS 4096u
#define NODE_BUCKETS 16384u
#define NAME_LEN_MAX 255u
#define FORGETS_PER_BATCH 4096u
#define ASK_INTERVAL_NS 1000000000ull
/* After the host refused to list a directory (too large, not one): not asked again before. */
#define REFUSED_NS 10000000000ull
/* A LIST_DIR unanswered this long is given up (a copy of the guest: the answer went to the
 * original) and may be asked again; answers carry the ask's number, so a late one is known. */
#define PENDING_NS 5000000000ull
#define SWEEP_MS 1000
#define MAX_VALID_SEC 86400ull
/* ADD/REMOVE pushes kept while a listing is on its way, to be applied on top of it. */
#define MAX_LOGGED 256u

enum {
	OP_LOOKUP = 1,
	OP_FORGET = 2,
	OP_GETATTR = 3,
	OP_READLINK = 5,
	OP_RENAME = 12,
	OP_LINK = 13,
	OP_READ = 15,
	OP_STATFS = 17,
	OP_RELEASE = 18,
	OP_FSYNC = 20,
	OP_GETXATTR = 22,
	OP_LISTXATTR = 23,
	OP_FLUSH = 25,
	OP_INIT = 26,
	OP_OPENDIR = 27,
	OP_READDIR = 28,
	OP_RELEASEDIR = 29,
	OP_FSYNCDIR = 30,
	OP_GETLK = 31,
	OP_ACCESS = 34,
	OP_INTERRUPT = 36,
	OP_BMAP = 37,
	OP_DESTROY = 38,
	OP_POLL = 40,
	OP_BATCH_FORGET = 42,
	OP_READDIRPLUS = 44,
	OP_RENAME2 = 45,
	OP_LSEEK = 46,
	OP_COPY_FILE_RANGE = 47,
};

/* Kernel notification codes (fuse_notify_code). */
enum { N_INVAL_INODE = 2, N_INVAL_ENTRY = 3, N_STORE = 4, N_DELETE = 6 };

struct dent {
	/* Chain of the node index; linked only while `entry` is set. */
	struct dent *nnext, **nprev;
	uint8_t *entry; /* fuse_entry_out not handed out yet (one counted lookup), or NULL */
	uint64_t nodeid, entry_exp, attr_exp;
	uint32_t hash;
	uint16_t namelen;
	char name[];
};

static struct dent tomb_storage;
#define TOMB (&tomb_storage)

/* A name pushed while the directory's listing was on its way. */
struct logged {
	uint32_t code;
	uint16_t namelen;
	char name[];
};

struct dir {
	struct dir *next;
	uint64_t nodeid;
	int held;    /* the listing below is complete until `expires` */
	int pending; /* a LIST_DIR was sent; its answer is not in yet */
	int spoiled; /* the host changed it since the LIST_DIR: its answer will be stale */
	/* The guest's changes since the LIST_DIR (pushed ADD/REMOVE), in order: the answer
	 * may be from before or after each, so each is applied again on top of it. */
	struct logged **log;
	uint32_t nlog;
	uint64_t expires, asked_at;
	uint64_t refused_until; /* not asked again before (the host refused it); kept till then */
	uint32_t seq;		/* the number of the LIST_DIR pending */
	uint32_t answered;	/* LOOKUPs the listing answered since it came */
	/* Names not listed may be answered "absent": only for a listing the host pushed after
	 * the guest's own MKDIR. A listing the relay fetched (a walk) answers for the names it
	 * has; any other name goes to the host, as it would without the relay: a file the host
	 * made a moment ago, before its watcher told the guest, must not be "absent" here. */
	int negatives;
	struct dent **slots;
	uint32_t cap, used, count;
};

static struct dir *dirs[DIR_BUCKETS];
static uint32_t ndirs, nheld;
static uint32_t nentries;
static struct dent *nodes[NODE_BUCKETS];

/* Messages for the host, in order: forgets, listing requests and releases. */
enum { Q_FORGET, Q_LIST, Q_RELEASE };
struct qitem {
	uint64_t id;
	uint32_t kind, seq;
};
static struct qitem *queue;
static size_t qhead, qlen, qcap;
static uint64_t next_sweep;
static uint32_t next_seq;

static uint64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static uint64_t rd64(const uint8_t *p)
{
	uint64_t v;
	memcpy(&v, p, 8);
	return v;
}

static uint32_t rd32(const uint8_t *p)
{
	uint32_t v;
	memcpy(&v, p, 4);
	return v;
}

static void wr64(uint8_t *p, uint64_t v) { memcpy(p, &v, 8); }
static void wr32(uint8_t *p, uint32_t v) { memcpy(p, &v, 4); }

static uint32_t name_hash(const char *s, size_t n)
{
	uint32_t h = 2166136261u;
	for (size_t i = 0; i < n; i++)
		h = (h ^ (uint8_t)s[i]) * 16777619u;
	return h;
}

static void enqueue_seq(uint32_t kind, uint64_t id, uint32_t seq)
{
	if (qhead > 0 && qhead == qlen)
		qhead = qlen = 0;
	if (qlen == qcap) {
		if (qhead > 0) {
			memmove(queue, queue + qhead, (qlen - qhead) * sizeof *queue);
			qlen -= qhead;
			qhead = 0;
		}
		if (qlen == qcap) {
			size_t cap = qcap ? qcap * 2 : 1024;
			struct qitem *q = realloc(queue, cap * sizeof *q);
			if (!q) {
				/* A forget lost here leaks one node id on the host until the mount goes. */
				logmsg("fuse dircache: out of memory, message for node %llu lost",
				       (unsigned long long)id);
				return;
			}
			queue = q;
			qcap = cap;
		}
	}
	queue[qlen++] = (struct qitem){id, kind, seq};
}

static void enqueue(uint32_t kind, uint64_t id)
{
	enqueue_seq(kind, id, 0);
}

/* ---- node index: unused entries by node id ---- */

static void node_link(struct dent *e)
{
	struct dent **head = &nodes[e->nodeid % NODE_BUCKETS];
	e->nnext = *head;
	e->nprev = head;
	if (*head)
		(*head)->nprev = &e->nnext;
	*head = e;
}

static void node_unlink(struct dent *e)
{
	if (!e->nprev)
		return;
	*e->nprev = e->nnext;
	if (e->nnext)
		e->nnext->nprev = e->nprev;
	e->nnext = NULL;
	e->nprev = NULL;
}

/* The entry is dropped unused: its counted lookup goes back to the host. */
static void entry_forget(struct dent *e)
{
	if (!e->entry)
		return;
	node_unlink(e);
	free(e->entry);
	e->entry = NULL;
	enqueue(Q_FORGET, e->nodeid);
}

/* Whatever is cached about node `id` may be out of date: its unused entries go. */
static void node_changed(uint64_t id)
{
	struct dent *e = nodes[id % NODE_BUCKETS];
	while (e) {
		struct dent *next = e->nnext;
		if (e->nodeid == id)
			entry_forget(e);
		e = next;
	}
}

/* ---- directories ---- */

static struct dir *dir_find(uint64_t id)
{
	for (struct dir *d = dirs[id % DIR_BUCKETS]; d; d = d->next)
		if (d->nodeid == id)
			return d;
	return NULL;
}

static struct dir *dir_add(uint64_t id)
{
	if (ndirs >= MAX_DIRS)
		return NULL;
	struct dir *d = calloc(1, sizeof *d);
	if (!d)
		return NULL;
	d->nodeid = id;
	d->next = dirs[id % DIR_BUCKETS];
	dirs[id % DIR_BUCKETS] = d;
	ndirs++;
	return d;
}

static void log_clear(struct dir *d)
{
	for (uint32_t i = 0; i < d->nlog; i++)
		free(d->log[i]);
	free(d->log);
	d->log = NULL;
	d->nlog = 0;
}

/* The listing on its way may miss a change that cannot be replayed: it will be dropped. */
static void spoil(struct dir *d)
{
	if (d->pending)
		d->spoiled = 1;
	log_clear(d);
}

static void listing_clear(struct dir *d)
{
	for (uint32_t i = 0; i < d->cap; i++) {
		struct dent *e = d->slots[i];
		if (!e || e == TOMB)
			continue;
		entry_forget(e);
		free(e);
	}
	nentries -= d->count;
	free(d->slots);
	d->slots = NULL;
	d->cap = d->used = d->count = 0;
	if (d->held)
		nheld--;
	d->held = 0;
}

/* Frees the directory's record once it holds nothing and waits for nothing. */
static void dir_maybe_free(struct dir *d)
{
	if (d->held || d->pending || d->refused_until)
		return;
	log_clear(d);
	struct dir **p = &dirs[d->nodeid % DIR_BUCKETS];
	while (*p && *p != d)
		p = &(*p)->next;
	if (*p)
		*p = d->next;
	ndirs--;
	free(d);
}

/* The listing is stale or unwanted: dropped, and the host told (it pushes no more). */
static void dir_release(struct dir *d)
{
	if (d->held) {
		listing_clear(d);
		/* While a LIST_DIR is pending the host counts it held anyway: its answer settles
		 * it (kept, or released then); a release now could overtake that answer. */
		if (!d->pending)
			enqueue(Q_RELEASE, d->nodeid);
	}
}

/* A host notification or push touched the directory: what the relay holds goes, and a
 * listing on its way may miss the change. */
static void dir_touched(uint64_t id)
{
	struct dir *d = dir_find(id);
	if (!d)
		return;
	dir_release(d);
	spoil(d);
	dir_maybe_free(d);
}

static struct dent **slot_for(struct dir *d, const char *name, size_t n, uint32_t h)
{
	if (d->cap == 0)
		return NULL;
	struct dent **tomb = NULL;
	for (uint32_t i = h & (d->cap - 1);; i = (i + 1) & (d->cap - 1)) {
		struct dent *e = d->slots[i];
		if (!e)
			return tomb ? tomb : &d->slots[i];
		if (e == TOMB) {
			if (!tomb)
				tomb = &d->slots[i];
		} else if (e->hash == h && e->namelen == n && memcmp(e->name, name, n) == 0)
			return &d->slots[i];
	}
}

static struct dent *ent_find(struct dir *d, const char *name, size_t n)
{
	struct dent **s = slot_for(d, name, n, name_hash(name, n));
	return s && *s && *s != TOMB ? *s : NULL;
}

static int grow(struct dir *d)
{
	uint32_t cap = d->cap ? d->cap : 8;
	while ((d->count + 1) * 2 > cap)
		cap *= 2;
	struct dent **slots = calloc(cap, sizeof *slots);
	if (!slots)
		return -1;
	for (uint32_t i = 0; i < d->cap; i++) {
		struct dent *e = d->slots[i];
		if (!e || e == TOMB)
			continue;
		uint32_t j = e->hash & (cap - 1);
		while (slots[j])
			j = (j + 1) & (cap - 1);
		slots[j] = e;
	}
	free(d->slots);
	d->slots = slots;
	d->cap = cap;
	d->used = d->count;
	return 0;
}

/* Adds `name` (with its entry, or none); 0, 1 when it is listed already, or -1 (too many,
 * no memory). Unless 0, the caller still owns `entry`'s lookup. */
static int ent_add(struct dir *d, const char *name, size_t n, const uint8_t *entry, uint64_t now)
{
	if (nentries >= MAX_ENTRIES)
		return -1;
	if ((d->used + 1) * 2 > d->cap && grow(d) != 0)
		return -1;
	uint32_t h = name_hash(name, n);
	struct dent **s = slot_for(d, name, n, h);
	if (*s && *s != TOMB)
		return 1;
	struct dent *e = calloc(1, sizeof *e + n + 1);
	if (!e)
		return -1;
	if (entry) {
		e->entry = malloc(ENTRY_OUT);
		if (!e->entry) {
			free(e);
			return -1;
		}
		memcpy(e->entry, entry, ENTRY_OUT);
		e->nodeid = rd64(entry);
		uint64_t es = rd64(entry + 16), as = rd64(entry + 24);
		uint32_t ens = rd32(entry + 32), ans = rd32(entry + 36);
		es = es > MAX_VALID_SEC ? MAX_VALID_SEC : es;
		as = as > MAX_VALID_SEC ? MAX_VALID_SEC : as;
		e->entry_exp = now + es * 1000000000ull + (ens % 1000000000u);
		e->attr_exp = now + as * 1000000000ull + (ans % 1000000000u);
		node_link(e);
	}
	e->hash = h;
	e->namelen = (uint16_t)n;
	memcpy(e->name, name, n);
	if (!*s)
		d->used++;
	*s = e;
	d->count++;
	nentries++;
	return 0;
}

static void ent_remove(struct dir *d, const char *name, size_t n)
{
	struct dent **s = slot_for(d, name, n, name_hash(name, n));
	if (!s || !*s || *s == TOMB)
		return;
	entry_forget(*s);
	free(*s);
	*s = TOMB;
	d->count--;
	nentries--;
}

/* ---- messages to the host ---- */

static void in_header(uint8_t *p, uint32_t len, uint32_t opcode, uint64_t nodeid)
{
	memset(p, 0, IN_HDR);
	wr32(p, len);
	wr32(p + 4, opcode);
	wr64(p + 16, nodeid);
}

size_t dircache_outgoing(uint8_t *buf, size_t cap)
{
	size_t at = 0;
	while (qhead < qlen) {
		struct qitem *q = &queue[qhead];
		if (q->kind != Q_FORGET) {
			if (cap - at < LIST_DIR_BYTES)
				break;
			in_header(buf + at, LIST_DIR_BYTES, WL_FUSE_LIST_DIR, q->id);
			wr32(buf + at + IN_HDR, q->kind == Q_LIST ? 0 : 1);
			wr32(buf + at + IN_HDR + 4, q->seq);
			at += LIST_DIR_BYTES;
			qhead++;
			continue;
		}
		size_t n = 0;
		while (qhead + n < qlen && queue[qhead + n].kind == Q_FORGET && n < FORGETS_PER_BATCH)
			n++;
		if (cap - at < IN_HDR + 8 + 16)
			break;
		size_t fit = (cap - at - IN_HDR - 8) / 16;
		if (n > fit)
			n = fit;
		uint32_t len = (uint32_t)(IN_HDR + 8 + n * 16);
		in_header(buf + at, len, OP_BATCH_FORGET, 0);
		wr32(buf + at + IN_HDR, (uint32_t)n);
		wr32(buf + at + IN_HDR + 4, 0);
		for (size_t i = 0; i < n; i++) {
			wr64(buf + at + IN_HDR + 8 + i * 16, queue[qhead + i].id);
			wr64(buf + at + IN_HDR + 8 + i * 16 + 8, 1);
		}
		at += len;
		qhead += n;
	}
	if (qhead == qlen)
		qhead = qlen = 0;
	return at;
}

/* A large listing that answered few lookups for its size: a program touching a name or two of
 * a large directory a second apart would otherwise have the host read and stat the whole
 * directory each time, where the kernel alone asks for just those names. Such a directory is
 * not listed again soon. */
static int poorly_used(const struct dir *d)
{
	return d->count >= 256 && (uint64_t)d->answered * 8 < d->count;
}

static void expire(struct dir *d, uint64_t now)
{
	int poor = poorly_used(d);
	dir_release(d);
	d->asked_at = 0; /* expired, not refused: a fresh listing may be asked at once */
	if (poor)
		d->refused_until = now + REFUSED_NS;
}

/* Expired listings and entries go (their lookups back to the host); at most once a second. */
static void sweep(uint64_t now)
{
	next_sweep = now + (uint64_t)SWEEP_MS * 1000000ull;
	for (uint32_t b = 0; b < DIR_BUCKETS; b++) {
		struct dir *d = dirs[b];
		while (d) {
			struct dir *next = d->next;
			if (d->refused_until && now >= d->refused_until) {
				d->refused_until = 0;
				dir_maybe_free(d);
			} else if (d->held && now >= d->expires) {
				expire(d, now);
				dir_maybe_free(d);
			} else if (d->held) {
				for (uint32_t i = 0; i < d->cap; i++) {
					struct dent *e = d->slots[i];
					if (e && e != TOMB && e->entry &&
					    (now >= e->entry_exp || now >= e->attr_exp))
						entry_forget(e);
				}
			}
			d = next;
		}
	}
}

int dircache_has_outgoing(void)
{
	if (ndirs > 0) {
		uint64_t now = now_ns();
		if (now >= next_sweep)
			sweep(now);
	}
	return qhead < qlen;
}

int dircache_poll_timeout_ms(void)
{
	return ndirs > 0 ? SWEEP_MS : -1;
}

/* ---- LOOKUP ---- */

static void put_valid(uint8_t *p_sec, uint8_t *p_nsec, uint64_t ns)
{
	wr64(p_sec, ns / 1000000000ull);
	wr32(p_nsec, (uint32_t)(ns % 1000000000ull));
}

static void reply_entry(int fuse_fd, uint64_t unique, const uint8_t *entry, uint64_t entry_left,
			uint64_t attr_left)
{
	uint8_t msg[OUT_HDR + ENTRY_OUT];
	memset(msg, 0, sizeof msg);
	wr32(msg, sizeof msg);
	wr64(msg + 8, unique);
	if (entry)
		memcpy(msg + OUT_HDR, entry, ENTRY_OUT);
	put_valid(msg + OUT_HDR + 16, msg + OUT_HDR + 32, entry_left);
	put_valid(msg + OUT_HDR + 24, msg + OUT_HDR + 36, attr_left);
	/* ENOENT: the request was interrupted meanwhile; the kernel dropped it. */
	if (write(fuse_fd, msg, sizeof msg) < 0 && errno != ENOENT)
		logmsg("fuse dircache: write to /dev/fuse: %s", strerror(errno));
}

/* Asks the host for the whole listing of `id` (once at a time, at most once a second). */
static void ask(struct dir *d, uint64_t id, uint64_t now)
{
	if (!d && !(d = dir_add(id)))
		return;
	if ((d->pending && now - d->asked_at < PENDING_NS) ||
	    (!d->pending && d->asked_at && now - d->asked_at < ASK_INTERVAL_NS) ||
	    now < d->refused_until) {
		dir_maybe_free(d);
		return;
	}
	d->pending = 1;
	d->spoiled = 0;
	log_clear(d);
	d->asked_at = now;
	d->seq = ++next_seq;
	enqueue_seq(Q_LIST, id, d->seq);
}

/* 1 when the LOOKUP in buf was answered here. */
static int answer_lookup(const uint8_t *buf, size_t len, int fuse_fd)
{
	const char *name = (const char *)buf + IN_HDR;
	size_t room = len - IN_HDR;
	size_t n = strnlen(name, room);
	if (n == 0 || n == room || n > NAME_LEN_MAX || strcmp(name, ".") == 0 ||
	    strcmp(name, "..") == 0)
		return 0;
	uint64_t unique = rd64(buf + 8), id = rd64(buf + 16), now = now_ns();
	struct dir *d = dir_find(id);
	if (d && d->held && now >= d->expires)
		expire(d, now);
	if (!d || !d->held) {
		ask(d, id, now);
		return 0;
	}
	struct dent *e = ent_find(d, name, n);
	if (!e && !d->negatives)
		return 0;
	if (!e) {
		reply_entry(fuse_fd, unique, NULL, d->expires - now, 0);
		d->answered++;
		return 1;
	}
	if (e->entry && now < e->entry_exp && now < e->attr_exp) {
		reply_entry(fuse_fd, unique, e->entry, e->entry_exp - now, e->attr_exp - now);
		node_unlink(e);
		free(e->entry);
		e->entry = NULL; /* the kernel holds that lookup now */
		d->answered++;
		return 1;
	}
	entry_forget(e);
	/* Listed without a usable entry (made by the guest, or handed out already): the kernel
	 * dropped what it had, so a walk is likely; the whole listing again, with entries, unless
	 * this one answered few of its names (a large directory touched here and there: the
	 * host would read all of it again for each). */
	if (!poorly_used(d))
		ask(d, id, now);
	return 0;
}

static int read_only(uint32_t opcode)
{
	switch (opcode) {
	case OP_LOOKUP: case OP_FORGET: case OP_GETATTR: case OP_READLINK: case OP_READ:
	case OP_STATFS: case OP_RELEASE: case OP_FSYNC: case OP_GETXATTR: case OP_LISTXATTR:
	case OP_FLUSH: case OP_INIT: case OP_OPENDIR: case OP_READDIR: case OP_RELEASEDIR:
	case OP_FSYNCDIR: case OP_GETLK: case OP_ACCESS: case OP_INTERRUPT: case OP_BMAP:
	case OP_DESTROY: case OP_POLL: case OP_BATCH_FORGET: case OP_READDIRPLUS: case OP_LSEEK:
		return 1;
	default:
		return 0;
	}
}

size_t dircache_on_request(uint8_t *buf, size_t len, size_t cap, int fuse_fd)
{
	if (len >= IN_HDR && rd32(buf) == len) {
		uint32_t opcode = rd32(buf + 4);
		if (opcode == OP_LOOKUP && answer_lookup(buf, len, fuse_fd)) {
			len = 0;
		} else if (!read_only(opcode)) {
			/* The guest changes this node (or a directory): attributes cached for it in a
			 * listing would be out of date once the host applied the request. */
			node_changed(rd64(buf + 16));
			const uint8_t *body = buf + IN_HDR;
			size_t blen = len - IN_HDR;
			if ((opcode == OP_RENAME || opcode == OP_RENAME2 || opcode == OP_LINK) &&
			    blen >= 8)
				node_changed(rd64(body));
			if (opcode == OP_COPY_FILE_RANGE && blen >= 24)
				node_changed(rd64(body + 16));
		}
	}
	return len + dircache_outgoing(buf + len, cap - len);
}

/* ---- messages from the host ---- */

static int valid_name(const char *s, size_t n)
{
	return n > 0 && n <= NAME_LEN_MAX && !memchr(s, '/', n) && !memchr(s, 0, n) &&
	       !(n == 1 && s[0] == '.') && !(n == 2 && s[0] == '.' && s[1] == '.');
}

/* The entries of a LISTING that will not be kept: their lookups go back. */
static void forget_listing(const uint8_t *p, size_t plen, uint32_t count)
{
	size_t at = 0;
	for (uint32_t i = 0; i < count && plen - at >= 8; i++) {
		uint32_t n = rd32(p + at), has = rd32(p + at + 4);
		size_t size = 8 + (has ? ENTRY_OUT : 0) + ((n + 7u) & ~7u);
		if (n > NAME_LEN_MAX || size > plen - at)
			return;
		if (has)
			enqueue(Q_FORGET, rd64(p + at + 8));
		at += size;
	}
}

static void on_listing(const uint8_t *p, size_t plen)
{
	if (plen < 32)
		return;
	uint64_t id = rd64(p), vsec = rd64(p + 16);
	uint32_t flags = rd32(p + 8), count = rd32(p + 12), vnsec = rd32(p + 24);
	uint32_t seq = rd32(p + 28);
	const uint8_t *ents = p + 32;
	size_t elen = plen - 32;
	int reply = flags & 1;
	struct dir *d = dir_find(id);
	/* A reply answers the LIST_DIR pending, or none (late: given up, or asked again). */
	int ours = reply && d && d->pending && d->seq == seq;
	int accept = reply ? ours && !d->spoiled : 1;
	struct logged **log = NULL;
	uint32_t nlog = 0;
	if (ours) {
		d->pending = 0;
		log = d->log;
		nlog = d->nlog;
		d->log = NULL;
		d->nlog = 0;
	}
	if (!d && accept)
		d = dir_add(id);
	if (!d || !accept || count > MAX_ENTRIES - nentries + (d->held ? d->count : 0)) {
		for (uint32_t j = 0; j < nlog; j++)
			free(log[j]);
		free(log);
		forget_listing(ents, elen, count);
		if (!d || (!d->held && !d->pending))
			enqueue(Q_RELEASE, id);
		/* No room for it: not asked again for a while (see the refusal below). */
		if (d && accept && !d->held)
			d->refused_until = now_ns() + REFUSED_NS;
		if (d)
			dir_maybe_free(d);
		return;
	}
	listing_clear(d);
	if (d->pending)
		spoil(d); /* a non-reply listing overtakes a LIST_DIR still pending */
	uint64_t now = now_ns();
	size_t at = 0;
	uint32_t i = 0;
	for (; i < count && elen - at >= 8; i++) {
		uint32_t n = rd32(ents + at), has = rd32(ents + at + 4);
		size_t size = 8 + (has ? ENTRY_OUT : 0) + ((n + 7u) & ~7u);
		if (n > NAME_LEN_MAX || size > elen - at)
			break;
		const uint8_t *entry = has ? ents + at + 8 : NULL;
		const char *name = (const char *)ents + at + 8 + (has ? ENTRY_OUT : 0);
		if (!valid_name(name, n) || (entry && rd64(entry) == 0))
			break; /* forget_listing below hands its lookup back */
		int added = ent_add(d, name, n, entry, now);
		if (added < 0)
			break;
		if (added > 0 && entry)
			enqueue(Q_FORGET, rd64(entry));
		at += size;
	}
	/* The guest's changes pushed while it travelled, again, in order. */
	int bad = i < count;
	for (uint32_t j = 0; j < nlog; j++) {
		if (!bad) {
			ent_remove(d, log[j]->name, log[j]->namelen);
			if (log[j]->code == WL_RELAY_DIR_ADD &&
			    ent_add(d, log[j]->name, log[j]->namelen, NULL, 0) != 0)
				bad = 1; /* cannot hold it complete */
		}
		free(log[j]);
	}
	free(log);
	if (bad) {
		/* Malformed or too large: nothing of it can be trusted to be complete. Not asked
		 * again for a while, as if the host had refused it: with more names than the cache
		 * holds, the directories past the cap would otherwise be listed again at every miss
		 * a second apart, a host readdir each time. */
		logmsg("fuse dircache: listing of node %llu refused", (unsigned long long)id);
		forget_listing(ents + at, elen - at, count - i);
		listing_clear(d);
		if (!d->pending)
			enqueue(Q_RELEASE, id);
		d->refused_until = now + REFUSED_NS;
		dir_maybe_free(d);
		return;
	}
	vsec = vsec > MAX_VALID_SEC ? MAX_VALID_SEC : vsec;
	d->expires = now + vsec * 1000000000ull + (vnsec % 1000000000u);
	d->held = 1;
	d->answered = 0;
	d->negatives = !reply;
	nheld++;
	if (next_sweep == 0 || next_sweep > now + (uint64_t)SWEEP_MS * 1000000ull)
		next_sweep = now + (uint64_t)SWEEP_MS * 1000000ull;
}

/* `name` in directory `id` was added (ADD: it is listed, without an entry: it may be another
 * file now) or removed (REMOVE). A listing on its way gets the change again on top. */
static void name_changed(uint32_t code, uint64_t id, const char *name, size_t n, int bad)
{
	struct dir *d = dir_find(id);
	if (!d)
		return;
	if (bad || !valid_name(name, n)) {
		dir_touched(id);
		return;
	}
	if (d->pending && !d->spoiled) {
		struct logged *l = d->nlog < MAX_LOGGED ? malloc(sizeof *l + n) : NULL;
		struct logged **grown = l ? realloc(d->log, (d->nlog + 1) * sizeof *grown) : NULL;
		if (!grown) {
			free(l);
			spoil(d);
		} else {
			d->log = grown;
			l->code = code;
			l->namelen = (uint16_t)n;
			memcpy(l->name, name, n);
			d->log[d->nlog++] = l;
		}
	}
	if (!d->held)
		return;
	/* An added name may replace another file (rename): whatever entry it had is not its. */
	ent_remove(d, name, n);
	if (code == WL_RELAY_DIR_ADD && ent_add(d, name, n, NULL, 0) != 0)
		dir_release(d); /* cannot hold it complete: not at all */
	dir_maybe_free(d);
}

static void on_name(uint32_t code, const uint8_t *p, size_t plen)
{
	if (plen < 24)
		return;
	uint64_t id = rd64(p), node = rd64(p + 16);
	uint32_t n = rd32(p + 8);
	/* The node whose links changed (nlink, ctime): an entry held for it elsewhere is old. */
	if (node != 0)
		node_changed(node);
	name_changed(code, id, (const char *)p + 24, n, n > plen - 24);
}

static void on_drop(const uint8_t *p, size_t plen)
{
	if (plen < 16)
		return;
	uint64_t id = rd64(p);
	uint32_t flags = rd32(p + 8);
	if (id == 0) {
		for (uint32_t b = 0; b < DIR_BUCKETS; b++) {
			struct dir *d = dirs[b];
			while (d) {
				struct dir *next = d->next;
				listing_clear(d);
				spoil(d);
				dir_maybe_free(d);
				d = next;
			}
		}
		return;
	}
	struct dir *d = dir_find(id);
	if (!d)
		return;
	/* Either way the host no longer counts it as held (no release is due): what the relay
	 * holds goes. A reply answers our LIST_DIR (the host will not list it). */
	listing_clear(d);
	if ((flags & 1) && !(d->pending && d->seq == rd32(p + 12))) {
		dir_maybe_free(d); /* a late answer to a LIST_DIR given up: nothing to settle */
		return;
	}
	if (flags & 1) {
		/* The host will not list it: too large, not a directory (bit 1: only busy now). */
		d->pending = 0;
		log_clear(d);
		d->refused_until = now_ns() + ((flags & 2) ? ASK_INTERVAL_NS : REFUSED_NS);
	} else {
		spoil(d);
	}
	dir_maybe_free(d);
}

static void on_notify(uint32_t code, const uint8_t *p, size_t plen)
{
	if (plen < 8)
		return;
	uint64_t id = rd64(p);
	switch (code) {
	case N_INVAL_INODE:
		/* Attributes (and pages) of the node. A directory's names change only with an
		 * INVAL_ENTRY of each (the host's watcher names them), or a DIR_DROP when the
		 * directory itself was replaced: its listing stays. The guest's own MKDIR is
		 * echoed this way a little later, when the directory's mtime has moved. */
		node_changed(id);
		break;
	case N_INVAL_ENTRY: {
		/* The name changed on the host: listed from now on without an entry, so a LOOKUP
		 * of it goes to the host; the rest of the listing stands. */
		uint32_t n = plen >= 16 ? rd32(p + 8) : 0;
		name_changed(WL_RELAY_DIR_ADD, id, (const char *)p + 16, n,
			     plen < 16 || n > plen - 16);
		break;
	}
	case N_DELETE:
		dir_touched(id);
		if (plen >= 16) {
			dir_touched(rd64(p + 8));
			node_changed(rd64(p + 8));
		}
		break;
	case N_STORE:
		node_changed(id);
		break;
	default:
		break;
	}
}

int dircache_on_host_message(const uint8_t *msg, size_t len)
{
	if (len < OUT_HDR || rd64(msg + 8) != 0)
		return 0;
	uint32_t code = rd32(msg + 4);
	const uint8_t *p = msg + OUT_HDR;
	size_t plen = len - OUT_HDR;
	switch (code) {
	case WL_RELAY_DIR_LISTING:
		on_listing(p, plen);
		return 1;
	case WL_RELAY_DIR_ADD:
	case WL_RELAY_DIR_REMOVE:
		on_name(code, p, plen);
		return 1;
	case WL_RELAY_DIR_DROP:
		on_drop(p, plen);
		return 1;
	default:
		if (code >= 1 && code <= 7)
			on_notify(code, p, plen);
		return 0;
	}
}
