/* Internals shared by the replication core's files (repl.c: local events,
 * reconciliation, lifecycle; repl_tx.c: frames, heartbeats, announce;
 * repl_rx.c: datagrams from peers; repl_commit.c: commit). Nothing outside
 * the core includes this. */
#ifndef HAFW_REPL_INT_H
#define HAFW_REPL_INT_H

#include "frame.h"
#include "repl.h"

#include <event2/event.h>

struct repl {
	const struct hafw_config *cfg;
	struct event_base *base;
	const struct tracker_ops *tops;
	struct tracker *trk;
	const struct chan_ops *cops;
	struct chan *chan;
	struct hafw_filter filter;
	struct cache *flows, *exps;
	struct repl_peer peers[REPL_MAX_PEERS];
	int npeers;
	struct repl_stats st;
	enum repl_role role;
	uint64_t boot_id, seed;
	uint32_t seq;
	bool dumping;
	/* the next reconciling dump only learns, it announces nothing: it
	 * follows a commit of what the peers sent us */
	bool quiet_resync;
	/* zones that hold flows: the kernel does not report an expectation's
	 * zone, so it is found through its master */
	uint64_t zones_seen[65536 / 64];

	/* announcing the internal cache to a new peer, a slice per turn */
	bool announcing;
	size_t ann_flows, ann_exps;
	struct event *announce_ev;

	uint8_t *txbuf;
	size_t max_dgram;
	struct frame_builder fb;
	bool flush_armed;
	struct event *flush_ev, *hb_ev, *resync_ev;
};

uint64_t repl_now_us(void);
/* What remains of a timeout that was read at `stamp` (monotonic s). */
uint32_t repl_aged(uint32_t timeout, uint32_t stamp, uint32_t now);

/* repl_tx.c */
void repl_send_frame(struct repl *r);
void repl_queue_event(struct repl *r, int type, enum frame_obj obj, const uint8_t *blob,
                      size_t len);
void repl_send_heartbeat(struct repl *r);
void repl_start_announce(struct repl *r);
void repl_flush_cb(evutil_socket_t fd, short what, void *arg);
void repl_hb_cb(evutil_socket_t fd, short what, void *arg);
void repl_announce_cb(evutil_socket_t fd, short what, void *arg);

/* repl_rx.c */
extern const struct chan_events repl_chan_cb;

#endif
