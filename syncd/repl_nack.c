/* Repair: NACKs for the holes in a peer's numbered stream, answered from
 * the retransmit ring; a resync (the peer's full state again, marked and
 * swept) when a hole cannot be filled or the digests keep disagreeing.
 *
 * NACKs go to the one peer they concern (unicast): fresh holes at once,
 * holes still open again every sync.nack_interval_ms (see repl_nack_maybe);
 * the answer is the very datagrams, byte for byte, to the asker only. When
 * a hole outlives two NACK rounds (the data path keeps failing, or only
 * unicast does) and a control connection is up, its NACK goes over it,
 * and so do the retransmits that answer it. */
#include "repl_int.h"
#include "config.h"
#include "flow_pb.h"
#include "log.h"
#include "rtxring.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* per NACK datagram (packed varints: fits a 1500-byte MTU), and NACK
 * datagrams per round */
#define NACK_MAX_RANGES 128
#define NACK_MAX_DGRAMS 4
/* fresh holes are NACKed at most this often */
#define NACK_FRESH_MS 2
/* retransmits for one NACK: a storm of NACKs costs bounded work */
#define NACK_MAX_RESEND 2048

static struct hafw_ratelimit rl_repair = HAFW_RATELIMIT_INIT(10, 5);

static int forget_collect(struct cache_entry *e, void *arg)
{
	struct {
		struct hafw_tuple key[64];
		uint16_t zone[64];
		size_t n;
	} *f = arg;

	if (f->n < 64) {
		f->key[f->n] = e->key;
		f->zone[f->n++] = e->zone;
	}
	return 0;
}

/* To p at `to` on the data channel, or over its control connection when
 * to is NULL. */
static int send_peer(struct repl *r, struct repl_peer *p, const struct chan_addr *to,
                     const uint8_t *buf, size_t len)
{
	if (to)
		return r->cops->send_to ? repl_send_to(r, to, buf, len) : -EOPNOTSUPP;
	if (!r->ccops || !r->cchan)
		return -ENOTCONN;
	return r->ccops->send_peer(r->cchan, p->id, buf, len);
}

static unsigned send_nack(struct repl *r, struct repl_peer *p, uint32_t epoch,
                          const uint32_t (*ranges)[2], unsigned n, bool miss,
                          const struct chan_addr *to)
{
	Hafw__Nack nk = HAFW__NACK__INIT;
	struct hafw_wire_hdr h = {.type = HAFW_MSG_NACK};
	uint32_t flat[2 * NACK_MAX_RANGES];
	/* worst case: five bytes per range value, three fields of at most
	 * six bytes, the packed field's tag and length, miss */
	uint8_t buf[HAFW_WIRE_HDR_LEN + 32 + 2 * NACK_MAX_RANGES * 5];
	size_t len;

	for (unsigned i = 0; i < n; i++) {
		flat[2 * i] = ranges[i][0];
		flat[2 * i + 1] = ranges[i][1];
	}
	nk.node_id = (uint32_t)r->cfg->node_id;
	nk.target = p->id;
	nk.has_epoch = 1;
	nk.epoch = epoch;
	nk.n_ranges = 2 * n;
	nk.ranges = flat;
	nk.has_miss = miss;
	nk.miss = miss;
	/* as many of the ranges as fit a datagram (a small sync.mtu, or
	 * large numbers that take five bytes each): the rest go next */
	for (;;) {
		len = hafw__nack__get_packed_size(&nk);
		if (len <= sizeof(buf) - HAFW_WIRE_HDR_LEN &&
		    (!to || HAFW_WIRE_HDR_LEN + len <= r->max_dgram))
			break;
		if (nk.n_ranges <= 2) {
			r->st.send_errors++; /* cannot be sent at all */
			return n;
		}
		nk.n_ranges = (nk.n_ranges / 4) * 2;
	}
	hafw__nack__pack(&nk, buf + HAFW_WIRE_HDR_LEN);
	h.len = (uint16_t)len;
	h.sender = nk.node_id;
	h.epoch = r->epoch;
	h.seq = 0; /* not part of our numbered stream (it goes to one peer) */
	hafw_wire_hdr_write(&h, buf);
	if (send_peer(r, p, to, buf, HAFW_WIRE_HDR_LEN + len) < 0)
		r->st.send_errors++;
	return (unsigned)(nk.n_ranges / 2);
}

/* NACK ranges in datagrams of at most NACK_MAX_RANGES, to `to` (NULL: the
 * control connection). */
static void nack_ranges(struct repl *r, struct repl_peer *p, uint32_t (*ranges)[2], unsigned n,
                        const struct chan_addr *to)
{
	for (unsigned i = 0; i < n;) {
		unsigned k = n - i < NACK_MAX_RANGES ? n - i : NACK_MAX_RANGES;

		i += send_nack(r, p, p->epoch, (const uint32_t(*)[2])(ranges + i), k, false, to);
		p->st.nacks_sent++;
		if (!to)
			p->st.nacks_sent_control++;
	}
	p->st.nack_ranges += n;
}

/* Holes are NACKed as soon as they appear (fresh ones, at most every
 * NACK_FRESH_MS), and those still open again every sync.nack_interval_ms.
 * A hole that outlived two such rounds goes over the control connection
 * (the data path keeps losing it); younger ones stay on the data path. */
void repl_nack_maybe(struct repl *r, struct repl_peer *p)
{
	uint32_t ranges[NACK_MAX_RANGES * NACK_MAX_DGRAMS][2];
	const unsigned max = NACK_MAX_RANGES * NACK_MAX_DGRAMS;
	uint64_t now;
	unsigned n, k;

	if (!seqwin_missing(&p->win)) {
		p->behind_ms = 0;
		return;
	}
	now = repl_now_ms(r);
	if (!p->behind_ms)
		p->behind_ms = now;
	if (!r->cfg->sync_nack || !p->epoch_valid || !p->addr.len)
		return;
	/* the marks are numbers of this window (a reset or a new epoch
	 * starts them again) */
	if (!p->nack_valid || seq_after(seqwin_lo(&p->win), p->nack_hi + 1) ||
	    seq_after(p->nack_hi, p->win.hi)) {
		p->nack_valid = true;
		p->nack_hi = p->nack_esc_hi = p->nack_round_hi = seqwin_lo(&p->win) - 1;
	}
	if (seq_after(p->win.hi, p->nack_hi) && now - p->nack_fresh_ms >= NACK_FRESH_MS) {
		n = seqwin_holes_from(&p->win, p->nack_hi + 1, ranges, max);
		if (n)
			nack_ranges(r, p, ranges, n, &p->addr);
		p->nack_hi = p->win.hi;
		p->nack_fresh_ms = now;
	}
	if (now - p->nack_ms < (uint64_t)r->cfg->sync_nack_interval_ms)
		return;
	/* again, what is still open of what was NACKed a round ago or
	 * earlier (younger holes had no time to be answered) */
	n = seqwin_holes(&p->win, ranges, max);
	for (k = 0; k < n && !seq_after(ranges[k][0], p->nack_round_hi); k++)
		if (seq_after(ranges[k][1], p->nack_round_hi))
			ranges[k][1] = p->nack_round_hi;
	n = k;
	/* the first k are older than two rounds: over the connection */
	for (k = 0; k < n && !seq_after(ranges[k][0], p->nack_esc_hi); k++)
		;
	if (k && p->ctl_up) {
		nack_ranges(r, p, ranges, k, NULL);
		nack_ranges(r, p, ranges + k, n - k, &p->addr);
	} else if (n) {
		nack_ranges(r, p, ranges, n, &p->addr);
	}
	p->nack_esc_hi = p->nack_round_hi;
	p->nack_round_hi = p->nack_hi;
	p->nack_ms = now;
}

static void mark_for_full_state(struct repl *r, struct repl_peer *p)
{
	/* what the full state does not refresh goes when it is complete; the
	 * versions still decide (this is the same run of the peer) */
	cache_gen_begin(p->flows);
	cache_gen_begin(p->exps);
	p->sweep_pending = true;
	p->mark_seq = p->win.hi + 1;
	p->sweeping = false;
	p->yield_old_gen = false;
	p->need_full = true;
	p->synced = false;
	p->digest_bad_ms = 0;
	p->resync_ms = repl_now_ms(r);
	repl_bulk_request(r, p);
}

int repl_resync_peers(struct repl *r, uint32_t id)
{
	int n = 0;

	for (int i = 0; i < r->npeers; i++) {
		struct repl_peer *p = r->peers[i];

		if (id && p->id != id)
			continue;
		if (!p->sweep_pending) {
			p->st.resyncs_requested++;
			mark_for_full_state(r, p);
		}
		n++;
	}
	/* the request travels in our heartbeat: send one now */
	if (n)
		repl_send_heartbeat(r);
	return n;
}

void repl_resync_peer(struct repl *r, struct repl_peer *p, bool digest)
{
	if (!r->cfg->sync_resync || p->sweep_pending)
		return;
	if (digest)
		p->st.resyncs_digest++;
	else
		p->st.resyncs_loss++;
	hafw_log_rl(&rl_repair, LOG_NOTICE, "peer %u (%s): %s; asking for its full state", p->id,
	            p->name[0] ? p->name : "?",
	            digest ? "its digest disagrees with our copy" : "datagrams lost for good");
	mark_for_full_state(r, p);
}

bool repl_ready(struct repl *r, char *why, size_t len)
{
	if (!r->full_valid) {
		snprintf(why, len, "still learning this node's own table from the tracker");
		return false;
	}
	/* a peer not heard yet counts as down: right after a start that is
	 * every peer, so give them a dead interval to be heard first */
	if (repl_now_ms(r) - r->started_ms < (uint64_t)r->cfg->sync_dead_interval_ms) {
		snprintf(why, len,
		         "just started: waiting a dead interval for the peers to be heard");
		return false;
	}
	for (int i = 0; i < r->npeers; i++) {
		struct repl_peer *p = r->peers[i];
		const char *what = NULL;

		if (!p->up)
			continue;
		if (p->sweep_pending || p->need_full)
			what = "its full state has not arrived complete yet";
		else if (!p->synced)
			what = "not synced";
		else if (p->digest_bad_ms)
			what = "its digest disagrees with our copy";
		else if (seqwin_missing(&p->win))
			what = "datagrams are missing (NACKed)";
		if (what) {
			snprintf(why, len, "peer %u (%s): %s", p->id, p->name[0] ? p->name : "?",
			         what);
			return false;
		}
	}
	snprintf(why, len, "in sync with every peer that is up");
	return true;
}

size_t repl_debug_forget(struct repl *r, uint32_t id, size_t n)
{
	struct repl_peer *p = repl_peer_by_id(r, id);
	struct forget {
		struct hafw_tuple key[64];
		uint16_t zone[64];
		size_t n;
	} f = {.n = 0};
	size_t cursor = 0, done = 0;

	if (!p)
		return 0;
	while (done < n) {
		f.n = 0;
		cache_walk_some(p->flows, &cursor, 64, forget_collect, &f);
		if (!f.n)
			break;
		for (size_t i = 0; i < f.n && done < n; i++, done++)
			cache_del(p->flows, &f.key[i], f.zone[i]);
	}
	return done;
}

/* A peer asks us to resend: the same bytes, to it alone (the way the NACK
 * came: from NULL is its control connection); what the ring no longer
 * holds is answered with a miss. */
static void answer_nack(struct repl *r, struct repl_peer *p, const Hafw__Nack *nk,
                        const struct chan_addr *from)
{
	uint32_t miss[NACK_MAX_RANGES][2];
	unsigned nmiss = 0, sent = 0;

	if (nk->target != (uint32_t)r->cfg->node_id || !nk->has_epoch || nk->epoch != r->epoch) {
		r->st.nacks_refused++;
		return;
	}
	r->st.nacks_received++;
	for (size_t i = 0; i + 1 < nk->n_ranges && sent < NACK_MAX_RESEND; i += 2) {
		uint32_t from_seq = nk->ranges[i], to = nk->ranges[i + 1];

		if (seq_after(from_seq, to) || seq_after(to, r->seq)) {
			r->st.nacks_refused++;
			continue;
		}
		/* a long range: its start now, the rest when it is asked again */
		if ((uint32_t)(to - from_seq) >= NACK_MAX_RESEND)
			to = from_seq + NACK_MAX_RESEND - 1;
		for (uint32_t s = from_seq;; s++) {
			size_t len;
			const uint8_t *d = rtxring_get(r->ring, s, &len);

			if (d) {
				if (send_peer(r, p, from, d, len) < 0)
					r->st.send_errors++;
				r->st.retransmits++;
				sent++;
			} else if (nmiss && miss[nmiss - 1][1] + 1 == s) {
				miss[nmiss - 1][1] = s;
			} else if (nmiss < NACK_MAX_RANGES) {
				miss[nmiss][0] = miss[nmiss][1] = s;
				nmiss++;
			}
			if (s == to || sent >= NACK_MAX_RESEND)
				break;
		}
	}
	if (nmiss) {
		r->st.ring_misses += nmiss;
		send_nack(r, p, r->epoch, (const uint32_t(*)[2])miss, nmiss, true, from);
	}
}

/* The sender no longer holds what we asked for: those numbers are lost,
 * and only its full state can repair what they carried. */
static void took_miss(struct repl *r, struct repl_peer *p, const Hafw__Nack *nk)
{
	uint32_t top = 0;

	if (nk->target != (uint32_t)r->cfg->node_id || !nk->has_epoch || nk->epoch != p->epoch ||
	    nk->n_ranges < 2)
		return;
	for (size_t i = 1; i < nk->n_ranges; i += 2)
		if (i == 1 || seq_after(nk->ranges[i], top))
			top = nk->ranges[i];
	if (seq_after(top, p->win.hi))
		return;
	p->st.misses++;
	p->st.lost_dgrams += seqwin_give_up(&p->win, top + 1);
	repl_resync_peer(r, p, false);
}

void repl_rx_nack(struct repl *r, struct repl_peer *p, const struct hafw_wire_hdr *h,
                  const uint8_t *payload, const struct chan_addr *from)
{
	Hafw__Nack *nk = hafw__nack__unpack(NULL, h->len, payload);

	if (!nk || nk->node_id != h->sender || nk->n_ranges % 2 ||
	    nk->n_ranges > 2 * NACK_MAX_RANGES) {
		p->st.bad_nacks++;
		if (nk)
			hafw__nack__free_unpacked(nk, NULL);
		return;
	}
	p->st.unknown_fields += nk->base.n_unknown_fields;
	if (nk->has_miss && nk->miss)
		took_miss(r, p, nk);
	else
		answer_nack(r, p, nk, from);
	hafw__nack__free_unpacked(nk, NULL);
}

/* At a heartbeat with no hole below it, the peer's digest and ours of its
 * entries must agree; a disagreement that outlasts the grace period (events
 * in flight settle within it) means the copies diverged. */
void repl_digest_check(struct repl *r, struct repl_peer *p, uint64_t digest)
{
	uint64_t now = repl_now_ms(r), ours = cache_digest(p->flows) + cache_digest(p->exps);

	if (!r->cfg->sync_digest_grace_ms || !p->synced || p->sweep_pending ||
	    seqwin_missing(&p->win) ||
	    cache_count(p->flows) + cache_count(p->exps) >= r->cap) /* refusals: never equal */
		return;
	if (ours == digest) {
		p->digest_bad_ms = 0;
		return;
	}
	p->st.digest_mismatch++;
	if (!p->digest_bad_ms) {
		p->digest_bad_ms = now;
		return;
	}
	if (now - p->digest_bad_ms >= (uint64_t)r->cfg->sync_digest_grace_ms)
		repl_resync_peer(r, p, true);
}
