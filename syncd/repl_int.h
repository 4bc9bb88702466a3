/* Internals shared by the replication core's files:
 *   repl.c         lifecycle, periodic tick, views
 *   repl_clock.c   time and versions
 *   repl_local.c   the tracker's events and dumps: the internal cache
 *   repl_tx.c      frames, heartbeats, announces of the internal cache
 *   repl_txq.c     events waiting for the flush: coalescing, delayed new flows
 *   repl_rx.c      datagrams from peers: epochs, windows, external caches
 *   repl_peer.c    the peer table: admission, liveness, expiry
 *   repl_nack.c    repair: NACKs, retransmits, resyncs, digests
 *   repl_bulk.c    the control channel: hello, bulk transfers
 *   repl_commit.c  commit of the external caches into the tracker
 * Nothing outside the core includes this. */
#ifndef HAFW_REPL_INT_H
#define HAFW_REPL_INT_H

#include "frame.h"
#include "repl.h"

#include <event2/event.h>

struct repl_commit;

/* major << 8 | minor; the major is also the wire header's version */
#define HAFW_PROTO_VERSION (HAFW_WIRE_VERSION << 8 | 1)
#define HAFW_CAP_BULK      1u

struct repl_link {
	struct repl *r;
	int idx;
	const char *name; /* the interface */
	struct chan *chan;
	bool healthy;
	uint64_t healthy_since_ms, switched_ms;
	uint64_t dgrams, probes_sent, send_errors;
};

struct repl {
	const struct hafw_config *cfg;
	struct event_base *base;
	const struct tracker_ops *tops;
	struct tracker *trk;
	const struct chan_ops *cops;
	struct repl_link links[REPL_MAX_LINKS];
	int nlinks, active;
	struct chan *chan;            /* the active link's */
	const struct chan_ops *ccops; /* control channel, or NULL */
	struct chan *cchan;
	struct event *bulk_ev; /* a bulk waits for room on a connection */
	struct hafw_filter filter;
	struct repl_clock clock;
	struct cache *flows, *exps;
	struct repl_peer **peers;
	int npeers, maxpeers;
	struct repl_peer_stats gone_peers_st; /* of the peers forgotten */
	size_t cap;                           /* entries per peer cache */
	struct repl_stats st;
	enum repl_role role;
	uint32_t epoch; /* this run; in every datagram header */
	uint32_t seq;   /* last datagram number sent */
	uint64_t seed;
	uint64_t hlc; /* version clock (hybrid logical clock, µs) */

	/* reconciliation with the tracker */
	bool dumping, dump_again;
	bool dump_full; /* the cache was empty: the dump announces everything */
	uint32_t dump_full_from;
	bool isweeping; /* sweeping what the last dump did not show */
	size_t isweep_f, isweep_x;
	uint64_t dump_retry_ms; /* a failed dump is tried again then */
	/* flows asked from the tracker because an update found no entry */
	struct cache *pending_gets;

	/* last complete transmission of the whole internal cache */
	bool full_valid;
	uint32_t full_from, full_to;
	uint64_t full_done_ms;

	/* announce of the internal cache to every peer, a slice per turn */
	bool announcing, announce_again;
	size_t ann_f, ann_x;
	uint32_t ann_from;
	struct event *announce_ev;

	/* zones that hold flows: the kernel does not report an expectation's
	 * zone, so it is found through its master */
	uint64_t zones_seen[65536 / 64];

	struct rtxring *ring; /* what we sent, for NACKs */
	/* events waiting for the flush, by key (repl_txq.c) */
	struct cache *pend_f, *pend_x;
	size_t pend_bytes;
	/* new flows waiting for their age (sync.delay_ms), oldest first */
	struct cache *delayed;
	uint64_t delayed_digest; /* their share of the internal digest */
	struct txq_due {
		struct hafw_tuple key;
		uint16_t zone;
		uint64_t due_ms;
	} * fifo;
	size_t fifo_head, nfifo, capfifo;
	uint8_t *txbuf;
	size_t max_dgram;
	struct frame_builder fb;
	bool flush_armed;
	struct event *flush_ev;

	struct event *tick_ev, *work_ev;
	uint64_t next_hb_ms;
	uint64_t started_ms;
	/* discovery: new peers per time (token bucket) */
	uint64_t disc_tokens_ms;
	unsigned disc_tokens;

	struct repl_commit *commit;
};

/* repl_clock.c */
uint32_t repl_now_s(const struct repl *r);
uint64_t repl_wall_us(const struct repl *r);
uint64_t repl_next_version(struct repl *r);
void repl_observe_version(struct repl *r, uint64_t v);
/* What remains of a timeout that was read at `stamp` (monotonic s). */
uint32_t repl_aged(uint32_t timeout, uint32_t stamp, uint32_t now);
/* Background work (commit, sweeps, announces) runs in slices of at most
 * about this long, so the loop gets back to reading datagrams. */
#define REPL_SLICE_US 2000
/* Real time in µs, to measure how long a slice of work took. */
uint64_t repl_slice_clock(void);
static inline bool repl_slice_over(uint64_t t0)
{
	return repl_slice_clock() - t0 >= REPL_SLICE_US;
}
void repl_slice_done(struct repl *r, uint64_t t0);

/* repl.c */
/* Run the background work (sweeps) on the next turn. */
void repl_kick_work(struct repl *r);

/* repl_local.c */
extern const struct tracker_events repl_tracker_cb;
void repl_dump_request(struct repl *r);
void repl_dump_retry(struct repl *r);
bool repl_local_work(struct repl *r, uint64_t t0); /* true: more to do */

/* repl_tx.c */
/* Everything waiting leaves now: pending events into frames, frames out. */
void repl_send_frame(struct repl *r);
/* The frame being built leaves as one datagram. */
void repl_emit_frame(struct repl *r);

/* repl_txq.c */
enum {
	REPL_TXQ_LIVE_NEW = 1, /* a flow the tracker just created: no peer heard of it */
	REPL_TXQ_ANNOUNCE = 2, /* a stored copy sent again: never over a newer change */
};
void repl_queue_event(struct repl *r, int type, enum frame_obj obj, const struct hafw_tuple *key,
                      uint16_t zone, const uint8_t *blob, size_t len, uint64_t version,
                      unsigned flags);
void repl_flush_pending(struct repl *r);
void repl_txq_tick(struct repl *r);
size_t repl_txq_delayed(const struct repl *r);
int repl_txq_init(struct repl *r);
void repl_txq_free(struct repl *r);
void repl_send_heartbeat(struct repl *r);
void repl_start_announce(struct repl *r);
void repl_flush_cb(evutil_socket_t fd, short what, void *arg);
void repl_announce_cb(evutil_socket_t fd, short what, void *arg);
/* Encode and queue a destroy of the flow key / the cached expectation. */
void repl_send_flow_destroy(struct repl *r, const struct hafw_tuple *key, uint16_t zone,
                            uint64_t version);
void repl_send_exp_destroy(struct repl *r, const struct cache_entry *e, uint64_t version);

/* repl_rx.c */
/* A datagram from a data channel (from->link says which link), or one
 * that came over the peer's control connection (from NULL). */
void repl_rx_dgram(struct repl *r, const uint8_t *buf, size_t len, const struct chan_addr *from);

/* repl_link.c */
int repl_links_open(struct repl *r, const char **what);
void repl_links_close(struct repl *r);
void repl_links_probe(struct repl *r);
void repl_links_tick(struct repl *r);
/* Unicast to a peer's address, on the link the address belongs to. */
int repl_send_to(struct repl *r, const struct chan_addr *to, const uint8_t *buf, size_t len);

/* repl_peer.c */
int repl_peers_init(struct repl *r);
void repl_peers_free(struct repl *r);
/* The peer for a datagram from id at addr, admitting it if allowed; NULL
 * when refused (counted). */
struct repl_peer *repl_peer_admit(struct repl *r, uint32_t id, const struct chan_addr *from);
void repl_peer_seen(struct repl *r, struct repl_peer *p, const struct chan_addr *from);
void repl_peer_set_down(struct repl *r, struct repl_peer *p);
void repl_peers_tick(struct repl *r);
bool repl_peers_work(struct repl *r, uint64_t t0); /* restart sweeps; true: more */
size_t repl_peer_entries(const struct repl_peer *p);

/* repl_nack.c */
void repl_nack_maybe(struct repl *r, struct repl_peer *p);
void repl_resync_peer(struct repl *r, struct repl_peer *p, bool digest);
void repl_rx_nack(struct repl *r, struct repl_peer *p, const struct hafw_wire_hdr *h,
                  const uint8_t *payload, const struct chan_addr *from);
void repl_digest_check(struct repl *r, struct repl_peer *p, uint64_t digest);

/* repl_bulk.c */
extern const struct chan_events repl_ctl_cb;
bool repl_bulk_request(struct repl *r, struct repl_peer *p);
/* Whether p's full state comes as a bulk on its connection: it is up and
 * can, or it may still come up (a grace after the peer was first heard);
 * otherwise the heartbeat asks for a multicast announce. */
bool repl_bulk_pulls(const struct repl *r, const struct repl_peer *p);
bool repl_bulk_work(struct repl *r, uint64_t t0, bool *blocked);
void repl_bulk_tick(struct repl *r, struct repl_peer *p);
/* Keep a control connection to p at its current address (at once when the
 * address is learned, not at the next tick). */
void repl_bulk_connect(struct repl *r, struct repl_peer *p);
void repl_bulk_forget(struct repl_peer *p);

/* repl_rx.c */
/* Apply a Frame's events from p (data or bulk); returns how many. */
uint64_t repl_apply_frame(struct repl *r, struct repl_peer *p, const struct hafw_wire_hdr *h,
                          const uint8_t *payload);

/* repl_commit.c */
void repl_commit_sink_done(void *arg, unsigned failed);
void repl_commit_free(struct repl *r);

#endif
