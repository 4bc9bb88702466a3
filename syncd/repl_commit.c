/* Commit: write the peers' external caches into this node's tracker.
 *
 * It runs in slices of tracker.commit_batch entries: each slice is queued
 * to the tracker's sink and flushed, and the next one starts when the sink
 * reports the flush done, so sync datagrams are read between slices. Of a
 * flow held by several peers, only the newest copy is written (the highest
 * version; a newer destroy means none). Masters go before the flows that
 * name them, flows before expectations. */
#include "repl_int.h"
#include "config.h"
#include "flow_pb.h"
#include "log.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#define COMMIT_CHUNK 64 /* entries between looks at the clock */

enum phase {
	PH_FLOWS,     /* flows that name no master; the others are remembered */
	PH_MASTERED,  /* related flows (FTP data, SIP media), after their masters */
	PH_EXPS,      /* expectations, after the flows they belong to */
	PH_EXPS_TIME, /* again: a new expectation gets its helper's timeout, an
	               * update of an existing one takes ours */
	PH_DONE,
};

struct repl_commit {
	struct repl *r;
	enum phase ph;
	int peer;
	size_t cursor;
	uint32_t now;
	uint64_t t0;
	size_t visits; /* entries looked at in this slice */
	/* the operations flushed last belong to the first passes (their
	 * refusals are the commit's errors) */
	bool counting, flushed_counts;
	bool muted;
	struct repl_commit_result res;
	repl_commit_done_fn done;
	void *arg;
	struct event *ev;
	/* related flows seen in the first pass, by key: they are few, and the
	 * caches may change before their turn, so no pointers are kept */
	struct later {
		struct hafw_tuple key;
		uint16_t zone;
		int peer;
	} * later;
	size_t nlater, caplater, ilater;
};

/* Is the copy in peer i's cache the newest of all peers'? Ties go to the
 * peer first in the table, so exactly one copy wins. */
static bool newest(struct repl *r, int i, const struct cache_entry *e, bool exp)
{
	for (int j = 0; j < r->npeers; j++) {
		struct cache *c = exp ? r->peers[j]->exps : r->peers[j]->flows;
		const struct cache_entry *o;

		if (j == i)
			continue;
		o = cache_lookup(c, &e->key, e->zone);
		if (o && (o->version > e->version || (o->version == e->version && j < i)))
			return false;
	}
	return true;
}

/* The flow is alive on its source until its destroy arrives, and the
 * source refreshes its timeout on every packet without telling anyone.
 * So it gets at least what a packet would give it here (the tracker's
 * timeout for its state), and, when the time it had at its last event has
 * run out meanwhile, that time again rather than a second. */
static uint32_t commit_timeout(struct repl_commit *c, const struct cache_entry *e,
                               const struct hafw_flow *f)
{
	uint32_t t = repl_aged(f->timeout, e->stamp, c->now), floor = 0;

	if (t <= 1)
		t = f->timeout;
	if (c->r->tops->refresh_timeout)
		floor = c->r->tops->refresh_timeout(c->r->trk, f);
	return t > floor ? t : floor;
}

static void remember(struct repl_commit *c, const struct cache_entry *e)
{
	if (c->nlater == c->caplater) {
		size_t cap = c->caplater ? c->caplater * 2 : 64;
		struct later *n = realloc(c->later, cap * sizeof(*n));

		if (!n) {
			c->res.errors++;
			return;
		}
		c->later = n;
		c->caplater = cap;
	}
	c->later[c->nlater++] = (struct later){e->key, e->zone, c->peer};
}

static int commit_flow(struct cache_entry *e, void *arg)
{
	struct repl_commit *c = arg;
	struct repl *r = c->r;
	struct hafw_flow f;

	c->visits++;
	if (hafw_flow_decode(e->blob, e->len, &f) < 0) {
		c->res.errors++;
		return 0;
	}
	if ((f.present & HAFW_FA_MASTER) && c->ph == PH_FLOWS) {
		remember(c, e);
		return 0;
	}
	if (!newest(r, c->peer, e, false)) {
		c->res.superseded++;
		return 0;
	}
	if (f.present & HAFW_FA_TIMEOUT)
		f.timeout = commit_timeout(c, e, &f);
	if (r->tops->put_flow(r->trk, &f) < 0)
		c->res.errors++;
	c->res.flows++;
	return 0;
}

static int commit_exp(struct cache_entry *e, void *arg)
{
	struct repl_commit *c = arg;
	struct repl *r = c->r;
	struct hafw_exp x;

	c->visits++;
	if (hafw_exp_decode(e->blob, e->len, &x) < 0) {
		c->res.errors++;
		return 0;
	}
	if (!newest(r, c->peer, e, true)) {
		if (c->ph == PH_EXPS)
			c->res.superseded++;
		return 0;
	}
	if (x.present & HAFW_EA_TIMEOUT)
		x.timeout = repl_aged(x.timeout, e->stamp, c->now);
	if (r->tops->put_exp(r->trk, &x) < 0 && c->ph == PH_EXPS)
		c->res.errors++;
	if (c->ph == PH_EXPS)
		c->res.exps++;
	return 0;
}

static void finish(struct repl_commit *c)
{
	struct repl *r = c->r;
	repl_commit_done_fn done = c->done;
	void *arg = c->arg;
	struct repl_commit_result res = c->res;

	res.usec = (repl_now_ms(r) - c->t0) * 1000;
	if (c->muted)
		r->tops->mute_events(r->trk, false);
	r->st.commits++;
	r->st.commit_flows += res.flows;
	r->st.commit_exps += res.exps;
	r->st.commit_errors += res.errors;
	r->st.commit_superseded += res.superseded;
	r->st.last_commit_us = res.usec;
	hafw_log(LOG_NOTICE,
	         "commit: %llu flows, %llu expectations, %llu errors, %llu older copies skipped "
	         "in %.3f s",
	         (unsigned long long)res.flows, (unsigned long long)res.exps,
	         (unsigned long long)res.errors, (unsigned long long)res.superseded,
	         res.usec / 1e6);
	repl_commit_free(r);
	/* Learn what is now in the tracker and announce it as ours, with our
	 * versions: peers (a third node too) learn that we own these flows
	 * now. Events muted during the commit are recovered the same way. */
	repl_dump_request(r);
	if (done)
		done(arg, res.errors ? -EIO : 0, &res);
}

/* One slice: up to commit_batch entries or REPL_SLICE_US, whichever comes
 * first (the kernel creates a flow in several µs inside our sendmsg, and
 * datagrams wait meanwhile), then a flush of the sink; sink_done brings
 * the next slice. */
static void slice_cb(evutil_socket_t fd, short what, void *arg)
{
	struct repl_commit *c = arg;
	struct repl *r = c->r;
	size_t budget = (size_t)r->cfg->commit_batch;
	uint64_t t0 = repl_slice_clock();

	(void)fd;
	(void)what;
	c->visits = 0;
	while (c->ph != PH_DONE && c->visits < budget && !repl_slice_over(t0)) {
		struct repl_peer *p = c->peer < r->npeers ? r->peers[c->peer] : NULL;
		bool exp = c->ph >= PH_EXPS;
		size_t chunk =
		    budget - c->visits < COMMIT_CHUNK ? budget - c->visits : COMMIT_CHUNK;

		if (c->ph == PH_MASTERED) {
			struct later *l;
			struct cache_entry *e;

			if (c->ilater == c->nlater) {
				c->ph = PH_EXPS;
				continue;
			}
			l = &c->later[c->ilater++];
			c->peer = l->peer;
			e = l->peer < r->npeers
			        ? cache_find(r->peers[l->peer]->flows, &l->key, l->zone)
			        : NULL;
			if (e)
				commit_flow(e, c);
			c->peer = 0;
			continue;
		}
		if (p && !cache_walk_some(exp ? p->exps : p->flows, &c->cursor, chunk,
		                          exp ? commit_exp : commit_flow, c))
			continue;
		c->cursor = 0;
		if (++c->peer < r->npeers)
			continue;
		c->peer = 0;
		c->ph++;
		if (c->ph == PH_EXPS_TIME && !c->res.exps)
			c->ph = PH_DONE;
		/* the second pass's refusals are not the commit's: flush what
		 * the first passes queued before it starts */
		if (c->ph == PH_EXPS_TIME)
			break;
	}
	c->flushed_counts = c->counting;
	c->counting = c->ph < PH_EXPS_TIME;
	r->tops->sink_flush(r->trk);
	repl_slice_done(r, t0);
}

void repl_commit_sink_done(void *arg, unsigned failed)
{
	struct repl *r = arg;
	struct repl_commit *c = r->commit;
	struct timeval now = {0, 0};

	if (!c)
		return;
	if (c->flushed_counts)
		c->res.errors += failed;
	if (c->ph == PH_DONE) {
		finish(c);
		return;
	}
	evtimer_add(c->ev, &now);
}

int repl_commit_start(struct repl *r, repl_commit_done_fn done, void *arg)
{
	struct repl_commit *c;
	struct timeval now = {0, 0};

	if (r->commit)
		return -EBUSY;
	c = calloc(1, sizeof(*c));
	if (!c)
		return -ENOMEM;
	c->ev = evtimer_new(r->base, slice_cb, c);
	if (!c->ev) {
		free(c);
		return -ENOMEM;
	}
	c->r = r;
	c->done = done;
	c->arg = arg;
	c->now = repl_now_s(r);
	c->t0 = repl_now_ms(r);
	c->counting = true;
	/* The tracker would report every committed entry back to us: with the
	 * subscription dropped it builds no events and the commit runs at the
	 * table's speed. What traffic changed meanwhile comes back with the
	 * reconciling dump after the commit. */
	c->muted = r->tops->mute_events(r->trk, true) == 0;
	r->commit = c;
	evtimer_add(c->ev, &now);
	return 0;
}

void repl_commit_forget(struct repl *r)
{
	if (r->commit)
		r->commit->done = NULL;
}

bool repl_committing(const struct repl *r)
{
	return r->commit != NULL;
}

void repl_commit_free(struct repl *r)
{
	struct repl_commit *c = r->commit;

	if (!c)
		return;
	event_free(c->ev);
	free(c->later);
	free(c);
	r->commit = NULL;
}
