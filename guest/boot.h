/* PID 1 duties: modules, disks, overlay root, base mounts, the control port, power-off. */
#ifndef WL_BOOT_H
#define WL_BOOT_H

/* Everything up to a usable root; exits (kernel panic, VM ends) on failure. */
void boot_system(void);
/* 1 if the kernel command line has wheellock.privileged=1. */
int boot_privileged(void);
/* Opens the virtio-serial port named wheellock.ctl; -1 on failure. */
int boot_open_port(void);
/* Opens the virtio-serial port with this name (waits for it like the control port). */
int boot_open_named_port(const char *port_name);
/* Kills everything, syncs, unmounts, and ends the VM. */
void __attribute__((noreturn)) boot_poweroff(void);

#endif
