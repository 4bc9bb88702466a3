/* A datagram channel between syncd peers. Implementations: UDP multicast;
 * the TLS control channel comes with the security issue. */
#ifndef HAFW_CHAN_H
#define HAFW_CHAN_H

#include <stddef.h>
#include <stdint.h>

struct event_base;
struct hafw_config;
struct chan;

struct chan_events {
	/* one received datagram, not yet validated */
	void (*recv)(void *arg, const uint8_t *buf, size_t len);
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
	/* Returns 0, or a negative errno (the datagram is lost and counted). */
	int (*send)(struct chan *c, const uint8_t *buf, size_t len);
	/* Largest datagram that leaves without IP fragmentation. */
	size_t (*max_dgram)(struct chan *c);
	int (*stats)(struct chan *c, struct chan_stat *out, int max);
};

extern const struct chan_ops chan_mcast_ops;

#endif
