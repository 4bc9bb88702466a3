/* One connection of the control channel (syncd/chan_tcp.c): a TCP stream
 * carrying messages framed by the datagram header's length field
 * (syncd/wire.h), read and written a bounded amount per loop turn.
 *
 * An accepted connection belongs to the sender named in its first
 * message, and every later message on it must name the same sender; a
 * connection we made belongs to the id it was made for. A second
 * connection for an id replaces the first.
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
 * queued). */
#include "chan_tcp_int.h"

#include <errno.h>
#include <event2/buffer.h>
#include <event2/event.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

/* an idle connection keeps a small input buffer; the first large message
 * grows it to room for one whole message and the next one's start */
#define IN_SMALL (16 * 1024)
#define IN_LARGE (2 * TCP_MSG_MAX)
/* per callback, so one busy peer cannot hold the loop */
#define READ_PER_TURN      (256 * 1024)
#define WRITE_PER_TURN     (512 * 1024)
#define WRITE_IOV          64
#define CONNECT_TIMEOUT_MS 3000
/* an accepted connection that does not say who it is gives its place back */
#define HELLO_TIMEOUT_MS 5000

const char *const tcp_framing_names[FRAME_N] = {
    [FRAME_MAGIC] = "framing_bad_magic",
    [FRAME_VERSION] = "framing_bad_version",
    [FRAME_TYPE] = "framing_bad_type",
    [FRAME_SENDER] = "framing_bad_sender",
    [FRAME_MISMATCH] = "framing_sender_mismatch",
};

struct tcp_conn *tcp_conn_find(const struct chan *c, uint32_t id)
{
	for (struct tcp_conn *k = c->conns; k; k = k->next)
		if (k->id == id)
			return k;
	return NULL;
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

static void conn_free(struct tcp_conn *k)
{
	if (k->out)
		evbuffer_free(k->out);
	free(k->in);
	free(k);
}

void tcp_conn_close(struct tcp_conn *k, bool notify)
{
	struct chan *c = k->c;
	bool was_up = k->up;
	uint32_t id = k->id;

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
		c->kc.peers_connected--;
		if (!c->dead)
			c->kc.disconnects++;
	}
	tcp_chan_conn_gone(c, id);
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
		tcp_chan_free(c);
}

static void conn_lost(struct tcp_conn *k, int err)
{
	char a[64];

	hafw_log_rl(&k->c->rl_conn, LOG_INFO, "tcp: connection with peer %u at %s %s%s", k->id,
	            tcp_addr_str(&k->addr, a, sizeof(a)), err ? "lost: " : "closed by the peer",
	            err ? strerror(err) : "");
	tcp_conn_close(k, true);
}

static void conn_up(struct tcp_conn *k)
{
	char a[64];

	k->up = true;
	k->c->kc.peers_connected++;
	hafw_log_rl(&k->c->rl_conn, LOG_INFO, "tcp: peer %u up (%s %s)", k->id,
	            k->outbound ? "connected to" : "accepted from",
	            tcp_addr_str(&k->addr, a, sizeof(a)));
	notify_up(k->c, k->id);
}

/* sender: what the message claims, for the reasons that are about it */
static void framing_error(struct tcp_conn *k, enum tcp_framing why, uint32_t sender)
{
	char a[64], whose[32] = "not identified yet", says[40] = "";

	k->c->kc.framing[why]++;
	if (k->id)
		snprintf(whose, sizeof(whose), "of peer %u", k->id);
	if (why == FRAME_SENDER || why == FRAME_MISMATCH)
		snprintf(says, sizeof(says), ", message from sender %u", sender);
	hafw_log_rl(&k->c->rl_bad, LOG_WARNING, "tcp: %s from %s (connection %s%s): closing it",
	            tcp_framing_names[why] + strlen("framing_"),
	            tcp_addr_str(&k->addr, a, sizeof(a)), whose, says);
	tcp_conn_close(k, true);
}

/* The first message of an accepted connection names its peer. */
static void conn_identify(struct tcp_conn *k, uint32_t id)
{
	struct chan *c = k->c;
	struct tcp_conn *old = tcp_conn_find(c, id);
	char a[64];

	k->id = id;
	evtimer_del(k->ev_timer);
	if (old) {
		c->kc.replaced++;
		hafw_log_rl(&c->rl_conn, LOG_INFO,
		            "tcp: a new connection of peer %u from %s replaces the old one", id,
		            tcp_addr_str(&k->addr, a, sizeof(a)));
		tcp_conn_close(old, true);
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
			k->heard = true;
			tcp_chan_peer_heard(c, k->id);
		}
		c->kc.messages_in++;
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
		k->c->kc.bytes_in += (uint64_t)n;
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
		k->c->kc.bytes_out += (uint64_t)n;
		done += (size_t)n;
		if ((size_t)n < want)
			return;
	}
	if (!evbuffer_get_length(k->out))
		event_del(k->ev_write);
}

void tcp_conn_connect_failed(struct chan *c, uint32_t id, const struct chan_addr *to, int err)
{
	char a[64];

	c->kc.connect_failures++;
	hafw_log_rl(&c->rl_conn, LOG_INFO, "tcp: cannot connect to peer %u at %s: %s", id,
	            tcp_addr_str(to, a, sizeof(a)), strerror(err));
}

static void conn_connect_failed(struct tcp_conn *k, int err)
{
	tcp_conn_connect_failed(k->c, k->id, &k->addr, err);
	/* never up: nothing to report; the close schedules the retry */
	tcp_conn_close(k, false);
}

static void conn_connected(struct tcp_conn *k)
{
	socklen_t len = sizeof(int);
	int err = 0;

	if (getsockopt(k->fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0)
		err = errno;
	if (err) {
		conn_connect_failed(k, err);
		return;
	}
	k->connecting = false;
	k->c->kc.connects++;
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
		conn_connect_failed(k, ETIMEDOUT);
	} else if (!k->id) {
		k->c->kc.hello_timeouts++;
		hafw_log_rl(&k->c->rl_bad, LOG_INFO,
		            "tcp: connection from %s sent no message in %d ms: closing it",
		            tcp_addr_str(&k->addr, a, sizeof(a)), HELLO_TIMEOUT_MS);
		tcp_conn_close(k, false);
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

/* A connection not yet armed: the fd goes back to the caller. */
static int conn_abandon(struct tcp_conn *k)
{
	k->fd = -1;
	tcp_conn_close(k, false);
	return -ENOMEM;
}

int tcp_conn_connect(struct chan *c, int fd, uint32_t id, const struct chan_addr *to)
{
	struct timeval tv = tcp_ms_tv(CONNECT_TIMEOUT_MS);
	struct tcp_conn *k = conn_new(c, fd, id, true, to);

	if (!k)
		return -ENOMEM;
	k->connecting = true;
	/* even a connect that succeeded at once is reported from the loop
	 * (conn_connected) */
	if (event_add(k->ev_write, NULL) < 0 || evtimer_add(k->ev_timer, &tv) < 0)
		return conn_abandon(k);
	return 0;
}

int tcp_conn_accept(struct chan *c, int fd, const struct chan_addr *from)
{
	struct timeval tv = tcp_ms_tv(HELLO_TIMEOUT_MS);
	struct tcp_conn *k = conn_new(c, fd, 0, false, from);

	if (!k)
		return -ENOMEM;
	if (event_add(k->ev_read, NULL) < 0 || evtimer_add(k->ev_timer, &tv) < 0)
		return conn_abandon(k);
	return 0;
}

int tcp_conn_queue(struct tcp_conn *k, const uint8_t *buf, size_t len)
{
	struct chan *c = k->c;

	if (evbuffer_get_length(k->out) > c->limit) {
		c->kc.sends_refused_full++;
		return -ENOBUFS;
	}
	if (evbuffer_add(k->out, buf, len) < 0)
		return -ENOMEM;
	c->kc.messages_out++;
	event_add(k->ev_write, NULL);
	return 0;
}
