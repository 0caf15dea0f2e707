/* eth0 from the kernel command line (wheellock.net=ADDR/PREFIX,GATEWAY,MTU, cmdline.h). */
#ifndef WL_NET_H
#define WL_NET_H

/* Brings up eth0 with a static address, default route and resolv.conf; a no-op without the
 * wheellock.net= key (no NIC). Failures are logged, never fatal: exec must still work. */
void net_setup(void);

#endif
