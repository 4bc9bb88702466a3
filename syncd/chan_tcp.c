/* The control channel: one TCP connection per pair of peers, on the sync
 * interface, carrying messages framed by the datagram header's length
 * field (syncd/wire.h). The channel moves whole messages and never looks
 * into a payload. This file is the channel (its peers, listeners and
 * counters); one connection, with its framing, its peer's identity, what
 * the core hears of it and its output buffer, is syncd/chan_tcp_conn.c.
 *
 * With a backup sync link there is a listener on each link, and a
 * connection goes over the link of the address the core gave for the peer
 * (chan_addr.link): when the peer moves to the other link, the core gives
 * its address there.
 *
 * Who connects: of two peers that know each other (peer_add), the one with
 * the lower id connects, and again with backoff (100 ms doubling to 5 s,
 * +-20% jitter, back to 100 ms once the peer has sent a message) while the
 * peer is known; the other accepts. Ids never added are accepted too (the
 * core admits or ignores what they send), in a bounded number of places.
 *
 * Sending never waits, and a connection's output buffer is bounded
 * (sync.control_buffer); peer_backlog tells a bulk sender when to go on.
 * backlog() counts bytes, over all connections. */
#include "chan_tcp_int.h"
#include "config.h"

#include <arpa/inet.h>
#include <errno.h>
#include <event2/buffer.h>
#include <event2/event.h>
#include <net/if.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

/* per callback, so a flood of connections cannot hold the loop */
#define ACCEPTS_PER_TURN 16
/* out of descriptors: the listener stays readable, so stop listening a
 * moment instead of spinning on it */
#define ACCEPT_PAUSE_MS 100
#define BACKOFF_MIN_MS  100
#define BACKOFF_MAX_MS  5000
/* places for connections of ids never added, beyond sync.max_peers */
#define UNKNOWN_SLACK 4
/* accepted and silent connections from one known peer's address: a new
 * one may arrive while the kernel has not yet told us the last one died */
#define PENDING_PER_ADDR 2
/* a dead peer is noticed within about 8 s idle, 10 s with data in flight */
#define KEEP_IDLE_S     5
#define KEEP_INTVL_S    1
#define KEEP_CNT        3
#define USER_TIMEOUT_MS 10000
#define LISTEN_BACKLOG  64

union tcp_sa {
	struct sockaddr sa;
	struct sockaddr_in sin;
	struct sockaddr_in6 sin6;
	struct sockaddr_storage ss;
};

struct tcp_peer {
	struct chan *c;
	uint32_t id;
	struct chan_addr addr;
	bool we_connect;
	bool retry; /* the next attempt follows a failure or a loss */
	unsigned backoff_ms;
	struct event *ev_retry;
};

static bool is_v4mapped(const uint8_t *ip)
{
	static const uint8_t prefix[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};

	return !memcmp(ip, prefix, sizeof(prefix));
}

/* An IPv4 peer is known by its IPv4 address, however it reached us. */
static void addr_norm(struct chan_addr *out, const struct chan_addr *in)
{
	memset(out, 0, sizeof(*out));
	out->port = in->port;
	out->link = in->link; /* which sync link the connection goes over */
	if (in->len == 16 && is_v4mapped(in->ip)) {
		out->len = 4;
		memcpy(out->ip, in->ip + 12, 4);
	} else {
		out->len = in->len;
		memcpy(out->ip, in->ip, in->len);
	}
}

static bool ip_eq(const struct chan_addr *a, const struct chan_addr *b)
{
	return a->len == b->len && !memcmp(a->ip, b->ip, a->len);
}

const char *tcp_addr_str(const struct chan_addr *a, char *out, size_t size)
{
	char ip[INET6_ADDRSTRLEN] = "?";

	inet_ntop(a->len == 4 ? AF_INET : AF_INET6, a->ip, ip, sizeof(ip));
	snprintf(out, size, a->len == 4 ? "%s:%u" : "[%s]:%u", ip, a->port);
	return out;
}

static void from_sa(struct chan_addr *out, const union tcp_sa *sa)
{
	struct chan_addr raw = {0};

	if (sa->sa.sa_family == AF_INET) {
		raw.len = 4;
		memcpy(raw.ip, &sa->sin.sin_addr, 4);
		raw.port = ntohs(sa->sin.sin_port);
	} else if (sa->sa.sa_family == AF_INET6) {
		raw.len = 16;
		memcpy(raw.ip, &sa->sin6.sin6_addr, 16);
		raw.port = ntohs(sa->sin6.sin6_port);
	}
	addr_norm(out, &raw);
}

/* The socket's family follows the peer's address, not the channel's: an
 * IPv6 node may reach an IPv4 one and the other way round. */
static void to_sa(const struct chan *c, const struct chan_addr *a, union tcp_sa *out,
                  socklen_t *outlen)
{
	memset(out, 0, sizeof(*out));
	if (a->len == 4) {
		out->sin.sin_family = AF_INET;
		out->sin.sin_port = htons(c->port);
		memcpy(&out->sin.sin_addr, a->ip, 4);
		*outlen = sizeof(out->sin);
	} else {
		out->sin6.sin6_family = AF_INET6;
		out->sin6.sin6_port = htons(c->port);
		memcpy(&out->sin6.sin6_addr, a->ip, 16);
		/* a link-local peer is on the sync link; for other
		 * addresses the kernel ignores the scope */
		out->sin6.sin6_scope_id = c->ls[a->link < c->nls ? a->link : 0].ifindex;
		*outlen = sizeof(out->sin6);
	}
}

static int setopt(int fd, int level, int name, const void *val, socklen_t len)
{
	return setsockopt(fd, level, name, val, len) < 0 ? -errno : 0;
}

static int setint(int fd, int level, int name, int val)
{
	return setopt(fd, level, name, &val, sizeof(val));
}

/* Keepalive notices a peer that died silently while the link is idle, the
 * user timeout one that stopped acknowledging data; without them a dead
 * peer holds its connection for the kernel's 15 minutes of retransmits. */
static int tune(int fd)
{
	int ret;

	if ((ret = setint(fd, IPPROTO_TCP, TCP_NODELAY, 1)) < 0 ||
	    (ret = setint(fd, SOL_SOCKET, SO_KEEPALIVE, 1)) < 0 ||
	    (ret = setint(fd, IPPROTO_TCP, TCP_KEEPIDLE, KEEP_IDLE_S)) < 0 ||
	    (ret = setint(fd, IPPROTO_TCP, TCP_KEEPINTVL, KEEP_INTVL_S)) < 0 ||
	    (ret = setint(fd, IPPROTO_TCP, TCP_KEEPCNT, KEEP_CNT)) < 0 ||
	    (ret = setint(fd, IPPROTO_TCP, TCP_USER_TIMEOUT, USER_TIMEOUT_MS)) < 0)
		return ret;
	return 0;
}

/* xorshift64*: jitter only, nothing secret */
static uint32_t rnd(struct chan *c)
{
	uint64_t x = c->rng;

	x ^= x >> 12;
	x ^= x << 25;
	x ^= x >> 27;
	c->rng = x;
	return (uint32_t)((x * 0x2545F4914F6CDD1DULL) >> 32);
}

static struct tcp_peer *find_peer(const struct chan *c, uint32_t id)
{
	for (size_t i = 0; i < c->npeers; i++)
		if (c->peers[i]->id == id)
			return c->peers[i];
	return NULL;
}

static bool known_addr(const struct chan *c, const struct chan_addr *a)
{
	for (size_t i = 0; i < c->npeers; i++)
		if (ip_eq(&c->peers[i]->addr, a))
			return true;
	return false;
}

static struct tcp_conn *find_up(const struct chan *c, uint32_t id)
{
	struct tcp_conn *k = tcp_conn_find(c, id);

	return k && k->up ? k : NULL;
}

void tcp_chan_free(struct chan *c)
{
	free(c);
}

static void peer_schedule(struct tcp_peer *p, unsigned ms)
{
	struct timeval tv = tcp_ms_tv(ms);

	evtimer_add(p->ev_retry, &tv);
}

static void peer_retry_later(struct tcp_peer *p)
{
	struct chan *c = p->c;
	unsigned ms = (unsigned)((uint64_t)p->backoff_ms * (80 + rnd(c) % 41) / 100);

	p->retry = true;
	p->backoff_ms = p->backoff_ms * 2 > BACKOFF_MAX_MS ? BACKOFF_MAX_MS : p->backoff_ms * 2;
	peer_schedule(p, ms);
}

void tcp_chan_conn_gone(struct chan *c, uint32_t id)
{
	struct tcp_peer *p;

	/* a replacement, if any, is already in the list: no reconnect then */
	if (!c->dead && id && (p = find_peer(c, id)) && p->we_connect && !tcp_conn_find(c, id))
		peer_retry_later(p);
}

void tcp_chan_peer_heard(struct chan *c, uint32_t id)
{
	struct tcp_peer *p = find_peer(c, id);

	/* it speaks our protocol: a loss from now on is retried quickly
	 * again */
	if (p)
		p->backoff_ms = BACKOFF_MIN_MS;
}

/* One non-blocking connect; the loop reports how it went (chan_tcp_conn.c). */
static void peer_connect(struct tcp_peer *p)
{
	struct chan *c = p->c;
	struct chan_addr to = p->addr;
	union tcp_sa sa;
	socklen_t salen;
	const char *ifname;
	int fd, ret;

	if (p->retry)
		c->reconnects++;
	to.port = c->port;
	to_sa(c, &to, &sa, &salen);
	fd = socket(sa.sa.sa_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		ret = -errno;
		goto fail;
	}
	/* only over the sync link, like the data channel */
	ifname = c->ls[to.link < c->nls ? to.link : 0].ifname;
	if ((ret = setopt(fd, SOL_SOCKET, SO_BINDTODEVICE, ifname, strlen(ifname))) < 0 ||
	    (ret = tune(fd)) < 0)
		goto fail;
	if (connect(fd, &sa.sa, salen) < 0 && errno != EINPROGRESS) {
		ret = -errno;
		goto fail;
	}
	ret = tcp_conn_connect(c, fd, p->id, &to);
	if (ret < 0)
		goto fail;
	return;
fail:
	if (fd >= 0)
		close(fd);
	tcp_conn_connect_failed(c, p->id, &to, -ret);
	/* tcp_conn_close may have scheduled it already; once is enough */
	if (!evtimer_pending(p->ev_retry, NULL))
		peer_retry_later(p);
}

static void peer_on_retry(evutil_socket_t fd, short what, void *arg)
{
	struct tcp_peer *p = arg;

	(void)fd;
	(void)what;
	/* the peer reached us meanwhile */
	if (tcp_conn_find(p->c, p->id))
		return;
	peer_connect(p);
}

/* Room for one more accepted connection from this address? */
static bool admit(const struct chan *c, const struct chan_addr *from)
{
	size_t n = 0;

	if (known_addr(c, from)) {
		for (struct tcp_conn *k = c->conns; k; k = k->next)
			if (!k->id && ip_eq(&k->addr, from))
				n++;
		return n < PENDING_PER_ADDR;
	}
	for (struct tcp_conn *k = c->conns; k; k = k->next)
		if (k->id ? !find_peer(c, k->id) : !known_addr(c, &k->addr))
			n++;
	return n < c->max_unknown;
}

static void on_accept_resume(evutil_socket_t fd, short what, void *arg)
{
	struct tcp_listener *l = arg;

	(void)fd;
	(void)what;
	event_add(l->ev_accept, NULL);
}

static void on_accept(evutil_socket_t lfd, short what, void *arg)
{
	struct tcp_listener *l = arg;
	struct chan *c = l->c;

	(void)what;
	for (int i = 0; i < ACCEPTS_PER_TURN; i++) {
		struct timeval tv = tcp_ms_tv(ACCEPT_PAUSE_MS);
		union tcp_sa sa;
		socklen_t salen = sizeof(sa);
		struct chan_addr from;
		char a[64];
		int fd, err;

		fd = accept4(lfd, &sa.sa, &salen, SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (fd < 0) {
			err = errno;
			if (err == EAGAIN || err == EWOULDBLOCK)
				return;
			/* the connection died in the queue: the next one */
			if (err == EINTR || err == ECONNABORTED)
				continue;
			c->accept_errors++;
			hafw_log_rl(&c->rl_bad, LOG_WARNING, "tcp: accept failed: %s",
			            strerror(err));
			event_del(l->ev_accept);
			evtimer_add(l->ev_pause, &tv);
			return;
		}
		from_sa(&from, &sa);
		if (!from.len || !admit(c, &from)) {
			c->accepts_refused++;
			hafw_log_rl(&c->rl_bad, LOG_WARNING,
			            "tcp: connection from %s refused: too many connections of "
			            "unknown peers",
			            tcp_addr_str(&from, a, sizeof(a)));
			close(fd);
			continue;
		}
		if (tune(fd) < 0 || tcp_conn_accept(c, fd, &from) < 0) {
			c->accept_errors++;
			close(fd);
			continue;
		}
		c->accepts++;
	}
}

/* The length field is what frames the stream: a message whose field does
 * not match its length would garble everything after it. */
static bool msg_ok(struct chan *c, const uint8_t *buf, size_t len)
{
	if (buf && len >= HAFW_WIRE_HDR_LEN && len <= TCP_MSG_MAX &&
	    (size_t)(buf[6] << 8 | buf[7]) == len - HAFW_WIRE_HDR_LEN)
		return true;
	c->sends_invalid++;
	return false;
}

static int tcp_send_peer(struct chan *c, uint32_t id, const uint8_t *buf, size_t len)
{
	struct tcp_conn *k;

	if (!msg_ok(c, buf, len))
		return -EINVAL;
	k = find_up(c, id);
	if (!k) {
		c->sends_not_connected++;
		return -ENOTCONN;
	}
	return tcp_conn_queue(k, buf, len);
}

static int tcp_send(struct chan *c, const uint8_t *buf, size_t len)
{
	int ret = 0, sent = 0;

	if (!msg_ok(c, buf, len))
		return -EINVAL;
	for (struct tcp_conn *k = c->conns; k; k = k->next) {
		int r;

		if (!k->up)
			continue;
		r = tcp_conn_queue(k, buf, len);
		if (r == 0)
			sent++;
		else
			ret = r;
	}
	return sent ? 0 : ret;
}

/* By the address the channel reported (the connection's port matches) or
 * by the peer's address alone (any port). */
static int tcp_send_to(struct chan *c, const struct chan_addr *to, const uint8_t *buf, size_t len)
{
	struct tcp_conn *best = NULL;
	struct chan_addr a;

	if (!to || (to->len != 4 && to->len != 16)) {
		c->sends_invalid++;
		return -EINVAL;
	}
	if (!msg_ok(c, buf, len))
		return -EINVAL;
	addr_norm(&a, to);
	for (struct tcp_conn *k = c->conns; k; k = k->next) {
		if (!k->up || !ip_eq(&k->addr, &a))
			continue;
		if (a.port && k->addr.port == a.port) {
			best = k;
			break;
		}
		if (!best)
			best = k;
	}
	if (!best) {
		c->sends_not_connected++;
		return -ENOTCONN;
	}
	return tcp_conn_queue(best, buf, len);
}

static int tcp_peer_add(struct chan *c, uint32_t id, const struct chan_addr *addr)
{
	struct tcp_peer *p;
	struct tcp_conn *k;
	struct chan_addr a;

	if (!id || id == c->node_id || !addr || (addr->len != 4 && addr->len != 16))
		return -EINVAL;
	addr_norm(&a, addr);
	a.port = c->port;
	p = find_peer(c, id);
	if (p) {
		if (ip_eq(&p->addr, &a))
			return 0;
		/* it moved: an attempt at the old address is wasted, and a
		 * long backoff no longer means anything */
		p->addr = a;
		if (!p->we_connect)
			return 0;
		k = tcp_conn_find(c, id);
		if (k && k->connecting)
			tcp_conn_close(k, false);
		else if (k)
			return 0;
		p->backoff_ms = BACKOFF_MIN_MS;
		peer_schedule(p, 0);
		return 0;
	}
	if (c->npeers >= c->max_peers)
		return -ENOSPC;
	p = calloc(1, sizeof(*p));
	if (!p)
		return -ENOMEM;
	p->c = c;
	p->id = id;
	p->addr = a;
	p->we_connect = c->node_id < id;
	p->backoff_ms = BACKOFF_MIN_MS;
	p->ev_retry = evtimer_new(c->base, peer_on_retry, p);
	if (!p->ev_retry) {
		free(p);
		return -ENOMEM;
	}
	c->peers[c->npeers++] = p;
	/* from the loop, even the first attempt: nothing happens inside
	 * the core's call */
	if (p->we_connect && !tcp_conn_find(c, id))
		peer_schedule(p, 0);
	return 0;
}

static void tcp_peer_del(struct chan *c, uint32_t id)
{
	struct tcp_conn *k;

	/* 0 is no peer: tcp_conn_find(0) would name the connections not yet
	 * identified */
	if (!id)
		return;
	for (size_t i = 0; i < c->npeers; i++) {
		struct tcp_peer *p = c->peers[i];

		if (p->id != id)
			continue;
		event_free(p->ev_retry);
		free(p);
		c->peers[i] = c->peers[--c->npeers];
		break;
	}
	/* forgotten first, so the close schedules no reconnect */
	while ((k = tcp_conn_find(c, id)))
		tcp_conn_close(k, false);
}

static void tcp_close(struct chan *c)
{
	if (!c)
		return;
	c->dead = true;
	while (c->conns)
		tcp_conn_close(c->conns, false);
	for (size_t i = 0; i < c->npeers; i++) {
		event_free(c->peers[i]->ev_retry);
		free(c->peers[i]);
	}
	free(c->peers);
	c->peers = NULL;
	c->npeers = 0;
	for (int i = 0; i < 2; i++) {
		struct tcp_listener *l = &c->ls[i];

		if (l->ev_accept)
			event_free(l->ev_accept);
		if (l->ev_pause)
			event_free(l->ev_pause);
		l->ev_accept = l->ev_pause = NULL;
		if (l->fd >= 0)
			close(l->fd);
		l->fd = -1;
	}
	if (!c->busy)
		tcp_chan_free(c);
}

static int listen_on(struct chan *c, struct tcp_listener *l)
{
	union tcp_sa any;
	socklen_t len;
	int ret;

	memset(&any, 0, sizeof(any));
	if (c->af == AF_INET6) {
		any.sin6.sin6_family = AF_INET6;
		any.sin6.sin6_port = htons(c->port);
		len = sizeof(any.sin6);
	} else {
		any.sin.sin_family = AF_INET;
		any.sin.sin_port = htons(c->port);
		len = sizeof(any.sin);
	}
	l->fd = socket(c->af, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (l->fd < 0)
		return -errno;
	/* a restarted daemon binds again while old connections linger */
	if ((ret = setint(l->fd, SOL_SOCKET, SO_REUSEADDR, 1)) < 0 ||
	    (ret = setopt(l->fd, SOL_SOCKET, SO_BINDTODEVICE, l->ifname, strlen(l->ifname))) < 0)
		return ret;
	/* IPv4 peers reach an IPv6 node too, whatever the sysctl default */
	if (c->af == AF_INET6 && (ret = setint(l->fd, IPPROTO_IPV6, IPV6_V6ONLY, 0)) < 0)
		return ret;
	if (bind(l->fd, &any.sa, len) < 0 || listen(l->fd, LISTEN_BACKLOG) < 0)
		return -errno;
	return 0;
}

/* A listener on the sync link ifname, accepting into the loop. */
static int listener_open(struct chan *c, struct tcp_listener *l, const char *ifname)
{
	int ret;

	l->c = c;
	snprintf(l->ifname, sizeof(l->ifname), "%s", ifname);
	l->ifindex = if_nametoindex(ifname);
	if (!l->ifindex)
		return -ENODEV;
	ret = listen_on(c, l);
	if (ret < 0)
		return ret;
	l->ev_accept = event_new(c->base, l->fd, EV_READ | EV_PERSIST, on_accept, l);
	l->ev_pause = evtimer_new(c->base, on_accept_resume, l);
	if (!l->ev_accept || !l->ev_pause || event_add(l->ev_accept, NULL) < 0)
		return -ENOMEM;
	return 0;
}

static int tcp_open(struct chan **out, const struct hafw_config *cfg, int link,
                    struct event_base *base, const struct chan_events *ev, void *arg)
{
	struct in6_addr a6;
	struct in_addr a4;
	struct chan *c;
	int port, ret;

	*out = NULL;
	if (!cfg || !base || !ev || !ev->recv || cfg->node_id <= 0 || cfg->sync_max_peers < 1 ||
	    cfg->sync_control_buffer < 1 || link != 0)
		return -EINVAL;
	port = cfg->sync_control_port ? cfg->sync_control_port : cfg->sync_port;
	if (port < 1 || port > 65535)
		return -EINVAL;
	c = calloc(1, sizeof(*c));
	if (!c)
		return -ENOMEM;
	c->ls[0].fd = c->ls[1].fd = -1;
	c->node_id = (uint32_t)cfg->node_id;
	c->port = (uint16_t)port;
	c->limit = (size_t)cfg->sync_control_buffer;
	c->max_peers = (size_t)cfg->sync_max_peers;
	c->max_unknown = c->max_peers + UNKNOWN_SLACK;
	c->base = base;
	c->ev = *ev;
	c->arg = arg;
	c->rl_conn = (struct hafw_ratelimit)HAFW_RATELIMIT_INIT(5, 5);
	c->rl_bad = (struct hafw_ratelimit)HAFW_RATELIMIT_INIT(5, 3);
	if (getrandom(&c->rng, sizeof(c->rng), GRND_NONBLOCK) != sizeof(c->rng))
		c->rng = (uint64_t)time(NULL) ^ (uint64_t)getpid() << 32;
	c->rng |= 1;
	c->peers = calloc(c->max_peers, sizeof(*c->peers));
	if (!c->peers) {
		ret = -ENOMEM;
		goto err;
	}
	if (inet_pton(AF_INET6, cfg->sync_group, &a6) == 1) {
		c->af = AF_INET6;
	} else if (inet_pton(AF_INET, cfg->sync_group, &a4) == 1) {
		c->af = AF_INET;
	} else {
		ret = -EINVAL;
		goto err;
	}
	c->nls = cfg->sync_backup_if[0] ? 2 : 1;
	for (int i = 0; i < c->nls; i++) {
		ret = listener_open(c, &c->ls[i], i ? cfg->sync_backup_if : cfg->sync_if);
		if (ret < 0)
			goto err;
	}
	*out = c;
	return 0;
err:
	tcp_close(c);
	return ret;
}

static size_t tcp_max_dgram(struct chan *c)
{
	(void)c;
	return TCP_MSG_MAX;
}

static size_t tcp_backlog(struct chan *c)
{
	size_t n = 0;

	for (struct tcp_conn *k = c->conns; k; k = k->next)
		n += evbuffer_get_length(k->out);
	return n;
}

static size_t tcp_peer_backlog(struct chan *c, uint32_t id)
{
	struct tcp_conn *k = tcp_conn_find(c, id);

	return k ? evbuffer_get_length(k->out) : 0;
}

static int tcp_stats(struct chan *c, struct chan_stat *out, int max)
{
	uint64_t framing = 0;
	int n = 0;

	for (int i = 0; i < FRAME_N; i++)
		framing += c->kc.framing[i];
	{
		const struct chan_stat all[] = {
		    {"connects", c->kc.connects},
		    {"connect_failures", c->kc.connect_failures},
		    {"reconnects", c->reconnects},
		    {"accepts", c->accepts},
		    {"accepts_refused", c->accepts_refused},
		    {"accept_errors", c->accept_errors},
		    {"hello_timeouts", c->kc.hello_timeouts},
		    {"disconnects", c->kc.disconnects},
		    {"replaced", c->kc.replaced},
		    {"messages_in", c->kc.messages_in},
		    {"bytes_in", c->kc.bytes_in},
		    {"messages_out", c->kc.messages_out},
		    {"bytes_out", c->kc.bytes_out},
		    {"framing_errors", framing},
		    {tcp_framing_names[FRAME_MAGIC], c->kc.framing[FRAME_MAGIC]},
		    {tcp_framing_names[FRAME_VERSION], c->kc.framing[FRAME_VERSION]},
		    {tcp_framing_names[FRAME_TYPE], c->kc.framing[FRAME_TYPE]},
		    {tcp_framing_names[FRAME_SENDER], c->kc.framing[FRAME_SENDER]},
		    {tcp_framing_names[FRAME_MISMATCH], c->kc.framing[FRAME_MISMATCH]},
		    {"sends_refused_full", c->kc.sends_refused_full},
		    {"sends_not_connected", c->sends_not_connected},
		    {"sends_invalid", c->sends_invalid},
		    {"peers_connected", c->kc.peers_connected},
		    {"backlog_bytes", tcp_backlog(c)},
		};

		for (size_t i = 0; i < sizeof(all) / sizeof(all[0]) && n < max; i++)
			out[n++] = all[i];
	}
	return n;
}

const struct chan_ops chan_tcp_ops = {
    .name = "tcp",
    .open = tcp_open,
    .close = tcp_close,
    .send = tcp_send,
    .send_to = tcp_send_to,
    .max_dgram = tcp_max_dgram,
    .backlog = tcp_backlog,
    .stats = tcp_stats,
    .peer_add = tcp_peer_add,
    .peer_del = tcp_peer_del,
    .send_peer = tcp_send_peer,
    .peer_backlog = tcp_peer_backlog,
};
