/* Which guest process holds a socket (attrib.c's questions about TCP and UDP flows). */
#ifndef WL_SOCKOWNER_H
#define WL_SOCKOWNER_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

struct sock_key {
	uint8_t kind;	     /* WL_ATTRIBUTION_KIND_*; sock_owners skips all but TCP and UDP */
	uint32_t key;	     /* sockets: the guest's local port */
	unsigned long inode; /* out: the socket (its inode); 0 = not found */
	pid_t pid;	     /* out: a process holding it; 0 = unknown */
};

/* Fills in inode and pid for every key of a socket kind. */
void sock_owners(struct sock_key *keys, size_t n);

#endif
