#include "net.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <net/if.h>
#include <net/route.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cmdline.h"
#include "util.h"

#define IFACE "eth0"

static int set_addr(int s, unsigned long req, struct in_addr a)
{
	struct ifreq ifr = {0};
	strcpy(ifr.ifr_name, IFACE);
	struct sockaddr_in *sin = (struct sockaddr_in *)&ifr.ifr_addr;
	sin->sin_family = AF_INET;
	sin->sin_addr = a;
	return ioctl(s, req, &ifr);
}

static int configure(int s, const struct net_config *cfg)
{
	struct ifreq ifr = {0};
	strcpy(ifr.ifr_name, IFACE);
	ifr.ifr_mtu = cfg->mtu;
	if (ioctl(s, SIOCSIFMTU, &ifr) != 0)
		logmsg("net: mtu %d: %s", cfg->mtu, strerror(errno)); /* keep the default MTU */
	if (set_addr(s, SIOCSIFADDR, cfg->addr) != 0 || set_addr(s, SIOCSIFNETMASK, cfg->netmask) != 0)
		return -1;
	memset(&ifr, 0, sizeof ifr);
	strcpy(ifr.ifr_name, IFACE);
	if (ioctl(s, SIOCGIFFLAGS, &ifr) != 0)
		return -1;
	ifr.ifr_flags |= IFF_UP | IFF_RUNNING;
	if (ioctl(s, SIOCSIFFLAGS, &ifr) != 0)
		return -1;
	struct rtentry rt = {0};
	struct sockaddr_in *dst = (struct sockaddr_in *)&rt.rt_dst;
	struct sockaddr_in *gw = (struct sockaddr_in *)&rt.rt_gateway;
	struct sockaddr_in *mask = (struct sockaddr_in *)&rt.rt_genmask;
	dst->sin_family = gw->sin_family = mask->sin_family = AF_INET;
	gw->sin_addr = cfg->gateway;
	rt.rt_flags = RTF_UP | RTF_GATEWAY;
	if (ioctl(s, SIOCADDRT, &rt) != 0 && errno != EEXIST)
		return -1;
	return 0;
}

/* The gateway answers DNS. An image's resolv.conf may be a symlink into /run (systemd-resolved);
 * replace it with a file so lookups work without that daemon. */
static void write_resolv_conf(struct in_addr dns)
{
	char text[64];
	char ip[INET_ADDRSTRLEN];
	inet_ntop(AF_INET, &dns, ip, sizeof ip);
	int n = snprintf(text, sizeof text, "nameserver %s\n", ip);
	unlink("/etc/resolv.conf");
	int fd = open("/etc/resolv.conf", O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0 || write_all(fd, text, (size_t)n) != 0)
		logmsg("net: /etc/resolv.conf: %s", strerror(errno));
	if (fd >= 0)
		close(fd);
}

void net_setup(void)
{
	if (!cmdline()->has_net)
		return;
	const struct net_config cfg = cmdline()->net;
	int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (s < 0) {
		logmsg("net: socket: %s", strerror(errno));
		return;
	}
	if (configure(s, &cfg) != 0)
		logmsg("net: configuring " IFACE ": %s", strerror(errno));
	close(s);
	write_resolv_conf(cfg.gateway);
}
