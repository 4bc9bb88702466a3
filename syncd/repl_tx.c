/* Transmit: frames up to the MTU, heartbeats, and the paced announce of
 * the internal cache to new or restarted peers.
 *
 * The core numbers every datagram it sends, whatever its type, in one
 * sequence per epoch: the channel only moves bytes (and, with the security
 * layer, seals them), so a (sender, epoch, sequence) does not repeat within
 * 2^32 datagrams of a run (a key of the security layer must be renewed
 * before the counter wraps). */
#include "repl_int.h"
#include "config.h"
#include "flow_pb.h"
#include "log.h"
#include "rtxring.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#define ANNOUNCE_CHUNK 128 /* entries between looks at the clock */
/* datagrams waiting in the channel's queue above which an announce waits:
 * live events must not queue behind a bulk of old state */
#define ANNOUNCE_BACKLOG 256

static void send_dgram(struct repl *r, uint8_t type, uint8_t *buf, size_t payload)
{
	struct hafw_wire_hdr h = {.type = type};

	h.len = (uint16_t)payload;
	h.sender = (uint32_t)r->cfg->node_id;
	h.epoch = r->epoch;
	h.seq = ++r->seq;
	hafw_wire_hdr_write(&h, buf);
	/* kept as sent: a NACK is answered with the very same bytes */
	rtxring_put(r->ring, h.seq, buf, HAFW_WIRE_HDR_LEN + payload);
	if (r->cops->send(r->chan, buf, HAFW_WIRE_HDR_LEN + payload) < 0)
		r->st.send_errors++;
}

void repl_send_frame(struct repl *r)
{
	repl_flush_pending(r);
	repl_emit_frame(r);
}

void repl_emit_frame(struct repl *r)
{
	if (r->fb.events == 0)
		return;
	send_dgram(r, HAFW_MSG_DATA, r->txbuf, r->fb.used);
	r->st.frames_sent++;
	r->st.events_sent += r->fb.events;
	frame_init(&r->fb, r->txbuf + HAFW_WIRE_HDR_LEN, r->max_dgram - HAFW_WIRE_HDR_LEN);
}

void repl_flush_cb(evutil_socket_t fd, short what, void *arg)
{
	struct repl *r = arg;

	(void)fd;
	(void)what;
	r->flush_armed = false;
	repl_send_frame(r);
}

/* A destroy carries only the key: orig tuple and zone. */
void repl_send_flow_destroy(struct repl *r, const struct hafw_tuple *key, uint16_t zone,
                            uint64_t version)
{
	uint8_t blob[HAFW_FLOW_MAX_ENCODED];
	struct hafw_flow k;
	int len;

	memset(&k, 0, sizeof(k));
	k.orig = *key;
	k.zone = zone;
	if (zone)
		k.present |= HAFW_FA_ZONE;
	len = hafw_flow_encode(&k, blob, sizeof(blob));
	if (len < 0) {
		r->st.encode_errors++;
		return;
	}
	repl_queue_event(r, HAFW_EV_DESTROY, FRAME_FLOW, key, zone, blob, (size_t)len, version, 0);
}

/* Master, tuple and mask are the key of an expectation (required fields of
 * the message); the cached copy has them and the zone. */
void repl_send_exp_destroy(struct repl *r, const struct cache_entry *e, uint64_t version)
{
	uint8_t blob[HAFW_FLOW_MAX_ENCODED];
	struct hafw_exp x;
	int len;

	if (hafw_exp_decode(e->blob, e->len, &x) < 0)
		return;
	x.present &= HAFW_EA_ZONE;
	len = hafw_exp_encode(&x, blob, sizeof(blob));
	if (len > 0)
		repl_queue_event(r, HAFW_EV_DESTROY, FRAME_EXP, &x.tuple, x.zone, blob, (size_t)len,
		                 version, 0);
}

void repl_send_heartbeat(struct repl *r)
{
	Hafw__Heartbeat hb = HAFW__HEARTBEAT__INIT;
	uint8_t buf[HAFW_WIRE_HDR_LEN + 512];
	uint32_t need[64];
	size_t len, nneed = 0;

	repl_send_frame(r); /* so the heartbeat follows everything queued */
	hb.node_id = (uint32_t)r->cfg->node_id;
	hb.has_role = 1;
	hb.role = (Hafw__Role)r->role;
	hb.has_last_seq = 1;
	hb.last_seq = r->seq + 1; /* this heartbeat's own number */
	hb.has_flows = hb.has_expectations = 1;
	hb.flows = (uint32_t)(cache_count(r->flows) - repl_txq_delayed(r));
	hb.expectations = (uint32_t)cache_count(r->exps);
	hb.name = (char *)r->cfg->node_name;
	if (r->full_valid) {
		hb.has_full_from_seq = hb.has_full_to_seq = 1;
		hb.full_from_seq = r->full_from;
		hb.full_to_seq = r->full_to;
	}
	for (int i = 0; i < r->npeers && nneed < sizeof(need) / sizeof(need[0]); i++)
		/* a peer we can pull a bulk from is asked on the connection */
		if (r->peers[i]->need_full && r->peers[i]->up && !repl_bulk_pulls(r, r->peers[i]))
			need[nneed++] = r->peers[i]->id;
	hb.n_need_full = nneed;
	hb.need_full = need;
	hb.has_digest = 1;
	/* new flows still waiting for their age are not ours to announce yet */
	hb.digest = cache_digest(r->flows) + cache_digest(r->exps) - r->delayed_digest;
	len = hafw__heartbeat__get_packed_size(&hb);
	if (len > sizeof(buf) - HAFW_WIRE_HDR_LEN)
		return;
	hafw__heartbeat__pack(&hb, buf + HAFW_WIRE_HDR_LEN);
	send_dgram(r, HAFW_MSG_HEARTBEAT, buf, len);
	r->st.heartbeats_sent++;
}

/* ---- announce: a peer that joins late learns what we hold ---- */

/* Cached entries hold the timeout of their last event: send what is left,
 * with the version of that event (the content is not new). */
static int announce_entry_flow(struct cache_entry *e, void *arg)
{
	struct repl *r = arg;
	uint8_t blob[HAFW_FLOW_MAX_ENCODED];
	struct hafw_flow f;
	int len;

	if (hafw_flow_decode(e->blob, e->len, &f) < 0)
		return 0;
	if (f.present & HAFW_FA_TIMEOUT)
		f.timeout = repl_aged(f.timeout, e->stamp, repl_now_s(r));
	len = hafw_flow_encode(&f, blob, sizeof(blob));
	if (len > 0)
		repl_queue_event(r, HAFW_EV_NEW, FRAME_FLOW, &e->key, e->zone, blob, (size_t)len,
		                 e->version, REPL_TXQ_ANNOUNCE);
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
		x.timeout = repl_aged(x.timeout, e->stamp, repl_now_s(r));
	len = hafw_exp_encode(&x, blob, sizeof(blob));
	if (len > 0)
		repl_queue_event(r, HAFW_EV_NEW, FRAME_EXP, &e->key, e->zone, blob, (size_t)len,
		                 e->version, REPL_TXQ_ANNOUNCE);
	return 0;
}

static void announce_begin(struct repl *r)
{
	struct timeval now = {0, 0};

	r->announcing = true;
	r->ann_f = r->ann_x = 0;
	r->ann_from = r->seq + 1;
	r->st.announces++;
	evtimer_add(r->announce_ev, &now);
}

void repl_announce_cb(evutil_socket_t fd, short what, void *arg)
{
	struct repl *r = arg;
	struct timeval next = {0, 1000};
	uint64_t t0 = repl_slice_clock();

	(void)fd;
	(void)what;
	if (r->cops->backlog && r->cops->backlog(r->chan) > ANNOUNCE_BACKLOG) {
		evtimer_add(r->announce_ev, &next);
		return;
	}
	for (;;) {
		bool end =
		    cache_walk_some(r->flows, &r->ann_f, ANNOUNCE_CHUNK, announce_entry_flow, r) &&
		    cache_walk_some(r->exps, &r->ann_x, ANNOUNCE_CHUNK, announce_entry_exp, r);

		if (end)
			break;
		if (repl_slice_over(t0) ||
		    (r->cops->backlog && r->cops->backlog(r->chan) > ANNOUNCE_BACKLOG)) {
			/* a short pause between slices lets receivers drain */
			evtimer_add(r->announce_ev, &next);
			repl_slice_done(r, t0);
			return;
		}
	}
	repl_send_frame(r);
	repl_slice_done(r, t0);
	r->announcing = false;
	/* a dump still reconciling means the cache was not yet all there */
	if (!r->dumping && !r->isweeping) {
		r->full_valid = true;
		r->full_from = r->ann_from;
		r->full_to = r->seq;
		r->full_done_ms = repl_now_ms(r);
	}
	if (r->announce_again) {
		r->announce_again = false;
		announce_begin(r);
	}
}

/* A new or restarted peer needs our whole state. One announce runs at a
 * time; triggers while it runs are merged into one more run after it
 * (the newcomer missed the part already sent), never a restart from the
 * beginning, so a storm of triggers cannot keep it from finishing. */
void repl_start_announce(struct repl *r)
{
	if (r->announcing) {
		if (!r->announce_again)
			r->announce_again = true;
		else
			r->st.announces_merged++;
		return;
	}
	announce_begin(r);
}
