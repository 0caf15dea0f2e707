#include "port.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "boot.h"
#include "util.h"

#define PORT_WAIT_MS 10000
#define PORTS_DIR "/sys/class/virtio-ports"

static void sleep_1ms(void)
{
	struct timespec ts = {0, 1000000L};
	nanosleep(&ts, NULL);
}

/* Opens /dev/<entry> if /sys/class/virtio-ports/<entry>/name is `name`. */
static int try_entry(const char *entry, const char *name, struct port *out)
{
	char path[300];
	snprintf(path, sizeof path, PORTS_DIR "/%s/name", entry);
	char *found = read_small_file(path, 128, NULL);
	if (!found)
		return -1;
	found[strcspn(found, "\n")] = '\0';
	int match = strcmp(found, name) == 0;
	free(found);
	if (!match)
		return -1;
	/* The directory first: a device removed in between then fails the liveness check. */
	snprintf(path, sizeof path, PORTS_DIR "/%s", entry);
	int dir = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dir < 0)
		return -1;
	snprintf(path, sizeof path, "/dev/%s", entry);
	int fd = open(path, O_RDWR | O_CLOEXEC | O_NOCTTY);
	if (fd < 0) {
		close(dir);
		return -1;
	}
	*out = (struct port){name, fd, dir};
	return 0;
}

int port_open(const char *name, struct port *out)
{
	*out = (struct port){name, -1, -1};
	for (int waited = 0; waited < PORT_WAIT_MS; waited++) {
		DIR *d = opendir(PORTS_DIR);
		struct dirent *de;
		int rc = -1;
		while (rc != 0 && d && (de = readdir(d)))
			if (de->d_name[0] != '.')
				rc = try_entry(de->d_name, name, out);
		if (d)
			closedir(d);
		if (rc == 0)
			return 0;
		sleep_1ms();
	}
	logmsg("no virtio-serial port named %s", name);
	return -1;
}

int port_alive(const struct port *p)
{
	/* The held directory is that device's sysfs node: once the device is unregistered its
	 * entries are gone for good (kernfs), even if a device of the same name appears later. */
	return p->sysfs_dir >= 0 && faccessat(p->sysfs_dir, "name", F_OK, 0) == 0;
}

void port_lost(const struct port *p, const char *why)
{
	logmsg("FATAL: port %s lost (%s): powering off", p->name, why);
	boot_poweroff();
}
