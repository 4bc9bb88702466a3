/* An in-memory cluster for testing the replication core: a fake tracker
 * (a table with events, asynchronous dumps, reads and sink), a fake channel
 * joined to a fake network that the test controls datagram by datagram
 * (deliver, drop, duplicate, reorder, corrupt), and a clock the test moves.
 * No kernel, no sockets: restarts, loss and three peers cost nothing here.
 * The fuzz harness for datagrams uses it too. */
#ifndef HAFW_FAKE_OPS_H
#define HAFW_FAKE_OPS_H

#include "cache.h"
#include "config.h"
#include "repl.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define FNET_MAX_NODES 16

struct fnet;
struct fnode;

/* ---- the fake tracker ---- */

struct ftrk {
	struct fnode *node;
	struct cache *flows, *exps; /* the table: encoded flows and expectations */
	const struct tracker_events *ev;
	void *arg;
	bool open;
	/* asynchronous work, done by the loop */
	struct event *work_ev;
	bool dumping;
	int dump_phase; /* 0 flows, 1 expectations */
	size_t dump_cursor;
	int dump_abort_after; /* >= 0: abort the next dump after this many entries */
	unsigned dump_delivered;
	/* events that happen during a dump wait for its end */
	struct fev {
		int obj, type;
		struct hafw_flow f;
		struct hafw_exp x;
	} * held;
	size_t nheld, capheld;
	struct hafw_flow gets[64];
	int ngets;
	bool get_busy; /* get_flow answers -EBUSY */
	bool flush_pending;
	unsigned failed_since;
	uint16_t fail_sport; /* put_flow of a flow with this source port fails */
	uint32_t refresh;    /* refresh_timeout() answer */
	size_t max;          /* max_entries() answer */
	bool muted;
	/* counters the tests read */
	unsigned dumps, dumps_aborted, gets_asked, puts, put_exps, flushes, mutes;
	unsigned max_slice;         /* most entries delivered in one loop turn */
	unsigned puts_at_first_exp; /* put_flow calls before the first put_exp */
	/* a put_flow log: the flows written, in order (last wins) */
	struct hafw_flow *log;
	size_t nlog, caplog;
};

extern const struct tracker_ops fake_tracker_ops;

/* Change the table, with the event the tracker would give (held while a
 * dump runs). update() stores the merge and reports only `partial`. */
void ftrk_add(struct ftrk *t, const struct hafw_flow *f);
void ftrk_update(struct ftrk *t, const struct hafw_flow *full, const struct hafw_flow *partial);
void ftrk_del(struct ftrk *t, const struct hafw_flow *f);
void ftrk_add_exp(struct ftrk *t, const struct hafw_exp *x);
void ftrk_del_exp(struct ftrk *t, const struct hafw_exp *x);
/* Change the table silently (events lost). */
void ftrk_put_silent(struct ftrk *t, const struct hafw_flow *f);
void ftrk_del_silent(struct ftrk *t, const struct hafw_flow *f);
bool ftrk_get(const struct ftrk *t, const struct hafw_tuple *orig, uint16_t zone,
              struct hafw_flow *out);
size_t ftrk_count(const struct ftrk *t);

/* ---- the fake network ---- */

struct fdgram {
	int from, to;
	uint8_t *buf;
	size_t len;
	int link; /* the sync link it travels (0, or 1 the backup) */
	bool ctl; /* a control-channel message: reliable, ordered, no policy */
};

/* What happens to a datagram about to be delivered: 0 deliver, 1 drop,
 * 2 deliver twice; the policy may also change the bytes. */
typedef int (*fnet_policy)(struct fnet *n, struct fdgram *d, void *arg);

struct fchan {
	struct fnode *node;
	int link;
	const struct chan_events *ev;
	void *arg;
	bool open;
	size_t backlog;
	uint64_t sent, sent_to, recvd;
};

extern const struct chan_ops fake_chan_ops;

/* The fake control channel: a connection per pair of nodes, up once either
 * side added the other (peer_add), ordered and lossless; the test can cut a
 * pair and limit what may wait for a peer (backpressure). */
struct fctl {
	struct fnode *node;
	const struct chan_events *ev;
	void *arg;
	bool open;
	size_t limit;                  /* bytes that may wait per peer (0: none) */
	size_t queued[FNET_MAX_NODES]; /* bytes waiting for each peer */
	uint64_t sent, refused;
};

extern const struct chan_ops fake_ctl_ops;

struct fnode {
	struct fnet *net;
	int idx;
	struct hafw_config cfg;
	struct hafw_filter filter;
	struct repl *r;
	struct ftrk trk;
	struct fchan chan;  /* sync link 0, address 10.0.0.<idx> */
	struct fchan bchan; /* sync link 1 (cfg.sync_backup_if set), 10.0.1.<idx> */
	struct fctl ctl;
	uint32_t seq0; /* first datagram number of the next start - 1 (0: default) */
};

struct fnet {
	struct event_base *base;
	uint64_t mono_ms, wall_us;
	struct repl_clock clock;
	struct fnode *nodes[FNET_MAX_NODES];
	int nnodes;
	struct fdgram *q;
	size_t nq, capq;
	fnet_policy policy;
	void *policy_arg;
	uint64_t delivered, dropped;
	/* deliver in reverse order of sending (reordering) */
	bool reverse;
	/* a sync link that delivers nothing (both directions) */
	bool link_cut[2];
	/* control connections: wanted, up, cut by the test, events due */
	bool ctl_want[FNET_MAX_NODES][FNET_MAX_NODES];
	bool ctl_up[FNET_MAX_NODES][FNET_MAX_NODES];
	bool ctl_cut[FNET_MAX_NODES][FNET_MAX_NODES];
};

struct fnet *fnet_new(void);
void fnet_free(struct fnet *n);
/* A node with id and a default config (tests may edit node->cfg before
 * fnode_start). */
struct fnode *fnode_new(struct fnet *n, int id);
/* Start (or restart after fnode_stop) its repl; the tracker table stays. */
void fnode_start(struct fnode *nd);
/* Stop its repl as a crash would: the table stays, in-flight datagrams
 * from it stay in the network. */
void fnode_stop(struct fnode *nd);
/* Move the clocks (monotonic and wall) forward. */
void fnet_advance(struct fnet *n, uint64_t ms);
/* Deliver what is in flight (through the policy); returns how many. */
size_t fnet_deliver(struct fnet *n);
/* Run the loop, flushing frames and delivering datagrams, until nothing is
 * left to do or max_ms of real time passed. Returns true when idle. */
bool fnet_run(struct fnet *n, unsigned max_ms);
/* Advance the clock by ms in steps of the heartbeat interval, ticking
 * every node and running the loop after each step. */
void fnet_pass(struct fnet *n, uint64_t ms);
/* Drop everything in flight. */
void fnet_discard(struct fnet *n);
/* Cut (or mend) the control connection between two nodes. */
void fnet_ctl_cut(struct fnet *n, struct fnode *a, struct fnode *b, bool cut);

/* ---- helpers for tests ---- */

/* The usual fixture: a network with node A (id 1) and node B (id 2), not
 * started yet. cmocka setup/teardown functions put it in *state. */
struct fpair {
	struct fnet *n;
	struct fnode *a, *b;
};
struct fpair *fpair_new(void);
void fpair_free(struct fpair *w);
int fpair_setup(void **state);
int fpair_teardown(void **state);

/* A TCP flow 10.<a>.<b>.<c>:port -> 192.0.2.1:80 with a mark, a timeout
 * and ESTABLISHED state. */
void fflow(struct hafw_flow *f, uint32_t n, uint32_t mark);
/* The peer `id`'s copy of flow f in node nd's external cache (false when
 * absent). */
bool fnode_ext(struct fnode *nd, uint32_t id, const struct hafw_flow *key, struct hafw_flow *out);
size_t fnode_ext_count(struct fnode *nd, uint32_t id);
/* Does rx's copy of src hold exactly src's internal cache? */
bool fnode_mirrors(struct fnode *src, struct fnode *rx);

#endif
