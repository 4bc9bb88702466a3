/* What waits to be sent: events are kept by key until the frame flush, so
 * several changes of one flow leave as one event and a flow created and
 * destroyed inside the flush window costs nothing on the link; and, with
 * sync.delay_ms, new flows wait until they are that old (short-lived flows
 * are never replicated: counted as unprotected).
 *
 * The order of events of different keys does not matter to a receiver
 * (each event is a whole object with its version); the order of changes of
 * one key is kept by keeping only the last. */
#include "repl_int.h"
#include "config.h"
#include "flow_pb.h"
#include "log.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

/* a pending entry's blob: [type][flags][the encoded object] */
enum { PEND_HDR = 2 };

struct txq_walk {
	struct repl *r;
	enum frame_obj obj;
};

/* Move pending events into frames (full frames leave at once). */
static int flush_one(struct cache_entry *e, void *arg)
{
	struct txq_walk *w = arg;
	struct repl *r = w->r;
	int type = e->blob[0];
	const uint8_t *obj = e->blob + PEND_HDR;
	size_t len = e->len - PEND_HDR;

	if (frame_add(&r->fb, type, w->obj, obj, len, e->version) == -ENOSPC) {
		repl_emit_frame(r);
		if (frame_add(&r->fb, type, w->obj, obj, len, e->version) < 0)
			r->st.encode_errors++; /* larger than a datagram: cannot happen */
	}
	return 0;
}

void repl_flush_pending(struct repl *r)
{
	struct txq_walk w = {r, FRAME_FLOW};

	if (!r->pend_bytes)
		return;
	cache_walk(r->pend_f, flush_one, &w);
	w.obj = FRAME_EXP;
	cache_walk(r->pend_x, flush_one, &w);
	cache_flush(r->pend_f);
	cache_flush(r->pend_x);
	r->pend_bytes = 0;
}

static void arm_flush(struct repl *r)
{
	if (!r->flush_armed) {
		struct timeval tv = {0, r->cfg->sync_flush_ms * 1000};

		evtimer_add(r->flush_ev, &tv);
		r->flush_armed = true;
	}
}

static void pend_put(struct repl *r, struct cache *c, const struct hafw_tuple *key, uint16_t zone,
                     int type, unsigned flags, const uint8_t *blob, size_t len, uint64_t version,
                     struct cache_entry *old)
{
	uint8_t buf[PEND_HDR + HAFW_FLOW_MAX_ENCODED];

	if (len > HAFW_FLOW_MAX_ENCODED) {
		r->st.encode_errors++;
		return;
	}
	if (old)
		r->pend_bytes -= old->len;
	buf[0] = (uint8_t)type;
	buf[1] = (uint8_t)flags;
	memcpy(buf + PEND_HDR, blob, len);
	if (cache_put(c, key, zone, buf, PEND_HDR + len, 0, version) < 0) {
		/* no room to wait: it leaves at once */
		r->st.cache_nomem++;
		if (old)
			cache_del(c, key, zone);
		repl_flush_pending(r);
		if (frame_add(&r->fb, type, c == r->pend_f ? FRAME_FLOW : FRAME_EXP, blob, len,
		              version) == -ENOSPC) {
			repl_emit_frame(r);
			frame_add(&r->fb, type, c == r->pend_f ? FRAME_FLOW : FRAME_EXP, blob, len,
			          version);
		}
		return;
	}
	r->pend_bytes += PEND_HDR + len;
	/* a datagram's worth waits at most: then it all leaves */
	if (r->pend_bytes >= r->max_dgram)
		repl_send_frame(r);
	else
		arm_flush(r);
}

/* ---- delayed new flows (sync.delay_ms) ---- */

static void delay_digest(struct repl *r, const struct cache_entry *e, int sign)
{
	uint64_t d = cache_entry_digest(&e->key, e->zone, e->version);

	if (sign > 0)
		r->delayed_digest += d;
	else
		r->delayed_digest -= d;
}

static int fifo_push(struct repl *r, const struct hafw_tuple *key, uint16_t zone, uint64_t due)
{
	if (r->nfifo == r->capfifo) {
		size_t cap = r->capfifo ? r->capfifo * 2 : 256;
		struct txq_due *n = malloc(cap * sizeof(*n));

		if (!n)
			return -ENOMEM;
		for (size_t i = 0; i < r->nfifo; i++)
			n[i] = r->fifo[(r->fifo_head + i) % r->capfifo];
		free(r->fifo);
		r->fifo = n;
		r->capfifo = cap;
		r->fifo_head = 0;
	}
	r->fifo[(r->fifo_head + r->nfifo++) % r->capfifo] = (struct txq_due){*key, zone, due};
	return 0;
}

static bool delay_new(struct repl *r, const struct hafw_tuple *key, uint16_t zone,
                      const uint8_t *blob, size_t len, uint64_t version)
{
	struct cache_entry *e;

	if (cache_put(r->delayed, key, zone, blob, len, 0, version) < 0)
		return false;
	e = cache_find(r->delayed, key, zone);
	delay_digest(r, e, 1);
	if (fifo_push(r, key, zone, repl_now_ms(r) + (uint64_t)r->cfg->sync_delay_ms) < 0) {
		delay_digest(r, e, -1);
		cache_del(r->delayed, key, zone);
		return false;
	}
	return true;
}

/* Flows that have lived long enough leave (as new); a bounded number per
 * call, from the oldest. */
void repl_txq_tick(struct repl *r)
{
	uint64_t now = repl_now_ms(r);
	unsigned budget = 4096;

	while (r->nfifo && budget--) {
		struct txq_due *d = &r->fifo[r->fifo_head];
		struct cache_entry *e;

		if (d->due_ms > now)
			break;
		e = cache_find(r->delayed, &d->key, d->zone);
		if (e) {
			struct cache_entry *old = cache_lookup(r->pend_f, &d->key, d->zone);

			delay_digest(r, e, -1);
			pend_put(r, r->pend_f, &d->key, d->zone, HAFW_EV_NEW, REPL_TXQ_LIVE_NEW,
			         e->blob, e->len, e->version, old);
			cache_del(r->delayed, &d->key, d->zone);
		}
		r->fifo_head = (r->fifo_head + 1) % r->capfifo;
		r->nfifo--;
	}
}

/* ---- the entry point ---- */

void repl_queue_event(struct repl *r, int type, enum frame_obj obj, const struct hafw_tuple *key,
                      uint16_t zone, const uint8_t *blob, size_t len, uint64_t version,
                      unsigned flags)
{
	struct cache *c = obj == FRAME_FLOW ? r->pend_f : r->pend_x;
	struct cache_entry *old, *dl;

	/* a flow still waiting for its age: it changes or goes where it
	 * waits, and peers never hear of a short-lived one */
	if (obj == FRAME_FLOW && (dl = cache_find(r->delayed, key, zone))) {
		delay_digest(r, dl, -1);
		if (type == HAFW_EV_DESTROY) {
			cache_del(r->delayed, key, zone);
			r->st.unprotected_gone++;
			return;
		}
		if (!(flags & REPL_TXQ_ANNOUNCE) || version >= dl->version) {
			if (cache_put(r->delayed, key, zone, blob, len, 0, version) == 0) {
				delay_digest(r, cache_find(r->delayed, key, zone), 1);
				return;
			}
			cache_del(r->delayed, key, zone); /* no memory: send it now */
		} else {
			delay_digest(r, dl, 1);
			return;
		}
	}
	old = cache_lookup(c, key, zone);
	if (old) {
		unsigned oflags = old->blob[1];

		/* an announce of a stored copy never overrides a newer change */
		if ((flags & REPL_TXQ_ANNOUNCE) && old->version > version)
			return;
		r->st.coalesced++;
		if (type == HAFW_EV_DESTROY && (oflags & REPL_TXQ_LIVE_NEW)) {
			/* created and destroyed before anyone heard: nothing */
			r->pend_bytes -= old->len;
			cache_del(c, key, zone);
			r->st.coalesced++;
			return;
		}
		if (type != HAFW_EV_DESTROY && old->blob[0] != HAFW_EV_DESTROY)
			flags |= oflags & REPL_TXQ_LIVE_NEW;
		pend_put(r, c, key, zone, type, flags, blob, len, version, old);
		return;
	}
	if (obj == FRAME_FLOW && type == HAFW_EV_NEW && (flags & REPL_TXQ_LIVE_NEW) &&
	    r->cfg->sync_delay_ms > 0 && delay_new(r, key, zone, blob, len, version))
		return;
	pend_put(r, c, key, zone, type, flags, blob, len, version, NULL);
}

size_t repl_txq_delayed(const struct repl *r)
{
	return cache_count(r->delayed);
}

size_t repl_txq_delayed_count(const struct repl *r)
{
	return repl_txq_delayed(r);
}

int repl_txq_init(struct repl *r)
{
	r->pend_f = cache_new(64, r->seed);
	r->pend_x = cache_new(64, r->seed);
	r->delayed = cache_new(64, r->seed);
	return r->pend_f && r->pend_x && r->delayed ? 0 : -ENOMEM;
}

void repl_txq_free(struct repl *r)
{
	cache_free(r->pend_f);
	cache_free(r->pend_x);
	cache_free(r->delayed);
	free(r->fifo);
}
