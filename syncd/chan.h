/* A datagram channel between syncd peers. Implementations: UDP multicast;
 * the TLS control channel comes with the security issue; unit tests use an
 * in-memory fake.
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
};

extern const struct chan_ops chan_mcast_ops;

#endif
