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
/* Before starting exec `id`'s child: picks a ready cgroup for it (or makes one). Returns the
 * cgroup's directory fd for clone3(CLONE_INTO_CGROUP), or -1 when the exec runs in none. */
int attrib_exec_prepare(uint32_t id);
/* In a child that could not be started in its cgroup, first thing: joins it (what it forks
 * follows). */
void attrib_child_join(int cgroup_fd);
/* In the agent once the child is started (or failed): closes the prepared cgroup's fd. */
void attrib_exec_spawned(void);
/* A child was reaped or an exec ended: some cgroup may be empty and removable now. */
void attrib_note_exit(void);
/* 1 while cgroups wait to be removed or made; the agent then calls attrib_idle when it has
 * had nothing else to do for a moment, so neither costs an exec's round trip. */
int attrib_idle_work(void);
void attrib_idle(void);
/* Freezes (on = 1) or thaws (on = 0) every exec's cgroup (the cgroup v2 freezer, which the
 * processes cannot observe): a checkpoint holds the guest's processes while its memory is
 * saved, and a copy's run again only after its CONFIGURE mixed in its own entropy. Freezing
 * waits (up to 500 ms) until the kernel reports every cgroup frozen. Nothing to do without
 * the hierarchy (attribution off). Returns 0, or -1 with errno. */
int attrib_freeze(int on);
/* ATTRIBUTE request: answers with one entry per key. Returns -1 on a malformed record. */
int attrib_query(uint32_t id, const uint8_t *payload, uint32_t len);

#endif
