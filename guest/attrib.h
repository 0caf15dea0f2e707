/* Which exec a guest process or socket belongs to (docs/PROTOCOL.md "ATTRIBUTE"). Each exec
 * runs in a cgroup of its own in a cgroup2 hierarchy only the agent can reach, so whatever
 * it forks, daemonises (setsid, double fork) or re-parents to PID 1 stays in it. */
#ifndef WL_ATTRIB_H
#define WL_ATTRIB_H

#include <stdint.h>
#include <sys/types.h>

/* Mounts the private hierarchy; without cgroup2 (or with wheellock.attribution=0) execs are
 * found by walking parent pids instead, which loses daemons re-parented to PID 1. */
void attrib_init(void);
/* Before forking exec `id`'s child: makes its cgroup and opens it for the child. */
void attrib_exec_prepare(uint32_t id);
/* In the child, first thing: joins the cgroup prepared for it (all it forks follows). */
void attrib_child_join(void);
/* In the agent once the fork is done (or failed): forgets the prepared cgroup's fd. */
void attrib_exec_spawned(void);
/* ATTRIBUTE request: answers with one entry per key. Returns -1 on a malformed record. */
int attrib_query(uint32_t id, const uint8_t *payload, uint32_t len);

#endif
