#include "netsetup.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "proto.h"
#include "util.h"
#include "wire.h"

#define MAX_BUNDLES 16
#define MAX_HOSTS_LINES 256
/* A system CA bundle is ~200 KB; refuse to slurp something far bigger. */
#define MAX_BUNDLE_BYTES (16u << 20)
#define HOSTS_PATH "/etc/hosts"
#define DEFAULT_HOSTS "127.0.0.1\tlocalhost\n"

struct netsetup_req {
	char *ca_pem, *ca_path;
	char *bundles[MAX_BUNDLES];
	int n_bundles;
	char *hosts[MAX_HOSTS_LINES];
	int n_hosts;
};

static void req_free(struct netsetup_req *r)
{
	free(r->ca_pem);
	free(r->ca_path);
	for (int i = 0; i < r->n_bundles; i++)
		free(r->bundles[i]);
	for (int i = 0; i < r->n_hosts; i++)
		free(r->hosts[i]);
}

/* 0 = ok; 1 = invalid (what names the problem). */
static int parse(const uint8_t *payload, uint32_t len, struct netsetup_req *r, const char **what)
{
	struct rec_it it;
	uint8_t tag;
	const uint8_t *v;
	uint32_t l;
	rec_iter(&it, payload, len);
	while (rec_next(&it, &tag, &v, &l) == 1) {
		char *s = NULL;
		if (tag >= T_NETWORK_SETUP_CA_PEM && tag <= T_NETWORK_SETUP_HOSTS_LINE &&
		    !(s = val_strdup(v, l))) {
			*what = "field with NUL";
			return 1;
		}
		if (tag == T_NETWORK_SETUP_CA_PEM && !r->ca_pem) {
			r->ca_pem = s;
		} else if (tag == T_NETWORK_SETUP_CA_PATH && !r->ca_path && s[0] == '/') {
			r->ca_path = s;
		} else if (tag == T_NETWORK_SETUP_BUNDLE && r->n_bundles < MAX_BUNDLES && s[0] == '/') {
			r->bundles[r->n_bundles++] = s;
		} else if (tag == T_NETWORK_SETUP_HOSTS_LINE && r->n_hosts < MAX_HOSTS_LINES &&
			   !strchr(s, '\n')) {
			r->hosts[r->n_hosts++] = s;
		} else if (s) {
			free(s);
			*what = "repeated, relative, too many or multi-line field";
			return 1;
		}
	}
	if (!r->ca_pem != !r->ca_path || (r->n_bundles > 0 && !r->ca_pem)) {
		*what = "CA_PEM and CA_PATH go together, BUNDLE needs them";
		return 1;
	}
	return 0;
}

/* Appends pem to the bundle unless it is not a regular file (absent, a directory, a symlink:
 * that points at one of the others, or anywhere) or already holds it. 0 or -1 with errno. */
static int append_to_bundle(const char *path, const char *pem)
{
	struct stat st;
	if (lstat(path, &st) != 0)
		return errno == ENOENT || errno == ENOTDIR ? 0 : -1;
	if (!S_ISREG(st.st_mode))
		return 0;
	int fd = open(path, O_RDWR | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
	if (fd < 0)
		return errno == ELOOP ? 0 : -1; /* swapped for a symlink since the lstat */
	int rc = -1;
	char *data = NULL;
	if (fstat(fd, &st) != 0)
		goto out;
	if (!S_ISREG(st.st_mode)) {
		rc = 0;
		goto out;
	}
	if ((uint64_t)st.st_size > MAX_BUNDLE_BYTES) {
		errno = EFBIG;
		goto out;
	}
	size_t size = (size_t)st.st_size, got = 0;
	data = malloc(size + 1);
	if (!data)
		goto out;
	while (got < size) {
		ssize_t n = pread(fd, data + got, size - got, (off_t)got);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		got += (size_t)n;
	}
	size_t pem_len = strlen(pem);
	if (memmem(data, got, pem, pem_len)) {
		rc = 0;
		goto out;
	}
	rc = 0;
	if (lseek(fd, 0, SEEK_END) < 0 ||
	    (got > 0 && data[got - 1] != '\n' && write_all(fd, "\n", 1) != 0) ||
	    write_all(fd, pem, pem_len) != 0)
		rc = -1;
out:
	free(data);
	int saved = errno;
	if (close(fd) != 0 && rc == 0)
		rc = -1;
	else
		errno = saved;
	return rc;
}

/* Appends the lines to /etc/hosts (a regular file: the tmpfs copy bind-mounted at boot). If
 * it is anything else, it is replaced by localhost plus the lines. 0 or -1 with errno. */
static int append_hosts(char *const lines[], int n)
{
	size_t cap = sizeof DEFAULT_HOSTS + 1;
	for (int i = 0; i < n; i++)
		cap += strlen(lines[i]) + 1;
	char *text = malloc(cap);
	if (!text)
		return -1;
	size_t len = 0;
	struct stat st;
	int fd = -1;
	if (lstat(HOSTS_PATH, &st) == 0 && S_ISREG(st.st_mode))
		fd = open(HOSTS_PATH, O_RDWR | O_NOFOLLOW | O_CLOEXEC);
	if (fd >= 0 && fstat(fd, &st) == 0 && S_ISREG(st.st_mode)) {
		char last = '\n';
		if (st.st_size > 0 && pread(fd, &last, 1, st.st_size - 1) != 1)
			last = '\n';
		if (last != '\n')
			text[len++] = '\n';
	} else {
		if (fd >= 0)
			close(fd);
		fd = -1;
		memcpy(text, DEFAULT_HOSTS, sizeof DEFAULT_HOSTS - 1);
		len = sizeof DEFAULT_HOSTS - 1;
	}
	for (int i = 0; i < n; i++)
		len += (size_t)snprintf(text + len, cap - len, "%s\n", lines[i]);
	int rc;
	if (fd >= 0) {
		rc = lseek(fd, 0, SEEK_END) < 0 || write_all(fd, text, len) != 0 ? -1 : 0;
		int saved = errno;
		if (close(fd) != 0 && rc == 0)
			rc = -1;
		else
			errno = saved;
	} else {
		rc = replace_file(HOSTS_PATH, text, len);
	}
	free(text);
	return rc;
}

/* Parents 0755, then the file itself as a fresh regular 0644 file (a symlink there is
 * replaced, not followed). */
static int write_ca_file(const char *path, const char *pem)
{
	return mkdir_parents(path) == 0 ? replace_file(path, pem, strlen(pem)) : -1;
}

int netsetup_apply(uint32_t id, const uint8_t *payload, uint32_t len)
{
	if (!rec_valid(payload, len))
		return -1;
	struct netsetup_req r = {0};
	const char *what = NULL;
	const char *failed = NULL;
	if (parse(payload, len, &r, &what) != 0) {
		wire_send_error(id, EINVAL, "invalid request: %s", what);
		req_free(&r);
		return 0;
	}
	if (r.ca_pem && write_ca_file(r.ca_path, r.ca_pem) != 0)
		failed = r.ca_path;
	for (int i = 0; !failed && i < r.n_bundles; i++)
		if (append_to_bundle(r.bundles[i], r.ca_pem) != 0)
			failed = r.bundles[i];
	if (!failed && r.n_hosts > 0 && append_hosts(r.hosts, r.n_hosts) != 0)
		failed = HOSTS_PATH;
	if (failed)
		wire_send_error(id, errno, "%s: %s", failed, strerror(errno));
	else
		wire_send(FT_OK, id, NULL, 0);
	req_free(&r);
	return 0;
}
