/* The SYN stamp (docs/PROTOCOL.md "Attribution"): two small BPF programs the agent attaches to
 * the root of its cgroup2 hierarchy so that the first SYN of every guest TCP connection carries
 * the connecting process's pid and cgroup id in a TCP option. The host then knows who opened
 * a connection without asking the agent, which under emulation costs a context switch into
 * the agent and back per connection. */
#ifndef WL_SYNSTAMP_H
#define WL_SYNSTAMP_H

/* Loads the programs and attaches them to the cgroup directory cgroup_root. 0 on success;
 * -1 (errno set, nothing attached) where the kernel has no BPF syscall or cgroup BPF: the
 * host then asks about each connection as before. */
int synstamp_attach(int cgroup_root);

#endif
