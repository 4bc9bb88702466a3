/* Replication core: lifecycle, clock and versions, the periodic tick, and
 * the read-only views. See repl.h and DESIGN.md "Inside syncd". */
#include "repl_int.h"
#include "config.h"
#include "log.h"
#include "rtxring.h"

#include <errno.h>
#include <event2/event.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

#define TICK_MS 100

/* ---- periodic and background work ---- */

static void work_cb(evutil_socket_t fd, short what, void *arg)
{
	struct repl *r = arg;
	uint64_t t0 = repl_slice_clock();
	bool more, blocked;

	(void)fd;
	(void)what;
	more = repl_local_work(r, t0);
	more |= repl_peers_work(r, t0);
	more |= repl_bulk_work(r, t0, &blocked);
	if (more) {
		repl_kick_work(r);
	} else if (blocked && !evtimer_pending(r->bulk_ev, NULL)) {
		/* a connection is full: look again in a millisecond */
		struct timeval ms = {0, 1000};

		evtimer_add(r->bulk_ev, &ms);
	}
	repl_slice_done(r, t0);
}

void repl_kick_work(struct repl *r)
{
	if (!evtimer_pending(r->work_ev, NULL)) {
		struct timeval now = {0, 0};

		evtimer_add(r->work_ev, &now);
	}
}

void repl_tick(struct repl *r)
{
	uint64_t now = repl_now_ms(r);

	if (now >= r->next_hb_ms) {
		repl_send_heartbeat(r);
		repl_links_probe(r);
		r->next_hb_ms = now + (uint64_t)r->cfg->sync_heartbeat_ms;
	}
	repl_peers_tick(r);
	repl_links_tick(r);
	repl_txq_tick(r);
	repl_dump_retry(r);
	if (r->isweeping)
		repl_kick_work(r);
}

static void tick_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	repl_tick(arg);
}

/* ---- lifecycle and views ---- */

void repl_flush_internal(struct repl *r)
{
	cache_flush(r->flows);
	cache_flush(r->exps);
	/* the tracker still holds them: learn them again, and since the
	 * cache is empty the dump announces all of them with fresh versions */
	repl_dump_request(r);
}

void repl_flush_external(struct repl *r)
{
	for (int i = 0; i < r->npeers; i++) {
		cache_flush(r->peers[i]->flows);
		cache_flush(r->peers[i]->exps);
		r->peers[i]->sweep_pending = r->peers[i]->sweeping = false;
	}
}

void repl_resync(struct repl *r)
{
	repl_dump_request(r);
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

struct hafw_filter *repl_filter(struct repl *r)
{
	return &r->filter;
}

void repl_flush_frames(struct repl *r)
{
	repl_send_frame(r);
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
	return i >= 0 && i < r->npeers ? r->peers[i] : NULL;
}

uint32_t repl_epoch(const struct repl *r)
{
	return r->epoch;
}

bool repl_dumping(const struct repl *r)
{
	return r->dumping || r->isweeping;
}

int repl_tracker_stats(struct repl *r, struct tracker_stat *out, int max)
{
	return r->trk ? r->tops->stats(r->trk, out, max) : 0;
}

int repl_chan_stats(struct repl *r, struct chan_stat *out, int max)
{
	return repl_link_stats(r, 0, out, max);
}

const struct repl_peer_stats *repl_gone_peers_stats(const struct repl *r)
{
	return &r->gone_peers_st;
}

int repl_control_stats(struct repl *r, struct chan_stat *out, int max)
{
	return r->cchan && r->ccops->stats ? r->ccops->stats(r->cchan, out, max) : 0;
}

struct repl *repl_new(const struct hafw_config *cfg, struct event_base *base,
                      const struct tracker_ops *tops, const struct chan_ops *cops,
                      const struct chan_ops *ccops, const struct hafw_filter *filter,
                      const struct repl_clock *clock)
{
	struct repl *r = calloc(1, sizeof(*r));

	if (!r)
		return NULL;
	r->cfg = cfg;
	r->base = base;
	r->tops = tops;
	r->cops = cops;
	r->ccops = cfg->sync_control ? ccops : NULL;
	r->filter = *filter;
	if (clock)
		r->clock = *clock;
	if (getrandom(&r->seed, sizeof(r->seed), 0) != sizeof(r->seed))
		r->seed = repl_wall_us(r) ^ (uint64_t)(uintptr_t)r;
	/* The epoch orders this node's runs: wall time in units of 1/16 s
	 * (wraps after 8.5 years; compared as serial numbers). A restart
	 * gets a later epoch unless the wall clock went back, which the
	 * receivers tolerate after a dead interval (repl_rx.c). */
	r->epoch = (uint32_t)(repl_wall_us(r) / 62500);
	r->hlc = repl_wall_us(r);
	r->flows = cache_new(4096, r->seed);
	r->exps = cache_new(256, r->seed);
	r->pending_gets = cache_new(64, r->seed);
	r->flush_ev = evtimer_new(base, repl_flush_cb, r);
	r->tick_ev = event_new(base, -1, EV_PERSIST, tick_cb, r);
	r->work_ev = evtimer_new(base, work_cb, r);
	r->bulk_ev = evtimer_new(base, work_cb, r);
	r->announce_ev = evtimer_new(base, repl_announce_cb, r);
	if (!r->flows || !r->exps || !r->pending_gets || !r->flush_ev || !r->tick_ev ||
	    !r->work_ev || !r->bulk_ev || !r->announce_ev || repl_peers_init(r) < 0 ||
	    repl_txq_init(r) < 0) {
		repl_free(r);
		return NULL;
	}
	return r;
}

int repl_start(struct repl *r, const char **what)
{
	struct timeval tick = {0, TICK_MS * 1000};
	size_t cap;
	int ret;

	ret = repl_links_open(r, what);
	if (ret < 0)
		return ret;
	if (r->max_dgram > HAFW_WIRE_MAX_DGRAM)
		r->max_dgram = HAFW_WIRE_MAX_DGRAM;
	r->txbuf = malloc(r->max_dgram);
	r->ring = rtxring_new((size_t)r->cfg->sync_retransmit_ring, r->max_dgram);
	if (!r->txbuf || !r->ring)
		return -ENOMEM;
	frame_init(&r->fb, r->txbuf + HAFW_WIRE_HDR_LEN, r->max_dgram - HAFW_WIRE_HDR_LEN);
	if (r->ccops) {
		*what = "control channel";
		ret = r->ccops->open(&r->cchan, r->cfg, 0, r->base, &repl_ctl_cb, r);
		if (ret < 0)
			return ret;
	}
	*what = "tracker";
	ret = r->tops->open(&r->trk, r->cfg, r->base, &repl_tracker_cb, r);
	if (ret < 0)
		return ret;
	/* a peer may hold as many entries as a tracker can; configurable */
	cap = (size_t)r->cfg->sync_max_entries;
	if (!cap && r->tops->max_entries)
		cap = r->tops->max_entries(r->trk);
	r->cap = cap ? cap : 1u << 20;
	/* heartbeat first, so peers learn our epoch even before the dump has
	 * anything to say */
	repl_send_heartbeat(r);
	r->next_hb_ms = repl_now_ms(r) + (uint64_t)r->cfg->sync_heartbeat_ms;
	event_add(r->tick_ev, &tick);
	*what = "tracker dump";
	repl_dump_request(r);
	return 0;
}

void repl_free(struct repl *r)
{
	if (!r)
		return;
	repl_commit_free(r);
	if (r->trk)
		r->tops->close(r->trk);
	repl_links_close(r);
	if (r->cchan)
		r->ccops->close(r->cchan);
	repl_peers_free(r);
	if (r->flush_ev)
		event_free(r->flush_ev);
	if (r->tick_ev)
		event_free(r->tick_ev);
	if (r->work_ev)
		event_free(r->work_ev);
	if (r->bulk_ev)
		event_free(r->bulk_ev);
	if (r->announce_ev)
		event_free(r->announce_ev);
	cache_free(r->flows);
	cache_free(r->exps);
	cache_free(r->pending_gets);
	repl_txq_free(r);
	free(r->txbuf);
	rtxring_free(r->ring);
	free(r);
}
