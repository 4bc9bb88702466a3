/* A connection tracker as syncd sees it: a source of events and dumps and a
 * sink for commits and flushes. Implementations: kernel (ctnetlink); the
 * dataplane comes with its own issue. */
#ifndef HAFW_TRACKER_H
#define HAFW_TRACKER_H

#include "flow.h"

#include <stdbool.h>
#include <stdint.h>

struct event_base;
struct hafw_config;
struct tracker;

/* What a tracker reports to the core. */
struct tracker_events {
	void (*flow)(void *arg, enum hafw_event_type type, const struct hafw_flow *f);
	void (*exp)(void *arg, enum hafw_event_type type, const struct hafw_exp *e);
	/* events were lost (netlink overrun): the core must reconcile with a
	 * dump, which it requests with ops->dump(). */
	void (*overrun)(void *arg);
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
	/* Synchronous full dump: every flow, then every expectation, through
	 * ev->flow / ev->exp with HAFW_EV_NEW. */
	int (*dump)(struct tracker *t);
	/* Sink: operations are queued and sent in batches; flush sends what
	 * is queued and returns how many failed (each is counted by errno). */
	int (*put_flow)(struct tracker *t, const struct hafw_flow *f);
	int (*del_flow)(struct tracker *t, const struct hafw_flow *f);
	int (*put_exp)(struct tracker *t, const struct hafw_exp *e);
	int (*sink_flush)(struct tracker *t);
	/* Stop (true) or resume (false) event delivery. With nobody
	 * subscribed the kernel builds no event messages, so a commit runs at
	 * the table's own speed; events missed meanwhile are recovered by a
	 * dump after resuming. */
	int (*mute_events)(struct tracker *t, bool mute);
	/* Fills up to max named counters; returns how many. */
	int (*stats)(struct tracker *t, struct tracker_stat *out, int max);
};

extern const struct tracker_ops tracker_kernel_ops;

#endif
