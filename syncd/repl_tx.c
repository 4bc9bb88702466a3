/* Transmit: frames up to the MTU, heartbeats, and the paced announce of
 * the internal cache to a new or restarted peer. */
#include "repl_int.h"
#include "config.h"
#include "flow_pb.h"
#include "log.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

/* ---- transmit ---- */

void repl_send_frame(struct repl *r)
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

void repl_flush_cb(evutil_socket_t fd, short what, void *arg)
{
	struct repl *r = arg;

	(void)fd;
	(void)what;
	r->flush_armed = false;
	repl_send_frame(r);
}

void repl_queue_event(struct repl *r, int type, enum frame_obj obj, const uint8_t *blob, size_t len)
{
	if (frame_add(&r->fb, type, obj, blob, len) == -ENOSPC) {
		repl_send_frame(r);
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

void repl_send_heartbeat(struct repl *r)
{
	Hafw__Heartbeat hb = HAFW__HEARTBEAT__INIT;
	struct hafw_wire_hdr h = {.type = HAFW_MSG_HEARTBEAT};
	uint8_t buf[HAFW_WIRE_HDR_LEN + 256];
	size_t len;

	repl_send_frame(r); /* so last_seq covers everything queued */
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

void repl_hb_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	repl_send_heartbeat(arg);
}

/* ---- announce: a peer that joins late learns what we hold ---- */

#define ANNOUNCE_SLICE 2048

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
		f.timeout = repl_aged(f.timeout, e->stamp, repl_now_s());
	len = hafw_flow_encode(&f, blob, sizeof(blob));
	if (len > 0)
		repl_queue_event(r, HAFW_EV_NEW, FRAME_FLOW, blob, (size_t)len);
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
		x.timeout = repl_aged(x.timeout, e->stamp, repl_now_s());
	len = hafw_exp_encode(&x, blob, sizeof(blob));
	if (len > 0)
		repl_queue_event(r, HAFW_EV_NEW, FRAME_EXP, blob, (size_t)len);
	return 0;
}

void repl_announce_cb(evutil_socket_t fd, short what, void *arg)
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
	repl_send_frame(r);
	r->announcing = false;
}

/* Until bulk resync over the control channel exists, a new or restarted
 * peer gets our state as ordinary NEW events, paced in slices. */
void repl_start_announce(struct repl *r)
{
	struct timeval now = {0, 0};

	r->st.announces++;
	r->ann_flows = r->ann_exps = 0;
	if (!r->announcing) {
		r->announcing = true;
		evtimer_add(r->announce_ev, &now);
	}
}
