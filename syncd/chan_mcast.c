/* UDP multicast on one interface, IPv4 or IPv6 group. Path MTU discovery
 * is forced on ("do"), so an oversized datagram fails with EMSGSIZE instead
 * of leaving as IP fragments. Our own datagrams are not looped back. */
#include "chan.h"
#include "config.h"
#include "log.h"

#include <arpa/inet.h>
#include <errno.h>
#include <event2/event.h>
#include <net/if.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#define READS_PER_TURN 64

struct chan {
	int fd;
	int af;
	struct sockaddr_storage group;
	socklen_t grouplen;
	size_t max_dgram;
	struct event *ev_read;
	const struct chan_events *ev;
	void *arg;
	uint8_t rx[65536];
	uint64_t sent, sent_bytes, send_err, recv, recv_bytes, recv_err;
};

static struct hafw_ratelimit rl_send = HAFW_RATELIMIT_INIT(5, 3);

static void mcast_readable(evutil_socket_t fd, short what, void *arg)
{
	struct chan *c = arg;

	(void)what;
	for (int i = 0; i < READS_PER_TURN; i++) {
		ssize_t n = recv(fd, c->rx, sizeof(c->rx), MSG_DONTWAIT);

		if (n < 0) {
			if (errno != EAGAIN && errno != EWOULDBLOCK)
				c->recv_err++;
			return;
		}
		c->recv++;
		c->recv_bytes += (uint64_t)n;
		c->ev->recv(c->arg, c->rx, (size_t)n);
	}
}

static int iface_mtu(int fd, const char *ifname)
{
	struct ifreq ifr;

	memset(&ifr, 0, sizeof(ifr));
	snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "%s", ifname);
	if (ioctl(fd, SIOCGIFMTU, &ifr) < 0)
		return -errno;
	return ifr.ifr_mtu;
}

static int setup_v4(struct chan *c, const struct hafw_config *cfg, unsigned ifindex)
{
	struct sockaddr_in *sin = (struct sockaddr_in *)&c->group;
	struct ip_mreqn mr;
	int ttl = cfg->sync_ttl, off = 0, pmtu = IP_PMTUDISC_DO;

	sin->sin_family = AF_INET;
	sin->sin_port = htons(cfg->sync_port);
	inet_pton(AF_INET, cfg->sync_group, &sin->sin_addr);
	c->grouplen = sizeof(*sin);
	if (bind(c->fd, (struct sockaddr *)sin, sizeof(*sin)) < 0)
		return -errno;
	memset(&mr, 0, sizeof(mr));
	mr.imr_multiaddr = sin->sin_addr;
	mr.imr_ifindex = (int)ifindex;
	if (setsockopt(c->fd, IPPROTO_IP, IP_ADD_MEMBERSHIP, &mr, sizeof(mr)) < 0 ||
	    setsockopt(c->fd, IPPROTO_IP, IP_MULTICAST_IF, &mr, sizeof(mr)) < 0 ||
	    setsockopt(c->fd, IPPROTO_IP, IP_MULTICAST_TTL, &ttl, sizeof(ttl)) < 0 ||
	    setsockopt(c->fd, IPPROTO_IP, IP_MULTICAST_LOOP, &off, sizeof(off)) < 0 ||
	    setsockopt(c->fd, IPPROTO_IP, IP_MTU_DISCOVER, &pmtu, sizeof(pmtu)) < 0)
		return -errno;
	return 20 + 8;
}

static int setup_v6(struct chan *c, const struct hafw_config *cfg, unsigned ifindex)
{
	struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&c->group;
	struct ipv6_mreq mr;
	int hops = cfg->sync_ttl, off = 0, pmtu = IPV6_PMTUDISC_DO;

	sin6->sin6_family = AF_INET6;
	sin6->sin6_port = htons(cfg->sync_port);
	inet_pton(AF_INET6, cfg->sync_group, &sin6->sin6_addr);
	sin6->sin6_scope_id = ifindex;
	c->grouplen = sizeof(*sin6);
	if (bind(c->fd, (struct sockaddr *)sin6, sizeof(*sin6)) < 0)
		return -errno;
	memset(&mr, 0, sizeof(mr));
	mr.ipv6mr_multiaddr = sin6->sin6_addr;
	mr.ipv6mr_interface = ifindex;
	if (setsockopt(c->fd, IPPROTO_IPV6, IPV6_JOIN_GROUP, &mr, sizeof(mr)) < 0 ||
	    setsockopt(c->fd, IPPROTO_IPV6, IPV6_MULTICAST_IF, &ifindex, sizeof(ifindex)) < 0 ||
	    setsockopt(c->fd, IPPROTO_IPV6, IPV6_MULTICAST_HOPS, &hops, sizeof(hops)) < 0 ||
	    setsockopt(c->fd, IPPROTO_IPV6, IPV6_MULTICAST_LOOP, &off, sizeof(off)) < 0 ||
	    setsockopt(c->fd, IPPROTO_IPV6, IPV6_MTU_DISCOVER, &pmtu, sizeof(pmtu)) < 0)
		return -errno;
	return 40 + 8;
}

static void mcast_close(struct chan *c)
{
	if (!c)
		return;
	if (c->ev_read)
		event_free(c->ev_read);
	if (c->fd >= 0)
		close(c->fd);
	free(c);
}

static int mcast_open(struct chan **out, const struct hafw_config *cfg, struct event_base *base,
                      const struct chan_events *ev, void *arg)
{
	struct chan *c = calloc(1, sizeof(*c));
	struct in6_addr a6;
	unsigned ifindex;
	int one = 1, ret, overhead, mtu;

	if (!c)
		return -ENOMEM;
	c->ev = ev;
	c->arg = arg;
	c->af = inet_pton(AF_INET6, cfg->sync_group, &a6) == 1 ? AF_INET6 : AF_INET;
	c->fd = socket(c->af, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (c->fd < 0) {
		ret = -errno;
		goto err;
	}
	ifindex = if_nametoindex(cfg->sync_if);
	if (!ifindex) {
		ret = -ENODEV;
		goto err;
	}
	setsockopt(c->fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	/* only this link: a group joined elsewhere must not feed us */
	if (setsockopt(c->fd, SOL_SOCKET, SO_BINDTODEVICE, cfg->sync_if, strlen(cfg->sync_if)) <
	    0) {
		ret = -errno;
		goto err;
	}
	if (setsockopt(c->fd, SOL_SOCKET, SO_RCVBUFFORCE, &cfg->sync_rcvbuf,
	               sizeof(cfg->sync_rcvbuf)) < 0)
		setsockopt(c->fd, SOL_SOCKET, SO_RCVBUF, &cfg->sync_rcvbuf,
		           sizeof(cfg->sync_rcvbuf));
	setsockopt(c->fd, SOL_SOCKET, SO_SNDBUFFORCE, &cfg->sync_rcvbuf, sizeof(cfg->sync_rcvbuf));
	overhead = c->af == AF_INET6 ? setup_v6(c, cfg, ifindex) : setup_v4(c, cfg, ifindex);
	if (overhead < 0) {
		ret = overhead;
		goto err;
	}
	mtu = cfg->sync_mtu ? cfg->sync_mtu : iface_mtu(c->fd, cfg->sync_if);
	if (mtu < 0) {
		ret = mtu;
		goto err;
	}
	if (mtu <= overhead + 256) {
		ret = -EMSGSIZE;
		goto err;
	}
	c->max_dgram = (size_t)(mtu - overhead);
	c->ev_read = event_new(base, c->fd, EV_READ | EV_PERSIST, mcast_readable, c);
	if (!c->ev_read || event_add(c->ev_read, NULL) < 0) {
		ret = -ENOMEM;
		goto err;
	}
	*out = c;
	return 0;
err:
	mcast_close(c);
	return ret;
}

static int mcast_send(struct chan *c, const uint8_t *buf, size_t len)
{
	/* a full socket buffer is retried briefly: losing a frame costs a
	 * resync, a few microseconds of waiting cost nothing */
	for (int tries = 0; tries < 200; tries++) {
		ssize_t n = sendto(c->fd, buf, len, 0, (struct sockaddr *)&c->group, c->grouplen);

		if (n == (ssize_t)len) {
			c->sent++;
			c->sent_bytes += len;
			return 0;
		}
		if (n < 0 && (errno == EAGAIN || errno == ENOBUFS)) {
			usleep(50);
			continue;
		}
		break;
	}
	c->send_err++;
	hafw_log_rl(&rl_send, LOG_WARNING, "mcast: send of %zu bytes failed: %s", len,
	            strerror(errno));
	return -errno;
}

static size_t mcast_max_dgram(struct chan *c)
{
	return c->max_dgram;
}

static int mcast_stats(struct chan *c, struct chan_stat *out, int max)
{
	struct chan_stat all[] = {
	    {"dgrams_sent", c->sent},          {"bytes_sent", c->sent_bytes},
	    {"send_errors", c->send_err},      {"dgrams_received", c->recv},
	    {"bytes_received", c->recv_bytes}, {"receive_errors", c->recv_err},
	};
	int n = 0;

	for (size_t i = 0; i < sizeof(all) / sizeof(all[0]) && n < max; i++)
		out[n++] = all[i];
	return n;
}

const struct chan_ops chan_mcast_ops = {
    .name = "multicast",
    .open = mcast_open,
    .close = mcast_close,
    .send = mcast_send,
    .max_dgram = mcast_max_dgram,
    .stats = mcast_stats,
};
