/* The local side: the tracker's events and dumps keep the internal cache,
 * and every change leaves for the peers with a new version.
 *
 * An update event may carry only what changed, so it is merged into the
 * cached flow and the whole flow is sent: each event stands on its own at
 * the receiver. A flow the cache does not hold (flushed, or refused for
 * memory) is read back from the tracker before anything is sent about it,
 * so a partial update never replaces a full flow on a peer. */
#include "repl_int.h"
#include "config.h"
#include "flow_pb.h"
#include "log.h"

#include <errno.h>
#include <string.h>

#define SWEEP_CHUNK 256 /* entries between looks at the clock */

static struct hafw_ratelimit rl_dump = HAFW_RATELIMIT_INIT(10, 3);

/* ---- the internal cache and what leaves for the peers ---- */

static void store_flow(struct repl *r, int type, const struct hafw_flow *f, unsigned flags)
{
	uint8_t blob[HAFW_FLOW_MAX_ENCODED];
	int len = hafw_flow_encode(f, blob, sizeof(blob));
	uint64_t v;

	if (len < 0) {
		r->st.encode_errors++;
		return;
	}
	v = repl_next_version(r);
	/* a flow the cache cannot hold still goes out whole; its next
	 * update finds no entry and is read back from the tracker */
	if (cache_put(r->flows, &f->orig, f->zone, blob, (size_t)len, repl_now_s(r), v) < 0)
		r->st.cache_nomem++;
	r->zones_seen[f->zone / 64] |= 1ull << (f->zone % 64);
	repl_queue_event(r, type, FRAME_FLOW, &f->orig, f->zone, blob, (size_t)len, v, flags);
}

static void store_exp(struct repl *r, const struct hafw_exp *x)
{
	uint8_t blob[HAFW_FLOW_MAX_ENCODED];
	int len = hafw_exp_encode(x, blob, sizeof(blob));
	uint64_t v;

	if (len < 0) {
		r->st.encode_errors++;
		return;
	}
	v = repl_next_version(r);
	if (cache_put(r->exps, &x->tuple, x->zone, blob, (size_t)len, repl_now_s(r), v) < 0)
		r->st.cache_nomem++;
	repl_queue_event(r, HAFW_EV_NEW, FRAME_EXP, &x->tuple, x->zone, blob, (size_t)len, v, 0);
}

/* Ask the tracker for the whole flow; the answer arrives in on_got_flow.
 * When the tracker cannot take another question, a dump answers them all. */
static void read_back(struct repl *r, const struct hafw_flow *f)
{
	struct hafw_flow key;
	int ret;

	if (cache_lookup(r->pending_gets, &f->orig, f->zone))
		return;
	memset(&key, 0, sizeof(key));
	key.orig = f->orig;
	key.zone = f->zone;
	key.present = f->present & HAFW_FA_ZONE;
	ret = r->tops->get_flow(r->trk, &key);
	if (ret < 0) {
		r->st.update_reads_failed++;
		repl_dump_request(r);
		return;
	}
	r->st.update_reads++;
	if (cache_put(r->pending_gets, &f->orig, f->zone, NULL, 0, repl_now_s(r), 0) < 0)
		r->st.cache_nomem++;
}

static void on_flow(void *arg, enum hafw_event_type type, const struct hafw_flow *f)
{
	struct repl *r = arg;
	struct cache_entry *e;
	struct hafw_flow merged;

	if (type == HAFW_EV_DESTROY) {
		r->st.local_destroy++;
		/* an answer still on its way must not bring it back */
		cache_del(r->pending_gets, &f->orig, f->zone);
		if (cache_del(r->flows, &f->orig, f->zone)) {
			repl_send_flow_destroy(r, &f->orig, f->zone, repl_next_version(r));
		} else if (!filter_ignores_flow(&r->filter, f)) {
			/* the cache lost it (flush, no memory): peers may hold it */
			r->st.destroy_unknown++;
			repl_send_flow_destroy(r, &f->orig, f->zone, repl_next_version(r));
		}
		return;
	}
	if (filter_ignores_flow(&r->filter, f)) {
		r->st.filtered++;
		return;
	}
	if (type == HAFW_EV_NEW) {
		r->st.local_new++;
		store_flow(r, type, f, REPL_TXQ_LIVE_NEW);
		return;
	}
	r->st.local_update++;
	e = cache_find(r->flows, &f->orig, f->zone);
	/* no whole flow to merge into, or the event may have removed what it
	 * does not show (labels cleared by a packet path): ask the tracker */
	if (!e || hafw_flow_decode(e->blob, e->len, &merged) < 0 ||
	    hafw_flow_needs_reread(&merged, f)) {
		read_back(r, f);
		return;
	}
	hafw_flow_merge(&merged, f);
	store_flow(r, type, &merged, 0);
}

/* A whole flow read from the tracker (dump, GET) over what we hold: what
 * it lacks is gone (cleared labels must reach the peers as cleared). */
static bool snapshot_over(struct repl *r, const struct hafw_flow *f, struct cache_entry **ep,
                          struct hafw_flow *old, struct hafw_flow *merged)
{
	*ep = cache_find(r->flows, &f->orig, f->zone);
	if (!*ep || hafw_flow_decode((*ep)->blob, (*ep)->len, old) < 0) {
		*merged = *f;
		return false;
	}
	*merged = *old;
	hafw_flow_merge(merged, f);
	return true;
}

static void on_got_flow(void *arg, const struct hafw_flow *key, const struct hafw_flow *f,
                        int status)
{
	struct repl *r = arg;

	if (!cache_del(r->pending_gets, &key->orig, key->zone)) {
		/* destroyed meanwhile, or the cache was reconciled since */
		r->st.update_reads_stale++;
		return;
	}
	if (status == -ENOENT)
		return; /* gone: its destroy event says so */
	if (status < 0 || !f) {
		r->st.update_reads_failed++;
		repl_dump_request(r);
		return;
	}
	if (filter_ignores_flow(&r->filter, f))
		return;
	{
		struct cache_entry *e;
		struct hafw_flow old, merged;
		bool had = snapshot_over(r, f, &e, &old, &merged);

		store_flow(r, had ? HAFW_EV_UPDATE : HAFW_EV_NEW, &merged, 0);
	}
}

/* An expectation lives in its master's zone. */
static void exp_find_zone(struct repl *r, struct hafw_exp *x)
{
	if (x->zone || cache_find(r->flows, &x->master, 0))
		return;
	for (unsigned w = 0; w < 65536 / 64; w++) {
		if (!r->zones_seen[w])
			continue;
		for (unsigned b = 0; b < 64; b++) {
			uint16_t z = (uint16_t)(w * 64 + b);

			if ((r->zones_seen[w] & (1ull << b)) && z &&
			    cache_find(r->flows, &x->master, z)) {
				x->zone = z;
				return;
			}
		}
	}
}

static void on_exp(void *arg, enum hafw_event_type type, const struct hafw_exp *in)
{
	struct repl *r = arg;
	struct cache_entry *e;
	struct hafw_exp xz = *in;

	exp_find_zone(r, &xz);
	if (type == HAFW_EV_DESTROY) {
		r->st.local_exp_destroy++;
		e = cache_find(r->exps, &xz.tuple, xz.zone);
		if (e) {
			repl_send_exp_destroy(r, e, repl_next_version(r));
			cache_del(r->exps, &xz.tuple, xz.zone);
		} else if (!filter_ignores_exp(&r->filter, &xz)) {
			uint8_t blob[HAFW_FLOW_MAX_ENCODED];
			int len;

			r->st.destroy_unknown++;
			xz.present &= HAFW_EA_ZONE;
			len = hafw_exp_encode(&xz, blob, sizeof(blob));
			if (len > 0)
				repl_queue_event(r, HAFW_EV_DESTROY, FRAME_EXP, &xz.tuple, xz.zone,
				                 blob, (size_t)len, repl_next_version(r), 0);
		}
		return;
	}
	if (filter_ignores_exp(&r->filter, &xz)) {
		r->st.filtered++;
		return;
	}
	r->st.local_exp_new++;
	store_exp(r, &xz);
}

static void on_overrun(void *arg)
{
	repl_dump_request(arg);
}

/* ---- reconciliation with a dump ---- */

/* Every dumped entry is compared with what we hold: only real differences
 * are sent, so reconciling after an overrun costs little on the sync link.
 * Timeouts are ignored (they differ by the time elapsed) but the stored
 * copy takes the fresh one, which later announces age from. */
static void on_dump_flow(void *arg, const struct hafw_flow *f)
{
	struct repl *r = arg;
	struct cache_entry *e;
	struct hafw_flow old, merged;
	bool had;

	if (filter_ignores_flow(&r->filter, f))
		return;
	had = snapshot_over(r, f, &e, &old, &merged);
	if (had && !hafw_flow_diff(&old, &merged, UINT32_MAX)) {
		uint8_t blob[HAFW_FLOW_MAX_ENCODED];
		int len = hafw_flow_encode(&merged, blob, sizeof(blob));

		if (len < 0 || cache_put(r->flows, &f->orig, f->zone, blob, (size_t)len,
		                         repl_now_s(r), e->version) < 0)
			cache_touch(r->flows, e);
		return;
	}
	if (had)
		r->st.resync_changed++;
	else
		r->st.resync_added++;
	store_flow(r, had ? HAFW_EV_UPDATE : HAFW_EV_NEW, &merged, 0);
}

static void on_dump_exp(void *arg, const struct hafw_exp *in)
{
	struct repl *r = arg;
	struct hafw_exp x = *in, old;
	struct cache_entry *e;

	exp_find_zone(r, &x);
	if (filter_ignores_exp(&r->filter, &x))
		return;
	e = cache_find(r->exps, &x.tuple, x.zone);
	if (e && hafw_exp_decode(e->blob, e->len, &old) == 0 &&
	    !hafw_exp_diff(&old, &x, UINT32_MAX)) {
		cache_touch(r->exps, e);
		return;
	}
	if (e)
		r->st.resync_changed++;
	else
		r->st.resync_added++;
	store_exp(r, &x);
}

static void start_dump(struct repl *r)
{
	int ret = r->tops->dump_start(r->trk);

	if (ret < 0) {
		hafw_log_rl(&rl_dump, LOG_ERR, "tracker dump failed to start: %s; retrying in 1 s",
		            strerror(-ret));
		r->dump_retry_ms = repl_now_ms(r) + 1000;
		return;
	}
	r->dumping = true;
	r->st.dumps++;
	/* an empty cache learns everything from this dump and announces it:
	 * that is a complete transmission of our state */
	r->dump_full = cache_count(r->flows) == 0 && cache_count(r->exps) == 0;
	r->dump_full_from = r->seq + 1;
	/* answers to reads still on their way are older than the dump */
	cache_flush(r->pending_gets);
	cache_gen_begin(r->flows);
	cache_gen_begin(r->exps);
}

void repl_dump_request(struct repl *r)
{
	if (r->dump_retry_ms)
		return; /* the retry will dump */
	if (r->dumping || r->isweeping) {
		r->dump_again = true;
		return;
	}
	start_dump(r);
}

/* From the tick: a failed or aborted dump is retried after a second. */
void repl_dump_retry(struct repl *r)
{
	if (!r->dump_retry_ms || repl_now_ms(r) < r->dump_retry_ms)
		return;
	r->dump_retry_ms = 0;
	r->dump_again = false;
	start_dump(r);
}

static void on_dump_done(void *arg, int status)
{
	struct repl *r = arg;

	r->dumping = false;
	if (status < 0) {
		/* a partial view: sweeping would delete live entries */
		r->st.dumps_aborted++;
		hafw_log_rl(&rl_dump, LOG_WARNING, "tracker dump aborted: %s; retrying in 1 s",
		            strerror(-status));
		r->dump_retry_ms = repl_now_ms(r) + 1000;
		return;
	}
	r->isweeping = true;
	r->isweep_f = r->isweep_x = 0;
	repl_kick_work(r);
}

static void swept_flow(struct cache_entry *e, void *arg)
{
	struct repl *r = arg;

	r->st.resync_removed++;
	repl_send_flow_destroy(r, &e->key, e->zone, repl_next_version(r));
}

static void swept_exp(struct cache_entry *e, void *arg)
{
	struct repl *r = arg;

	r->st.resync_removed++;
	repl_send_exp_destroy(r, e, repl_next_version(r));
}

/* Entries the dump did not show are gone (their destroy events were lost):
 * swept a slice per turn, each told to the peers. */
bool repl_local_work(struct repl *r, uint64_t t0)
{
	size_t n = 0;

	if (!r->isweeping)
		return false;
	while (!cache_gen_sweep_some(r->flows, &r->isweep_f, SWEEP_CHUNK, swept_flow, r, &n) ||
	       !cache_gen_sweep_some(r->exps, &r->isweep_x, SWEEP_CHUNK, swept_exp, r, &n))
		if (repl_slice_over(t0))
			return true;
	r->isweeping = false;
	repl_send_frame(r);
	if (r->dump_full) {
		r->full_valid = true;
		r->full_from = r->dump_full_from;
		r->full_to = r->seq;
		r->full_done_ms = repl_now_ms(r);
		r->dump_full = false;
	}
	hafw_log(LOG_INFO, "reconciled with the tracker: %zu flows, %zu expectations",
	         cache_count(r->flows), cache_count(r->exps));
	if (r->dump_again) {
		r->dump_again = false;
		start_dump(r);
	}
	return false;
}

const struct tracker_events repl_tracker_cb = {
    .flow = on_flow,
    .exp = on_exp,
    .overrun = on_overrun,
    .dump_flow = on_dump_flow,
    .dump_exp = on_dump_exp,
    .dump_done = on_dump_done,
    .got_flow = on_got_flow,
    .sink_done = repl_commit_sink_done,
};
