#include "boot.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <net/if.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/reboot.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "cmdline.h"
#include "config.h"
#include "net.h"
#include "proto.h"
#include "util.h"

#define MODULES_DIR "/lib/wheellock/modules"
#define MODULES_ORDER "/lib/wheellock/modules.order"
#define DISK_WAIT_MS 10000
#define VIRTIO_BLK_DRIVER "/sys/bus/virtio/drivers/virtio_blk"
/* Where the disks live before (and, seen from the initramfs, after) the root switch. */
#define IMAGE_MNT "/mnt/image"
#define UPPER_MNT "/mnt/upper"
#define NEWROOT "/mnt/root"

static int initramfs_root_fd = -1;
/* Extra disks mounted so far (at boot or by DISK_MOUNT), unmounted in reverse at power-off. */
static struct {
	char *path;
	int readonly;
} disks_mounted[CMDLINE_MAX_DISKS];
static int n_disks_mounted;

static void __attribute__((noreturn)) fatal(const char *what)
{
	logmsg("FATAL: %s: %s", what, strerror(errno));
	/* PID 1 exiting panics the kernel; with panic=-1 and -no-reboot QEMU then exits. */
	sync();
	_exit(1);
}

static void sleep_ms(long ms)
{
	struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
	nanosleep(&ts, NULL);
}

static int do_mount(const char *src, const char *dst, const char *type, unsigned long flags,
		    const char *data)
{
	mkdir(dst, 0755);
	if (mount(src, dst, type, flags, data) != 0 && errno != EBUSY) {
		logmsg("mount %s on %s (%s): %s", src, dst, type, strerror(errno));
		return -1;
	}
	return 0;
}

static void load_modules(void)
{
	char *order = read_small_file(MODULES_ORDER, 65536, NULL);
	if (!order)
		return; /* a kernel with everything built in ships no list */
	char *save = NULL;
	for (char *name = strtok_r(order, "\n", &save); name; name = strtok_r(NULL, "\n", &save)) {
		if (!*name || strchr(name, '/'))
			continue;
		char path[512];
		snprintf(path, sizeof path, "%s/%s", MODULES_DIR, name);
		int fd = open(path, O_RDONLY | O_CLOEXEC);
		if (fd < 0) {
			logmsg("module %s: %s", name, strerror(errno));
			continue;
		}
		if (syscall(SYS_finit_module, fd, "", 0) != 0 && errno != EEXIST)
			logmsg("module %s: %s", name, strerror(errno));
		close(fd);
		unlink(path); /* initramfs pages are RAM: give them back once loaded */
	}
	free(order);
}

/* virtio-mmio probe order is not the command-line order, so disks are found by the serial
 * the host gave each one. Fills dev with "/dev/vdX"; 0 when found. */
static int find_disk_once(const char *serial, char *dev, size_t devlen)
{
	DIR *d = opendir("/sys/block");
	if (!d)
		return -1;
	int found = -1;
	struct dirent *de;
	while (found != 0 && (de = readdir(d))) {
		if (strncmp(de->d_name, "vd", 2) != 0)
			continue;
		char path[300];
		snprintf(path, sizeof path, "/sys/block/%s/serial", de->d_name);
		char *s = read_small_file(path, 64, NULL);
		if (!s)
			continue;
		s[strcspn(s, "\n")] = '\0';
		if (strcmp(s, serial) == 0) {
			snprintf(dev, devlen, "/dev/%s", de->d_name);
			found = 0;
		}
		free(s);
	}
	closedir(d);
	return found;
}

/* 0 when the disk with this serial has a device node, else -1 (ENODEV) after DISK_WAIT_MS. */
static int wait_disk(const char *serial, char *dev, size_t devlen)
{
	for (int waited = 0;; waited++) {
		struct stat st;
		if (find_disk_once(serial, dev, devlen) == 0 && stat(dev, &st) == 0)
			return 0;
		if (waited >= DISK_WAIT_MS) {
			errno = ENODEV;
			logmsg("no virtio disk with serial %s", serial);
			return -1;
		}
		sleep_ms(1);
	}
}

static void mount_base(void)
{
	do_mount("proc", "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL);
	do_mount("sysfs", "/sys", "sysfs", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL);
	do_mount("devtmpfs", "/dev", "devtmpfs", MS_NOSUID, "mode=0755");
	do_mount("devpts", "/dev/pts", "devpts", MS_NOSUID | MS_NOEXEC, "mode=0620,gid=5,ptmxmode=0666");
	do_mount("shm", "/dev/shm", "tmpfs", MS_NOSUID | MS_NODEV, "mode=1777");
	do_mount("tmpfs", "/tmp", "tmpfs", MS_NOSUID | MS_NODEV, "mode=1777");
	do_mount("tmpfs", "/run", "tmpfs", MS_NOSUID | MS_NODEV, "mode=0755");
	/* devtmpfs does not provide these; shells (process substitution) expect them. */
	symlink("/proc/self/fd", "/dev/fd");
	symlink("/proc/self/fd/0", "/dev/stdin");
	symlink("/proc/self/fd/1", "/dev/stdout");
	symlink("/proc/self/fd/2", "/dev/stderr");
}

/* The host checks guest paths too (absolute, no `,` `:`); refuse anything odd here. */
static int valid_disk_path(const char *p)
{
	size_t n = strlen(p);
	return n > 1 && n < 256 && p[0] == '/' && !strstr(p, "..") && !strpbrk(p, ",:\n");
}

/* Where the host refuses a disk (config/disks.ts, RESERVED_GUEST_PATHS), checked again on
 * the path a disk's words really lead to: a symlink in the image (/var/run -> /run) is not in
 * the words. The path is created (as the mount would) to be resolved. */
int boot_disk_path_refused(const char *path)
{
	static const char *const reserved[] = {"/proc", "/sys", "/dev", "/run"};
	char real[PATH_MAX];
	if (!valid_disk_path(path)) {
		errno = EINVAL;
		return -1;
	}
	if (mkdir_p(path, 0755) != 0 || !realpath(path, real))
		return -1;
	int refused = strcmp(real, "/") == 0;
	for (size_t i = 0; !refused && i < sizeof reserved / sizeof reserved[0]; i++) {
		size_t n = strlen(reserved[i]);
		refused = strncmp(real, reserved[i], n) == 0 && (real[n] == '\0' || real[n] == '/');
	}
	if (refused) {
		logmsg("disk path %s leads to %s, where no disk may be mounted", path, real);
		errno = EINVAL;
		return -1;
	}
	return 0;
}

/* Extra disk `slot` on path: 0, -1 (logged), or -2 when the device is there but mount(2) as
 * ext4 failed (errno: the kernel's, e.g. ENOMEM or EINVAL for a file that is no file system).
 * A read-only device cannot replay a journal left by an unclean stop: the last consistent
 * state is mounted instead. */
static int mount_disk(int slot, const char *path, int readonly)
{
	char serial[32], dev[300];
	snprintf(serial, sizeof serial, WL_SERIAL_EXTRA_PREFIX "%d", slot);
	/* The path exists: boot_disk_path_refused made it before resolving it. */
	if (wait_disk(serial, dev, sizeof dev) != 0)
		return -1;
	unsigned long flags = MS_NOATIME | MS_NOSUID | MS_NODEV;
	if (readonly)
		flags |= MS_RDONLY;
	int rc = mount(dev, path, "ext4", flags, NULL);
	if (rc != 0 && readonly)
		rc = mount(dev, path, "ext4", flags, "noload");
	if (rc != 0) {
		int e = errno;
		logmsg("disk %s (%s) on %s: mount as ext4: %s", serial, dev, path, strerror(e));
		errno = e;
		return -2;
	}
	disks_mounted[n_disks_mounted].path = strdup(path);
	disks_mounted[n_disks_mounted++].readonly = readonly;
	return 0;
}

/* The user's disks named on the command line (a VM that is never saved), at their guest
 * paths in the new root. A disk that cannot be mounted ends the boot: running without it
 * would silently write the user's data to the throwaway root. */
static void mount_extra_disks(void)
{
	const struct cmdline *c = cmdline();
	for (int i = 0; i < c->n_disks; i++)
		if (boot_disk_path_refused(c->disk_paths[i]) != 0 ||
		    mount_disk(i, c->disk_paths[i], c->disk_readonly[i]) != 0)
			fatal("mounting a disk");
}

/* Probes the virtio-blk device of extra disk `slot` again (unbind, bind): a restored guest
 * still knows the drive of the VM its snapshot was saved from (a placeholder: its size, its
 * cached blocks). The new probe reads this VM's drive afresh, as a boot would. */
static int reprobe_disk(int slot)
{
	char serial[32], dev[300], link[320], target[300];
	snprintf(serial, sizeof serial, WL_SERIAL_EXTRA_PREFIX "%d", slot);
	if (wait_disk(serial, dev, sizeof dev) != 0)
		return -1;
	snprintf(link, sizeof link, "/sys/block/%s/device", dev + strlen("/dev/"));
	ssize_t n = readlink(link, target, sizeof target - 1);
	if (n < 0)
		return -1;
	target[n] = '\0';
	const char *name = strrchr(target, '/') ? strrchr(target, '/') + 1 : target;
	static const char *const steps[] = {VIRTIO_BLK_DRIVER "/unbind", VIRTIO_BLK_DRIVER "/bind"};
	for (size_t i = 0; i < sizeof steps / sizeof steps[0]; i++) {
		int fd = open(steps[i], O_WRONLY | O_CLOEXEC);
		int ok = fd >= 0 && write(fd, name, strlen(name)) == (ssize_t)strlen(name);
		if (fd >= 0)
			close(fd);
		if (!ok) {
			logmsg("disk %s: %s %s: %s", serial, steps[i], name, strerror(errno));
			return -1;
		}
	}
	return 0;
}

int boot_attach_disk(int slot, const char *path, int readonly)
{
	if (n_disks_mounted >= CMDLINE_MAX_DISKS) {
		errno = ENOSPC;
		return -1;
	}
	return reprobe_disk(slot) == 0 ? mount_disk(slot, path, readonly) : -1;
}

static void unmount_extra_disks(void)
{
	for (int i = n_disks_mounted - 1; i >= 0; i--) {
		const char *path = disks_mounted[i].path;
		if (umount2(path, 0) != 0 && !disks_mounted[i].readonly)
			mount(NULL, path, NULL, MS_REMOUNT | MS_RDONLY, NULL);
	}
}

static void loopback_up(void)
{
	int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (s < 0)
		return;
	struct ifreq ifr = {0};
	strcpy(ifr.ifr_name, "lo");
	if (ioctl(s, SIOCGIFFLAGS, &ifr) == 0) {
		ifr.ifr_flags |= IFF_UP;
		ioctl(s, SIOCSIFFLAGS, &ifr);
	}
	close(s);
}

/* fds 0-2 must be open so pipes created later never land on them. */
static void ensure_std_fds(void)
{
	for (int fd = 0; fd < 3; fd++) {
		if (fcntl(fd, F_GETFD) >= 0)
			continue;
		int n = open("/dev/null", O_RDWR);
		if (n >= 0 && n != fd) {
			dup2(n, fd);
			close(n);
		}
	}
}

void boot_system(void)
{
	umask(0);
	mkdir("/dev", 0755);
	mount("devtmpfs", "/dev", "devtmpfs", MS_NOSUID, "mode=0755");
	log_open_console();
	ensure_std_fds();
	do_mount("proc", "/proc", "proc", 0, NULL);
	do_mount("sysfs", "/sys", "sysfs", 0, NULL);
	cmdline_load();
	load_modules();

	char root_dev[300], upper_dev[300];
	if (wait_disk(WL_SERIAL_ROOT, root_dev, sizeof root_dev) != 0 ||
	    wait_disk(WL_SERIAL_UPPER, upper_dev, sizeof upper_dev) != 0)
		fatal("waiting for disks");
	mkdir("/mnt", 0755);
	if (do_mount(root_dev, IMAGE_MNT, "ext4", MS_RDONLY, NULL) != 0)
		fatal("mounting the image");
	if (do_mount(upper_dev, UPPER_MNT, "ext4", MS_NOATIME, NULL) != 0)
		fatal("mounting the upper disk");
	if (mkdir_p(UPPER_MNT "/upper", 0755) != 0 || mkdir_p(UPPER_MNT "/work", 0755) != 0)
		fatal("preparing the upper disk");
	if (do_mount("overlay", NEWROOT, "overlay", 0,
		     "lowerdir=" IMAGE_MNT ",upperdir=" UPPER_MNT "/upper,workdir=" UPPER_MNT
		     "/work") != 0)
		fatal("mounting the overlay root");

	/* The initramfs (rootfs) cannot be pivot_root'ed away: move the new root over / and
	 * chroot into it. A handle on the old root lets power-off come back to unmount. */
	initramfs_root_fd = open("/", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	umount2("/proc", MNT_DETACH);
	umount2("/sys", MNT_DETACH);
	if (chdir(NEWROOT) != 0 || mount(NEWROOT, "/", NULL, MS_MOVE, NULL) != 0 ||
	    chroot(".") != 0 || chdir("/") != 0)
		fatal("switching root");
	mount_base();
	mount_extra_disks();
	umask(022);
	loopback_up();
	net_setup();
	config_prepare_etc_files();
	if (sethostname("wheellock", 9) != 0)
		logmsg("sethostname: %s", strerror(errno));
	setenv("PATH", "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", 1);
}

/* Unbinding the virtio console driver through sysfs (then binding it again) recreates the
 * agent's ports with nobody holding them; docs/SECURITY.md. A remount without MS_BIND makes
 * the sysfs superblock read-only, not just this mount: commands lack CAP_SYS_ADMIN to remount
 * it, and a sysfs mounted afresh in a user namespace must then be read-only too (the kernel
 * refuses a more permissive mount than the visible one), so there is no writable view left. */
void boot_lock_sysfs(void)
{
	if (boot_sysfs_readonly(1) != 0)
		fatal("making /sys read-only");
}

void boot_lock_procsys(void)
{
	/* A bind of /proc/sys over itself, then made read-only: root without CAP_SYS_ADMIN can
	 * neither remount it nor mount another procfs where this one is partly hidden. */
	const unsigned long flags = MS_BIND | MS_REMOUNT | MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC;
	if (mount("/proc/sys", "/proc/sys", NULL, MS_BIND, NULL) != 0 ||
	    mount(NULL, "/proc/sys", NULL, flags, NULL) != 0)
		fatal("making /proc/sys read-only");
}

int boot_sysfs_readonly(int readonly)
{
	unsigned long flags = MS_REMOUNT | MS_NOSUID | MS_NODEV | MS_NOEXEC;
	int rc = mount(NULL, "/sys", NULL, readonly ? flags | MS_RDONLY : flags, NULL);
	if (rc != 0)
		logmsg("remounting /sys %s: %s", readonly ? "ro" : "rw", strerror(errno));
	return rc;
}

void boot_poweroff(void)
{
	kill(-1, SIGKILL);
	/* Reap what we can so the filesystems are no longer busy (bounded: ~1 s). */
	for (int i = 0; i < 1000; i++) {
		pid_t p = waitpid(-1, NULL, WNOHANG);
		if (p < 0)
			break;
		if (p == 0)
			sleep_ms(1);
	}
	sync();
	static const char *const mounts[] = {"/dev/pts", "/dev/shm", "/dev", "/proc",
					     "/sys", "/tmp", "/run"};
	for (size_t i = 0; i < sizeof mounts / sizeof mounts[0]; i++)
		umount2(mounts[i], MNT_DETACH);
	unmount_extra_disks();
	/* The overlay was moved over the rootfs's "/" at boot: it is our root, and NEWROOT names
	 * an empty rootfs directory, not it. Detach it while it is still our root; it goes once
	 * our root and working directory leave it (next), and with it its hold on the upper
	 * disk. */
	if (umount2("/", MNT_DETACH) != 0)
		logmsg("power off: detaching the root: %s", strerror(errno));
	if (initramfs_root_fd >= 0 && fchdir(initramfs_root_fd) == 0 && chroot(".") == 0) {
		/* Read-only first: that writes the journal out and marks the upper filesystem clean
		 * even if a process that would not die still holds the overlay (unmounting this
		 * mount alone would not: the overlay keeps a mount of its own). The host reads a kept
		 * upper disk (the image builder) and refuses one whose journal needs recovery. */
		if (mount(NULL, UPPER_MNT, NULL, MS_REMOUNT | MS_RDONLY, NULL) != 0)
			logmsg("power off: remounting the upper disk read-only: %s", strerror(errno));
		umount2(UPPER_MNT, MNT_DETACH);
		umount2(IMAGE_MNT, MNT_DETACH);
	}
	sync();
	reboot(RB_POWER_OFF);
	/* Without a working power-off method the kernel just halts; a reboot ends QEMU when
	 * the host runs it with -no-reboot. */
	reboot(RB_AUTOBOOT);
	_exit(0);
}
