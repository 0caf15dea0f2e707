#include "config.h"
#include "attrib.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "proto.h"
#include "util.h"
#include "wire.h"

static int valid_hostname(const char *s)
{
	size_t n = strlen(s);
	if (n == 0 || n > 64)
		return 0;
	for (const char *p = s; *p; p++)
		if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
		      (*p >= '0' && *p <= '9') || *p == '-' || *p == '.'))
			return 0;
	return 1;
}

/* Overwrites a regular file the sandbox alone owns (one link, not a symlink) in place, or
 * falls back to replace_file. The hostname files are bind mounts (config_prepare_etc_files),
 * which cannot be renamed over. Not atomic, which is fine: CONFIGURE runs before any command
 * of the sandbox. */
static int overwrite_file(const char *path, const char *data, size_t len)
{
	/* O_NONBLOCK: a FIFO put there by guest root fails (ENXIO) instead of blocking the
	 * agent until something reads it; it is then replaced. */
	int fd = open(path, O_WRONLY | O_NONBLOCK | O_NOFOLLOW | O_CLOEXEC | O_NOCTTY);
	if (fd < 0)
		return replace_file(path, data, len);
	struct stat st;
	if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) || st.st_nlink != 1) {
		close(fd);
		return replace_file(path, data, len);
	}
	int rc = ftruncate(fd, 0);
	if (rc == 0)
		rc = write_all(fd, data, len);
	if (close(fd) != 0)
		rc = -1;
	return rc;
}

/* Where the tmpfs copies of the hostname files live (/run is the agent's tmpfs). */
#define ETC_FILES_DIR "/run/wheellock/etc"

/* Copies the image's file into the tmpfs and bind-mounts the copy over it, as Docker does
 * for these files. */
static void etc_file_on_tmpfs(const char *etc_path, const char *tmpfs_path)
{
	size_t len = 0;
	char *data = read_small_file(etc_path, 65536, &len);
	int rc = replace_file(tmpfs_path, data ? data : "", data ? len : 0);
	free(data);
	if (rc != 0) {
		logmsg("%s: %s", tmpfs_path, strerror(errno));
		return;
	}
	/* A bind mount needs a file to cover: the image may have none, or a symlink (into /run,
	 * say) whose target would be covered instead. */
	struct stat st;
	if (lstat(etc_path, &st) != 0 || !S_ISREG(st.st_mode)) {
		if (replace_file(etc_path, "", 0) != 0) {
			logmsg("%s: %s", etc_path, strerror(errno));
			return;
		}
	}
	if (mount(tmpfs_path, etc_path, NULL, MS_BIND, NULL) != 0)
		logmsg("bind %s: %s", etc_path, strerror(errno));
}

/* The first CONFIGURE after a snapshot restore is the guest's first file write since the
 * restore, and under TCG every kernel path runs untranslated then: overlayfs + ext4 (journal,
 * block allocation) made the hostname part ~85% of that CONFIGURE. A tmpfs write runs far
 * less kernel code (measured in docs/PERFORMANCE.md). Renaming over or removing these two
 * files fails with EBUSY afterwards, as in a Docker container. */
void config_prepare_etc_files(void)
{
	if (mkdir_p(ETC_FILES_DIR, 0755) != 0) {
		logmsg("%s: %s", ETC_FILES_DIR, strerror(errno));
		return;
	}
	etc_file_on_tmpfs("/etc/hosts", ETC_FILES_DIR "/hosts");
	etc_file_on_tmpfs("/etc/hostname", ETC_FILES_DIR "/hostname");
}

int config_set_hostname(const char *name)
{
	if (sethostname(name, strlen(name)) != 0)
		return -1;
	char line[80];
	int n = snprintf(line, sizeof line, "%s\n", name);
	if (overwrite_file("/etc/hostname", line, (size_t)n) != 0)
		return -1;

	/* Keep the image's /etc/hosts but own the 127.0.1.1 line. */
	size_t len = 0;
	char *old = read_small_file("/etc/hosts", 65536, &len);
	size_t cap = len + 256;
	char *out = malloc(cap);
	if (!out) {
		free(old);
		errno = ENOMEM;
		return -1;
	}
	size_t o = 0;
	int has_localhost = 0;
	char *save = NULL;
	for (char *l = old ? strtok_r(old, "\n", &save) : NULL; l; l = strtok_r(NULL, "\n", &save)) {
		if (strncmp(l, "127.0.1.1", 9) == 0 && (l[9] == ' ' || l[9] == '\t'))
			continue;
		if (strncmp(l, "127.0.0.1", 9) == 0)
			has_localhost = 1;
		o += (size_t)snprintf(out + o, cap - o, "%s\n", l);
	}
	if (!has_localhost)
		o += (size_t)snprintf(out + o, cap - o,
				      "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n");
	o += (size_t)snprintf(out + o, cap - o, "127.0.1.1\t%s\n", name);
	int rc = overwrite_file("/etc/hosts", out, o);
	free(out);
	free(old);
	return rc;
}

/* Entropy from the host, credited and followed by a forced reseed: a VM restored from a
 * memory snapshot would otherwise hand out the same random numbers as its siblings. */
/* From linux/random.h, which musl's toolchain does not ship. */
#define WL_RNDADDENTROPY _IOW('R', 0x03, int[2])
#define WL_RNDRESEEDCRNG _IO('R', 0x07)

static int add_seed(const uint8_t *seed, uint32_t len)
{
	if (len == 0 || len > 256) {
		errno = EINVAL;
		return -1;
	}
	struct {
		int entropy_count;
		int buf_size;
		uint8_t bytes[256];
	} req;
	req.entropy_count = (int)(len * 8);
	req.buf_size = (int)len;
	memcpy(req.bytes, seed, len);
	int fd = open("/dev/urandom", O_WRONLY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	int rc = ioctl(fd, WL_RNDADDENTROPY, &req);
	if (rc == 0)
		rc = ioctl(fd, WL_RNDRESEEDCRNG);
	int saved = errno;
	close(fd);
	errno = saved;
	return rc;
}

/* The token goes first, before anything that can fail: every frame from here on, this
 * reply included (OK or ERROR), carries it. A TOKEN that is not a u32 is a host bug the
 * host would only see as frames with the wrong token: make it a protocol error instead. */
static int apply_token(const uint8_t *payload, uint32_t len)
{
	uint32_t token;
	int found = rec_find_u32(payload, len, T_CONFIGURE_TOKEN, &token);
	if (found > 0)
		wire_set_token(token);
	return found < 0 ? -1 : 0;
}

int config_apply(uint32_t id, const uint8_t *payload, uint32_t len)
{
	if (!rec_valid(payload, len) || apply_token(payload, len) != 0)
		return -1;
	struct rec_it it;
	uint8_t tag;
	const uint8_t *v;
	uint32_t l;
	rec_iter(&it, payload, len);
	while (rec_next(&it, &tag, &v, &l) == 1) {
		if (tag == T_CONFIGURE_TIME_UNIX_MS) {
			uint64_t ms;
			if (val_u64(v, l, &ms) != 0) {
				wire_send_error(id, EINVAL, "bad TIME_UNIX_MS");
				return 0;
			}
			struct timespec ts = {(time_t)(ms / 1000u), (long)(ms % 1000u) * 1000000L};
			if (clock_settime(CLOCK_REALTIME, &ts) != 0) {
				wire_send_error(id, errno, "clock_settime: %s", strerror(errno));
				return 0;
			}
		} else if (tag == T_CONFIGURE_FREEZE) {
			uint32_t on;
			if (val_u32(v, l, &on) != 0) {
				wire_send_error(id, EINVAL, "bad FREEZE");
				return 0;
			}
			if (attrib_freeze(on != 0) != 0) {
				wire_send_error(id, errno, "freeze: %s", strerror(errno));
				return 0;
			}
		} else if (tag == T_CONFIGURE_SEED) {
			if (add_seed(v, l) != 0) {
				wire_send_error(id, errno ? errno : EINVAL, "seed: %s", strerror(errno));
				return 0;
			}
		} else if (tag == T_CONFIGURE_HOSTNAME) {
			char *name = val_strdup(v, l);
			if (!name || !valid_hostname(name)) {
				free(name);
				wire_send_error(id, EINVAL, "invalid hostname");
				return 0;
			}
			int rc = config_set_hostname(name);
			free(name);
			if (rc != 0) {
				wire_send_error(id, errno, "hostname: %s", strerror(errno));
				return 0;
			}
		}
	}
	wire_send(FT_OK, id, NULL, 0);
	return 0;
}
