/* Restrictions applied to every exec'd process unless wheellock.privileged=1. */
#ifndef WL_HARDEN_H
#define WL_HARDEN_H

/* Drops the bounding-set capabilities; must run before giving up root. */
int harden_drop_bounding(void);
/* no_new_privs + seccomp filter; runs last before execve. */
int harden_lock(void);
/* Yama's relational ptrace scope, machine-wide, at boot: a process may reach into (ptrace,
 * /proc/PID/mem, pidfd_getfd) only its descendants. 0, or -1 if Yama is there and refused. */
int harden_restrict_ptrace(void);
/* ICMP echo over datagram sockets for every group (net.ipv4.ping_group_range), at boot:
 * commands run without CAP_NET_RAW, and ping needs one or the other. 0, or -1 if refused. */
int harden_allow_ping(void);

#endif
