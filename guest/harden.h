/* Restrictions applied to every exec'd process unless wheellock.privileged=1. */
#ifndef WL_HARDEN_H
#define WL_HARDEN_H

/* Drops the bounding-set capabilities; must run before giving up root. */
int harden_drop_bounding(void);
/* no_new_privs + seccomp filter; runs last before execve. */
int harden_lock(void);

#endif
