/* A connection tracker as syncd sees it: a source of events and dumps and a
 * sink for commits. Implementations: kernel (ctnetlink); the dataplane comes
 * with its own issue; unit tests use an in-memory fake.
 *
 * Nothing here blocks the event loop: a dump, a single-flow read and a sink
 * flush are started by a call and finish later through a callback, each
 * doing a bounded amount of work per turn of the loop. Callbacks are never
 * made from inside the call that started the operation. */
#ifndef HAFW_TRACKER_H
#define HAFW_TRACKER_H

#include "flow.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct event_base;
struct hafw_config;
struct tracker;

/* What a tracker reports to the core. */
struct tracker_events {
	/* A live change. NEW carries the whole flow; UPDATE may carry only
	 * the attributes that changed (always the key); DESTROY at least
	 * the key. Events that happen while a dump runs are delivered after
	 * its dump_done, in the order they happened. */
	void (*flow)(void *arg, enum hafw_event_type type, const struct hafw_flow *f);
	void (*exp)(void *arg, enum hafw_event_type type, const struct hafw_exp *e);
	/* Events were lost (netlink overrun): the core reconciles with a
	 * dump. */
	void (*overrun)(void *arg);
	/* One complete entry of the dump in progress: flows first, then
	 * expectations. */
	void (*dump_flow)(void *arg, const struct hafw_flow *f);
	void (*dump_exp)(void *arg, const struct hafw_exp *e);
	/* The dump ended. 0: every entry was delivered. Negative errno: it
	 * was aborted (timeout, socket error) and what was delivered is a
	 * partial view: nothing may be swept on its account. */
	void (*dump_done)(void *arg, int status);
	/* Answer to get_flow(): status 0 and the complete flow, or -ENOENT
	 * (f is NULL) when the tracker does not hold it, or another negative
	 * errno. key is the key that was asked for. */
	void (*got_flow)(void *arg, const struct hafw_flow *key, const struct hafw_flow *f,
	                 int status);
	/* A sink_flush() finished: how many of the operations queued since
	 * the previous sink_done were refused (each counted by cause). */
	void (*sink_done)(void *arg, unsigned failed);
};

struct tracker_stat {
	const char *name;
	uint64_t value;
};

struct tracker_ops {
	const char *name;
	int (*open)(struct tracker **t, const struct hafw_config *cfg, struct event_base *base,
	            const struct tracker_events *ev, void *arg);
	void (*close)(struct tracker *t);
	/* Start a full dump (flows, then expectations). Returns 0, -EBUSY
	 * while one runs, or another negative errno (no dump_done then). */
	int (*dump_start)(struct tracker *t);
	/* Read one flow by key (orig tuple and zone), answered by got_flow.
	 * Returns 0, or -EBUSY when too many reads are outstanding (the
	 * caller reconciles with a dump instead). */
	int (*get_flow)(struct tracker *t, const struct hafw_flow *key);
	/* Sink: put_* queue an operation and may send a full batch; the
	 * queued operations leave by sink_flush(), answered by sink_done.
	 * They return 0 or a negative errno when the entry cannot be
	 * expressed at all (it is counted as failed). */
	int (*put_flow)(struct tracker *t, const struct hafw_flow *f);
	int (*put_exp)(struct tracker *t, const struct hafw_exp *e);
	int (*sink_flush)(struct tracker *t);
	/* Stop (true) or resume (false) event delivery. With nobody
	 * subscribed the kernel builds no event messages, so a commit runs at
	 * the table's own speed; events missed meanwhile are recovered by a
	 * dump after resuming. */
	int (*mute_events)(struct tracker *t, bool mute);
	/* The timeout a packet of this flow would set on this tracker now
	 * (its state's timeout), 0 when unknown. A source refreshes its flows'
	 * timeouts on every packet without telling anyone, so a commit gives
	 * a replicated flow at least this much. */
	uint32_t (*refresh_timeout)(struct tracker *t, const struct hafw_flow *f);
	/* Largest number of flows the tracker holds (default cap of each
	 * peer's cache), 0 when unknown. */
	size_t (*max_entries)(struct tracker *t);
	/* Fills up to max named counters; returns how many. */
	int (*stats)(struct tracker *t, struct tracker_stat *out, int max);
};

extern const struct tracker_ops tracker_kernel_ops;

#endif
