#include "user.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "util.h"

#define DB_MAX (4u << 20) /* a passwd/group file bigger than this is not one we trust */

/* Splits a colon-separated line in place into at most n fields; returns the count. */
static int split(char *line, char **f, int n)
{
	int i = 0;
	f[i++] = line;
	for (char *p = line; *p && i < n; p++) {
		if (*p == ':') {
			*p = '\0';
			f[i++] = p + 1;
		}
	}
	return i;
}

static int parse_id(const char *s, unsigned long *out)
{
	if (!*s)
		return -1;
	char *end;
	unsigned long v = strtoul(s, &end, 10);
	if (*end || v > 0xfffffffeul)
		return -1;
	*out = v;
	return 0;
}

/*
 * Reads a passwd/group file. The guest's root owns these files and the agent (PID 1) reads
 * them for every exec with a user: a FIFO, a device or a symlink put there must not hang or
 * redirect the agent, so the file is opened without blocking or following a final symlink
 * and must be a regular file; at most DB_MAX bytes are read. A missing file is an empty one
 * (NULL, no error); anything else unreadable is an error in err (NULL returned).
 */
static char *read_db(const char *path, char *err, size_t errlen, int *failed)
{
	*failed = 0;
	int fd = open(path, O_RDONLY | O_NONBLOCK | O_NOFOLLOW | O_CLOEXEC | O_NOCTTY);
	if (fd < 0) {
		if (errno == ENOENT)
			return NULL;
		snprintf(err, errlen, "cannot read %s: %s", path, strerror(errno));
		*failed = 1;
		return NULL;
	}
	struct stat st;
	if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
		snprintf(err, errlen, "cannot read %s: not a regular file", path);
		close(fd);
		*failed = 1;
		return NULL;
	}
	char *buf = read_small_fd(fd, DB_MAX, NULL);
	close(fd);
	if (!buf) {
		snprintf(err, errlen, "cannot read %s: out of memory", path);
		*failed = 1;
	}
	return buf;
}

/*
 * Calls fn for each non-comment line of a colon file; stops when fn returns non-zero.
 * Returns what fn returned last (0: no line matched), or -1 (message in err) when the file
 * exists but cannot be read safely.
 */
static int each_line(const char *path, int nf, int (*fn)(char **f, int n, void *ctx), void *ctx,
		     char *err, size_t errlen)
{
	int failed;
	char *data = read_db(path, err, errlen, &failed);
	if (!data)
		return failed ? -1 : 0;
	int rc = 0;
	char *save = NULL;
	for (char *line = strtok_r(data, "\n", &save); line && !rc;
	     line = strtok_r(NULL, "\n", &save)) {
		if (line[0] == '#' || line[0] == '\0')
			continue;
		char *f[8];
		int n = split(line, f, nf);
		rc = fn(f, n, ctx);
	}
	free(data);
	return rc;
}

struct pw_query {
	const char *name; /* match by name, else by uid */
	uid_t uid;
	struct user *u;
};

static int pw_match(char **f, int n, void *ctx)
{
	struct pw_query *q = ctx;
	unsigned long uid, gid;
	if (n < 7 || parse_id(f[2], &uid) || parse_id(f[3], &gid))
		return 0;
	if (q->name ? strcmp(f[0], q->name) != 0 : uid != q->uid)
		return 0;
	q->u->uid = (uid_t)uid;
	q->u->gid = (gid_t)gid;
	q->u->has_entry = 1;
	snprintf(q->u->name, sizeof q->u->name, "%s", f[0]);
	snprintf(q->u->home, sizeof q->u->home, "%s", f[5][0] ? f[5] : "/");
	return 1;
}

struct gr_query {
	const char *name;
	gid_t gid;
	int found;
};

static int gr_match(char **f, int n, void *ctx)
{
	struct gr_query *q = ctx;
	unsigned long gid;
	if (n < 3 || parse_id(f[2], &gid) || strcmp(f[0], q->name) != 0)
		return 0;
	q->gid = (gid_t)gid;
	q->found = 1;
	return 1;
}

static int gr_members(char **f, int n, void *ctx)
{
	struct user *u = ctx;
	unsigned long gid;
	if (n < 4 || parse_id(f[2], &gid))
		return 0;
	char *save = NULL;
	for (char *m = strtok_r(f[3], ",", &save); m; m = strtok_r(NULL, ",", &save)) {
		if (strcmp(m, u->name) != 0)
			continue;
		for (int i = 0; i < u->ngroups; i++)
			if (u->groups[i] == (gid_t)gid)
				return 0;
		if (u->ngroups < USER_MAX_GROUPS)
			u->groups[u->ngroups++] = (gid_t)gid;
		return 0;
	}
	return 0;
}

int user_resolve(const char *spec, struct user *u, char *err, size_t errlen)
{
	memset(u, 0, sizeof *u);
	char buf[512];
	snprintf(buf, sizeof buf, "%s", spec && *spec ? spec : "0");
	char *group = strchr(buf, ':');
	if (group)
		*group++ = '\0';

	unsigned long id;
	struct pw_query q = {.u = u};
	if (parse_id(buf, &id) == 0) {
		q.uid = (uid_t)id;
		/* A numeric id needs no entry: an unreadable passwd only loses HOME and groups, so
		 * root's execs go on whatever guest root put at /etc/passwd. */
		if (each_line("/etc/passwd", 7, pw_match, &q, err, errlen) <= 0) {
			memset(u, 0, sizeof *u);
			u->uid = (uid_t)id;
			u->gid = (gid_t)id;
			strcpy(u->home, "/");
		}
	} else {
		q.name = buf;
		int rc = each_line("/etc/passwd", 7, pw_match, &q, err, errlen);
		if (rc < 0)
			return -1;
		if (rc == 0) {
			snprintf(err, errlen, "unknown user: %s", buf);
			return -1;
		}
	}

	if (group) {
		if (parse_id(group, &id) == 0) {
			u->gid = (gid_t)id;
		} else {
			struct gr_query g = {.name = group};
			if (each_line("/etc/group", 4, gr_match, &g, err, errlen) < 0)
				return -1;
			if (!g.found) {
				snprintf(err, errlen, "unknown group: %s", group);
				return -1;
			}
			u->gid = g.gid;
		}
	}
	u->groups[0] = u->gid;
	u->ngroups = 1;
	/* Supplementary groups are a courtesy of the entry: an unreadable group file adds none. */
	if (u->has_entry)
		each_line("/etc/group", 4, gr_members, u, err, errlen);
	return 0;
}
