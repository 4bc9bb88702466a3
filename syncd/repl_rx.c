/* Receive: validate each datagram, follow each peer's epoch and sequence,
 * and keep its external caches. Every refusal has its counter.
 *
 * Order of checks, cheapest first: header, sender (admission), epoch,
 * sequence window, then the payload. A datagram of a new epoch is the
 * peer's restart, handled once before the datagram is applied; entries of
 * the old epoch are only marked then, and swept when the new epoch's full
 * state is known to have arrived (repl_peer.c). */
#include "repl_int.h"
#include "config.h"
#include "flow_pb.h"
#include "log.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

/* consecutive datagrams behind the window before the window follows the
 * sender anyway (a corrupted sequence number must not silence a peer) */
#define STALE_RUN_RESET 64

static struct hafw_ratelimit rl_rx = HAFW_RATELIMIT_INIT(5, 5);
static struct hafw_ratelimit rl_restart = HAFW_RATELIMIT_INIT(10, 5);

struct rx_ctx {
	struct repl *r;
	struct repl_peer *p;
};

/* Can a change of this version be written over entry e? An entry of an
 * earlier epoch (not current in the generation) always yields: the new
 * epoch's state replaces it. */
static bool newer_or_equal(const struct repl_peer *p, const struct cache *c,
                           const struct cache_entry *e, uint64_t version)
{
	return !e || (p->yield_old_gen && !cache_is_current(c, e)) || version >= e->version;
}

static void apply_one(struct rx_ctx *x, struct cache *c, const struct hafw_tuple *key,
                      uint16_t zone, const struct frame_event *ev, const uint8_t *blob, size_t len)
{
	struct repl *r = x->r;
	struct repl_peer *p = x->p;
	struct cache_entry *e = cache_lookup(c, key, zone);
	int ret;

	if (!newer_or_equal(p, c, e, ev->version)) {
		if ((e->flags & CACHE_F_TOMB) && ev->type != HAFW_EV_DESTROY)
			p->st.resurrections++;
		else
			p->st.stale_events++;
		return;
	}
	/* a destroy leaves a tombstone, also for a key we never held: its
	 * create may still be on the way. Tombstones have their own bound, so
	 * a burst of destroys never keeps live entries out. */
	if (ev->type == HAFW_EV_DESTROY) {
		if (cache_tombs(p->flows) + cache_tombs(p->exps) >= r->cap) {
			p->st.tombs_dropped++;
			if (e)
				cache_del(c, key, zone);
			return;
		}
		ret = cache_put_tomb(c, key, zone, repl_now_s(r), ev->version);
	} else {
		if ((!e || (e->flags & CACHE_F_TOMB)) &&
		    cache_count(p->flows) + cache_count(p->exps) >= r->cap) {
			p->st.cap_refused++;
			return;
		}
		ret = cache_put(c, key, zone, blob, len, repl_now_s(r), ev->version);
	}
	if (ret < 0) {
		p->st.nomem++;
		r->st.cache_nomem++;
		return;
	}
	repl_observe_version(r, ev->version);
}

static void apply_event(const struct frame_event *ev, void *arg)
{
	struct rx_ctx *x = arg;
	uint8_t blob[HAFW_FLOW_MAX_ENCODED];
	int len = 0;

	if (ev->obj == FRAME_FLOW) {
		const struct hafw_flow *f = &ev->u.flow;

		if (ev->type != HAFW_EV_DESTROY &&
		    (len = hafw_flow_encode(f, blob, sizeof(blob))) < 0) {
			x->p->st.bad_events++;
			return;
		}
		apply_one(x, x->p->flows, &f->orig, f->zone, ev, blob, (size_t)len);
	} else {
		const struct hafw_exp *e = &ev->u.exp;

		if (ev->type != HAFW_EV_DESTROY &&
		    (len = hafw_exp_encode(e, blob, sizeof(blob))) < 0) {
			x->p->st.bad_events++;
			return;
		}
		apply_one(x, x->p->exps, &e->tuple, e->zone, ev, blob, (size_t)len);
	}
}

uint64_t repl_apply_frame(struct repl *r, struct repl_peer *p, const struct hafw_wire_hdr *h,
                          const uint8_t *payload)
{
	struct rx_ctx c = {r, p};
	unsigned bad, unknown;
	int n;

	n = frame_read(payload, h->len, apply_event, &c, &bad, &unknown);
	p->st.unknown_fields += unknown;
	if (n < 0) {
		p->st.bad_frames++;
		hafw_log_rl(&rl_rx, LOG_WARNING, "peer %u: undecodable frame (seq %u)", p->id,
		            h->seq);
		return 0;
	}
	p->st.frames++;
	p->st.events += (uint64_t)n;
	r->st.events_received += (uint64_t)n;
	if (bad) {
		p->st.bad_events += bad;
		hafw_log_rl(&rl_rx, LOG_WARNING, "peer %u: %u invalid events in frame %u", p->id,
		            bad, h->seq);
	}
	return (uint64_t)n;
}

static void rx_data(struct repl *r, struct repl_peer *p, const struct hafw_wire_hdr *h,
                    const uint8_t *payload, bool late)
{
	(void)late; /* versions keep a late frame from undoing newer state */
	repl_apply_frame(r, p, h, payload);
}

/* A peer asks for our full state: answer with an announce, unless one runs
 * or one just finished (the asker has not seen our heartbeat about it
 * yet). */
static void full_state_requested(struct repl *r)
{
	uint64_t now = repl_now_ms(r);

	r->st.announce_requests++;
	if (r->announcing || (r->full_valid && r->full_done_ms &&
	                      now - r->full_done_ms < 2 * (uint64_t)r->cfg->sync_heartbeat_ms))
		return;
	repl_start_announce(r);
}

/* The peer's whole table is here once every datagram of its last full
 * transmission arrived: then what an earlier epoch left can go. If any of
 * it is missing, ask for another (need_full in our heartbeats). */
static void check_full_state(struct repl *r, struct repl_peer *p, const Hafw__Heartbeat *hb)
{
	bool empty;

	if (!p->sweep_pending || p->sweeping || !hb->has_full_from_seq || !hb->has_full_to_seq)
		return;
	/* a transmission that sent nothing: the sender's table was empty, and
	 * everything of an earlier epoch goes; but only if we have followed
	 * the sender since then (else live changes after it may be missing) */
	empty = hb->full_from_seq == hb->full_to_seq + 1 && p->win.valid &&
	        !seq_after(p->win.first, hb->full_from_seq);
	if (!seq_after(p->mark_seq, hb->full_from_seq) &&
	    (empty || seqwin_has_all(&p->win, hb->full_from_seq, hb->full_to_seq))) {
		p->sweeping = true;
		p->need_full = false;
		p->sweep_cursor_f = p->sweep_cursor_x = 0;
		repl_kick_work(r);
		return;
	}
	if (!p->need_full) {
		p->need_full = true;
		p->st.sweeps_skipped++;
		repl_bulk_request(r, p);
	}
}

/* Tail loss: what was missing before the peer's heartbeat of a while ago
 * and still has not come is given up; the heartbeats older than that point
 * are dropped from the history. Returns how many numbers were given up. */
static uint32_t give_up_old_holes(struct repl *r, struct repl_peer *p)
{
	uint64_t now = repl_now_ms(r),
	         age = (uint64_t)r->cfg->sync_heartbeat_ms * REPL_GIVE_UP_HEARTBEATS;
	uint32_t given_up = 0;
	int at = -1;

	if (age < REPL_GIVE_UP_MIN_MS)
		age = REPL_GIVE_UP_MIN_MS;
	/* the newest heartbeat that is old enough, and at least that many
	 * heartbeats back (a burst of late heartbeats is not time passing) */
	for (int i = 0; i + REPL_GIVE_UP_HEARTBEATS <= (int)p->nhb; i++)
		if (now - p->hb_ms[i] >= age)
			at = i;
	if (at < 0) {
		/* the history is full of young heartbeats: the oldest goes */
		if (p->nhb < REPL_HB_HISTORY)
			return 0;
		at = 0;
	}
	given_up = seqwin_give_up(&p->win, p->hb_seqs[at]);
	p->nhb -= (unsigned)at + 1;
	memmove(p->hb_seqs, p->hb_seqs + at + 1, sizeof(p->hb_seqs[0]) * p->nhb);
	memmove(p->hb_ms, p->hb_ms + at + 1, sizeof(p->hb_ms[0]) * p->nhb);
	return given_up;
}

static void rx_heartbeat(struct repl *r, struct repl_peer *p, const struct hafw_wire_hdr *h,
                         const uint8_t *payload, bool late)
{
	Hafw__Heartbeat *hb;
	uint64_t given_up = 0;

	/* a heartbeat that comes after later datagrams (reordered, or resent
	 * for a NACK) only fills its hole: what it says is older than what
	 * we know */
	if (late) {
		p->st.late_heartbeats++;
		return;
	}
	hb = hafw__heartbeat__unpack(NULL, h->len, payload);

	if (!hb || hb->node_id != h->sender) {
		p->st.bad_heartbeats++;
		if (hb)
			hafw__heartbeat__free_unpacked(hb, NULL);
		return;
	}
	r->st.heartbeats_received++;
	p->st.heartbeats++;
	p->st.unknown_fields += hb->base.n_unknown_fields;
	if (hb->has_role && hb->role <= HAFW__ROLE__ROLE_FAULT)
		p->role = (enum repl_role)hb->role;
	if (hb->name && p->configured && strcmp(hb->name, p->name)) {
		p->st.name_mismatch++;
		hafw_log_rl(&rl_rx, LOG_WARNING,
		            "peer %u calls itself \"%.63s\", configured as \"%s\"", p->id, hb->name,
		            p->name);
	} else if (hb->name) {
		snprintf(p->name, sizeof(p->name), "%s", hb->name);
	}
	p->hb_flows = hb->flows;
	p->hb_exps = hb->expectations;
	given_up = give_up_old_holes(r, p);
	p->st.lost_dgrams += given_up;
	if (p->nhb == REPL_HB_HISTORY) {
		memmove(p->hb_seqs, p->hb_seqs + 1, sizeof(p->hb_seqs[0]) * --p->nhb);
		memmove(p->hb_ms, p->hb_ms + 1, sizeof(p->hb_ms[0]) * p->nhb);
	}
	p->hb_seqs[p->nhb] = h->seq;
	p->hb_ms[p->nhb++] = repl_now_ms(r);
	if (given_up)
		repl_resync_peer(r, p, false);
	check_full_state(r, p, hb);
	if (hb->has_digest)
		repl_digest_check(r, p, hb->digest);
	for (size_t i = 0; i < hb->n_need_full; i++)
		if (hb->need_full[i] == (uint32_t)r->cfg->node_id)
			full_state_requested(r);
	hafw__heartbeat__free_unpacked(hb, NULL);
}

/* The peer runs a new epoch: it restarted. Its old state stays until the
 * new state is complete (marked now, swept later), and it needs ours. */
static void peer_restarted(struct repl *r, struct repl_peer *p, uint32_t epoch, uint32_t seq)
{
	p->st.restarts++;
	hafw_log_rl(&rl_restart, LOG_NOTICE,
	            "peer %u restarted (epoch %u -> %u); keeping its %zu flows until its state is "
	            "complete",
	            p->id, p->epoch, epoch, cache_count(p->flows));
	p->epoch = epoch;
	seqwin_reset(&p->win);
	p->nack_valid = false;
	p->nhb = 0;
	cache_gen_begin(p->flows);
	cache_gen_begin(p->exps);
	p->sweep_pending = true;
	p->mark_seq = seq;
	p->yield_old_gen = true;
	p->sweeping = false; /* a sweep of the epoch before would take new entries */
	p->need_full = false;
	p->synced = false;
	p->bulk_rx_id = 0; /* a bulk of its earlier run is worthless now */
	p->bulk_rx_active = false;
	repl_bulk_forget(p);
	if (!(r->ccops && r->cchan))
		repl_start_announce(r); /* else it pulls a bulk */
	else if (p->ctl_up)
		repl_bulk_request(r, p); /* we pull one from it */
}

static bool check_epoch(struct repl *r, struct repl_peer *p, const struct hafw_wire_hdr *h,
                        uint64_t now)
{
	int32_t d;

	if (!p->epoch_valid) {
		/* first contact: like a restart with nothing to keep */
		p->epoch_valid = true;
		p->epoch = h->epoch;
		seqwin_reset(&p->win);
		p->nack_valid = false;
		p->sweep_pending = true;
		p->mark_seq = h->seq;
		/* a dump that announces our whole table is on its way to it
		 * already; if it missed the start, it asks (need_full). With a
		 * control channel it pulls a bulk instead. */
		if (!(r->dumping && r->dump_full) && !(r->ccops && r->cchan))
			repl_start_announce(r);
		return true;
	}
	d = seq_diff(h->epoch, p->epoch);
	if (d == 0)
		return true;
	/* an earlier epoch is a late datagram of a run that is over, unless
	 * the current epoch has been silent for a dead interval: then the
	 * peer's wall clock went back across its restart */
	if (d < 0 && now - p->epoch_seen_ms < (uint64_t)r->cfg->sync_dead_interval_ms) {
		p->st.stale_epoch++;
		return false;
	}
	peer_restarted(r, p, h->epoch, h->seq);
	return true;
}

/* Returns false to drop the datagram; *late: it filled a hole. */
static bool check_seq(struct repl *r, struct repl_peer *p, uint32_t seq, bool via_ctl, bool *late)
{
	uint64_t lost;

	*late = false;
	/* numbers skipped on arrival: each a hole, repaired or not */
	if (p->win.valid && seq_after(seq, p->win.hi + 1) &&
	    seq_diff(seq, p->win.hi) <= SEQWIN_BITS)
		p->st.gaps += (uint64_t)seq_diff(seq, p->win.hi) - 1;
	switch (seqwin_check(&p->win, seq, &lost)) {
	case SEQWIN_NEW:
		p->st.lost_dgrams += lost;
		if (lost)
			repl_resync_peer(r, p, false);
		break;
	case SEQWIN_LATE:
		p->st.late_dgrams++;
		*late = true;
		break;
	case SEQWIN_DUP:
		p->st.dup_dgrams++;
		p->stale_run = 0;
		return false;
	case SEQWIN_STALE:
		p->st.stale_dgrams++;
		/* a retransmit that came late (over the connection, or after
		 * its hole was given up) is stale by nature: only a run of
		 * stale numbers on the data path that lasts is suspicious */
		if (via_ctl)
			return false;
		if (!p->stale_run++)
			p->stale_since_ms = repl_now_ms(r);
		if (p->stale_run < STALE_RUN_RESET ||
		    repl_now_ms(r) - p->stale_since_ms < (uint64_t)r->cfg->sync_dead_interval_ms)
			return false;
		/* far behind for this long: the window, not the sender, is
		 * wrong (a corrupted number moved it) */
		p->st.window_resets++;
		seqwin_reset(&p->win);
		p->nack_valid = false;
		seqwin_check(&p->win, seq, &lost);
		break;
	}
	p->stale_run = 0;
	return true;
}

typedef void (*rx_fn)(struct repl *r, struct repl_peer *p, const struct hafw_wire_hdr *h,
                      const uint8_t *payload, bool late);

/* Dispatch of numbered datagrams by type (the header parser already
 * refused unknown types; NACKs are not numbered, see on_dgram). */
static const rx_fn rx_table[HAFW_MSG_MAX + 1] = {
    [HAFW_MSG_DATA] = rx_data,
    [HAFW_MSG_HEARTBEAT] = rx_heartbeat,
};

void repl_rx_dgram(struct repl *r, const uint8_t *buf, size_t len, const struct chan_addr *from)
{
	struct hafw_wire_hdr h;
	enum hafw_wire_err err = hafw_wire_hdr_parse(buf, len, &h);
	struct repl_peer *p;
	uint64_t now;
	bool late;

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
	p = repl_peer_admit(r, h.sender, from);
	if (!p)
		return;
	now = repl_now_ms(r);
	if (!check_epoch(r, p, &h, now))
		return;
	if (from)
		p->link_seen_ms[from->link < REPL_MAX_LINKS ? from->link : 0] = now;
	if (h.type == HAFW_MSG_PROBE) {
		/* alive on that link; its address there is not where it sends */
		p->st.probes++;
		repl_peer_seen(r, p, NULL);
		return;
	}
	if (h.type == HAFW_MSG_NACK) {
		/* to us alone, outside the numbered stream */
		repl_peer_seen(r, p, from);
		repl_rx_nack(r, p, &h, buf + HAFW_WIRE_HDR_LEN, from);
		return;
	}
	if (!check_seq(r, p, h.seq, !from, &late))
		return;
	p->st.dgrams++;
	p->epoch_seen_ms = now;
	repl_peer_seen(r, p, from);
	if (from && !p->ctl_added)
		repl_bulk_connect(r, p);
	if (h.type <= HAFW_MSG_MAX && rx_table[h.type])
		rx_table[h.type](r, p, &h, buf + HAFW_WIRE_HDR_LEN, late);
	else
		p->st.unknown_types++; /* a later minor version's, or misplaced */
	repl_nack_maybe(r, p);
}
