/* The agent's virtio-serial ports: found by name, and watched for disappearing. A port goes
 * away when its virtio device is unbound from the driver (guest root writing to sysfs, see
 * docs/SECURITY.md); re-binding creates a new, unowned port with the same name. The agent's
 * descriptor for the old one then reads as "host not connected" forever, and any guest
 * process can open the new one, so losing a port ends the VM. */
#ifndef WL_PORT_H
#define WL_PORT_H

struct port {
	const char *name;
	int fd;        /* the port's /dev/vport<N>p<M>, blocking, close-on-exec; -1 if not open */
	int sysfs_dir; /* its device directory in sysfs, held to tell "gone" from "unplugged host" */
};

/* Opens the port with this name, waiting up to 10 s for it to appear; -1 on failure. */
int port_open(const char *name, struct port *out);
/* 1 while the device this descriptor belongs to exists. A read of 0 bytes (or POLLHUP) also
 * means the host end is merely not connected, which is normal around a snapshot restore. */
int port_alive(const struct port *p);
/* Logs why and powers the VM off: the host sees QEMU exit and reports the sandbox stopped. */
void __attribute__((noreturn)) port_lost(const struct port *p, const char *why);

#endif
