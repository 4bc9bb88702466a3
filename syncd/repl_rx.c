/* Receive: validate each datagram, keep per-peer state and external
 * caches. Every refusal has its counter. */
#include "repl_int.h"
#include "config.h"
#include "flow_pb.h"
#include "log.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

static struct hafw_ratelimit rl_rx = HAFW_RATELIMIT_INIT(5, 5);

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
	repl_start_announce(r);
	return p;
}

struct rx_ctx {
	struct repl *r;
	struct repl_peer *p;
};

/* Each event stands on its own: a new or updated entry replaces what we
 * held, a destroy removes it. */
static void apply_event(const struct frame_event *ev, void *arg)
{
	struct rx_ctx *c = arg;
	struct repl_peer *p = c->p;
	uint8_t blob[HAFW_FLOW_MAX_ENCODED];
	int len;

	if (ev->obj == FRAME_FLOW) {
		const struct hafw_flow *f = &ev->u.flow;

		if (ev->type == HAFW_EV_DESTROY) {
			cache_del(p->flows, &f->orig, f->zone);
		} else if ((len = hafw_flow_encode(f, blob, sizeof(blob))) > 0 &&
		           cache_put(p->flows, &f->orig, f->zone, blob, (size_t)len, repl_now_s()) <
		               0) {
			c->r->st.cache_nomem++;
		}
	} else {
		const struct hafw_exp *x = &ev->u.exp;

		if (ev->type == HAFW_EV_DESTROY) {
			cache_del(p->exps, &x->tuple, x->zone);
		} else if ((len = hafw_exp_encode(x, blob, sizeof(blob))) > 0 &&
		           cache_put(p->exps, &x->tuple, x->zone, blob, (size_t)len, repl_now_s()) <
		               0) {
			c->r->st.cache_nomem++;
		}
	}
}

static void rx_data(struct repl *r, struct repl_peer *p, const struct hafw_wire_hdr *h,
                    const uint8_t *payload)
{
	struct rx_ctx c = {r, p};
	unsigned bad;
	int n;

	if (p->seq_valid && h->seq != p->last_seq + 1) {
		int32_t d = (int32_t)(h->seq - p->last_seq);

		if (d > 1)
			p->lost_dgrams += (uint64_t)(d - 1);
	}
	p->last_seq = h->seq;
	p->seq_valid = true;
	n = frame_read(payload, h->len, apply_event, &c, &bad);
	if (n < 0) {
		r->st.bad_frames++;
		hafw_log_rl(&rl_rx, LOG_WARNING, "peer %u: undecodable frame (seq %u)", p->id,
		            h->seq);
		return;
	}
	p->frames++;
	p->events += (uint64_t)n;
	r->st.events_received += (uint64_t)n;
	if (bad) {
		r->st.bad_events += bad;
		hafw_log_rl(&rl_rx, LOG_WARNING, "peer %u: %u invalid events in frame %u", p->id,
		            bad, h->seq);
	}
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
		repl_start_announce(r);
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

const struct chan_events repl_chan_cb = {.recv = on_dgram};
