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

#endif
