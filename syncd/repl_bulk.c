/* The control channel: hello with version negotiation, and bulk transfers
 * of a whole table to one peer.
 *
 * A node that needs a peer's full state (first contact, the peer's
 * restart, lost datagrams, a digest that disagrees, hafwctl resync) marks
 * its copy and asks with BulkRequest; the peer streams its internal cache
 * as BulkBegin, Frames, BulkEnd on the connection, as fast as the
 * connection takes it (a slice while fewer than sync.control_buffer bytes
 * wait), while live events keep coming on the data channel: versions keep
 * a bulk entry from overwriting a newer live change. At BulkEnd what the
 * mark did not see refreshed is swept. A bulk that breaks off is resumed
 * where it stopped; one that stalls is asked for again. Without a control
 * connection the request travels in heartbeats (need_full) and the peer
 * answers with a multicast announce. */
#include "repl_int.h"
#include "config.h"
#include "flow_pb.h"
#include "log.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#define BULK_PAYLOAD  (60 * 1024)
#define BULK_CHUNK    128
#define BULK_STALL_MS 10000
/* a peer just heard: its control connection has this long to come up
 * before we ask for its state by multicast instead */
#define CTL_GRACE_MS 2000
/* a peer of another major version is connected to again after this long */
#define CTL_REFUSED_RETRY_MS 30000

static struct hafw_ratelimit rl_ctl = HAFW_RATELIMIT_INIT(10, 5);

/* Where each frame of a bulk began, so that a resume starts at the first
 * frame the receiver lacks (what was in flight when a connection broke is
 * gone). One per frame sent: bounded by the table's size. */
struct bulk_mark {
	size_t cur_f, cur_x;
	uint64_t entries;
};

struct bulk_tx {
	uint64_t id;
	size_t cur_f, cur_x;
	bool walked;  /* every entry is in a frame */
	bool pending; /* a full frame waits for room on the connection */
	bool paused;  /* its connection broke: waits for the resume request */
	bool need_begin;
	uint64_t entries;
	struct bulk_mark *marks;
	size_t nmarks, cap;
	uint8_t buf[HAFW_WIRE_HDR_LEN + BULK_PAYLOAD];
	struct frame_builder fb;
};

static bool have_ctl(const struct repl *r)
{
	return r->ccops && r->cchan;
}

/* A message on the control connection to p; -ENOBUFS: try later. */
static int ctl_send(struct repl *r, struct repl_peer *p, uint8_t type, uint8_t *buf, size_t len)
{
	struct hafw_wire_hdr h = {.type = type};
	int ret;

	h.len = (uint16_t)len;
	h.sender = (uint32_t)r->cfg->node_id;
	h.epoch = r->epoch;
	h.seq = 0;
	hafw_wire_hdr_write(&h, buf);
	ret = r->ccops->send_peer(r->cchan, p->id, buf, HAFW_WIRE_HDR_LEN + len);
	if (ret < 0 && ret != -ENOBUFS)
		r->st.send_errors++;
	return ret;
}

#define PACK_SEND(r, p, type, msg, packfn, sizefn)                                                 \
	({                                                                                         \
		uint8_t _b[HAFW_WIRE_HDR_LEN + 512];                                               \
		size_t _n = sizefn(msg);                                                           \
		_n <= sizeof(_b) - HAFW_WIRE_HDR_LEN                                               \
		    ? (packfn(msg, _b + HAFW_WIRE_HDR_LEN), ctl_send(r, p, type, _b, _n))          \
		    : -EMSGSIZE;                                                                   \
	})

static void send_hello(struct repl *r, struct repl_peer *p)
{
	Hafw__Hello m = HAFW__HELLO__INIT;

	m.node_id = (uint32_t)r->cfg->node_id;
	m.name = (char *)r->cfg->node_name;
	m.has_role = 1;
	m.role = (Hafw__Role)r->role;
	m.has_proto_version = 1;
	m.proto_version = HAFW_PROTO_VERSION;
	m.has_capabilities = 1;
	m.capabilities = HAFW_CAP_BULK;
	if (PACK_SEND(r, p, HAFW_MSG_HELLO, &m, hafw__hello__pack, hafw__hello__get_packed_size) ==
	    0)
		p->hello_sent = true;
}

bool repl_bulk_pulls(const struct repl *r, const struct repl_peer *p)
{
	if (!have_ctl(r))
		return false;
	if (p->ctl_up)
		return p->caps & HAFW_CAP_BULK;
	return p->up && repl_now_ms(r) - p->up_since_ms < CTL_GRACE_MS;
}

/* Ask p for its whole table now if a connection can carry it; true when
 * asked (otherwise the heartbeat's need_full does). */
bool repl_bulk_request(struct repl *r, struct repl_peer *p)
{
	Hafw__BulkRequest m = HAFW__BULK_REQUEST__INIT;

	if (!have_ctl(r) || !p->ctl_up || !(p->caps & HAFW_CAP_BULK))
		return false;
	m.node_id = (uint32_t)r->cfg->node_id;
	if (p->bulk_rx_id) { /* one broke off: go on with it */
		m.has_resume_id = m.has_received = 1;
		m.resume_id = p->bulk_rx_id;
		m.received = p->bulk_rx_frames;
	}
	if (PACK_SEND(r, p, HAFW_MSG_BULK_REQ, &m, hafw__bulk_request__pack,
	              hafw__bulk_request__get_packed_size) < 0)
		return false;
	p->bulk_req_ms = repl_now_ms(r);
	p->st.bulks_requested++;
	return true;
}

/* ---- sending a bulk ---- */

static int bulk_entry(struct repl *r, struct bulk_tx *b, enum frame_obj obj, struct cache_entry *e)
{
	uint8_t blob[HAFW_FLOW_MAX_ENCODED];
	int len;

	/* new flows still waiting for their age are not announced yet */
	if (obj == FRAME_FLOW && cache_find(r->delayed, &e->key, e->zone))
		return 0;
	if (obj == FRAME_FLOW) {
		struct hafw_flow f;

		if (hafw_flow_decode(e->blob, e->len, &f) < 0)
			return 0;
		if (f.present & HAFW_FA_TIMEOUT)
			f.timeout = repl_aged(f.timeout, e->stamp, repl_now_s(r));
		len = hafw_flow_encode(&f, blob, sizeof(blob));
	} else {
		struct hafw_exp x;

		if (hafw_exp_decode(e->blob, e->len, &x) < 0)
			return 0;
		if (x.present & HAFW_EA_TIMEOUT)
			x.timeout = repl_aged(x.timeout, e->stamp, repl_now_s(r));
		len = hafw_exp_encode(&x, blob, sizeof(blob));
	}
	if (len < 0)
		return 0;
	if (frame_add(&b->fb, HAFW_EV_NEW, obj, blob, (size_t)len, e->version) == -ENOSPC)
		return -ENOSPC;
	b->entries++;
	return 0;
}

struct bulk_walk {
	struct repl *r;
	struct bulk_tx *b;
	enum frame_obj obj;
	bool full;
};

/* The walk stops at the first entry that does not fit: the cursor stays
 * on its bucket, and the next frame starts there (a bucket's entries
 * before it are sent twice, which versions make harmless). */
static int walk_entry(struct cache_entry *e, void *arg)
{
	struct bulk_walk *w = arg;

	if (w->full)
		return 0;
	if (bulk_entry(w->r, w->b, w->obj, e) == -ENOSPC)
		w->full = true;
	return 0;
}

static bool bulk_fill(struct repl *r, struct bulk_tx *b)
{
	while (!b->walked) {
		struct bulk_walk w = {r, b, FRAME_FLOW, false};
		size_t before;

		if (b->cur_f < SIZE_MAX) {
			before = b->cur_f;
			if (cache_walk_some(r->flows, &b->cur_f, BULK_CHUNK, walk_entry, &w))
				b->cur_f = w.full ? before : SIZE_MAX;
			else if (w.full)
				b->cur_f = before;
		} else {
			w.obj = FRAME_EXP;
			before = b->cur_x;
			if (cache_walk_some(r->exps, &b->cur_x, BULK_CHUNK, walk_entry, &w) &&
			    !w.full)
				b->walked = true;
			else if (w.full)
				b->cur_x = before;
		}
		if (w.full)
			return true;
	}
	return b->fb.events > 0;
}

static int send_begin(struct repl *r, struct repl_peer *p, struct bulk_tx *b)
{
	Hafw__BulkBegin m = HAFW__BULK_BEGIN__INIT;

	m.node_id = (uint32_t)r->cfg->node_id;
	m.has_bulk_id = m.has_flows = m.has_expectations = 1;
	m.bulk_id = b->id;
	m.flows = (uint32_t)(cache_count(r->flows) - repl_txq_delayed(r));
	m.expectations = (uint32_t)cache_count(r->exps);
	return PACK_SEND(r, p, HAFW_MSG_BULK_BEGIN, &m, hafw__bulk_begin__pack,
	                 hafw__bulk_begin__get_packed_size);
}

static int send_end(struct repl *r, struct repl_peer *p, struct bulk_tx *b)
{
	Hafw__BulkEnd m = HAFW__BULK_END__INIT;
	int ret;

	m.node_id = (uint32_t)r->cfg->node_id;
	m.has_bulk_id = m.has_entries = m.has_flows = m.has_expectations = 1;
	m.bulk_id = b->id;
	m.entries = b->entries;
	/* what this node holds now (the bulk may have sent more or less:
	 * entries changed while it ran) */
	m.flows = (uint32_t)(cache_count(r->flows) - repl_txq_delayed(r));
	m.expectations = (uint32_t)cache_count(r->exps);
	ret = PACK_SEND(r, p, HAFW_MSG_BULK_END, &m, hafw__bulk_end__pack,
	                hafw__bulk_end__get_packed_size);
	if (ret >= 0) {
		r->st.bulks_sent++;
		r->st.bulk_entries_sent += b->entries;
	}
	return ret;
}

static void bulk_free(struct repl_peer *p)
{
	if (p->btx)
		free(p->btx->marks);
	free(p->btx);
	p->btx = NULL;
}

static bool mark_frame(struct bulk_tx *b)
{
	if (b->nmarks == b->cap) {
		size_t n = b->cap ? b->cap * 2 : 64;
		struct bulk_mark *m = realloc(b->marks, n * sizeof(*m));

		if (!m)
			return false;
		b->marks = m;
		b->cap = n;
	}
	b->marks[b->nmarks++] = (struct bulk_mark){b->cur_f, b->cur_x, b->entries};
	return true;
}

/* Back to the first frame the receiver lacks. The walk from that cursor
 * sends again whatever it finds there now: versions make the repeats
 * harmless, and what changed meanwhile also went on the data channel. */
static void bulk_rewind(struct bulk_tx *b, uint64_t received)
{
	if (received < b->nmarks) {
		const struct bulk_mark *m = &b->marks[received];

		b->cur_f = m->cur_f;
		b->cur_x = m->cur_x;
		b->entries = m->entries;
		b->nmarks = (size_t)received;
		b->walked = false;
	}
	/* else everything was received; only the end is missing */
	b->pending = false;
	b->paused = false;
}

/* One peer's bulk, as far as the connection takes it in this slice: its
 * begin, frames, end, each waiting while the connection is full. */
static void bulk_step(struct repl *r, struct repl_peer *p, uint64_t t0, bool *more, bool *blocked)
{
	struct bulk_tx *b = p->btx;
	int ret;

	while (!repl_slice_over(t0)) {
		if (b->need_begin) {
			if ((ret = send_begin(r, p, b)) == -ENOBUFS)
				goto full;
			if (ret < 0)
				goto drop;
			b->need_begin = false;
		}
		if (!b->pending) {
			if (!mark_frame(b)) {
				r->st.cache_nomem++;
				goto drop;
			}
			frame_init(&b->fb, b->buf + HAFW_WIRE_HDR_LEN, BULK_PAYLOAD);
			if (!bulk_fill(r, b)) {
				b->nmarks--; /* no frame after all */
				if ((ret = send_end(r, p, b)) == -ENOBUFS)
					goto full;
				goto drop; /* done, or the connection is gone */
			}
			b->pending = true;
		}
		if ((ret = ctl_send(r, p, HAFW_MSG_BULK, b->buf, b->fb.used)) == -ENOBUFS)
			goto full;
		if (ret < 0)
			goto drop;
		b->pending = false;
	}
	*more = true;
	return;
full:
	*blocked = true;
	return;
drop:
	bulk_free(p);
}

/* Called from the work loop: every bulk in progress, a slice each. */
bool repl_bulk_work(struct repl *r, uint64_t t0, bool *blocked)
{
	bool more = false;

	*blocked = false;
	for (int i = 0; i < r->npeers; i++) {
		struct repl_peer *p = r->peers[i];

		if (p->btx && p->ctl_up && !p->btx->paused)
			bulk_step(r, p, t0, &more, blocked);
	}
	return more;
}

static void start_bulk(struct repl *r, struct repl_peer *p, const Hafw__BulkRequest *m)
{
	if (p->btx && m->has_resume_id && m->has_received && m->resume_id == p->btx->id) {
		p->st.bulks_resumed++;
		bulk_rewind(p->btx, m->received);
	} else {
		bulk_free(p);
		if (!(p->btx = calloc(1, sizeof(*p->btx)))) {
			r->st.cache_nomem++;
			return;
		}
		p->btx->id = repl_next_version(r); /* unique, and growing across restarts */
	}
	/* a resumed bulk begins again under its id: the receiver keeps its
	 * count */
	p->btx->need_begin = true;
	repl_kick_work(r);
}

/* ---- receiving ---- */

static void rx_hello(struct repl *r, struct repl_peer *p, const struct hafw_wire_hdr *h,
                     const uint8_t *payload)
{
	Hafw__Hello *m = hafw__hello__unpack(NULL, h->len, payload);

	if (!m || m->node_id != h->sender) {
		p->st.bad_control++;
		if (m)
			hafw__hello__free_unpacked(m, NULL);
		return;
	}
	p->st.unknown_fields += m->base.n_unknown_fields;
	if (!m->has_proto_version || m->proto_version >> 8 != HAFW_PROTO_VERSION >> 8) {
		p->st.version_refused++;
		hafw_log_rl(&rl_ctl, LOG_ERR,
		            "peer %u speaks protocol %u.%u, this node %u.%u: refusing its control "
		            "connection",
		            p->id, m->proto_version >> 8, m->proto_version & 0xff,
		            HAFW_PROTO_VERSION >> 8, HAFW_PROTO_VERSION & 0xff);
		r->ccops->peer_del(r->cchan, p->id);
		p->ctl_up = p->hello_sent = p->ctl_added = false;
		/* tried again later: the peer may be upgraded meanwhile */
		p->ctl_retry_ms = repl_now_ms(r) + CTL_REFUSED_RETRY_MS;
		hafw__hello__free_unpacked(m, NULL);
		return;
	}
	/* a side that did not know us when the connection came up greets
	 * back now */
	if (!p->hello_sent)
		send_hello(r, p);
	p->ctl_up = true;
	p->proto_minor = m->proto_version & 0xff;
	p->caps = m->has_capabilities ? m->capabilities : 0;
	hafw__hello__free_unpacked(m, NULL);
	/* what we wait for from it can come this way now */
	if (p->sweep_pending && !p->sweeping && !p->bulk_rx_active)
		repl_bulk_request(r, p);
}

static void rx_bulk_req(struct repl *r, struct repl_peer *p, const struct hafw_wire_hdr *h,
                        const uint8_t *payload)
{
	Hafw__BulkRequest *m = hafw__bulk_request__unpack(NULL, h->len, payload);

	if (!m || m->node_id != h->sender) {
		p->st.bad_control++;
		if (m)
			hafw__bulk_request__free_unpacked(m, NULL);
		return;
	}
	p->st.unknown_fields += m->base.n_unknown_fields;
	r->st.bulk_requests++;
	start_bulk(r, p, m);
	hafw__bulk_request__free_unpacked(m, NULL);
}

static void rx_bulk_begin(struct repl *r, struct repl_peer *p, const struct hafw_wire_hdr *h,
                          const uint8_t *payload)
{
	Hafw__BulkBegin *m = hafw__bulk_begin__unpack(NULL, h->len, payload);

	if (!m || m->node_id != h->sender || !m->has_bulk_id) {
		p->st.bad_control++;
		if (m)
			hafw__bulk_begin__free_unpacked(m, NULL);
		return;
	}
	/* our copy was marked when we asked; a new bulk (not the one that
	 * broke off) starts its count again */
	p->st.unknown_fields += m->base.n_unknown_fields;
	if (m->bulk_id != p->bulk_rx_id)
		p->bulk_rx_entries = p->bulk_rx_frames = 0;
	p->bulk_rx_id = m->bulk_id;
	p->bulk_rx_active = true;
	p->bulk_rx_ms = repl_now_ms(r);
	hafw__bulk_begin__free_unpacked(m, NULL);
}

static void rx_bulk_end(struct repl *r, struct repl_peer *p, const struct hafw_wire_hdr *h,
                        const uint8_t *payload)
{
	Hafw__BulkEnd *m = hafw__bulk_end__unpack(NULL, h->len, payload);

	if (!m || m->node_id != h->sender || !m->has_bulk_id || m->bulk_id != p->bulk_rx_id) {
		p->st.bad_control++;
		if (m)
			hafw__bulk_end__free_unpacked(m, NULL);
		return;
	}
	p->st.unknown_fields += m->base.n_unknown_fields;
	hafw__bulk_end__free_unpacked(m, NULL);
	p->st.bulks_received++;
	p->bulk_rx_active = false;
	p->bulk_rx_id = 0;
	p->need_full = false;
	/* the whole table is here: what the mark did not see refreshed goes */
	if (p->sweep_pending && !p->sweeping) {
		p->sweeping = true;
		p->sweep_cursor_f = p->sweep_cursor_x = 0;
		repl_kick_work(r);
	}
}

/* A message on the control channel. */
static void on_ctl_msg(void *arg, const uint8_t *buf, size_t len, const struct chan_addr *from)
{
	struct repl *r = arg;
	struct hafw_wire_hdr h;
	enum hafw_wire_err err = hafw_wire_hdr_parse(buf, len, &h);
	struct repl_peer *p;

	r->st.control_msgs++;
	if (err != HAFW_WIRE_OK) {
		r->st.bad_dgrams[err]++;
		return;
	}
	if (h.sender == (uint32_t)r->cfg->node_id)
		return;
	p = repl_peer_admit(r, h.sender, from);
	if (!p)
		return;
	/* alive (the address stays the data channel's: NACKs go there) */
	repl_peer_seen(r, p, NULL);
	switch (h.type) {
	case HAFW_MSG_HELLO:
		rx_hello(r, p, &h, buf + HAFW_WIRE_HDR_LEN);
		break;
	case HAFW_MSG_BULK_REQ:
		rx_bulk_req(r, p, &h, buf + HAFW_WIRE_HDR_LEN);
		break;
	case HAFW_MSG_BULK_BEGIN:
		rx_bulk_begin(r, p, &h, buf + HAFW_WIRE_HDR_LEN);
		break;
	case HAFW_MSG_BULK:
		if (p->bulk_rx_active) {
			p->bulk_rx_ms = repl_now_ms(r);
			p->bulk_rx_entries += repl_apply_frame(r, p, &h, buf + HAFW_WIRE_HDR_LEN);
			p->bulk_rx_frames++;
		} else {
			p->st.bad_control++;
		}
		break;
	case HAFW_MSG_BULK_END:
		rx_bulk_end(r, p, &h, buf + HAFW_WIRE_HDR_LEN);
		break;
	case HAFW_MSG_NACK:
	case HAFW_MSG_DATA:
	case HAFW_MSG_HEARTBEAT:
		/* the data path's repair, when it kept failing there: a NACK
		 * and the retransmits that answer it */
		repl_rx_dgram(r, buf, len, NULL);
		break;
	default:
		p->st.unknown_types++; /* a later minor version's, or misplaced */
		break;
	}
}

static void on_ctl_up(void *arg, uint32_t id)
{
	struct repl *r = arg;
	struct repl_peer *p = repl_peer_by_id(r, id);

	if (p)
		send_hello(r, p);
}

static void on_ctl_down(void *arg, uint32_t id)
{
	struct repl *r = arg;
	struct repl_peer *p = repl_peer_by_id(r, id);

	if (!p)
		return;
	/* a bulk either way waits to be resumed: the receiver asks again
	 * (with what it got) when the connection is back */
	p->ctl_up = p->hello_sent = false;
	p->bulk_rx_active = false;
	if (p->btx)
		p->btx->paused = true;
}

const struct chan_events repl_ctl_cb = {
    .recv = on_ctl_msg,
    .peer_up = on_ctl_up,
    .peer_down = on_ctl_down,
};

/* From the tick: a bulk we wait for that does not move is asked for again
 * (resumed); a peer's address we learned goes to the control channel. */
void repl_bulk_connect(struct repl *r, struct repl_peer *p)
{
	if (!have_ctl(r) || !p->addr.len || repl_now_ms(r) < p->ctl_retry_ms)
		return;
	if (p->ctl_added &&
	    (p->ctl_addr.len != p->addr.len || memcmp(p->ctl_addr.ip, p->addr.ip, p->addr.len))) {
		/* the peer moved to another sync link: so does the connection.
		 * The side that connects (the lower id) drops the old one,
		 * which may be dead without knowing it yet; the other side
		 * only learns the address (the new connection replaces the
		 * old one when it comes) */
		if ((uint32_t)r->cfg->node_id < p->id) {
			r->ccops->peer_del(r->cchan, p->id);
			p->ctl_added = false;
			on_ctl_down(r, p->id);
		} else if (r->ccops->peer_add(r->cchan, p->id, &p->addr) == 0) {
			p->ctl_addr = p->addr;
		}
	}
	if (!p->ctl_added && r->ccops->peer_add(r->cchan, p->id, &p->addr) == 0) {
		p->ctl_added = true;
		p->ctl_addr = p->addr;
	}
}

void repl_bulk_tick(struct repl *r, struct repl_peer *p)
{
	uint64_t now = repl_now_ms(r);

	if (!have_ctl(r))
		return;
	repl_bulk_connect(r, p);
	if (!p->ctl_up || !p->sweep_pending || p->sweeping)
		return;
	if (p->bulk_rx_active ? now - p->bulk_rx_ms > BULK_STALL_MS
	                      : !p->bulk_req_ms || now - p->bulk_req_ms > BULK_STALL_MS) {
		if (p->bulk_req_ms)
			p->st.bulks_stalled++;
		p->bulk_rx_active = false;
		repl_bulk_request(r, p);
	}
}

void repl_bulk_forget(struct repl_peer *p)
{
	bulk_free(p);
}
