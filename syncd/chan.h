/* A channel between syncd peers. Implementations: UDP multicast (the data
 * channel: datagrams to every peer or one), TCP (the control channel: one
 * connection per peer pair, ordered and reliable, for hello and bulk
 * transfers; TLS wraps it with the security issue); unit tests use
 * in-memory fakes.
 *
 * On the control channel a "datagram" is a message: the same header as on
 * the data channel (syncd/wire.h), whose length field frames it in the
 * stream, and whose sender field names the peer a connection belongs to.
 *
 * A channel moves datagrams. The core writes and reads the datagram header
 * (sender, epoch, sequence number): a channel never numbers anything (the
 * security layer will seal and open datagrams, authenticating the header
 * as it is). Sending never blocks: what the network does not take at once
 * waits in a bounded queue, and what does not fit there is dropped and
 * counted. */
#ifndef HAFW_CHAN_H
#define HAFW_CHAN_H

#include <stddef.h>
#include <stdint.h>

struct event_base;
struct hafw_config;
struct chan;

/* A peer's network address as the channel saw it: len 4 (IPv4) or 16
 * (IPv6) bytes of ip, network order, and a UDP/TCP port in host order. */
struct chan_addr {
	uint8_t len;
	uint8_t ip[16];
	uint16_t port;
};

struct chan_events {
	/* One received datagram, not yet validated, and where it came from. */
	void (*recv)(void *arg, const uint8_t *buf, size_t len, const struct chan_addr *from);
	/* Connection-oriented channels report a peer's link coming up and
	 * going away (NULL when the channel has no such notion). */
	void (*peer_up)(void *arg, uint32_t peer_id);
	void (*peer_down)(void *arg, uint32_t peer_id);
};

struct chan_stat {
	const char *name;
	uint64_t value;
};

struct chan_ops {
	const char *name;
	int (*open)(struct chan **c, const struct hafw_config *cfg, struct event_base *base,
	            const struct chan_events *ev, void *arg);
	void (*close)(struct chan *c);
	/* To every peer. Returns 0 (sent or queued), or a negative errno when
	 * the datagram was dropped (queue full: -ENOBUFS; counted). */
	int (*send)(struct chan *c, const uint8_t *buf, size_t len);
	/* To one peer only (a NACK, an answer to one peer). Same returns. */
	int (*send_to)(struct chan *c, const struct chan_addr *to, const uint8_t *buf, size_t len);
	/* Largest datagram that leaves without IP fragmentation. */
	size_t (*max_dgram)(struct chan *c);
	/* Datagrams waiting in the send queue: bulk senders pause above a
	 * few hundred, so live events are not dropped behind them. */
	size_t (*backlog)(struct chan *c);
	int (*stats)(struct chan *c, struct chan_stat *out, int max);

	/* Connection-oriented channels only (NULL otherwise). */
	/* The core learned peer id's address: keep a connection to it (the
	 * node with the lower id connects, the other accepts; a lost
	 * connection is made again with backoff). Returns 0 or -errno. */
	int (*peer_add)(struct chan *c, uint32_t id, const struct chan_addr *addr);
	/* Forget a peer and close its connection. */
	void (*peer_del)(struct chan *c, uint32_t id);
	/* To one peer by id: 0 queued, -ENOTCONN when there is no connection,
	 * -ENOBUFS when more than the channel's limit waits to be written to
	 * it (nothing queued: the caller tries again later). */
	int (*send_peer)(struct chan *c, uint32_t id, const uint8_t *buf, size_t len);
	/* Bytes waiting to be written to one peer (flow control of a bulk). */
	size_t (*peer_backlog)(struct chan *c, uint32_t id);
};

extern const struct chan_ops chan_mcast_ops;
extern const struct chan_ops chan_tcp_ops;

#endif
