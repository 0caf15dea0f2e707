/* Resolves the EXEC USER field against the guest's /etc/passwd and /etc/group. */
#ifndef WL_USER_H
#define WL_USER_H

#include <sys/types.h>

#define USER_MAX_GROUPS 64

struct user {
	uid_t uid;
	gid_t gid;
	int has_entry; /* found in /etc/passwd: name and home are meaningful */
	char name[256];
	char home[1024];
	gid_t groups[USER_MAX_GROUPS]; /* supplementary groups, primary gid first */
	int ngroups;
};

/* spec NULL or "" means root. Returns 0, or -1 with a message for an ERROR frame. */
int user_resolve(const char *spec, struct user *u, char *err, size_t errlen);

#endif
