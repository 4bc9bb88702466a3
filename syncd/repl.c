/* Replication core. See repl.h and DESIGN.md "Inside syncd". */
#include "repl.h"
#include "config.h"
#include "flow_pb.h"
#include "frame.h"
#include "log.h"

#include <errno.h>
#include <event2/event.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

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

static struct hafw_ratelimit rl_rx = HAFW_RATELIMIT_INIT(5, 5);

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

static uint64_t now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000 + (uint64_t)ts.tv_nsec / 1000;
}

/* ---- transmit ---- */

static void send_frame(struct repl *r)
{
	struct hafw_wire_hdr h = {.type = HAFW_MSG_DATA};

	if (r->fb.events == 0)
		return;
	h.len = (uint16_t)r->fb.used;
	h.sender = (uint32_t)r->cfg->node_id;
	h.seq = ++r->seq;
	hafw_wire_hdr_write(&h, r->txbuf);
	if (r->cops->send(r->chan, r->txbuf, HAFW_WIRE_HDR_LEN + r->fb.used) < 0)
		r->st.send_errors++;
	r->st.frames_sent++;
	r->st.events_sent += r->fb.events;
	frame_init(&r->fb, r->txbuf + HAFW_WIRE_HDR_LEN, r->max_dgram - HAFW_WIRE_HDR_LEN);
}

static void flush_cb(evutil_socket_t fd, short what, void *arg)
{
	struct repl *r = arg;

	(void)fd;
	(void)what;
	r->flush_armed = false;
	send_frame(r);
}

static void queue_event(struct repl *r, int type, enum frame_obj obj, const uint8_t *blob,
                        size_t len)
{
	if (frame_add(&r->fb, type, obj, blob, len) == -ENOSPC) {
		send_frame(r);
		if (frame_add(&r->fb, type, obj, blob, len) < 0) {
			r->st.encode_errors++; /* larger than a datagram: cannot happen */
			return;
		}
	}
	if (!r->flush_armed) {
		struct timeval tv = {0, r->cfg->sync_flush_ms * 1000};

		evtimer_add(r->flush_ev, &tv);
		r->flush_armed = true;
	}
}

static void send_heartbeat(struct repl *r)
{
	Hafw__Heartbeat hb = HAFW__HEARTBEAT__INIT;
	struct hafw_wire_hdr h = {.type = HAFW_MSG_HEARTBEAT};
	uint8_t buf[HAFW_WIRE_HDR_LEN + 256];
	size_t len;

	send_frame(r); /* so last_seq covers everything queued */
	hb.node_id = (uint32_t)r->cfg->node_id;
	hb.has_role = 1;
	hb.role = (Hafw__Role)r->role;
	hb.has_last_seq = 1;
	hb.last_seq = r->seq;
	hb.has_flows = hb.has_expectations = 1;
	hb.flows = (uint32_t)cache_count(r->flows);
	hb.expectations = (uint32_t)cache_count(r->exps);
	hb.has_boot_id = 1;
	hb.boot_id = r->boot_id;
	hb.name = (char *)r->cfg->node_name;
	len = hafw__heartbeat__get_packed_size(&hb);
	if (len > sizeof(buf) - HAFW_WIRE_HDR_LEN)
		return;
	hafw__heartbeat__pack(&hb, buf + HAFW_WIRE_HDR_LEN);
	h.len = (uint16_t)len;
	h.sender = hb.node_id;
	h.seq = r->seq;
	hafw_wire_hdr_write(&h, buf);
	if (r->cops->send(r->chan, buf, HAFW_WIRE_HDR_LEN + len) < 0)
		r->st.send_errors++;
	r->st.heartbeats_sent++;
}

static void hb_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	send_heartbeat(arg);
}

/* ---- local events (source) ---- */

/* Store in the internal cache and, unless quiet, tell the peers. */
static void announce_flow(struct repl *r, int type, const struct hafw_flow *f)
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
	if (!(r->dumping && r->quiet_resync))
		queue_event(r, type, FRAME_FLOW, blob, (size_t)len);
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
	announce_flow(r, e ? HAFW_EV_UPDATE : HAFW_EV_NEW, f);
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

static void announce_exp(struct repl *r, int type, const struct hafw_exp *x)
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
	if (!(r->dumping && r->quiet_resync))
		queue_event(r, type, FRAME_EXP, blob, (size_t)len);
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
	struct hafw_exp old, xz = *in, *x = &xz;

	exp_find_zone(r, x);
	if (type == HAFW_EV_DESTROY) {
		r->st.local_exp_destroy++;
		/* the whole expectation is the key of a destroy: master and mask
		 * are required fields of the message */
		e = cache_find(r->exps, &x->tuple, x->zone);
		if (e && hafw_exp_decode(e->blob, e->len, &old) == 0) {
			uint8_t blob[HAFW_FLOW_MAX_ENCODED];
			int len;

			old.present = 0;
			len = hafw_exp_encode(&old, blob, sizeof(blob));
			cache_del(r->exps, &x->tuple, x->zone);
			if (len > 0)
				queue_event(r, HAFW_EV_DESTROY, FRAME_EXP, blob, (size_t)len);
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
	announce_exp(r, HAFW_EV_NEW, x);
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
	struct hafw_exp x;
	uint8_t blob[HAFW_FLOW_MAX_ENCODED];
	int len;

	r->st.resync_removed++;
	if (hafw_exp_decode(e->blob, e->len, &x) == 0) {
		x.present = 0;
		len = hafw_exp_encode(&x, blob, sizeof(blob));
		if (len > 0)
			queue_event(r, HAFW_EV_DESTROY, FRAME_EXP, blob, (size_t)len);
	}
}

/* Dump the tracker and reconcile the internal cache with it: entries the
 * dump did not show are gone (their destroy events were lost). */
static int resync(struct repl *r)
{
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
	cache_gen_sweep(r->flows, swept_flow, r);
	cache_gen_sweep(r->exps, swept_exp, r);
	send_frame(r);
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

/* ---- announce: a peer that joins late learns what we hold ---- */

#define ANNOUNCE_SLICE 2048

/* What remains of a timeout that was read `stamp` seconds ago. */
static uint32_t aged(uint32_t timeout, uint32_t stamp, uint32_t now)
{
	uint32_t age = now - stamp;

	return timeout > age + 1 ? timeout - age : 1;
}

/* Cached entries hold the timeout of their last event: send what is left. */
static int announce_entry_flow(struct cache_entry *e, void *arg)
{
	struct repl *r = arg;
	uint8_t blob[HAFW_FLOW_MAX_ENCODED];
	struct hafw_flow f;
	int len;

	if (hafw_flow_decode(e->blob, e->len, &f) < 0)
		return 0;
	if (f.present & HAFW_FA_TIMEOUT)
		f.timeout = aged(f.timeout, e->stamp, repl_now_s());
	len = hafw_flow_encode(&f, blob, sizeof(blob));
	if (len > 0)
		queue_event(r, HAFW_EV_NEW, FRAME_FLOW, blob, (size_t)len);
	return 0;
}

static int announce_entry_exp(struct cache_entry *e, void *arg)
{
	struct repl *r = arg;
	uint8_t blob[HAFW_FLOW_MAX_ENCODED];
	struct hafw_exp x;
	int len;

	if (hafw_exp_decode(e->blob, e->len, &x) < 0)
		return 0;
	if (x.present & HAFW_EA_TIMEOUT)
		x.timeout = aged(x.timeout, e->stamp, repl_now_s());
	len = hafw_exp_encode(&x, blob, sizeof(blob));
	if (len > 0)
		queue_event(r, HAFW_EV_NEW, FRAME_EXP, blob, (size_t)len);
	return 0;
}

static void announce_cb(evutil_socket_t fd, short what, void *arg)
{
	struct repl *r = arg;
	struct timeval next = {0, 1000};

	(void)fd;
	(void)what;
	if (!cache_walk_some(r->flows, &r->ann_flows, ANNOUNCE_SLICE, announce_entry_flow, r) ||
	    !cache_walk_some(r->exps, &r->ann_exps, ANNOUNCE_SLICE, announce_entry_exp, r)) {
		/* a short pause between slices lets receivers drain */
		evtimer_add(r->announce_ev, &next);
		return;
	}
	send_frame(r);
	r->announcing = false;
}

/* Until bulk resync over the control channel exists, a new or restarted
 * peer gets our state as ordinary NEW events, paced in slices. */
static void start_announce(struct repl *r)
{
	struct timeval now = {0, 0};

	r->st.announces++;
	r->ann_flows = r->ann_exps = 0;
	if (!r->announcing) {
		r->announcing = true;
		evtimer_add(r->announce_ev, &now);
	}
}

/* ---- receive ---- */

struct repl_peer *repl_peer_by_id(struct repl *r, uint32_t id)
{
	for (int i = 0; i < r->npeers; i++)
		if (r->peers[i].id == id)
			return &r->peers[i];
	return NULL;
}

static struct repl_peer *peer_get(struct repl *r, uint32_t id)
{
	struct repl_peer *p = repl_peer_by_id(r, id);

	if (p || r->npeers >= REPL_MAX_PEERS)
		return p;
	p = &r->peers[r->npeers];
	memset(p, 0, sizeof(*p));
	p->id = id;
	p->flows = cache_new(1024, r->seed);
	p->exps = cache_new(64, r->seed);
	if (!p->flows || !p->exps) {
		cache_free(p->flows);
		cache_free(p->exps);
		return NULL;
	}
	r->npeers++;
	hafw_log(LOG_NOTICE, "new peer %u", id);
	start_announce(r);
	return p;
}

static int apply_event(struct repl *r, struct repl_peer *p, const Hafw__Event *ev)
{
	uint8_t blob[HAFW_FLOW_MAX_ENCODED];
	int len;

	if (ev->type < HAFW__EVENT_TYPE__EV_NEW || ev->type > HAFW__EVENT_TYPE__EV_DESTROY ||
	    !ev->flow == !ev->exp)
		return -EINVAL;
	if (ev->flow) {
		struct hafw_flow f;

		if (hafw_flow_from_pb(ev->flow, &f) < 0)
			return -EINVAL;
		if (ev->type == HAFW__EVENT_TYPE__EV_DESTROY) {
			cache_del(p->flows, &f.orig, f.zone);
			return 0;
		}
		len = hafw_flow_encode(&f, blob, sizeof(blob));
		if (len < 0)
			return len;
		if (cache_put(p->flows, &f.orig, f.zone, blob, (size_t)len, repl_now_s()) < 0)
			r->st.cache_nomem++;
	} else {
		struct hafw_exp x;

		if (hafw_exp_from_pb(ev->exp, &x) < 0)
			return -EINVAL;
		if (ev->type == HAFW__EVENT_TYPE__EV_DESTROY) {
			cache_del(p->exps, &x.tuple, x.zone);
			return 0;
		}
		len = hafw_exp_encode(&x, blob, sizeof(blob));
		if (len < 0)
			return len;
		if (cache_put(p->exps, &x.tuple, x.zone, blob, (size_t)len, repl_now_s()) < 0)
			r->st.cache_nomem++;
	}
	return 0;
}

static void rx_data(struct repl *r, struct repl_peer *p, const struct hafw_wire_hdr *h,
                    const uint8_t *payload)
{
	Hafw__Frame *fr;

	if (p->seq_valid && h->seq != p->last_seq + 1) {
		int32_t d = (int32_t)(h->seq - p->last_seq);

		if (d > 1)
			p->lost_dgrams += (uint64_t)(d - 1);
	}
	p->last_seq = h->seq;
	p->seq_valid = true;
	fr = hafw__frame__unpack(NULL, h->len, payload);
	if (!fr) {
		r->st.bad_frames++;
		hafw_log_rl(&rl_rx, LOG_WARNING, "peer %u: undecodable frame (seq %u)", p->id,
		            h->seq);
		return;
	}
	p->frames++;
	for (size_t i = 0; i < fr->n_events; i++) {
		if (apply_event(r, p, fr->events[i]) < 0) {
			r->st.bad_events++;
			hafw_log_rl(&rl_rx, LOG_WARNING, "peer %u: invalid event in frame %u",
			            p->id, h->seq);
			continue;
		}
		p->events++;
		r->st.events_received++;
	}
	hafw__frame__free_unpacked(fr, NULL);
}

static void rx_heartbeat(struct repl *r, struct repl_peer *p, const struct hafw_wire_hdr *h,
                         const uint8_t *payload)
{
	Hafw__Heartbeat *hb = hafw__heartbeat__unpack(NULL, h->len, payload);

	if (!hb || hb->node_id != h->sender) {
		r->st.bad_frames++;
		if (hb)
			hafw__heartbeat__free_unpacked(hb, NULL);
		return;
	}
	r->st.heartbeats_received++;
	if (hb->has_boot_id && p->boot_id && hb->boot_id != p->boot_id) {
		/* it restarted: what it held before is not what it holds now, and
		 * it announces its state again right after this heartbeat */
		hafw_log(LOG_NOTICE, "peer %u restarted; dropping its %zu cached flows", p->id,
		         cache_count(p->flows));
		cache_flush(p->flows);
		cache_flush(p->exps);
		p->seq_valid = false;
		p->restarts++;
		start_announce(r);
	}
	if (hb->has_boot_id)
		p->boot_id = hb->boot_id;
	if (hb->has_role && hb->role <= HAFW__ROLE__ROLE_FAULT)
		p->role = (enum repl_role)hb->role;
	if (hb->name)
		snprintf(p->name, sizeof(p->name), "%s", hb->name);
	p->hb_flows = hb->flows;
	p->hb_exps = hb->expectations;
	hafw__heartbeat__free_unpacked(hb, NULL);
}

static void on_dgram(void *arg, const uint8_t *buf, size_t len)
{
	struct repl *r = arg;
	struct hafw_wire_hdr h;
	enum hafw_wire_err err = hafw_wire_hdr_parse(buf, len, &h);
	struct repl_peer *p;

	r->st.dgrams_received++;
	if (err != HAFW_WIRE_OK) {
		r->st.bad_dgrams[err]++;
		hafw_log_rl(&rl_rx, LOG_WARNING, "dropped datagram of %zu bytes: %s", len,
		            hafw_wire_err_name(err));
		return;
	}
	if (h.sender == (uint32_t)r->cfg->node_id) {
		r->st.own_dgrams++;
		return;
	}
	p = peer_get(r, h.sender);
	if (!p) {
		r->st.peers_refused++;
		return;
	}
	p->last_seen_ms = repl_now_ms();
	if (h.type == HAFW_MSG_DATA)
		rx_data(r, p, &h, buf + HAFW_WIRE_HDR_LEN);
	else if (h.type == HAFW_MSG_HEARTBEAT)
		rx_heartbeat(r, p, &h, buf + HAFW_WIRE_HDR_LEN);
	/* NACK is answered by the reliability layer (next protocol step) */
}

static const struct chan_events chan_cb = {.recv = on_dgram};

/* ---- commit ---- */

struct commit_ctx {
	struct repl *r;
	bool with_master;
	uint32_t now;
	uint64_t n, errors;
};

static int commit_flow(struct cache_entry *e, void *arg)
{
	struct commit_ctx *c = arg;
	struct hafw_flow f;
	int ret;

	if (hafw_flow_decode(e->blob, e->len, &f) < 0) {
		c->errors++;
		return 0;
	}
	if (!!(f.present & HAFW_FA_MASTER) != c->with_master)
		return 0;
	/* the peer's clock ran while the entry waited here */
	if (f.present & HAFW_FA_TIMEOUT)
		f.timeout = aged(f.timeout, e->stamp, c->now);
	ret = c->r->tops->put_flow(c->r->trk, &f);
	if (ret < 0)
		c->errors++;
	else
		c->errors += (uint64_t)ret;
	c->n++;
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
		x.timeout = aged(x.timeout, e->stamp, c->now);
	ret = c->r->tops->put_exp(c->r->trk, &x);
	c->errors += ret < 0 ? 1 : (uint64_t)ret;
	c->n++;
	return 0;
}

int repl_commit(struct repl *r, struct repl_commit_result *res)
{
	struct commit_ctx c = {.r = r, .now = repl_now_s()};
	uint64_t t0 = now_us(), nflows;
	struct timeval soon = {0, 0};
	bool muted;
	int ret;

	/* The tracker would report every committed entry back to us: with the
	 * subscription dropped it reports nothing and the commit runs at the
	 * table's speed. What real traffic changed meanwhile comes back with
	 * the reconciling dump scheduled below. */
	muted = r->tops->mute_events(r->trk, true) == 0;

	/* masters before the flows and expectations that name them */
	for (int pass = 0; pass < 2; pass++) {
		c.with_master = pass == 1;
		for (int i = 0; i < r->npeers; i++)
			cache_walk(r->peers[i].flows, commit_flow, &c);
		ret = r->tops->sink_flush(r->trk);
		c.errors += ret < 0 ? 0 : (uint64_t)ret;
	}
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
	res->usec = now_us() - t0;
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
	send_heartbeat(r);
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
		r->seed = r->boot_id = (uint64_t)now_us();
	r->flows = cache_new(4096, r->seed);
	r->exps = cache_new(256, r->seed);
	r->flush_ev = evtimer_new(base, flush_cb, r);
	r->hb_ev = event_new(base, -1, EV_PERSIST, hb_cb, r);
	r->resync_ev = evtimer_new(base, resync_cb, r);
	r->announce_ev = evtimer_new(base, announce_cb, r);
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
	ret = r->cops->open(&r->chan, r->cfg, r->base, &chan_cb, r);
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
	send_heartbeat(r);
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
