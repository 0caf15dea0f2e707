#include "disks.h"

#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include "boot.h"
#include "cmdline.h"
#include "fuse.h"
#include "proto.h"
#include "util.h"
#include "wire.h"

/* Never at boot for a VM that may be saved: a memory snapshot is saved from a guest whose
 * extra disks are placeholders, mounted nowhere, so no restored guest holds another
 * sandbox's blocks. Once per guest, before its first command. */
int disk_mount_request(uint32_t id, const uint8_t *payload, uint32_t len, int privileged)
{
	static int requested;
	if (!rec_valid(payload, len))
		return -1;
	if (requested) {
		wire_send_error(id, EBUSY, "disks were mounted already");
		return 0;
	}
	requested = 1;
	/* The mounts' filesystem (mounted at boot, its INIT unanswered until the relay runs)
	 * answers from now on: a path that leads into it fails instead of waiting for ever. */
	if (cmdline()->mounts && fuse_start_relay() != 0)
		logmsg("disks: no FUSE relay: %s", strerror(errno));
	/* Unbinding and binding a driver needs a writable sysfs: no command runs yet. */
	if (!privileged)
		boot_sysfs_readonly(0);
	struct rec_it it;
	uint8_t tag;
	const uint8_t *v;
	uint32_t l;
	int slot = 0, err = 0, not_fs = 0;
	char *failed = NULL;
	rec_iter(&it, payload, len);
	while (!failed && rec_next(&it, &tag, &v, &l) == 1) {
		if (tag != T_DISK_MOUNT_PATH && tag != T_DISK_MOUNT_READONLY_PATH)
			continue;
		char *path = val_strdup(v, l);
		if (!path || slot >= CMDLINE_MAX_DISKS)
			err = EINVAL;
		else if (boot_disk_path_refused(path) != 0)
			err = errno ? errno : EIO;
		else {
			int rc = boot_attach_disk(slot, path, tag == T_DISK_MOUNT_READONLY_PATH);
			if (rc != 0)
				err = errno ? errno : EIO;
			not_fs = rc == -2;
		}
		if (err)
			failed = path ? path : strdup("?");
		else
			free(path);
		slot++;
	}
	/* A sysfs left writable would let commands unbind the agent's ports. */
	if (!privileged && boot_sysfs_readonly(1) != 0)
		boot_poweroff();
	/* mount(2) of a file that is no ext4 file system says ENOMEM or EINVAL, which reads as
	 * if the guest were short of memory: say what was tried instead. */
	if (failed && not_fs)
		wire_send_error(id, err,
				"disk %d on %s failed: the image could not be mounted as an ext4 file "
				"system (is it one? mount said: %s)",
				slot - 1, failed, strerror(err));
	else if (failed)
		wire_send_error(id, err, "disk %d on %s failed: %s", slot - 1, failed, strerror(err));
	else
		wire_send(FT_OK, id, NULL, 0);
	free(failed);
	return 0;
}
