/* Commit: write the peers' external caches into this node's tracker. */
#include "repl_int.h"
#include "config.h"
#include "flow_pb.h"
#include "log.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

/* ---- commit ---- */

struct commit_ctx {
	struct repl *r;
	uint32_t now;
	uint64_t n, errors;
	/* flows that name a master wait for the second batch; they are few
	 * (FTP data, SIP media), so they are remembered, not searched for */
	struct cache_entry **later;
	size_t nlater, cap;
};

static void put_flow(struct commit_ctx *c, struct cache_entry *e, struct hafw_flow *f)
{
	int ret;

	/* the peer's clock ran while the entry waited here */
	if (f->present & HAFW_FA_TIMEOUT)
		f->timeout = repl_aged(f->timeout, e->stamp, c->now);
	ret = c->r->tops->put_flow(c->r->trk, f);
	c->errors += ret < 0 ? 1 : (uint64_t)ret;
	c->n++;
}

static int commit_flow(struct cache_entry *e, void *arg)
{
	struct commit_ctx *c = arg;
	struct hafw_flow f;

	if (hafw_flow_decode(e->blob, e->len, &f) < 0) {
		c->errors++;
		return 0;
	}
	if (f.present & HAFW_FA_MASTER) {
		if (c->nlater == c->cap) {
			size_t cap = c->cap ? c->cap * 2 : 64;
			struct cache_entry **n = realloc(c->later, cap * sizeof(*n));

			if (!n) {
				c->errors++;
				return 0;
			}
			c->later = n;
			c->cap = cap;
		}
		c->later[c->nlater++] = e;
		return 0;
	}
	put_flow(c, e, &f);
	return 0;
}

static int commit_exp(struct cache_entry *e, void *arg)
{
	struct commit_ctx *c = arg;
	struct hafw_exp x;
	int ret;

	if (hafw_exp_decode(e->blob, e->len, &x) < 0) {
		c->errors++;
		return 0;
	}
	if (x.present & HAFW_EA_TIMEOUT)
		x.timeout = repl_aged(x.timeout, e->stamp, c->now);
	ret = c->r->tops->put_exp(c->r->trk, &x);
	c->errors += ret < 0 ? 1 : (uint64_t)ret;
	c->n++;
	return 0;
}

int repl_commit(struct repl *r, struct repl_commit_result *res)
{
	struct commit_ctx c = {.r = r, .now = repl_now_s()};
	uint64_t t0 = repl_now_us(), nflows;
	struct timeval soon = {0, 0};
	bool muted;
	int ret;

	/* The tracker would report every committed entry back to us: with the
	 * subscription dropped it reports nothing and the commit runs at the
	 * table's speed. What real traffic changed meanwhile comes back with
	 * the reconciling dump scheduled below. */
	muted = r->tops->mute_events(r->trk, true) == 0;

	/* masters before the flows and expectations that name them; the peer
	 * caches do not change while this runs, so remembered entries stay */
	for (int i = 0; i < r->npeers; i++)
		cache_walk(r->peers[i].flows, commit_flow, &c);
	ret = r->tops->sink_flush(r->trk);
	c.errors += ret < 0 ? 0 : (uint64_t)ret;
	for (size_t i = 0; i < c.nlater; i++) {
		struct hafw_flow f;

		if (hafw_flow_decode(c.later[i]->blob, c.later[i]->len, &f) == 0)
			put_flow(&c, c.later[i], &f);
	}
	free(c.later);
	ret = r->tops->sink_flush(r->trk);
	c.errors += ret < 0 ? 0 : (uint64_t)ret;
	nflows = c.n;
	c.n = 0;
	for (int i = 0; i < r->npeers; i++)
		cache_walk(r->peers[i].exps, commit_exp, &c);
	ret = r->tops->sink_flush(r->trk);
	c.errors += ret < 0 ? 0 : (uint64_t)ret;
	/* a new expectation of a helper gets the helper's timeout whatever we
	 * asked; an update of an existing one takes ours */
	if (c.n) {
		uint64_t n = c.n, errs = c.errors;

		for (int i = 0; i < r->npeers; i++)
			cache_walk(r->peers[i].exps, commit_exp, &c);
		r->tops->sink_flush(r->trk);
		c.n = n;
		c.errors = errs;
	}

	res->flows = nflows;
	res->exps = c.n;
	res->errors = c.errors;
	res->usec = repl_now_us() - t0;
	/* resubscribe now, reconcile on the next turn: the caller (and a
	 * failover waiting on it) is answered once the flows are in. The dump
	 * also teaches the internal cache what was committed, quietly (our own
	 * events for them are never seen). */
	if (muted)
		r->tops->mute_events(r->trk, false);
	r->quiet_resync = true;
	evtimer_add(r->resync_ev, &soon);
	r->st.commits++;
	r->st.commit_flows += res->flows;
	r->st.commit_exps += res->exps;
	r->st.commit_errors += res->errors;
	r->st.last_commit_us = res->usec;
	hafw_log(LOG_NOTICE, "commit: %llu flows, %llu expectations, %llu errors in %.3f s",
	         (unsigned long long)res->flows, (unsigned long long)res->exps,
	         (unsigned long long)res->errors, res->usec / 1e6);
	return res->errors ? -EIO : 0;
}
