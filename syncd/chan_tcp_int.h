/* Inside the TCP control channel: what its two files share.
 *   chan_tcp.c       the channel: chan_ops, peers and reconnect backoff,
 *                    listeners and accept, admission, stats
 *   chan_tcp_conn.c  one connection: buffers, framing, reads and writes,
 *                    timers, identify/replace/lose
 * The channel makes and accepts sockets and hands them to a connection;
 * a connection tells the channel when it has heard its peer and when it
 * is gone (tcp_chan_*). Nothing outside the channel includes this. */
#ifndef HAFW_CHAN_TCP_INT_H
#define HAFW_CHAN_TCP_INT_H

#include "chan.h"
#include "log.h"
#include "wire.h"

#include <event2/event.h>
#include <net/if.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/time.h>

struct evbuffer;
struct tcp_peer;

#define TCP_MSG_MAX (HAFW_WIRE_HDR_LEN + 65535)

/* Why a connection's stream was refused; each has its own counter. */
enum tcp_framing {
	FRAME_MAGIC,
	FRAME_VERSION,
	FRAME_TYPE,
	FRAME_SENDER,   /* 0, or our own id */
	FRAME_MISMATCH, /* not the sender the connection belongs to */
	FRAME_N,
};

/* The counters' names in the stats, indexed by enum tcp_framing. */
extern const char *const tcp_framing_names[FRAME_N];

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

/* One per sync link: connections are accepted only from that interface. */
struct tcp_listener {
	struct chan *c;
	int fd;
	unsigned ifindex;
	char ifname[IF_NAMESIZE];
	struct event *ev_accept, *ev_pause;
};

/* What the connections count (chan_tcp_conn.c only writes these). */
struct tcp_conn_counters {
	uint64_t connects, connect_failures, hello_timeouts;
	uint64_t disconnects, replaced;
	uint64_t messages_in, bytes_in, messages_out, bytes_out;
	uint64_t framing[FRAME_N];
	uint64_t sends_refused_full;
	uint64_t peers_connected;
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
	struct tcp_conn_counters kc; /* of the connections */
	uint64_t reconnects;
	uint64_t accepts, accepts_refused, accept_errors;
	uint64_t sends_not_connected, sends_invalid;
};

static inline struct timeval tcp_ms_tv(unsigned ms)
{
	struct timeval tv = {ms / 1000, (ms % 1000) * 1000};

	return tv;
}

/* chan_tcp.c */
const char *tcp_addr_str(const struct chan_addr *a, char *out, size_t size);
/* A connection of peer id (0: never identified) is gone: connect again
 * later if that is ours to do and no newer connection replaced it. */
void tcp_chan_conn_gone(struct chan *c, uint32_t id);
/* A connection of peer id delivered its first message. */
void tcp_chan_peer_heard(struct chan *c, uint32_t id);
/* Free a closed channel (dead) once none of its callbacks runs. */
void tcp_chan_free(struct chan *c);

/* chan_tcp_conn.c */
/* Take over fd, a connect in progress to peer id at to (reported from the
 * loop, with a timeout), or a connection accepted from from (which must
 * send a message in time). 0, or -errno with fd still the caller's. */
int tcp_conn_connect(struct chan *c, int fd, uint32_t id, const struct chan_addr *to);
int tcp_conn_accept(struct chan *c, int fd, const struct chan_addr *from);
/* The open connection of an id (at most one: a newer one replaces it). */
struct tcp_conn *tcp_conn_find(const struct chan *c, uint32_t id);
/* Append a whole message to k's output (-ENOBUFS over the limit). */
int tcp_conn_queue(struct tcp_conn *k, const uint8_t *buf, size_t len);
/* Close a connection. notify: tell the core (only ever from the loop). */
void tcp_conn_close(struct tcp_conn *k, bool notify);
/* Count and log a connect to peer id at to that failed with err. */
void tcp_conn_connect_failed(struct chan *c, uint32_t id, const struct chan_addr *to, int err);

#endif
