#include "cmdline.h"

#include <arpa/inet.h>
#include <stdlib.h>
#include <string.h>

#include "proto.h"
#include "util.h"

static struct cmdline parsed;
/* Each value is copied here and split in place; the struct points into these. */
static char disks_value[1024];

const struct cmdline *cmdline(void)
{
	return &parsed;
}

/* "key=value" -> value, when tok is that key; the key must be followed by '='. */
static const char *value_of(const char *tok, const char *key)
{
	size_t n = strlen(key);
	return strncmp(tok, key, n) == 0 && tok[n] == '=' ? tok + n + 1 : NULL;
}

static int copy_value(char *dst, size_t cap, const char *value)
{
	if (strlen(value) >= cap)
		return -1;
	strcpy(dst, value);
	return 0;
}

static void parse_disks(char *value)
{
	char *save = NULL;
	parsed.n_disks = 0;
	for (char *p = strtok_r(value, ",", &save); p && parsed.n_disks < CMDLINE_MAX_DISKS;
	     p = strtok_r(NULL, ",", &save)) {
		char *opt = strchr(p, ':');
		int readonly = opt && strcmp(opt, ":ro") == 0;
		if (opt)
			*opt = '\0';
		if (p[0] != '/')
			continue;
		parsed.disk_readonly[parsed.n_disks] = readonly;
		parsed.disk_paths[parsed.n_disks++] = p;
	}
}

/* "10.0.2.15/24,10.0.2.2,65520" */
static int parse_net(const char *value, struct net_config *cfg)
{
	char buf[128];
	if (copy_value(buf, sizeof buf, value) != 0)
		return -1;
	char *slash = strchr(buf, '/');
	char *comma1 = strchr(buf, ',');
	if (!slash || !comma1 || slash > comma1)
		return -1;
	char *comma2 = strchr(comma1 + 1, ',');
	if (!comma2)
		return -1;
	*slash = *comma1 = *comma2 = '\0';
	int prefix = atoi(slash + 1);
	cfg->mtu = atoi(comma2 + 1);
	if (prefix < 1 || prefix > 30 || cfg->mtu < 576 || cfg->mtu > 65535)
		return -1;
	if (inet_pton(AF_INET, buf, &cfg->addr) != 1 ||
	    inet_pton(AF_INET, comma1 + 1, &cfg->gateway) != 1)
		return -1;
	cfg->netmask.s_addr = htonl(0xffffffffu << (32 - prefix));
	return 0;
}

void cmdline_load(void)
{
	char *cmd = read_small_file("/proc/cmdline", 4096, NULL);
	if (!cmd)
		return;
	const char *disks = NULL, *net = NULL, *v;
	for (char *tok = strtok(cmd, " \n"); tok; tok = strtok(NULL, " \n")) {
		if ((v = value_of(tok, WL_KEY_PRIVILEGED)))
			parsed.privileged = strcmp(v, "1") == 0;
		else if ((v = value_of(tok, WL_KEY_DISKS)))
			disks = v;
		else if ((v = value_of(tok, WL_KEY_NET)))
			net = v;
		else if ((v = value_of(tok, WL_KEY_MOUNTS)))
			parsed.mounts = strcmp(v, "1") == 0;
		else if ((v = value_of(tok, WL_KEY_ATTRIBUTION))) {
			parsed.attribution_off = strcmp(v, "0") == 0;
			parsed.attribution_fork = strcmp(v, "fork") == 0;
		}
	}
	if (disks && copy_value(disks_value, sizeof disks_value, disks) == 0)
		parse_disks(disks_value);
	if (net) {
		parsed.has_net = parse_net(net, &parsed.net) == 0;
		if (!parsed.has_net)
			logmsg("bad %s= value: no network", WL_KEY_NET);
	}
	free(cmd);
}
