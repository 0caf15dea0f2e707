/* PID 1 duties: modules, disks, overlay root, base mounts, power-off. */
#ifndef WL_BOOT_H
#define WL_BOOT_H

/* Everything up to a usable root; exits (kernel panic, VM ends) on failure. Reads the kernel
 * command line (cmdline.h) first. */
void boot_system(void);
/* Makes /proc/sys read-only for good (commands of a sandbox that is not privileged): as root
 * they could otherwise still change kernel and network settings (uid 0 may write them without
 * any capability), e.g. the local port range or TCP Fast Open, which an attack on connection
 * attribution used. The agent's own settings are written before. */
void boot_lock_procsys(void);
/* Makes sysfs read-only for everyone, the agent included: call once the agent's own writes
 * to /sys (FUSE readahead) are done. Unless the sandbox is privileged, no process it starts
 * can undo that (see boot.c), so none can unbind or re-bind a driver. */
void boot_lock_sysfs(void);
/* Remounts sysfs read-only (1) or writable (0) for a moment of the agent's own (DISK_MOUNT's
 * driver rebind); 0 or -1 (logged). */
int boot_sysfs_readonly(int readonly);
/* 0 when a disk may be mounted on path: a plain absolute path that, created and resolved,
 * leads nowhere the host refuses (/, /proc, /sys, /dev, /run). -1 with errno otherwise. */
int boot_disk_path_refused(const char *path);
/* DISK_MOUNT (disks.c): probes extra disk `slot` afresh and mounts it on path as boot_system
 * mounts the command line's disks; 0, or -1 with errno (logged), or -2 with errno when the
 * device is there but does not mount as ext4. /sys must be writable. */
int boot_attach_disk(int slot, const char *path, int readonly);
/* Kills everything, syncs, unmounts, and ends the VM. */
void __attribute__((noreturn)) boot_poweroff(void);

#endif
