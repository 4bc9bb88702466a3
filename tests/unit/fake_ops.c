#include "fake_ops.h"
#include "flow_pb.h"
#include "repl_int.h"

#include <errno.h>
#include <event2/event.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define DUMP_SLICE 100

static struct fnet *g_net; /* the network nodes' ops find themselves in */

static struct fnode *node_of_cfg(const struct hafw_config *cfg)
{
	for (int i = 0; g_net && i < g_net->nnodes; i++)
		if (&g_net->nodes[i]->cfg == cfg)
			return g_net->nodes[i];
	abort();
}

/* ---- fake tracker ---- */

static void t_kick(struct ftrk *t)
{
	struct timeval now = {0, 0};

	if (t->work_ev && !evtimer_pending(t->work_ev, NULL))
		evtimer_add(t->work_ev, &now);
}

static void table_put(struct cache *c, const struct hafw_flow *f)
{
	uint8_t blob[HAFW_FLOW_MAX_ENCODED];
	int len = hafw_flow_encode(f, blob, sizeof(blob));

	if (len < 0 || cache_put(c, &f->orig, f->zone, blob, (size_t)len, 0, 0) < 0)
		abort();
}

static void table_put_exp(struct cache *c, const struct hafw_exp *x)
{
	uint8_t blob[HAFW_FLOW_MAX_ENCODED];
	int len = hafw_exp_encode(x, blob, sizeof(blob));

	if (len < 0 || cache_put(c, &x->tuple, x->zone, blob, (size_t)len, 0, 0) < 0)
		abort();
}

static void emit(struct ftrk *t, int obj, int type, const struct hafw_flow *f,
                 const struct hafw_exp *x)
{
	if (!t->open || t->muted)
		return;
	if (t->dumping) {
		if (t->nheld == t->capheld) {
			t->capheld = t->capheld ? t->capheld * 2 : 64;
			t->held = realloc(t->held, t->capheld * sizeof(*t->held));
		}
		t->held[t->nheld].obj = obj;
		t->held[t->nheld].type = type;
		if (f)
			t->held[t->nheld].f = *f;
		if (x)
			t->held[t->nheld].x = *x;
		t->nheld++;
		return;
	}
	if (obj == 0)
		t->ev->flow(t->arg, type, f);
	else
		t->ev->exp(t->arg, type, x);
}

void ftrk_add(struct ftrk *t, const struct hafw_flow *f)
{
	table_put(t->flows, f);
	emit(t, 0, HAFW_EV_NEW, f, NULL);
}

void ftrk_update(struct ftrk *t, const struct hafw_flow *full, const struct hafw_flow *partial)
{
	table_put(t->flows, full);
	emit(t, 0, HAFW_EV_UPDATE, partial, NULL);
}

void ftrk_del(struct ftrk *t, const struct hafw_flow *f)
{
	cache_del(t->flows, &f->orig, f->zone);
	emit(t, 0, HAFW_EV_DESTROY, f, NULL);
}

void ftrk_add_exp(struct ftrk *t, const struct hafw_exp *x)
{
	table_put_exp(t->exps, x);
	emit(t, 1, HAFW_EV_NEW, NULL, x);
}

void ftrk_del_exp(struct ftrk *t, const struct hafw_exp *x)
{
	cache_del(t->exps, &x->tuple, x->zone);
	emit(t, 1, HAFW_EV_DESTROY, NULL, x);
}

void ftrk_put_silent(struct ftrk *t, const struct hafw_flow *f)
{
	table_put(t->flows, f);
}

void ftrk_del_silent(struct ftrk *t, const struct hafw_flow *f)
{
	cache_del(t->flows, &f->orig, f->zone);
}

bool ftrk_get(const struct ftrk *t, const struct hafw_tuple *orig, uint16_t zone,
              struct hafw_flow *out)
{
	struct cache_entry *e = cache_find(t->flows, orig, zone);

	return e && hafw_flow_decode(e->blob, e->len, out) == 0;
}

size_t ftrk_count(const struct ftrk *t)
{
	return cache_count(t->flows);
}

struct dump_ctx {
	struct ftrk *t;
	unsigned n;
	bool aborted;
};

static int dump_one(struct cache_entry *e, void *arg)
{
	struct dump_ctx *d = arg;
	struct ftrk *t = d->t;

	if (d->aborted)
		return 0;
	if (t->dump_abort_after >= 0 && t->dump_delivered >= (unsigned)t->dump_abort_after) {
		d->aborted = true;
		return 0;
	}
	if (t->dump_phase == 0) {
		struct hafw_flow f;

		hafw_flow_decode(e->blob, e->len, &f);
		t->ev->dump_flow(t->arg, &f);
	} else {
		struct hafw_exp x;

		hafw_exp_decode(e->blob, e->len, &x);
		t->ev->dump_exp(t->arg, &x);
	}
	t->dump_delivered++;
	d->n++;
	return 0;
}

static void release_held(struct ftrk *t)
{
	size_t n = t->nheld;

	t->nheld = 0;
	for (size_t i = 0; i < n; i++) {
		struct fev *h = &t->held[i];

		if (h->obj == 0)
			t->ev->flow(t->arg, h->type, &h->f);
		else
			t->ev->exp(t->arg, h->type, &h->x);
	}
}

static void t_work(evutil_socket_t fd, short what, void *arg)
{
	struct ftrk *t = arg;

	(void)fd;
	(void)what;
	if (t->dumping) {
		struct dump_ctx d = {t, 0, false};
		bool end = cache_walk_some(t->dump_phase ? t->exps : t->flows, &t->dump_cursor,
		                           DUMP_SLICE, dump_one, &d);

		if (d.n > t->max_slice)
			t->max_slice = d.n;
		if (d.aborted) {
			t->dumping = false;
			t->dump_abort_after = -1;
			t->dumps_aborted++;
			t->ev->dump_done(t->arg, -ETIMEDOUT);
			release_held(t);
		} else if (end && t->dump_phase == 0) {
			t->dump_phase = 1;
			t->dump_cursor = 0;
		} else if (end) {
			t->dumping = false;
			t->ev->dump_done(t->arg, 0);
			release_held(t);
		}
	}
	while (t->ngets) {
		struct hafw_flow key = t->gets[0], f;

		memmove(t->gets, t->gets + 1, sizeof(t->gets[0]) * (size_t)--t->ngets);
		if (ftrk_get(t, &key.orig, key.zone, &f))
			t->ev->got_flow(t->arg, &key, &f, 0);
		else
			t->ev->got_flow(t->arg, &key, NULL, -ENOENT);
	}
	if (t->flush_pending) {
		unsigned failed = t->failed_since;

		t->flush_pending = false;
		t->failed_since = 0;
		t->ev->sink_done(t->arg, failed);
	}
	if (t->dumping || t->ngets || t->flush_pending)
		t_kick(t);
}

static int t_open(struct tracker **out, const struct hafw_config *cfg, struct event_base *base,
                  const struct tracker_events *ev, void *arg)
{
	struct fnode *nd = node_of_cfg(cfg);
	struct ftrk *t = &nd->trk;

	t->ev = ev;
	t->arg = arg;
	t->open = true;
	t->muted = false;
	t->dumping = false;
	t->nheld = 0;
	t->ngets = 0;
	t->flush_pending = false;
	t->work_ev = evtimer_new(base, t_work, t);
	*out = (struct tracker *)t;
	return 0;
}

static void t_close(struct tracker *tr)
{
	struct ftrk *t = (struct ftrk *)tr;

	t->open = false;
	if (t->work_ev)
		event_free(t->work_ev);
	t->work_ev = NULL;
}

static int t_dump_start(struct tracker *tr)
{
	struct ftrk *t = (struct ftrk *)tr;

	if (t->dumping)
		return -EBUSY;
	t->dumping = true;
	t->dump_phase = 0;
	t->dump_cursor = 0;
	t->dump_delivered = 0;
	t->dumps++;
	t_kick(t);
	return 0;
}

static int t_get_flow(struct tracker *tr, const struct hafw_flow *key)
{
	struct ftrk *t = (struct ftrk *)tr;

	if (t->get_busy || t->ngets == (int)(sizeof(t->gets) / sizeof(t->gets[0])))
		return -EBUSY;
	t->gets[t->ngets++] = *key;
	t->gets_asked++;
	t_kick(t);
	return 0;
}

static int t_put_flow(struct tracker *tr, const struct hafw_flow *f)
{
	struct ftrk *t = (struct ftrk *)tr;

	t->puts++;
	if (t->nlog == t->caplog) {
		t->caplog = t->caplog ? t->caplog * 2 : 256;
		t->log = realloc(t->log, t->caplog * sizeof(*t->log));
	}
	t->log[t->nlog++] = *f;
	if (t->fail_sport && f->orig.sport == t->fail_sport) {
		t->failed_since++;
		return 0;
	}
	table_put(t->flows, f);
	return 0;
}

static int t_put_exp(struct tracker *tr, const struct hafw_exp *x)
{
	struct ftrk *t = (struct ftrk *)tr;

	if (!t->put_exps++)
		t->puts_at_first_exp = t->puts;
	table_put_exp(t->exps, x);
	return 0;
}

static int t_sink_flush(struct tracker *tr)
{
	struct ftrk *t = (struct ftrk *)tr;

	t->flushes++;
	t->flush_pending = true;
	t_kick(t);
	return 0;
}

static int t_mute(struct tracker *tr, bool mute)
{
	struct ftrk *t = (struct ftrk *)tr;

	t->muted = mute;
	t->mutes += mute;
	return 0;
}

static uint32_t t_refresh(struct tracker *tr, const struct hafw_flow *f)
{
	(void)f;
	return ((struct ftrk *)tr)->refresh;
}

static size_t t_max(struct tracker *tr)
{
	return ((struct ftrk *)tr)->max;
}

static int t_stats(struct tracker *tr, struct tracker_stat *out, int max)
{
	struct ftrk *t = (struct ftrk *)tr;

	if (max < 1)
		return 0;
	out[0] = (struct tracker_stat){"dumps", t->dumps};
	return 1;
}

const struct tracker_ops fake_tracker_ops = {
    .name = "fake",
    .open = t_open,
    .close = t_close,
    .dump_start = t_dump_start,
    .get_flow = t_get_flow,
    .put_flow = t_put_flow,
    .put_exp = t_put_exp,
    .sink_flush = t_sink_flush,
    .mute_events = t_mute,
    .refresh_timeout = t_refresh,
    .max_entries = t_max,
    .stats = t_stats,
};

/* ---- fake channel and network ---- */

static struct fdgram *enqueue(struct fnet *n, int from, int to, const uint8_t *buf, size_t len)
{
	struct fdgram *d;

	if (n->nq == n->capq) {
		n->capq = n->capq ? n->capq * 2 : 256;
		n->q = realloc(n->q, n->capq * sizeof(*n->q));
	}
	d = &n->q[n->nq++];
	d->from = from;
	d->to = to;
	d->len = len;
	d->buf = malloc(len ? len : 1);
	memcpy(d->buf, buf, len);
	d->ctl = false;
	d->link = 0;
	return d;
}

static int c_open(struct chan **out, const struct hafw_config *cfg, int link,
                  struct event_base *base, const struct chan_events *ev, void *arg)
{
	struct fnode *nd = node_of_cfg(cfg);
	struct fchan *c = link ? &nd->bchan : &nd->chan;

	(void)base;
	c->node = nd;
	c->link = link;
	c->ev = ev;
	c->arg = arg;
	c->open = true;
	*out = (struct chan *)c;
	return 0;
}

static void c_close(struct chan *ch)
{
	((struct fchan *)ch)->open = false;
}

static int c_send(struct chan *ch, const uint8_t *buf, size_t len)
{
	struct fchan *c = (struct fchan *)ch;
	struct fnet *n = c->node->net;

	c->sent++;
	for (int i = 0; i < n->nnodes; i++)
		if (i != c->node->idx)
			enqueue(n, c->node->idx, i, buf, len)->link = c->link;
	return 0;
}

static int c_send_to(struct chan *ch, const struct chan_addr *to, const uint8_t *buf, size_t len)
{
	struct fchan *c = (struct fchan *)ch;
	struct fnet *n = c->node->net;

	c->sent_to++;
	if (to->len != 4 || to->ip[3] >= n->nnodes)
		return -EHOSTUNREACH;
	enqueue(n, c->node->idx, to->ip[3], buf, len)->link = c->link;
	return 0;
}

static size_t c_max_dgram(struct chan *ch)
{
	(void)ch;
	return 1400;
}

static size_t c_backlog(struct chan *ch)
{
	return ((struct fchan *)ch)->backlog;
}

static int c_stats(struct chan *ch, struct chan_stat *out, int max)
{
	struct fchan *c = (struct fchan *)ch;

	if (max < 1)
		return 0;
	out[0] = (struct chan_stat){"dgrams_sent", c->sent};
	return 1;
}

const struct chan_ops fake_chan_ops = {
    .name = "fake",
    .open = c_open,
    .close = c_close,
    .send = c_send,
    .send_to = c_send_to,
    .max_dgram = c_max_dgram,
    .backlog = c_backlog,
    .stats = c_stats,
};

/* ---- fake control channel ---- */

static struct fnode *node_of_id(struct fnet *n, uint32_t id)
{
	for (int i = 0; i < n->nnodes; i++)
		if ((uint32_t)n->nodes[i]->cfg.node_id == id)
			return n->nodes[i];
	return NULL;
}

static int k_open(struct chan **out, const struct hafw_config *cfg, int link,
                  struct event_base *base, const struct chan_events *ev, void *arg)
{
	struct fnode *nd = node_of_cfg(cfg);

	(void)base;
	(void)link;
	nd->ctl.ev = ev;
	nd->ctl.arg = arg;
	nd->ctl.open = true;
	memset(nd->ctl.queued, 0, sizeof(nd->ctl.queued));
	*out = (struct chan *)&nd->ctl;
	return 0;
}

static void k_close(struct chan *ch)
{
	struct fctl *c = (struct fctl *)ch;
	struct fnet *n = c->node->net;
	int me = c->node->idx;

	c->open = false;
	for (int j = 0; j < n->nnodes; j++) {
		/* the other side sees its connection go at the next delivery */
		n->ctl_want[me][j] = n->ctl_want[j][me] = false;
	}
}

static int k_peer_add(struct chan *ch, uint32_t id, const struct chan_addr *addr)
{
	struct fctl *c = (struct fctl *)ch;
	struct fnode *o = node_of_id(c->node->net, id);

	(void)addr;
	if (!o)
		return -EHOSTUNREACH;
	c->node->net->ctl_want[c->node->idx][o->idx] = true;
	c->node->net->ctl_want[o->idx][c->node->idx] = true;
	return 0;
}

static void k_peer_del(struct chan *ch, uint32_t id)
{
	struct fctl *c = (struct fctl *)ch;
	struct fnode *o = node_of_id(c->node->net, id);

	if (o)
		c->node->net->ctl_want[c->node->idx][o->idx] =
		    c->node->net->ctl_want[o->idx][c->node->idx] = false;
}

static int k_send_peer(struct chan *ch, uint32_t id, const uint8_t *buf, size_t len)
{
	struct fctl *c = (struct fctl *)ch;
	struct fnet *n = c->node->net;
	struct fnode *o = node_of_id(n, id);

	if (!o || !n->ctl_up[c->node->idx][o->idx])
		return -ENOTCONN;
	if (c->limit && c->queued[o->idx] >= c->limit) {
		c->refused++;
		return -ENOBUFS;
	}
	c->queued[o->idx] += len;
	c->sent++;
	enqueue(n, c->node->idx, o->idx, buf, len)->ctl = true;
	return 0;
}

static int k_send_to(struct chan *ch, const struct chan_addr *to, const uint8_t *buf, size_t len)
{
	struct fctl *c = (struct fctl *)ch;
	struct fnet *n = c->node->net;

	if (to->len != 4 || to->ip[3] >= n->nnodes)
		return -EHOSTUNREACH;
	return k_send_peer(ch, (uint32_t)n->nodes[to->ip[3]]->cfg.node_id, buf, len);
}

static int k_send(struct chan *ch, const uint8_t *buf, size_t len)
{
	struct fctl *c = (struct fctl *)ch;
	struct fnet *n = c->node->net;

	for (int j = 0; j < n->nnodes; j++)
		if (n->ctl_up[c->node->idx][j])
			k_send_peer(ch, (uint32_t)n->nodes[j]->cfg.node_id, buf, len);
	return 0;
}

static size_t k_max(struct chan *ch)
{
	(void)ch;
	return HAFW_WIRE_HDR_LEN + 65535;
}

static size_t k_backlog(struct chan *ch)
{
	struct fctl *c = (struct fctl *)ch;
	size_t b = 0;

	for (int j = 0; j < FNET_MAX_NODES; j++)
		b += c->queued[j];
	return b;
}

static size_t k_peer_backlog(struct chan *ch, uint32_t id)
{
	struct fctl *c = (struct fctl *)ch;
	struct fnode *o = node_of_id(c->node->net, id);

	return o ? c->queued[o->idx] : 0;
}

static int k_stats(struct chan *ch, struct chan_stat *out, int max)
{
	struct fctl *c = (struct fctl *)ch;

	if (max < 1)
		return 0;
	out[0] = (struct chan_stat){"messages_out", c->sent};
	return 1;
}

const struct chan_ops fake_ctl_ops = {
    .name = "fake-tcp",
    .open = k_open,
    .close = k_close,
    .send = k_send,
    .send_to = k_send_to,
    .max_dgram = k_max,
    .backlog = k_backlog,
    .stats = k_stats,
    .peer_add = k_peer_add,
    .peer_del = k_peer_del,
    .send_peer = k_send_peer,
    .peer_backlog = k_peer_backlog,
};

void fnet_ctl_cut(struct fnet *n, struct fnode *a, struct fnode *b, bool cut)
{
	n->ctl_cut[a->idx][b->idx] = n->ctl_cut[b->idx][a->idx] = cut;
}

/* Bring control connections up or down as wanted, with their events. */
static bool ctl_settle(struct fnet *n)
{
	bool changed = false;

	for (int i = 0; i < n->nnodes; i++)
		for (int j = 0; j < n->nnodes; j++) {
			struct fnode *a = n->nodes[i], *b = n->nodes[j];
			bool want = i != j && n->ctl_want[i][j] && !n->ctl_cut[i][j] && a->r &&
			            a->ctl.open && b->r && b->ctl.open;

			if (want == n->ctl_up[i][j])
				continue;
			n->ctl_up[i][j] = want;
			changed = true;
			if (!want)
				a->ctl.queued[j] = 0;
			if (a->r && a->ctl.open && a->ctl.ev) {
				if (want && a->ctl.ev->peer_up)
					a->ctl.ev->peer_up(a->ctl.arg, (uint32_t)b->cfg.node_id);
				else if (!want && a->ctl.ev->peer_down)
					a->ctl.ev->peer_down(a->ctl.arg, (uint32_t)b->cfg.node_id);
			}
		}
	return changed;
}

static uint64_t clk_mono(void *arg)
{
	return ((struct fnet *)arg)->mono_ms;
}

static uint64_t clk_wall(void *arg)
{
	return ((struct fnet *)arg)->wall_us;
}

struct fnet *fnet_new(void)
{
	struct fnet *n = calloc(1, sizeof(*n));

	n->base = event_base_new();
	n->mono_ms = 1000000;
	n->wall_us = 1800000000ull * 1000000; /* 2027 */
	n->clock = (struct repl_clock){clk_mono, clk_wall, n};
	g_net = n;
	return n;
}

void fnet_discard(struct fnet *n)
{
	for (size_t i = 0; i < n->nq; i++)
		free(n->q[i].buf);
	n->nq = 0;
}

void fnet_free(struct fnet *n)
{
	for (int i = 0; i < n->nnodes; i++) {
		struct fnode *nd = n->nodes[i];

		fnode_stop(nd);
		cache_free(nd->trk.flows);
		cache_free(nd->trk.exps);
		free(nd->trk.held);
		free(nd->trk.log);
		free(nd);
	}
	fnet_discard(n);
	free(n->q);
	event_base_free(n->base);
	if (g_net == n)
		g_net = NULL;
	free(n);
}

struct fnode *fnode_new(struct fnet *n, int id)
{
	struct fnode *nd = calloc(1, sizeof(*nd));

	nd->net = n;
	nd->idx = n->nnodes;
	n->nodes[n->nnodes++] = nd;
	config_defaults(&nd->cfg);
	nd->cfg.node_id = id;
	snprintf(nd->cfg.node_name, sizeof(nd->cfg.node_name), "node%d", id);
	snprintf(nd->cfg.tracker_type, sizeof(nd->cfg.tracker_type), "kernel");
	snprintf(nd->cfg.sync_if, sizeof(nd->cfg.sync_if), "sync0");
	nd->cfg.sync_flush_ms = 1;
	nd->cfg.commit_batch = 64;
	filter_init(&nd->filter);
	nd->trk.node = nd;
	nd->trk.flows = cache_new(0, 11);
	nd->trk.exps = cache_new(0, 12);
	nd->trk.dump_abort_after = -1;
	nd->chan.node = nd;
	nd->bchan.node = nd;
	nd->bchan.link = 1;
	nd->ctl.node = nd;
	return nd;
}

void fnode_start(struct fnode *nd)
{
	const char *what;

	nd->r = repl_new(&nd->cfg, nd->net->base, &fake_tracker_ops, &fake_chan_ops, &fake_ctl_ops,
	                 &nd->filter, &nd->net->clock);
	if (!nd->r)
		abort();
	nd->r->seq = nd->seq0;
	if (repl_start(nd->r, &what) < 0)
		abort();
}

void fnode_stop(struct fnode *nd)
{
	repl_free(nd->r);
	nd->r = NULL;
}

void fnet_advance(struct fnet *n, uint64_t ms)
{
	n->mono_ms += ms;
	n->wall_us += ms * 1000;
}

size_t fnet_deliver(struct fnet *n)
{
	size_t moved = ctl_settle(n) ? 1 : 0;

	while (n->nq) {
		size_t count = n->nq;
		struct fdgram *batch = malloc(count * sizeof(*batch));

		memcpy(batch, n->q, count * sizeof(*batch));
		n->nq = 0;
		for (size_t k = 0; k < count; k++) {
			struct fdgram *d = &batch[n->reverse && !batch[k].ctl ? count - 1 - k : k];
			struct fnode *to = n->nodes[d->to];
			int verdict = n->policy && !d->ctl ? n->policy(n, d, n->policy_arg) : 0;
			struct chan_addr from = {.len = 4,
			                         .ip = {10, 0, (uint8_t)d->link, (uint8_t)d->from}};
			struct fchan *tc = d->link ? &to->bchan : &to->chan;

			if (d->ctl) {
				struct fnode *fr = n->nodes[d->from];

				if (fr->ctl.queued[d->to] >= d->len)
					fr->ctl.queued[d->to] -= d->len;
				if (n->ctl_up[d->from][d->to] && to->r && to->ctl.open) {
					to->ctl.ev->recv(to->ctl.arg, d->buf, d->len, &from);
					n->delivered++;
				}
			} else if (verdict == 1 || !to->r || !tc->open || n->link_cut[d->link]) {
				n->dropped++;
			} else {
				for (int times = verdict == 2 ? 2 : 1; times; times--) {
					tc->recvd++;
					tc->ev->recv(tc->arg, d->buf, d->len, &from);
					n->delivered++;
				}
			}
			free(d->buf);
			moved++;
		}
		free(batch);
	}
	return moved;
}

static bool node_busy(struct fnode *nd)
{
	struct repl *r = nd->r;

	if (!r)
		return false;
	if (r->announcing || r->dumping || r->isweeping || r->commit || r->fb.events ||
	    nd->trk.dumping || nd->trk.ngets || nd->trk.flush_pending)
		return true;
	for (int i = 0; i < r->npeers; i++)
		if (r->peers[i]->sweeping || (r->peers[i]->btx && r->peers[i]->ctl_up))
			return true;
	return false;
}

static uint64_t real_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

bool fnet_run(struct fnet *n, unsigned max_ms)
{
	uint64_t end = real_ms() + max_ms;

	while (real_ms() < end) {
		bool busy = false;

		event_base_loop(n->base, EVLOOP_NONBLOCK);
		for (int i = 0; i < n->nnodes; i++) {
			if (n->nodes[i]->r)
				repl_flush_frames(n->nodes[i]->r);
			busy |= node_busy(n->nodes[i]);
		}
		if (fnet_deliver(n))
			continue;
		if (!busy)
			return true;
		usleep(200); /* an announce paces itself on a real-time timer */
	}
	return false;
}

void fnet_pass(struct fnet *n, uint64_t ms)
{
	for (uint64_t t = 0; t < ms; t += 250) {
		fnet_advance(n, 250);
		for (int i = 0; i < n->nnodes; i++)
			if (n->nodes[i]->r)
				repl_tick(n->nodes[i]->r);
		fnet_run(n, 5000);
	}
}

void fflow(struct hafw_flow *f, uint32_t n, uint32_t mark)
{
	memset(f, 0, sizeof(*f));
	f->orig.l3 = AF_INET;
	f->orig.l4 = IPPROTO_TCP;
	f->orig.src[0] = 10;
	f->orig.src[1] = (uint8_t)(n >> 16);
	f->orig.src[2] = (uint8_t)(n >> 8);
	f->orig.src[3] = (uint8_t)n;
	f->orig.dst[0] = 192;
	f->orig.dst[2] = 2;
	f->orig.dst[3] = 1;
	f->orig.sport = (uint16_t)(1024 + n % 60000);
	f->orig.dport = 80;
	hafw_tuple_invert(&f->orig, &f->reply);
	f->present =
	    HAFW_FA_REPLY | HAFW_FA_STATUS | HAFW_FA_TIMEOUT | HAFW_FA_MARK | HAFW_FA_TCP_STATE;
	f->status = HAFW_IPS_SEEN_REPLY | HAFW_IPS_ASSURED | HAFW_IPS_CONFIRMED;
	f->timeout = 300;
	f->mark = mark;
	f->tcp_state = 3; /* ESTABLISHED */
}

bool fnode_ext(struct fnode *nd, uint32_t id, const struct hafw_flow *key, struct hafw_flow *out)
{
	struct repl_peer *p = repl_peer_by_id(nd->r, id);
	struct cache_entry *e;

	if (!p)
		return false;
	e = cache_find(p->flows, &key->orig, key->zone);
	return e && hafw_flow_decode(e->blob, e->len, out) == 0;
}

size_t fnode_ext_count(struct fnode *nd, uint32_t id)
{
	struct repl_peer *p = repl_peer_by_id(nd->r, id);

	return p ? cache_count(p->flows) : 0;
}

struct mirror_cmp {
	struct fnode *rx;
	uint32_t src;
	unsigned missing, differ;
};

static int mirror_entry(struct cache_entry *e, void *arg)
{
	struct mirror_cmp *c = arg;
	struct hafw_flow mine, theirs;

	hafw_flow_decode(e->blob, e->len, &mine);
	if (!fnode_ext(c->rx, c->src, &mine, &theirs))
		c->missing++;
	else if (hafw_flow_diff(&mine, &theirs, UINT32_MAX))
		c->differ++;
	return 0;
}

bool fnode_mirrors(struct fnode *src, struct fnode *rx)
{
	struct mirror_cmp c = {rx, (uint32_t)src->cfg.node_id, 0, 0};

	cache_walk(repl_internal_flows(src->r), mirror_entry, &c);
	return !c.missing && !c.differ &&
	       fnode_ext_count(rx, c.src) == cache_count(repl_internal_flows(src->r));
}

struct fpair *fpair_new(void)
{
	struct fpair *w = calloc(1, sizeof(*w));

	w->n = fnet_new();
	w->a = fnode_new(w->n, 1);
	w->b = fnode_new(w->n, 2);
	return w;
}

void fpair_free(struct fpair *w)
{
	fnet_free(w->n);
	free(w);
}

int fpair_setup(void **state)
{
	*state = fpair_new();
	return 0;
}

int fpair_teardown(void **state)
{
	fpair_free(*state);
	return 0;
}
