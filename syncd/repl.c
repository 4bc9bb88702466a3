/* Replication core. See repl.h and DESIGN.md "Inside syncd". */
#include "repl_int.h"
#include "config.h"
#include "flow_pb.h"
#include "log.h"

#include <errno.h>
#include <event2/event.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

uint64_t repl_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

uint32_t repl_now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint32_t)ts.tv_sec;
}

uint64_t repl_now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000 + (uint64_t)ts.tv_nsec / 1000;
}

/* What remains of a timeout that was read at `stamp` (monotonic s). */
uint32_t repl_aged(uint32_t timeout, uint32_t stamp, uint32_t now)
{
	uint32_t age = now - stamp;

	return timeout > age + 1 ? timeout - age : 1;
}

/* ---- local events (source) ---- */

/* Store in the internal cache and, unless quiet, tell the peers. */
static void store_flow(struct repl *r, int type, const struct hafw_flow *f, bool quiet)
{
	uint8_t blob[HAFW_FLOW_MAX_ENCODED];
	int len = hafw_flow_encode(f, blob, sizeof(blob));

	if (len < 0) {
		r->st.encode_errors++;
		return;
	}
	if (type != HAFW_EV_DESTROY &&
	    cache_put(r->flows, &f->orig, f->zone, blob, (size_t)len, repl_now_s()) < 0)
		r->st.cache_nomem++;
	r->zones_seen[f->zone / 64] |= 1ull << (f->zone % 64);
	if (!quiet)
		repl_queue_event(r, type, FRAME_FLOW, blob, (size_t)len);
}

static void announce_flow(struct repl *r, int type, const struct hafw_flow *f)
{
	store_flow(r, type, f, false);
}

/* After a commit, an entry the way a peer sent it needs no announcing:
 * that peer has it. Anything else the dump shows (traffic during the
 * commit) is news. */
static bool flow_from_peer(struct repl *r, const struct hafw_flow *f)
{
	for (int i = 0; i < r->npeers; i++) {
		struct cache_entry *e = cache_find(r->peers[i].flows, &f->orig, f->zone);
		struct hafw_flow pf;

		if (e && hafw_flow_decode(e->blob, e->len, &pf) == 0 &&
		    !hafw_flow_diff(&pf, f, UINT32_MAX))
			return true;
	}
	return false;
}

static bool exp_from_peer(struct repl *r, const struct hafw_exp *x)
{
	for (int i = 0; i < r->npeers; i++) {
		struct cache_entry *e = cache_find(r->peers[i].exps, &x->tuple, x->zone);
		struct hafw_exp px;

		if (e && hafw_exp_decode(e->blob, e->len, &px) == 0 &&
		    !hafw_exp_diff(&px, x, UINT32_MAX))
			return true;
	}
	return false;
}

static void destroy_flow_key(struct repl *r, const struct hafw_tuple *key, uint16_t zone)
{
	struct hafw_flow k;

	memset(&k, 0, sizeof(k));
	k.orig = *key;
	k.zone = zone;
	announce_flow(r, HAFW_EV_DESTROY, &k);
}

/* During a dump every entry is compared with what we hold: only real
 * differences are sent, so reconciling after an overrun costs little on
 * the sync link. Timeouts are ignored: they differ by the time elapsed. */
static void reconcile_flow(struct repl *r, const struct hafw_flow *f)
{
	struct cache_entry *e = cache_find(r->flows, &f->orig, f->zone);
	struct hafw_flow old;

	if (e && hafw_flow_decode(e->blob, e->len, &old) == 0 &&
	    !hafw_flow_diff(&old, f, UINT32_MAX)) {
		cache_touch(r->flows, e);
		return;
	}
	if (e)
		r->st.resync_changed++;
	else
		r->st.resync_added++;
	store_flow(r, e ? HAFW_EV_UPDATE : HAFW_EV_NEW, f, r->quiet_resync && flow_from_peer(r, f));
}

static void on_flow(void *arg, enum hafw_event_type type, const struct hafw_flow *f)
{
	struct repl *r = arg;
	struct cache_entry *e;
	struct hafw_flow merged;

	if (type == HAFW_EV_DESTROY) {
		r->st.local_destroy++;
		if (cache_del(r->flows, &f->orig, f->zone))
			destroy_flow_key(r, &f->orig, f->zone);
		return;
	}
	if (filter_ignores_flow(&r->filter, f)) {
		r->st.filtered++;
		return;
	}
	if (r->dumping) {
		reconcile_flow(r, f);
		return;
	}
	if (type == HAFW_EV_NEW)
		r->st.local_new++;
	else
		r->st.local_update++;
	/* an update event carries only what changed: merge into what we hold
	 * and send the whole flow, so each event stands on its own */
	e = type == HAFW_EV_UPDATE ? cache_find(r->flows, &f->orig, f->zone) : NULL;
	if (e && hafw_flow_decode(e->blob, e->len, &merged) == 0) {
		hafw_flow_merge(&merged, f);
		announce_flow(r, type, &merged);
	} else {
		announce_flow(r, type, f);
	}
}

static void store_exp(struct repl *r, int type, const struct hafw_exp *x, bool quiet)
{
	uint8_t blob[HAFW_FLOW_MAX_ENCODED];
	int len = hafw_exp_encode(x, blob, sizeof(blob));

	if (len < 0) {
		r->st.encode_errors++;
		return;
	}
	if (type != HAFW_EV_DESTROY &&
	    cache_put(r->exps, &x->tuple, x->zone, blob, (size_t)len, repl_now_s()) < 0)
		r->st.cache_nomem++;
	if (!quiet)
		repl_queue_event(r, type, FRAME_EXP, blob, (size_t)len);
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

/* Tell the peers an expectation is gone. Master, tuple and mask are the
 * key (required fields of the message); the cached copy has the zone. */
static void destroy_exp_entry(struct repl *r, const struct cache_entry *e)
{
	uint8_t blob[HAFW_FLOW_MAX_ENCODED];
	struct hafw_exp x;
	int len;

	if (hafw_exp_decode(e->blob, e->len, &x) < 0)
		return;
	x.present = 0;
	len = hafw_exp_encode(&x, blob, sizeof(blob));
	if (len > 0)
		repl_queue_event(r, HAFW_EV_DESTROY, FRAME_EXP, blob, (size_t)len);
}

static void on_exp(void *arg, enum hafw_event_type type, const struct hafw_exp *in)
{
	struct repl *r = arg;
	struct cache_entry *e;
	struct hafw_exp old, xz = *in, *x = &xz;

	exp_find_zone(r, x);
	if (type == HAFW_EV_DESTROY) {
		r->st.local_exp_destroy++;
		e = cache_find(r->exps, &x->tuple, x->zone);
		if (e) {
			destroy_exp_entry(r, e);
			cache_del(r->exps, &x->tuple, x->zone);
		}
		return;
	}
	if (filter_ignores_exp(&r->filter, x)) {
		r->st.filtered++;
		return;
	}
	if (r->dumping) {
		e = cache_find(r->exps, &x->tuple, x->zone);
		if (e && hafw_exp_decode(e->blob, e->len, &old) == 0 &&
		    !hafw_exp_diff(&old, x, UINT32_MAX)) {
			cache_touch(r->exps, e);
			return;
		}
		r->st.resync_added++;
	} else {
		r->st.local_exp_new++;
	}
	store_exp(r, HAFW_EV_NEW, x, r->dumping && r->quiet_resync && exp_from_peer(r, x));
}

static void swept_flow(struct cache_entry *e, void *arg)
{
	struct repl *r = arg;

	r->st.resync_removed++;
	destroy_flow_key(r, &e->key, e->zone);
}

static void swept_exp(struct cache_entry *e, void *arg)
{
	struct repl *r = arg;

	r->st.resync_removed++;
	destroy_exp_entry(r, e);
}

/* Dump the tracker and reconcile the internal cache with it: entries the
 * dump did not show are gone (their destroy events were lost). */
static int resync(struct repl *r)
{
	uint64_t t0 = repl_now_us();
	size_t before = cache_count(r->flows), removed;
	int ret;

	r->st.resyncs++;
	cache_gen_begin(r->flows);
	cache_gen_begin(r->exps);
	r->dumping = true;
	ret = r->tops->dump(r->trk);
	r->dumping = false;
	r->quiet_resync = false;
	if (ret < 0) {
		hafw_log(LOG_ERR, "tracker dump failed: %s; retrying in 1 s", strerror(-ret));
		struct timeval tv = {1, 0};
		evtimer_add(r->resync_ev, &tv);
		return ret;
	}
	removed = cache_gen_sweep(r->flows, swept_flow, r);
	removed += cache_gen_sweep(r->exps, swept_exp, r);
	repl_send_frame(r);
	hafw_log(LOG_INFO,
	         "reconciled with the tracker: %zu flows (was %zu), %zu entries gone, in %.3f s",
	         cache_count(r->flows), before, removed, (repl_now_us() - t0) / 1e6);
	return 0;
}

static void resync_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	resync(arg);
}

static void on_overrun(void *arg)
{
	struct repl *r = arg;

	/* not from inside the tracker's read callback: run on the next turn */
	if (!evtimer_pending(r->resync_ev, NULL)) {
		struct timeval tv = {0, 0};
		evtimer_add(r->resync_ev, &tv);
	}
}

static const struct tracker_events tracker_cb = {
    .flow = on_flow,
    .exp = on_exp,
    .overrun = on_overrun,
};

/* ---- lifecycle and views ---- */

void repl_flush_internal(struct repl *r)
{
	cache_flush(r->flows);
	cache_flush(r->exps);
}

void repl_flush_external(struct repl *r)
{
	for (int i = 0; i < r->npeers; i++) {
		cache_flush(r->peers[i].flows);
		cache_flush(r->peers[i].exps);
	}
}

void repl_set_role(struct repl *r, enum repl_role role)
{
	r->role = role;
	repl_send_heartbeat(r);
}

enum repl_role repl_role(const struct repl *r)
{
	return r->role;
}

const char *repl_role_name(enum repl_role role)
{
	static const char *const names[] = {"unknown", "primary", "backup", "fault"};

	return (unsigned)role < 4 ? names[role] : "?";
}

const struct repl_stats *repl_get_stats(const struct repl *r)
{
	return &r->st;
}

struct cache *repl_internal_flows(struct repl *r)
{
	return r->flows;
}

struct cache *repl_internal_exps(struct repl *r)
{
	return r->exps;
}

int repl_npeers(const struct repl *r)
{
	return r->npeers;
}

struct repl_peer *repl_peer_at(struct repl *r, int i)
{
	return i >= 0 && i < r->npeers ? &r->peers[i] : NULL;
}

int repl_tracker_stats(struct repl *r, struct tracker_stat *out, int max)
{
	return r->trk ? r->tops->stats(r->trk, out, max) : 0;
}

int repl_chan_stats(struct repl *r, struct chan_stat *out, int max)
{
	return r->chan ? r->cops->stats(r->chan, out, max) : 0;
}

struct repl *repl_new(const struct hafw_config *cfg, struct event_base *base,
                      const struct tracker_ops *tops, const struct chan_ops *cops,
                      const struct hafw_filter *filter)
{
	struct repl *r = calloc(1, sizeof(*r));

	if (!r)
		return NULL;
	r->cfg = cfg;
	r->base = base;
	r->tops = tops;
	r->cops = cops;
	r->filter = *filter;
	if (getrandom(&r->seed, sizeof(r->seed), 0) != sizeof(r->seed) ||
	    getrandom(&r->boot_id, sizeof(r->boot_id), 0) != sizeof(r->boot_id))
		r->seed = r->boot_id = (uint64_t)repl_now_us();
	r->flows = cache_new(4096, r->seed);
	r->exps = cache_new(256, r->seed);
	r->flush_ev = evtimer_new(base, repl_flush_cb, r);
	r->hb_ev = event_new(base, -1, EV_PERSIST, repl_hb_cb, r);
	r->resync_ev = evtimer_new(base, resync_cb, r);
	r->announce_ev = evtimer_new(base, repl_announce_cb, r);
	if (!r->flows || !r->exps || !r->flush_ev || !r->hb_ev || !r->resync_ev ||
	    !r->announce_ev) {
		repl_free(r);
		return NULL;
	}
	return r;
}

int repl_start(struct repl *r, const char **what)
{
	struct timeval hb = {r->cfg->sync_heartbeat_ms / 1000,
	                     (r->cfg->sync_heartbeat_ms % 1000) * 1000};
	int ret;

	*what = "channel";
	ret = r->cops->open(&r->chan, r->cfg, r->base, &repl_chan_cb, r);
	if (ret < 0)
		return ret;
	r->max_dgram = r->cops->max_dgram(r->chan);
	if (r->max_dgram > HAFW_WIRE_MAX_DGRAM)
		r->max_dgram = HAFW_WIRE_MAX_DGRAM;
	r->txbuf = malloc(r->max_dgram);
	if (!r->txbuf)
		return -ENOMEM;
	frame_init(&r->fb, r->txbuf + HAFW_WIRE_HDR_LEN, r->max_dgram - HAFW_WIRE_HDR_LEN);
	*what = "tracker";
	ret = r->tops->open(&r->trk, r->cfg, r->base, &tracker_cb, r);
	if (ret < 0)
		return ret;
	/* heartbeat first: peers that knew an earlier run of us drop its state
	 * before the dump below announces the current one */
	repl_send_heartbeat(r);
	event_add(r->hb_ev, &hb);
	*what = "tracker dump";
	return resync(r);
}

void repl_free(struct repl *r)
{
	if (!r)
		return;
	if (r->trk)
		r->tops->close(r->trk);
	if (r->chan)
		r->cops->close(r->chan);
	for (int i = 0; i < r->npeers; i++) {
		cache_free(r->peers[i].flows);
		cache_free(r->peers[i].exps);
	}
	if (r->flush_ev)
		event_free(r->flush_ev);
	if (r->hb_ev)
		event_free(r->hb_ev);
	if (r->resync_ev)
		event_free(r->resync_ev);
	if (r->announce_ev)
		event_free(r->announce_ev);
	cache_free(r->flows);
	cache_free(r->exps);
	free(r->txbuf);
	free(r);
}
