#include "files.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "proto.h"
#include "util.h"
#include "wire.h"

/* One frame per protocol window (256 KiB): half the frames, and read() calls, of 128 KiB. */
#define READ_CHUNK WL_MAX_PAYLOAD
#define MAX_PATH_LEN 4095

static uint8_t replybuf[WL_MAX_PAYLOAD];

/* Common fields of the file requests; absent numbers keep their defaults. */
struct file_req {
	char *path;
	uint32_t mode;
	int has_uid, has_gid;
	uint32_t uid, gid;
	uint8_t flag; /* FOLLOW (FILE_STAT) or RECURSIVE (REMOVE) */
};

/* Which optional fields a request may carry (all requests have PATH = tag 1). */
_Static_assert(T_FILE_WRITE_PATH == T_FILE_READ_PATH && T_FILE_READ_PATH == T_FILE_LIST_PATH &&
		       T_FILE_LIST_PATH == T_FILE_STAT_PATH && T_FILE_STAT_PATH == T_MKDIR_PATH &&
		       T_MKDIR_PATH == T_REMOVE_PATH,
	       "parse_req reads PATH with one tag");
enum req_kind { RQ_PATH_ONLY, RQ_WRITE, RQ_STAT, RQ_MKDIR, RQ_REMOVE };

/* 0 = ok, -1 = protocol error, 1 = request invalid (ERROR already sent). */
static int parse_req(uint32_t id, const uint8_t *payload, uint32_t len, struct file_req *r,
		     enum req_kind kind)
{
	if (!rec_valid(payload, len))
		return -1;
	struct rec_it it;
	uint8_t tag;
	const uint8_t *v;
	uint32_t l;
	int bad = 0;
	rec_iter(&it, payload, len);
	while (!bad && rec_next(&it, &tag, &v, &l) == 1) {
		if (tag == T_FILE_WRITE_PATH) {
			free(r->path);
			bad = !(r->path = val_strdup(v, l));
		} else if (kind == RQ_WRITE && tag == T_FILE_WRITE_MODE) {
			bad = val_u32(v, l, &r->mode) != 0;
		} else if (kind == RQ_WRITE && tag == T_FILE_WRITE_UID) {
			bad = val_u32(v, l, &r->uid) != 0;
			r->has_uid = 1;
		} else if (kind == RQ_WRITE && tag == T_FILE_WRITE_GID) {
			bad = val_u32(v, l, &r->gid) != 0;
			r->has_gid = 1;
		} else if (kind == RQ_MKDIR && tag == T_MKDIR_MODE) {
			bad = val_u32(v, l, &r->mode) != 0;
		} else if ((kind == RQ_STAT && tag == T_FILE_STAT_FOLLOW) ||
			   (kind == RQ_REMOVE && tag == T_REMOVE_RECURSIVE)) {
			bad = val_u8(v, l, &r->flag) != 0;
		}
	}
	if (!bad && (!r->path || r->path[0] == '\0' || strlen(r->path) > MAX_PATH_LEN))
		bad = 1;
	if (bad) {
		wire_send_error(id, EINVAL, "invalid request: missing or malformed field");
		free(r->path);
		r->path = NULL;
		return 1;
	}
	return 0;
}

static void send_ok_empty(uint32_t id)
{
	wire_send(FT_OK, id, NULL, 0);
}

static void send_errno(uint32_t id, const char *path, int err)
{
	wire_send_error(id, err, "%s: %s", path, strerror(err));
}

int file_write_start(uint32_t id, const uint8_t *payload, uint32_t len)
{
	struct file_req r = {.mode = 0644};
	int rc = parse_req(id, payload, len, &r, RQ_WRITE);
	if (rc)
		return rc < 0 ? -1 : 0;
	int fd = -1;
	if (mkdir_parents(r.path) != 0 ||
	    (fd = open(r.path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NONBLOCK, 0600)) < 0 ||
	    fchmod(fd, r.mode & 07777) != 0 ||
	    ((r.has_uid || r.has_gid) &&
	     fchown(fd, r.has_uid ? r.uid : (uid_t)-1, r.has_gid ? r.gid : (gid_t)-1) != 0)) {
		int e = errno;
		if (fd >= 0)
			close(fd);
		send_errno(id, r.path, e);
		free(r.path);
		return 0;
	}
	free(r.path);
	struct stream *s = stream_new(id, S_FILE_WRITE);
	if (!s) {
		close(fd);
		wire_send_error(id, errno, "cannot open stream: %s", strerror(errno));
		return 0;
	}
	/* O_NONBLOCK only mattered for opening a FIFO by mistake; writes to files block anyway
	 * and the data must land before OK. */
	fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK);
	s->file_fd = fd;
	return 0;
}

int file_write_data(struct stream *s, const uint8_t *data, uint32_t len)
{
	if (len > s->rx_window)
		return -1;
	if (write_all(s->file_fd, data, len) != 0) {
		int e = errno;
		uint32_t id = s->id;
		stream_free(s);
		wire_send_error(id, e, "write: %s", strerror(e));
		return 0;
	}
	s->file_bytes += len;
	wire_send_u32(FT_CREDIT, s->id, len);
	return 0;
}

void file_write_eof(struct stream *s)
{
	uint32_t id = s->id;
	int fd = s->file_fd;
	s->file_fd = -1;
	stream_free(s);
	if (close(fd) != 0)
		wire_send_error(id, errno, "close: %s", strerror(errno));
	else
		send_ok_empty(id);
}

int file_read_start(uint32_t id, const uint8_t *payload, uint32_t len)
{
	struct file_req r = {0};
	int rc = parse_req(id, payload, len, &r, RQ_PATH_ONLY);
	if (rc)
		return rc < 0 ? -1 : 0;
	int fd = open(r.path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
	struct stat st;
	if (fd < 0 || fstat(fd, &st) != 0) {
		send_errno(id, r.path, errno);
		if (fd >= 0)
			close(fd);
		free(r.path);
		return 0;
	}
	if (!S_ISREG(st.st_mode)) {
		close(fd);
		wire_send_error(id, EINVAL, "%s: not a regular file", r.path);
		free(r.path);
		return 0;
	}
	free(r.path);
	struct stream *s = stream_new(id, S_FILE_READ);
	if (!s) {
		close(fd);
		wire_send_error(id, errno, "cannot open stream: %s", strerror(errno));
		return 0;
	}
	s->file_fd = fd;
	return 0;
}

int file_read_pump(struct stream *s)
{
	static uint8_t buf[WL_HEADER_SIZE + READ_CHUNK]; /* header room: wire_send_framed */
	if (s->tx_window == 0)
		return 0;
	size_t want = s->tx_window < READ_CHUNK ? s->tx_window : READ_CHUNK;
	ssize_t n = read(s->file_fd, buf + WL_HEADER_SIZE, want);
	if (n < 0 && errno == EINTR)
		return 1;
	if (n > 0) {
		s->tx_window -= (uint32_t)n;
		s->file_bytes += (uint64_t)n;
		wire_send_framed(FT_STDOUT, s->id, buf, (size_t)n);
		return s->tx_window > 0;
	}
	uint32_t id = s->id;
	uint64_t total = s->file_bytes;
	int e = errno;
	stream_free(s);
	if (n < 0) {
		wire_send_error(id, e, "read: %s", strerror(e));
	} else {
		uint8_t b[16];
		struct rec r;
		rec_init(&r, b, sizeof b);
		rec_u64(&r, T_FILE_READ_OK_SIZE, total);
		wire_send(FT_OK, id, b, r.len);
	}
	return 0;
}

/* The host requires UTF-8 strings, while Linux names are arbitrary bytes. */
static int valid_utf8(const char *s)
{
	const unsigned char *p = (const unsigned char *)s;
	while (*p) {
		int n = *p < 0x80 ? 0 : (*p & 0xe0) == 0xc0 ? 1 : (*p & 0xf0) == 0xe0 ? 2
			: (*p & 0xf8) == 0xf0 ? 3 : -1;
		if (n < 0 || (n == 1 && *p < 0xc2) || (n == 3 && *p > 0xf4))
			return 0;
		unsigned cp = n == 0 ? *p : *p & (0x3f >> n);
		for (int i = 1; i <= n; i++) {
			if ((p[i] & 0xc0) != 0x80)
				return 0;
			cp = cp << 6 | (p[i] & 0x3f);
		}
		if ((n == 2 && (cp < 0x800 || (cp >= 0xd800 && cp <= 0xdfff))) ||
		    (n == 3 && (cp < 0x10000 || cp > 0x10ffff)))
			return 0;
		p += n + 1;
	}
	return 1;
}

/* The host takes u64s only up to 2^53 - 1 (JavaScript numbers). */
static uint64_t clamp53(int64_t v)
{
	const int64_t max = ((int64_t)1 << 53) - 1;
	return v < 0 ? 0 : v > max ? (uint64_t)max : (uint64_t)v;
}

/* Appends a stat record; returns -1 if it did not fit. */
static int stat_record(struct rec *r, const char *name, int dirfd, const char *path, int follow)
{
	struct stat st;
	if (fstatat(dirfd, path, &st, follow ? 0 : AT_SYMLINK_NOFOLLOW) != 0)
		return -2;
	rec_str(r, T_STAT_NAME, name);
	rec_u64(r, T_STAT_SIZE, clamp53(st.st_size));
	rec_u32(r, T_STAT_MODE, (uint32_t)st.st_mode);
	rec_u32(r, T_STAT_UID, (uint32_t)st.st_uid);
	rec_u32(r, T_STAT_GID, (uint32_t)st.st_gid);
	rec_u64(r, T_STAT_MTIME_MS,
		clamp53((int64_t)st.st_mtim.tv_sec * 1000 + st.st_mtim.tv_nsec / 1000000));
	if (S_ISLNK(st.st_mode)) {
		char link[MAX_PATH_LEN + 1];
		ssize_t n = readlinkat(dirfd, path, link, sizeof link - 1);
		if (n >= 0) {
			link[n] = '\0';
			if (valid_utf8(link))
				rec_str(r, T_STAT_LINK, link);
		}
	}
	return r->overflow ? -1 : 0;
}

int file_stat(uint32_t id, const uint8_t *payload, uint32_t len)
{
	struct file_req r = {0};
	int rc = parse_req(id, payload, len, &r, RQ_STAT);
	if (rc)
		return rc < 0 ? -1 : 0;
	char copy[MAX_PATH_LEN + 1];
	snprintf(copy, sizeof copy, "%s", r.path);
	const char *name = basename(copy);
	struct rec out;
	rec_init(&out, replybuf, sizeof replybuf);
	if (stat_record(&out, name, AT_FDCWD, r.path, r.flag == 1) != 0)
		send_errno(id, r.path, errno);
	else
		wire_send(FT_OK, id, replybuf, out.len);
	free(r.path);
	return 0;
}

static int cmp_names(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

int file_list(uint32_t id, const uint8_t *payload, uint32_t len)
{
	struct file_req r = {0};
	int rc = parse_req(id, payload, len, &r, RQ_PATH_ONLY);
	if (rc)
		return rc < 0 ? -1 : 0;
	DIR *d = opendir(r.path);
	if (!d) {
		send_errno(id, r.path, errno);
		free(r.path);
		return 0;
	}
	/* A reply is one frame, so a directory whose listing exceeds MAX_PAYLOAD is refused
	 * rather than truncated; that also bounds what is collected here. */
	size_t n = 0, cap = 0, bytes = 0;
	char **names = NULL;
	int toobig = 0;
	struct dirent *de;
	while ((de = readdir(d))) {
		if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, "..") || !valid_utf8(de->d_name))
			continue;
		bytes += strlen(de->d_name) + 80;
		if (bytes > WL_MAX_PAYLOAD) {
			toobig = 1;
			break;
		}
		if (n == cap) {
			cap = cap ? cap * 2 : 64;
			char **grown = realloc(names, cap * sizeof *names);
			if (!grown) {
				toobig = 1;
				break;
			}
			names = grown;
		}
		if (!(names[n] = strdup(de->d_name))) {
			toobig = 1;
			break;
		}
		n++;
	}
	qsort(names, n, sizeof *names, cmp_names);
	struct rec out;
	rec_init(&out, replybuf, sizeof replybuf);
	for (size_t i = 0; i < n && !toobig; i++) {
		uint8_t entry[MAX_PATH_LEN + 512];
		struct rec er;
		rec_init(&er, entry, sizeof entry);
		int src = stat_record(&er, names[i], dirfd(d), names[i], 0);
		if (src == -2)
			continue; /* removed while listing */
		rec_bytes(&out, T_FILE_LIST_OK_ENTRY, entry, er.len);
		toobig = out.overflow;
	}
	if (toobig)
		wire_send_error(id, E2BIG, "%s: directory listing does not fit in one reply",
				r.path);
	else
		wire_send(FT_OK, id, replybuf, out.len);
	for (size_t i = 0; i < n; i++)
		free(names[i]);
	free(names);
	closedir(d);
	free(r.path);
	return 0;
}

int file_mkdir(uint32_t id, const uint8_t *payload, uint32_t len)
{
	struct file_req r = {.mode = 0755};
	int rc = parse_req(id, payload, len, &r, RQ_MKDIR);
	if (rc)
		return rc < 0 ? -1 : 0;
	struct stat before;
	int existed = stat(r.path, &before) == 0;
	/* parents get 0755 like mkdir -p -m; the mode (without umask) applies to a new leaf */
	if (mkdir_p(r.path, 0755) != 0 || (!existed && chmod(r.path, r.mode & 07777) != 0))
		send_errno(id, r.path, errno);
	else
		send_ok_empty(id);
	free(r.path);
	return 0;
}

static int remove_one(const char *path, const struct stat *st, int type, struct FTW *ftw)
{
	(void)st;
	(void)ftw;
	int rc = type == FTW_DP ? rmdir(path) : unlink(path);
	return rc != 0 && errno != ENOENT ? -1 : 0;
}

int file_remove(uint32_t id, const uint8_t *payload, uint32_t len)
{
	struct file_req r = {0};
	int rc = parse_req(id, payload, len, &r, RQ_REMOVE);
	if (rc)
		return rc < 0 ? -1 : 0;
	struct stat st;
	int ok;
	if (lstat(r.path, &st) != 0) {
		/* like rm -rf: nothing to remove is success when recursive */
		ok = r.flag == 1 && errno == ENOENT;
	} else if (S_ISDIR(st.st_mode)) {
		/* no FTW_MOUNT: on overlayfs a file's st_dev is its layer's, not the mount's */
		ok = r.flag == 1 ? nftw(r.path, remove_one, 32, FTW_DEPTH | FTW_PHYS) == 0
				 : rmdir(r.path) == 0;
	} else {
		ok = unlink(r.path) == 0;
	}
	if (ok)
		send_ok_empty(id);
	else
		send_errno(id, r.path, errno);
	free(r.path);
	return 0;
}
