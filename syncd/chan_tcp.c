/* The control channel: one TCP connection per pair of peers, on the sync
 * interface, carrying messages framed by the datagram header's length
 * field (syncd/wire.h). The channel moves whole messages and never looks
 * into a payload.
 *
 * With a backup sync link there is a listener on each link, and a
 * connection goes over the link of the address the core gave for the peer
 * (chan_addr.link): when the peer moves to the other link, the core gives
 * its address there.
 *
 * Who connects: of two peers that know each other (peer_add), the one with
 * the lower id connects, and again with backoff (100 ms doubling to 5 s,
 * +-20% jitter, back to 100 ms once the peer has sent a message) while the
 * peer is known; the other accepts. An accepted connection belongs to the
 * sender named in its first message, and every later message on it must
 * name the same sender; a connection we made belongs to the id it was made
 * for. A second connection for an id replaces the first. Ids never added
 * are accepted too (the core admits or ignores what they send), in a
 * bounded number of places.
 *
 * What the core hears, always from the event loop, never from inside one
 * of its own calls: peer_up(id) once per connection, when a connection we
 * made is established, or just before the first message of an accepted
 * one is delivered; then its messages in order; then peer_down(id) once
 * when that connection is lost (error, framing error, replaced by a newer
 * one). What was still queued for it is gone then. peer_del and close are
 * the core's own doing and report nothing.
 *
 * Sending never waits: a message is appended to its connection's output
 * buffer and written when the socket takes it. A buffer holding more than
 * sync.control_buffer bytes refuses further messages (-ENOBUFS, nothing
 * queued); peer_backlog tells a bulk sender when to go on. backlog()
 * counts bytes, over all connections. */
#include "chan.h"
#include "config.h"
#include "log.h"
#include "wire.h"

#include <arpa/inet.h>
#include <errno.h>
#include <event2/buffer.h>
#include <event2/event.h>
#include <net/if.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#define MSG_MAX (HAFW_WIRE_HDR_LEN + 65535)
/* an idle connection keeps a small input buffer; the first large message
 * grows it to room for one whole message and the next one's start */
#define IN_SMALL (16 * 1024)
#define IN_LARGE (2 * MSG_MAX)
/* per callback, so one busy peer cannot hold the loop */
#define READ_PER_TURN    (256 * 1024)
#define WRITE_PER_TURN   (512 * 1024)
#define WRITE_IOV        64
#define ACCEPTS_PER_TURN 16
/* out of descriptors: the listener stays readable, so stop listening a
 * moment instead of spinning on it */
#define ACCEPT_PAUSE_MS    100
#define BACKOFF_MIN_MS     100
#define BACKOFF_MAX_MS     5000
#define CONNECT_TIMEOUT_MS 3000
/* an accepted connection that does not say who it is gives its place back */
#define HELLO_TIMEOUT_MS 5000
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

/* Why a connection's stream was refused; each has its own counter. */
enum tcp_framing {
	FRAME_MAGIC,
	FRAME_VERSION,
	FRAME_TYPE,
	FRAME_SENDER,   /* 0, or our own id */
	FRAME_MISMATCH, /* not the sender the connection belongs to */
	FRAME_N,
};

static const char *const framing_names[FRAME_N] = {
    [FRAME_MAGIC] = "framing_bad_magic",
    [FRAME_VERSION] = "framing_bad_version",
    [FRAME_TYPE] = "framing_bad_type",
    [FRAME_SENDER] = "framing_bad_sender",
    [FRAME_MISMATCH] = "framing_sender_mismatch",
};

struct tcp_conn {
	struct chan *c;
	struct tcp_conn *prev, *next;
	int fd;
	uint32_t id; /* 0: accepted, no message yet */
	bool outbound;
	bool connecting;
	bool up; /* peer_up reported, peer_down owed */
	bool heard;
	bool closed;
	/* > 0 while a callback of this connection runs: closed, it is freed
	 * only once the callback has returned */
	int busy;
	struct chan_addr addr;
	struct event *ev_read, *ev_write, *ev_timer;
	struct evbuffer *out;
	uint8_t *in;
	size_t in_len, in_cap;
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

/* One per sync link: connections are accepted only from that interface. */
struct tcp_listener {
	struct chan *c;
	int fd;
	unsigned ifindex;
	char ifname[IF_NAMESIZE];
	struct event *ev_accept, *ev_pause;
};

struct chan {
	uint32_t node_id;
	int af;
	struct tcp_listener ls[2];
	int nls;
	uint16_t port;
	size_t limit;
	size_t max_peers, max_unknown;
	struct event_base *base;
	struct chan_events ev;
	void *arg;
	struct tcp_peer **peers;
	size_t npeers;
	struct tcp_conn *conns;
	/* closed from inside one of its callbacks: freed when it returns */
	bool dead;
	int busy;
	uint64_t rng;

	struct hafw_ratelimit rl_conn, rl_bad;
	uint64_t connects, connect_failures, reconnects;
	uint64_t accepts, accepts_refused, accept_errors, hello_timeouts;
	uint64_t disconnects, replaced;
	uint64_t messages_in, bytes_in, messages_out, bytes_out;
	uint64_t framing[FRAME_N];
	uint64_t sends_refused_full, sends_not_connected, sends_invalid;
	uint64_t peers_connected;
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

static const char *addr_str(const struct chan_addr *a, char *out, size_t size)
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

static struct timeval ms_tv(unsigned ms)
{
	struct timeval tv = {ms / 1000, (ms % 1000) * 1000};

	return tv;
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

/* The open connection of an id (at most one: a newer one replaces it). */
static struct tcp_conn *find_conn(const struct chan *c, uint32_t id)
{
	for (struct tcp_conn *k = c->conns; k; k = k->next)
		if (k->id == id)
			return k;
	return NULL;
}

static struct tcp_conn *find_up(const struct chan *c, uint32_t id)
{
	struct tcp_conn *k = find_conn(c, id);

	return k && k->up ? k : NULL;
}

/* Callbacks into the core. The channel may be closed from inside one: it
 * is freed only when the outermost handler returns (conn_release). */
static void notify_up(struct chan *c, uint32_t id)
{
	if (c->dead || !c->ev.peer_up)
		return;
	c->busy++;
	c->ev.peer_up(c->arg, id);
	c->busy--;
}

static void notify_down(struct chan *c, uint32_t id)
{
	if (c->dead || !c->ev.peer_down)
		return;
	c->busy++;
	c->ev.peer_down(c->arg, id);
	c->busy--;
}

static void notify_recv(struct chan *c, const uint8_t *buf, size_t len,
                        const struct chan_addr *from)
{
	if (c->dead)
		return;
	c->busy++;
	c->ev.recv(c->arg, buf, len, from);
	c->busy--;
}

static void chan_free(struct chan *c)
{
	free(c);
}

static void conn_free(struct tcp_conn *k)
{
	if (k->out)
		evbuffer_free(k->out);
	free(k->in);
	free(k);
}

static void peer_schedule(struct tcp_peer *p, unsigned ms)
{
	struct timeval tv = ms_tv(ms);

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

/* Close a connection. notify: tell the core (only ever from the loop). */
static void conn_close(struct tcp_conn *k, bool notify)
{
	struct chan *c = k->c;
	bool was_up = k->up;
	uint32_t id = k->id;
	struct tcp_peer *p;

	if (k->closed)
		return;
	k->closed = true;
	if (k->prev)
		k->prev->next = k->next;
	else
		c->conns = k->next;
	if (k->next)
		k->next->prev = k->prev;
	k->prev = k->next = NULL;
	if (k->ev_read)
		event_free(k->ev_read);
	if (k->ev_write)
		event_free(k->ev_write);
	if (k->ev_timer)
		event_free(k->ev_timer);
	k->ev_read = k->ev_write = k->ev_timer = NULL;
	if (k->fd >= 0)
		close(k->fd);
	k->fd = -1;
	if (was_up) {
		k->up = false;
		c->peers_connected--;
		if (!c->dead)
			c->disconnects++;
	}
	/* a replacement, if any, is already in the list: no reconnect then */
	if (!c->dead && id && (p = find_peer(c, id)) && p->we_connect && !find_conn(c, id))
		peer_retry_later(p);
	if (was_up && notify)
		notify_down(c, id);
	if (!k->busy)
		conn_free(k);
}

/* The end of every handler of a connection: what was closed meanwhile is
 * freed now that nothing of it is in use. */
static void conn_release(struct tcp_conn *k)
{
	struct chan *c = k->c;

	if (--k->busy == 0 && k->closed)
		conn_free(k);
	if (c->dead && !c->busy)
		chan_free(c);
}

static void conn_lost(struct tcp_conn *k, int err)
{
	char a[64];

	hafw_log_rl(&k->c->rl_conn, LOG_INFO, "tcp: connection with peer %u at %s %s%s", k->id,
	            addr_str(&k->addr, a, sizeof(a)), err ? "lost: " : "closed by the peer",
	            err ? strerror(err) : "");
	conn_close(k, true);
}

static void conn_up(struct tcp_conn *k)
{
	char a[64];

	k->up = true;
	k->c->peers_connected++;
	hafw_log_rl(&k->c->rl_conn, LOG_INFO, "tcp: peer %u up (%s %s)", k->id,
	            k->outbound ? "connected to" : "accepted from",
	            addr_str(&k->addr, a, sizeof(a)));
	notify_up(k->c, k->id);
}

/* sender: what the message claims, for the reasons that are about it */
static void framing_error(struct tcp_conn *k, enum tcp_framing why, uint32_t sender)
{
	char a[64], whose[32] = "not identified yet", says[40] = "";

	k->c->framing[why]++;
	if (k->id)
		snprintf(whose, sizeof(whose), "of peer %u", k->id);
	if (why == FRAME_SENDER || why == FRAME_MISMATCH)
		snprintf(says, sizeof(says), ", message from sender %u", sender);
	hafw_log_rl(&k->c->rl_bad, LOG_WARNING, "tcp: %s from %s (connection %s%s): closing it",
	            framing_names[why] + strlen("framing_"), addr_str(&k->addr, a, sizeof(a)),
	            whose, says);
	conn_close(k, true);
}

/* The first message of an accepted connection names its peer. */
static void conn_identify(struct tcp_conn *k, uint32_t id)
{
	struct chan *c = k->c;
	struct tcp_conn *old = find_conn(c, id);
	char a[64];

	k->id = id;
	evtimer_del(k->ev_timer);
	if (old) {
		c->replaced++;
		hafw_log_rl(&c->rl_conn, LOG_INFO,
		            "tcp: a new connection of peer %u from %s replaces the old one", id,
		            addr_str(&k->addr, a, sizeof(a)));
		conn_close(old, true);
		if (k->closed)
			return;
	}
	conn_up(k);
}

static enum tcp_framing framing_of(enum hafw_wire_err e)
{
	switch (e) {
	case HAFW_WIRE_EVERSION:
		return FRAME_VERSION;
	case HAFW_WIRE_ETYPE:
		return FRAME_TYPE;
	case HAFW_WIRE_ESENDER:
		return FRAME_SENDER;
	default:
		return FRAME_MAGIC;
	}
}

/* Deliver every whole message in the input buffer, in order; keep the
 * start of the next one. */
static void conn_deliver(struct tcp_conn *k)
{
	struct chan *c = k->c;
	size_t off = 0;

	while (!k->closed) {
		struct hafw_wire_hdr h;
		enum hafw_wire_err e = hafw_wire_hdr_peek(k->in + off, k->in_len - off, &h);
		size_t mlen;

		if (e == HAFW_WIRE_ESHORT)
			break;
		if (e != HAFW_WIRE_OK) {
			framing_error(k, framing_of(e), 0);
			return;
		}
		if (h.sender == c->node_id) {
			framing_error(k, FRAME_SENDER, h.sender);
			return;
		}
		if (k->id && h.sender != k->id) {
			framing_error(k, FRAME_MISMATCH, h.sender);
			return;
		}
		mlen = HAFW_WIRE_HDR_LEN + (size_t)h.len;
		if (mlen > k->in_cap) {
			uint8_t *in = realloc(k->in, IN_LARGE);

			if (!in) {
				conn_lost(k, ENOMEM);
				return;
			}
			k->in = in;
			k->in_cap = IN_LARGE;
		}
		if (k->in_len - off < mlen)
			break;
		if (!k->id) {
			conn_identify(k, h.sender);
			if (k->closed)
				return;
		}
		if (!k->heard) {
			struct tcp_peer *p = find_peer(c, k->id);

			/* it speaks our protocol: a loss from now on is
			 * retried quickly again */
			k->heard = true;
			if (p)
				p->backoff_ms = BACKOFF_MIN_MS;
		}
		c->messages_in++;
		notify_recv(c, k->in + off, mlen, &k->addr);
		off += mlen;
	}
	if (k->closed || !off)
		return;
	k->in_len -= off;
	memmove(k->in, k->in + off, k->in_len);
}

static void conn_read(struct tcp_conn *k)
{
	size_t total = 0;

	while (!k->closed && total < READ_PER_TURN) {
		/* never full here: what stays after a delivery is less than
		 * one message, and the buffer holds one */
		ssize_t n = recv(k->fd, k->in + k->in_len, k->in_cap - k->in_len, MSG_DONTWAIT);

		if (n < 0) {
			if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)
				return;
			conn_lost(k, errno);
			return;
		}
		if (n == 0) {
			conn_lost(k, 0);
			return;
		}
		total += (size_t)n;
		k->c->bytes_in += (uint64_t)n;
		k->in_len += (size_t)n;
		conn_deliver(k);
	}
}

static void conn_flush(struct tcp_conn *k)
{
	size_t done = 0;

	while (done < WRITE_PER_TURN && evbuffer_get_length(k->out)) {
		struct evbuffer_iovec v[WRITE_IOV];
		struct iovec iov[WRITE_IOV];
		struct msghdr mh = {.msg_iov = iov};
		size_t want = 0;
		ssize_t n;
		int nv =
		    evbuffer_peek(k->out, (ev_ssize_t)(WRITE_PER_TURN - done), NULL, v, WRITE_IOV);

		if (nv > WRITE_IOV)
			nv = WRITE_IOV;
		for (int i = 0; i < nv; i++) {
			iov[i].iov_base = v[i].iov_base;
			iov[i].iov_len = v[i].iov_len;
			want += v[i].iov_len;
		}
		mh.msg_iovlen = (size_t)nv;
		/* MSG_NOSIGNAL: a peer gone is an error to handle, not a
		 * signal that kills the daemon */
		n = sendmsg(k->fd, &mh, MSG_DONTWAIT | MSG_NOSIGNAL);
		if (n < 0) {
			if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)
				return;
			conn_lost(k, errno);
			return;
		}
		evbuffer_drain(k->out, (size_t)n);
		k->c->bytes_out += (uint64_t)n;
		done += (size_t)n;
		if ((size_t)n < want)
			return;
	}
	if (!evbuffer_get_length(k->out))
		event_del(k->ev_write);
}

static void connect_failed(struct tcp_conn *k, int err)
{
	char a[64];

	k->c->connect_failures++;
	hafw_log_rl(&k->c->rl_conn, LOG_INFO, "tcp: cannot connect to peer %u at %s: %s", k->id,
	            addr_str(&k->addr, a, sizeof(a)), strerror(err));
	/* never up: nothing to report; the close schedules the retry */
	conn_close(k, false);
}

static void conn_connected(struct tcp_conn *k)
{
	socklen_t len = sizeof(int);
	int err = 0;

	if (getsockopt(k->fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0)
		err = errno;
	if (err) {
		connect_failed(k, err);
		return;
	}
	k->connecting = false;
	k->c->connects++;
	evtimer_del(k->ev_timer);
	event_del(k->ev_write);
	if (event_add(k->ev_read, NULL) < 0) {
		conn_lost(k, ENOMEM);
		return;
	}
	conn_up(k);
}

static void conn_on_read(evutil_socket_t fd, short what, void *arg)
{
	struct tcp_conn *k = arg;

	(void)fd;
	(void)what;
	k->busy++;
	conn_read(k);
	conn_release(k);
}

static void conn_on_write(evutil_socket_t fd, short what, void *arg)
{
	struct tcp_conn *k = arg;

	(void)fd;
	(void)what;
	k->busy++;
	if (k->connecting)
		conn_connected(k);
	else
		conn_flush(k);
	conn_release(k);
}

static void conn_on_timer(evutil_socket_t fd, short what, void *arg)
{
	struct tcp_conn *k = arg;
	char a[64];

	(void)fd;
	(void)what;
	k->busy++;
	if (k->connecting) {
		connect_failed(k, ETIMEDOUT);
	} else if (!k->id) {
		k->c->hello_timeouts++;
		hafw_log_rl(&k->c->rl_bad, LOG_INFO,
		            "tcp: connection from %s sent no message in %d ms: closing it",
		            addr_str(&k->addr, a, sizeof(a)), HELLO_TIMEOUT_MS);
		conn_close(k, false);
	}
	conn_release(k);
}

static struct tcp_conn *conn_new(struct chan *c, int fd, uint32_t id, bool outbound,
                                 const struct chan_addr *addr)
{
	struct tcp_conn *k = calloc(1, sizeof(*k));

	if (!k)
		return NULL;
	k->c = c;
	k->fd = fd;
	k->id = id;
	k->outbound = outbound;
	k->addr = *addr;
	k->in_cap = IN_SMALL;
	k->in = malloc(k->in_cap);
	k->out = evbuffer_new();
	k->ev_read = event_new(c->base, fd, EV_READ | EV_PERSIST, conn_on_read, k);
	k->ev_write = event_new(c->base, fd, EV_WRITE | EV_PERSIST, conn_on_write, k);
	k->ev_timer = evtimer_new(c->base, conn_on_timer, k);
	if (!k->in || !k->out || !k->ev_read || !k->ev_write || !k->ev_timer) {
		if (k->ev_read)
			event_free(k->ev_read);
		if (k->ev_write)
			event_free(k->ev_write);
		if (k->ev_timer)
			event_free(k->ev_timer);
		conn_free(k);
		return NULL;
	}
	k->next = c->conns;
	if (c->conns)
		c->conns->prev = k;
	c->conns = k;
	return k;
}

/* One non-blocking connect; the loop reports how it went (conn_connected). */
static void peer_connect(struct tcp_peer *p)
{
	struct chan *c = p->c;
	struct tcp_conn *k;
	struct chan_addr to = p->addr;
	struct timeval tv = ms_tv(CONNECT_TIMEOUT_MS);
	union tcp_sa sa;
	socklen_t salen;
	const char *ifname;
	char a[64];
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
	k = conn_new(c, fd, p->id, true, &to);
	if (!k) {
		ret = -ENOMEM;
		goto fail;
	}
	k->connecting = true;
	/* even a connect that succeeded at once is reported from the loop */
	if (event_add(k->ev_write, NULL) < 0 || evtimer_add(k->ev_timer, &tv) < 0) {
		k->fd = -1;
		conn_close(k, false);
		ret = -ENOMEM;
		goto fail;
	}
	return;
fail:
	if (fd >= 0)
		close(fd);
	c->connect_failures++;
	hafw_log_rl(&c->rl_conn, LOG_INFO, "tcp: cannot connect to peer %u at %s: %s", p->id,
	            addr_str(&to, a, sizeof(a)), strerror(-ret));
	/* conn_close may have scheduled it already; once is enough */
	if (!evtimer_pending(p->ev_retry, NULL))
		peer_retry_later(p);
}

static void peer_on_retry(evutil_socket_t fd, short what, void *arg)
{
	struct tcp_peer *p = arg;

	(void)fd;
	(void)what;
	/* the peer reached us meanwhile */
	if (find_conn(p->c, p->id))
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
		struct timeval tv = ms_tv(HELLO_TIMEOUT_MS);
		union tcp_sa sa;
		socklen_t salen = sizeof(sa);
		struct chan_addr from;
		struct tcp_conn *k;
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
			tv = ms_tv(ACCEPT_PAUSE_MS);
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
			            addr_str(&from, a, sizeof(a)));
			close(fd);
			continue;
		}
		err = tune(fd);
		k = err < 0 ? NULL : conn_new(c, fd, 0, false, &from);
		if (!k || event_add(k->ev_read, NULL) < 0 || evtimer_add(k->ev_timer, &tv) < 0) {
			c->accept_errors++;
			if (k)
				conn_close(k, false);
			else
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
	if (buf && len >= HAFW_WIRE_HDR_LEN && len <= MSG_MAX &&
	    (size_t)(buf[6] << 8 | buf[7]) == len - HAFW_WIRE_HDR_LEN)
		return true;
	c->sends_invalid++;
	return false;
}

static int conn_queue(struct tcp_conn *k, const uint8_t *buf, size_t len)
{
	struct chan *c = k->c;

	if (evbuffer_get_length(k->out) > c->limit) {
		c->sends_refused_full++;
		return -ENOBUFS;
	}
	if (evbuffer_add(k->out, buf, len) < 0)
		return -ENOMEM;
	c->messages_out++;
	event_add(k->ev_write, NULL);
	return 0;
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
	return conn_queue(k, buf, len);
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
		r = conn_queue(k, buf, len);
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
	return conn_queue(best, buf, len);
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
		k = find_conn(c, id);
		if (k && k->connecting)
			conn_close(k, false);
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
	if (p->we_connect && !find_conn(c, id))
		peer_schedule(p, 0);
	return 0;
}

static void tcp_peer_del(struct chan *c, uint32_t id)
{
	struct tcp_conn *k;

	/* 0 is no peer: find_conn(0) would name the connections not yet
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
	while ((k = find_conn(c, id)))
		conn_close(k, false);
}

static void tcp_close(struct chan *c)
{
	if (!c)
		return;
	c->dead = true;
	while (c->conns)
		conn_close(c->conns, false);
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
		chan_free(c);
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
	return MSG_MAX;
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
	struct tcp_conn *k = find_conn(c, id);

	return k ? evbuffer_get_length(k->out) : 0;
}

static int tcp_stats(struct chan *c, struct chan_stat *out, int max)
{
	uint64_t framing = 0;
	int n = 0;

	for (int i = 0; i < FRAME_N; i++)
		framing += c->framing[i];
	{
		const struct chan_stat all[] = {
		    {"connects", c->connects},
		    {"connect_failures", c->connect_failures},
		    {"reconnects", c->reconnects},
		    {"accepts", c->accepts},
		    {"accepts_refused", c->accepts_refused},
		    {"accept_errors", c->accept_errors},
		    {"hello_timeouts", c->hello_timeouts},
		    {"disconnects", c->disconnects},
		    {"replaced", c->replaced},
		    {"messages_in", c->messages_in},
		    {"bytes_in", c->bytes_in},
		    {"messages_out", c->messages_out},
		    {"bytes_out", c->bytes_out},
		    {"framing_errors", framing},
		    {framing_names[FRAME_MAGIC], c->framing[FRAME_MAGIC]},
		    {framing_names[FRAME_VERSION], c->framing[FRAME_VERSION]},
		    {framing_names[FRAME_TYPE], c->framing[FRAME_TYPE]},
		    {framing_names[FRAME_SENDER], c->framing[FRAME_SENDER]},
		    {framing_names[FRAME_MISMATCH], c->framing[FRAME_MISMATCH]},
		    {"sends_refused_full", c->sends_refused_full},
		    {"sends_not_connected", c->sends_not_connected},
		    {"sends_invalid", c->sends_invalid},
		    {"peers_connected", c->peers_connected},
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
