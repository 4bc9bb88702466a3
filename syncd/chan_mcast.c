/* UDP multicast on one interface (one channel per sync link), IPv4 or IPv6 group, and unicast to
 * one peer on the same socket. Path MTU discovery is forced on ("do"), so an oversized datagram
 * fails with EMSGSIZE instead of leaving as IP fragments. Our own datagrams are not looped back.
 *
 * Sending never waits: a datagram the socket does not take at once goes
 * into a bounded FIFO that drains when the socket is writable again, and
 * once anything waits there every later datagram queues behind it, so
 * peers see datagrams in the order the core sent them. */
#include "chan.h"
#include "config.h"
#include "log.h"

#include <arpa/inet.h>
#include <errno.h>
#include <event2/event.h>
#include <net/if.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

/* enough to empty a busy socket in a turn or two: a node that reads less
 * per turn than arrives between turns loses datagrams however short its
 * other work is */
#define READS_PER_TURN 512
#define SENDS_PER_TURN 256
/* ENOBUFS is not announced by writability: the socket may be writable
 * all along while the device or neighbour queue is full */
#define ENOBUFS_RETRY_US 1000

union mcast_sa {
	struct sockaddr sa;
	struct sockaddr_in sin;
	struct sockaddr_in6 sin6;
};

struct mcast_dgram {
	uint8_t *buf;
	uint32_t len;
	socklen_t tolen;
	union mcast_sa to;
};

struct chan {
	int fd;
	int af;
	unsigned ifindex;
	uint16_t port;
	union mcast_sa group;
	socklen_t grouplen;
	size_t max_dgram;
	struct event *ev_read;
	struct event *ev_write;
	struct event *ev_retry;
	struct chan_events ev;
	void *arg;

	/* The send queue: a ring of descriptors allocated at open, and
	 * buffers of max_dgram bytes taken from a pool that grows only to
	 * the deepest the queue has been (at most qcap) and is reused. */
	struct mcast_dgram *q;
	size_t qcap, qhead, qlen;
	uint8_t **pool;
	size_t npool;

	struct hafw_ratelimit rl_send, rl_drop, rl_recv;
	uint64_t sent, sent_bytes, send_err, queued, dropped, qmax;
	uint64_t recv, recv_bytes, recv_err;
	uint8_t rx[65536];
};

static const char *sa_str(const union mcast_sa *a, char *out, size_t size)
{
	char ip[INET6_ADDRSTRLEN] = "?";

	if (a->sa.sa_family == AF_INET) {
		inet_ntop(AF_INET, &a->sin.sin_addr, ip, sizeof(ip));
		snprintf(out, size, "%s:%u", ip, ntohs(a->sin.sin_port));
	} else {
		inet_ntop(AF_INET6, &a->sin6.sin6_addr, ip, sizeof(ip));
		snprintf(out, size, "[%s]:%u", ip, ntohs(a->sin6.sin6_port));
	}
	return out;
}

static void from_sa(struct chan_addr *out, const struct sockaddr_storage *ss)
{
	memset(out, 0, sizeof(*out));
	if (ss->ss_family == AF_INET) {
		const struct sockaddr_in *sin = (const struct sockaddr_in *)ss;

		out->len = 4;
		memcpy(out->ip, &sin->sin_addr, 4);
		out->port = ntohs(sin->sin_port);
	} else if (ss->ss_family == AF_INET6) {
		const struct sockaddr_in6 *sin6 = (const struct sockaddr_in6 *)ss;

		/* an IPv4 peer reaching our dual-stack socket: the core
		 * knows it by its IPv4 address */
		if (IN6_IS_ADDR_V4MAPPED(&sin6->sin6_addr)) {
			out->len = 4;
			memcpy(out->ip, &sin6->sin6_addr.s6_addr[12], 4);
		} else {
			out->len = 16;
			memcpy(out->ip, &sin6->sin6_addr, 16);
		}
		out->port = ntohs(sin6->sin6_port);
	}
}

static bool is_v4mapped(const uint8_t *ip)
{
	static const uint8_t prefix[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};

	return !memcmp(ip, prefix, sizeof(prefix));
}

static int to_sa(const struct chan *c, const struct chan_addr *to, union mcast_sa *out,
                 socklen_t *outlen)
{
	uint16_t port = htons(to->port ? to->port : c->port);
	const uint8_t *v4 = NULL;

	if (to->len == 4)
		v4 = to->ip;
	else if (to->len == 16 && is_v4mapped(to->ip))
		v4 = to->ip + 12;
	else if (to->len != 16)
		return -EINVAL;
	memset(out, 0, sizeof(*out));
	if (c->af == AF_INET) {
		if (!v4)
			return -EAFNOSUPPORT;
		out->sin.sin_family = AF_INET;
		out->sin.sin_port = port;
		memcpy(&out->sin.sin_addr, v4, 4);
		*outlen = sizeof(out->sin);
		return 0;
	}
	out->sin6.sin6_family = AF_INET6;
	out->sin6.sin6_port = port;
	if (v4) {
		out->sin6.sin6_addr.s6_addr[10] = 0xff;
		out->sin6.sin6_addr.s6_addr[11] = 0xff;
		memcpy(&out->sin6.sin6_addr.s6_addr[12], v4, 4);
	} else {
		memcpy(&out->sin6.sin6_addr, to->ip, 16);
		/* a link-local peer is on the sync link; for other
		 * addresses the kernel ignores the scope */
		out->sin6.sin6_scope_id = c->ifindex;
	}
	*outlen = sizeof(out->sin6);
	return 0;
}

static void mcast_readable(evutil_socket_t fd, short what, void *arg)
{
	struct chan *c = arg;

	(void)what;
	for (int i = 0; i < READS_PER_TURN; i++) {
		struct sockaddr_storage ss;
		socklen_t sl = sizeof(ss);
		struct chan_addr from;
		ssize_t n;
		int err;

		n = recvfrom(fd, c->rx, sizeof(c->rx), MSG_DONTWAIT, (struct sockaddr *)&ss, &sl);
		if (n < 0) {
			err = errno;
			if (err == EAGAIN || err == EWOULDBLOCK)
				return;
			c->recv_err++;
			hafw_log_rl(&c->rl_recv, LOG_WARNING, "mcast: receive failed: %s",
			            strerror(err));
			/* an error the read did not clear would come back
			 * at once: leave the rest to the next turn */
			return;
		}
		from_sa(&from, &ss);
		if (!from.len) {
			c->recv_err++;
			continue;
		}
		c->recv++;
		c->recv_bytes += (uint64_t)n;
		c->ev.recv(c->arg, c->rx, (size_t)n, &from);
	}
}

/* One attempt, no waiting. Returns 0 or a negative errno, with EWOULDBLOCK
 * folded into EAGAIN. */
static int mcast_xmit(struct chan *c, const uint8_t *buf, size_t len, const union mcast_sa *to,
                      socklen_t tolen)
{
	ssize_t n = sendto(c->fd, buf, len, MSG_DONTWAIT | MSG_NOSIGNAL, &to->sa, tolen);
	int err;

	if (n < 0) {
		err = errno;
		return err == EWOULDBLOCK ? -EAGAIN : -err;
	}
	/* UDP sends all or nothing; a short count would be a kernel bug */
	if ((size_t)n != len)
		return -EMSGSIZE;
	c->sent++;
	c->sent_bytes += len;
	return 0;
}

static bool transient(int err)
{
	return err == -EAGAIN || err == -ENOBUFS;
}

static void send_failed(struct chan *c, int err, size_t len, const union mcast_sa *to)
{
	char dst[64];

	c->send_err++;
	hafw_log_rl(&c->rl_send, LOG_WARNING, "mcast: send of %zu bytes to %s failed: %s", len,
	            sa_str(to, dst, sizeof(dst)), strerror(-err));
}

/* Have the loop call the drain when the socket can take more. */
static void mcast_wait(struct chan *c, int err)
{
	if (err == -ENOBUFS) {
		struct timeval tv = {0, ENOBUFS_RETRY_US};

		event_del(c->ev_write);
		evtimer_add(c->ev_retry, &tv);
	} else {
		evtimer_del(c->ev_retry);
		event_add(c->ev_write, NULL);
	}
}

static int mcast_enqueue(struct chan *c, const uint8_t *buf, size_t len, const union mcast_sa *to,
                         socklen_t tolen)
{
	struct mcast_dgram *d;
	uint8_t *mem;

	if (c->qlen == c->qcap)
		return -ENOBUFS;
	if (c->npool) {
		mem = c->pool[--c->npool];
	} else {
		/* the pool only grows while the queue reaches a new depth;
		 * bounded by qcap buffers in all */
		mem = malloc(c->max_dgram);
		if (!mem)
			return -ENOMEM;
	}
	d = &c->q[(c->qhead + c->qlen) % c->qcap];
	if (len)
		memcpy(mem, buf, len);
	d->buf = mem;
	d->len = (uint32_t)len;
	d->to = *to;
	d->tolen = tolen;
	c->qlen++;
	c->queued++;
	if (c->qlen > c->qmax)
		c->qmax = c->qlen;
	return 0;
}

static void mcast_dequeue(struct chan *c)
{
	struct mcast_dgram *d = &c->q[c->qhead];

	/* the pool has room: it never holds more than the buffers made */
	c->pool[c->npool++] = d->buf;
	d->buf = NULL;
	c->qhead = (c->qhead + 1) % c->qcap;
	c->qlen--;
}

static void mcast_drain(struct chan *c)
{
	for (int i = 0; i < SENDS_PER_TURN && c->qlen; i++) {
		struct mcast_dgram *d = &c->q[c->qhead];
		int ret = mcast_xmit(c, d->buf, d->len, &d->to, d->tolen);

		if (transient(ret)) {
			mcast_wait(c, ret);
			return;
		}
		if (ret < 0)
			send_failed(c, ret, d->len, &d->to);
		mcast_dequeue(c);
	}
	if (c->qlen) {
		/* bounded turn: more next time the socket is writable */
		mcast_wait(c, -EAGAIN);
	} else {
		event_del(c->ev_write);
		evtimer_del(c->ev_retry);
	}
}

static void mcast_writable(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	mcast_drain(arg);
}

static int mcast_submit(struct chan *c, const uint8_t *buf, size_t len, const union mcast_sa *to,
                        socklen_t tolen)
{
	bool was_empty = c->qlen == 0;
	char dst[64];
	int ret = -EAGAIN, qret;

	/* what would not fit a queue slot would not leave unfragmented */
	if (len > c->max_dgram) {
		ret = -EMSGSIZE;
		goto fail;
	}
	/* once something waits, everything goes behind it, to keep order */
	if (was_empty) {
		ret = mcast_xmit(c, buf, len, to, tolen);
		if (!ret)
			return 0;
		if (!transient(ret))
			goto fail;
	}
	qret = mcast_enqueue(c, buf, len, to, tolen);
	if (qret < 0) {
		c->dropped++;
		hafw_log_rl(&c->rl_drop, LOG_WARNING,
		            "mcast: send queue (%zu of %zu) cannot take %zu bytes to %s: %s",
		            c->qlen, c->qcap, len, sa_str(to, dst, sizeof(dst)), strerror(-qret));
		return qret;
	}
	if (was_empty)
		mcast_wait(c, ret);
	return 0;
fail:
	send_failed(c, ret, len, to);
	return ret;
}

static int mcast_send(struct chan *c, const uint8_t *buf, size_t len)
{
	return mcast_submit(c, buf, len, &c->group, c->grouplen);
}

static int mcast_send_to(struct chan *c, const struct chan_addr *to, const uint8_t *buf, size_t len)
{
	union mcast_sa sa;
	socklen_t salen;
	int ret;

	if (!to) {
		c->send_err++;
		return -EINVAL;
	}
	ret = to_sa(c, to, &sa, &salen);
	if (ret < 0) {
		c->send_err++;
		hafw_log_rl(&c->rl_send, LOG_WARNING,
		            "mcast: send_to an address of %u bytes on an %s channel: %s", to->len,
		            c->af == AF_INET ? "IPv4" : "IPv6", strerror(-ret));
		return ret;
	}
	return mcast_submit(c, buf, len, &sa, salen);
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

static int setopt(int fd, int level, int name, const void *val, socklen_t len)
{
	return setsockopt(fd, level, name, val, len) < 0 ? -errno : 0;
}

/* Bound to the wildcard address, not the group, so unicast from a peer
 * arrives too; with "multicast all" off only the groups this socket joined
 * are delivered, not every group another program joined on the node. */
static int setup_v4(struct chan *c, const struct hafw_config *cfg)
{
	struct sockaddr_in any = {.sin_family = AF_INET, .sin_port = htons(c->port)};
	struct sockaddr_in *grp = &c->group.sin;
	struct ip_mreqn mr;
	int ttl = cfg->sync_ttl, off = 0, pmtu = IP_PMTUDISC_DO, ret;

	grp->sin_family = AF_INET;
	grp->sin_port = htons(c->port);
	if (inet_pton(AF_INET, cfg->sync_group, &grp->sin_addr) != 1)
		return -EINVAL;
	c->grouplen = sizeof(*grp);
	memset(&mr, 0, sizeof(mr));
	mr.imr_multiaddr = grp->sin_addr;
	mr.imr_ifindex = (int)c->ifindex;
	if ((ret = setopt(c->fd, IPPROTO_IP, IP_MULTICAST_ALL, &off, sizeof(off))) < 0)
		return ret;
	if (bind(c->fd, (struct sockaddr *)&any, sizeof(any)) < 0)
		return -errno;
	if ((ret = setopt(c->fd, IPPROTO_IP, IP_ADD_MEMBERSHIP, &mr, sizeof(mr))) < 0 ||
	    (ret = setopt(c->fd, IPPROTO_IP, IP_MULTICAST_IF, &mr, sizeof(mr))) < 0 ||
	    (ret = setopt(c->fd, IPPROTO_IP, IP_MULTICAST_TTL, &ttl, sizeof(ttl))) < 0 ||
	    (ret = setopt(c->fd, IPPROTO_IP, IP_MULTICAST_LOOP, &off, sizeof(off))) < 0 ||
	    (ret = setopt(c->fd, IPPROTO_IP, IP_MTU_DISCOVER, &pmtu, sizeof(pmtu))) < 0)
		return ret;
	return 20 + 8;
}

static int setup_v6(struct chan *c, const struct hafw_config *cfg)
{
	struct sockaddr_in6 any = {.sin6_family = AF_INET6, .sin6_port = htons(c->port)};
	struct sockaddr_in6 *grp = &c->group.sin6;
	struct ipv6_mreq mr;
	int hops = cfg->sync_ttl, off = 0, pmtu = IPV6_PMTUDISC_DO, ret;

	grp->sin6_family = AF_INET6;
	grp->sin6_port = htons(c->port);
	if (inet_pton(AF_INET6, cfg->sync_group, &grp->sin6_addr) != 1)
		return -EINVAL;
	grp->sin6_scope_id = c->ifindex;
	c->grouplen = sizeof(*grp);
	memset(&mr, 0, sizeof(mr));
	mr.ipv6mr_multiaddr = grp->sin6_addr;
	mr.ipv6mr_interface = c->ifindex;
#ifdef IPV6_MULTICAST_ALL
	if ((ret = setopt(c->fd, IPPROTO_IPV6, IPV6_MULTICAST_ALL, &off, sizeof(off))) < 0)
		return ret;
#endif
	/* the socket is dual-stack (IPv4 peers may be addressed), so IPv4
	 * groups it never joined must stay out too: inet6 sockets start with
	 * this off (measured on 6.18), set so it does not rest on a default */
	if ((ret = setopt(c->fd, IPPROTO_IP, IP_MULTICAST_ALL, &off, sizeof(off))) < 0)
		return ret;
	if (bind(c->fd, (struct sockaddr *)&any, sizeof(any)) < 0)
		return -errno;
	if ((ret = setopt(c->fd, IPPROTO_IPV6, IPV6_JOIN_GROUP, &mr, sizeof(mr))) < 0 ||
	    (ret = setopt(c->fd, IPPROTO_IPV6, IPV6_MULTICAST_IF, &c->ifindex,
	                  sizeof(c->ifindex))) < 0 ||
	    (ret = setopt(c->fd, IPPROTO_IPV6, IPV6_MULTICAST_HOPS, &hops, sizeof(hops))) < 0 ||
	    (ret = setopt(c->fd, IPPROTO_IPV6, IPV6_MULTICAST_LOOP, &off, sizeof(off))) < 0 ||
	    (ret = setopt(c->fd, IPPROTO_IPV6, IPV6_MTU_DISCOVER, &pmtu, sizeof(pmtu))) < 0)
		return ret;
	return 40 + 8;
}

/* The FORCE variants pass the system maximum but need CAP_NET_ADMIN. */
static int set_buf(int fd, int force, int plain, int size)
{
	if (setsockopt(fd, SOL_SOCKET, force, &size, sizeof(size)) == 0)
		return 0;
	return setopt(fd, SOL_SOCKET, plain, &size, sizeof(size));
}

static void mcast_close(struct chan *c)
{
	if (!c)
		return;
	if (c->ev_read)
		event_free(c->ev_read);
	if (c->ev_write)
		event_free(c->ev_write);
	if (c->ev_retry)
		event_free(c->ev_retry);
	if (c->fd >= 0)
		close(c->fd);
	while (c->qlen)
		mcast_dequeue(c);
	for (size_t i = 0; i < c->npool; i++)
		free(c->pool[i]);
	free(c->pool);
	free(c->q);
	free(c);
}

static int mcast_open(struct chan **out, const struct hafw_config *cfg, int link,
                      struct event_base *base, const struct chan_events *ev, void *arg)
{
	const char *ifname = link ? cfg->sync_backup_if : cfg->sync_if;
	struct chan *c;
	struct in6_addr a6;
	int ret, overhead, mtu;

	*out = NULL;
	if (!ev || !ev->recv || cfg->sync_send_queue < 1 || cfg->sync_port < 1 ||
	    cfg->sync_port > 65535 || link < 0 || link > 1 || !ifname[0])
		return -EINVAL;
	c = calloc(1, sizeof(*c));
	if (!c)
		return -ENOMEM;
	c->fd = -1;
	c->ev = *ev;
	c->arg = arg;
	c->port = (uint16_t)cfg->sync_port;
	c->rl_send = (struct hafw_ratelimit)HAFW_RATELIMIT_INIT(5, 3);
	c->rl_drop = (struct hafw_ratelimit)HAFW_RATELIMIT_INIT(5, 3);
	c->rl_recv = (struct hafw_ratelimit)HAFW_RATELIMIT_INIT(5, 3);
	c->qcap = (size_t)cfg->sync_send_queue;
	c->q = calloc(c->qcap, sizeof(*c->q));
	c->pool = calloc(c->qcap, sizeof(*c->pool));
	if (!c->q || !c->pool) {
		ret = -ENOMEM;
		goto err;
	}
	c->af = inet_pton(AF_INET6, cfg->sync_group, &a6) == 1 ? AF_INET6 : AF_INET;
	c->fd = socket(c->af, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (c->fd < 0) {
		ret = -errno;
		goto err;
	}
	c->ifindex = if_nametoindex(ifname);
	if (!c->ifindex) {
		ret = -ENODEV;
		goto err;
	}
	/* only this link: a group joined elsewhere, or unicast arriving on
	 * another interface, must not feed us */
	ret = setopt(c->fd, SOL_SOCKET, SO_BINDTODEVICE, ifname, strlen(ifname));
	if (ret < 0)
		goto err;
	ret = set_buf(c->fd, SO_RCVBUFFORCE, SO_RCVBUF, cfg->sync_rcvbuf);
	if (ret < 0)
		goto err;
	ret = set_buf(c->fd, SO_SNDBUFFORCE, SO_SNDBUF, cfg->sync_sndbuf);
	if (ret < 0)
		goto err;
	overhead = c->af == AF_INET6 ? setup_v6(c, cfg) : setup_v4(c, cfg);
	if (overhead < 0) {
		ret = overhead;
		goto err;
	}
	mtu = cfg->sync_mtu ? cfg->sync_mtu : iface_mtu(c->fd, ifname);
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
	c->ev_write = event_new(base, c->fd, EV_WRITE | EV_PERSIST, mcast_writable, c);
	c->ev_retry = evtimer_new(base, mcast_writable, c);
	if (!c->ev_read || !c->ev_write || !c->ev_retry || event_add(c->ev_read, NULL) < 0) {
		ret = -ENOMEM;
		goto err;
	}
	*out = c;
	return 0;
err:
	mcast_close(c);
	return ret;
}

static size_t mcast_max_dgram(struct chan *c)
{
	return c->max_dgram;
}

static size_t mcast_backlog(struct chan *c)
{
	return c->qlen;
}

static int mcast_stats(struct chan *c, struct chan_stat *out, int max)
{
	const struct chan_stat all[] = {
	    {"dgrams_sent", c->sent},           {"bytes_sent", c->sent_bytes},
	    {"send_errors", c->send_err},       {"send_queued", c->queued},
	    {"send_queue_dropped", c->dropped}, {"send_queue_max", c->qmax},
	    {"dgrams_received", c->recv},       {"bytes_received", c->recv_bytes},
	    {"receive_errors", c->recv_err},
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
    .send_to = mcast_send_to,
    .max_dgram = mcast_max_dgram,
    .backlog = mcast_backlog,
    .stats = mcast_stats,
};
