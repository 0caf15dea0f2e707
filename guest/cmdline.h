/* The kernel command line, read once at boot into one struct that every part of the agent
 * uses (keys in proto.h, meanings in docs/PROTOCOL.md "Boot"). Values the host would never
 * send are dropped here with a log line, so users of the struct need no checks of their own. */
#ifndef WL_CMDLINE_H
#define WL_CMDLINE_H

#include <netinet/in.h>

#define CMDLINE_MAX_DISKS 8

struct net_config {
	struct in_addr addr, gateway, netmask;
	int mtu;
};

struct cmdline {
	int privileged; /* privileged=1: commands run without hardening */
	int attribution_off; /* attribution=0: execs get no cgroups of their own (benchmarks) */
	/* attribution=fork: an exec's child joins its cgroup after fork() even where clone3 could
	 * start it there (tests of the path kernels before 5.7 take) */
	int attribution_fork;
	/* mounts=1: the host will send MOUNT; the FUSE filesystem is mounted at boot (fuse.h) */
	int mounts;
	/* disks=/a,/b:ro: extra disk i (serial wl-disk<i>) is mounted on disk_paths[i] */
	int n_disks;
	const char *disk_paths[CMDLINE_MAX_DISKS];
	int disk_readonly[CMDLINE_MAX_DISKS];
	/* net=ADDR/PREFIX,GATEWAY,MTU: has_net 0 without the key or with an invalid value */
	int has_net;
	struct net_config net;
};

/* Reads /proc/cmdline (must be mounted); call once, early in boot. */
void cmdline_load(void);
/* The parsed command line; all zero before cmdline_load. */
const struct cmdline *cmdline(void);

#endif
