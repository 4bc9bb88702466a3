/* Replication core: the control channel. A node pulls a peer's whole table
 * as a bulk (first contact, the peer's restart, a resync) over its control
 * connection, as fast as the connection takes it, while live events keep
 * coming; a bulk that breaks off is resumed where it stopped; versions keep
 * bulk entries from overwriting newer live changes. Hello negotiates the
 * protocol: another major is refused, a later minor's additions are
 * skipped and counted. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "fake_ops.h"
#include "flow_pb.h"
#include "repl_int.h"

#include <stdlib.h>
#include <string.h>

static void add_flows(struct fnode *nd, uint32_t from, uint32_t count)
{
	struct hafw_flow f;

	for (uint32_t i = from; i < from + count; i++) {
		fflow(&f, i, 1);
		ftrk_put_silent(&nd->trk, &f);
	}
}

/* B starts after A holds 20000 flows: it pulls them as one bulk, with the
 * connection's backpressure on, and A sends no multicast announce. */
static void test_first_contact_pulls_bulk(void **state)
{
	struct fpair *w = *state;
	struct repl_peer *p;

	add_flows(w->a, 0, 20000);
	w->a->ctl.limit = 200 * 1024; /* a few frames may wait per peer */
	fnode_start(w->a);
	fnet_pass(w->n, 1000);
	fnode_start(w->b);
	fnet_pass(w->n, 3000);
	p = repl_peer_by_id(w->b->r, 1);
	assert_int_equal(fnode_ext_count(w->b, 1), 20000);
	assert_true(p->synced);
	assert_int_equal(p->st.bulks_received, 1);
	assert_int_equal(w->a->r->st.bulks_sent, 1);
	assert_true(w->a->r->st.bulk_entries_sent >= 20000);
	assert_true(w->a->ctl.refused > 0); /* it did wait for room */
	assert_int_equal(w->a->r->st.announces, 0);
}

/* The connection breaks in the middle of a bulk: when it is back the bulk
 * goes on where it stopped (same id), live changes made meanwhile win over
 * older bulk entries, and what A destroyed meanwhile is gone at the end. */
static int hold_ctl(struct fnet *n, struct fdgram *d, void *arg)
{
	(void)n;
	(void)d;
	(void)arg;
	return 0;
}

static void test_bulk_resumes(void **state)
{
	struct fpair *w = *state;
	struct repl_peer *p;
	struct hafw_flow f, got;
	int steps = 0;

	add_flows(w->a, 0, 30000);
	w->a->ctl.limit = 64 * 1024;
	fnode_start(w->a);
	fnet_pass(w->n, 1000);
	fnode_start(w->b);
	w->n->policy = hold_ctl;
	/* step until the bulk is under way */
	while (steps++ < 2000) {
		event_base_loop(w->n->base, EVLOOP_ONCE | EVLOOP_NONBLOCK);
		for (int i = 0; i < 2; i++)
			repl_flush_frames(w->n->nodes[i]->r);
		fnet_deliver(w->n);
		fnet_advance(w->n, 5);
		for (int i = 0; i < 2; i++)
			repl_tick(w->n->nodes[i]->r);
		p = repl_peer_by_id(w->b->r, 1);
		if (p && p->bulk_rx_active && p->bulk_rx_entries > 3000)
			break;
	}
	assert_true(p->bulk_rx_active);
	uint64_t id = p->bulk_rx_id;

	fnet_ctl_cut(w->n, w->a, w->b, true);
	fnet_run(w->n, 2000);
	assert_false(p->ctl_up);
	/* meanwhile on A: a change and a destroy, both on the data channel */
	fflow(&f, 29999, 77);
	ftrk_update(&w->a->trk, &f, &f);
	fflow(&f, 29998, 1);
	ftrk_del(&w->a->trk, &f);
	fnet_run(w->n, 2000);
	fnet_ctl_cut(w->n, w->a, w->b, false);
	fnet_pass(w->n, 3000);
	assert_int_equal(repl_peer_by_id(w->a->r, 2)->st.bulks_resumed, 1);
	assert_int_equal(p->st.bulks_received, 1);
	assert_true(p->synced);
	assert_int_equal(fnode_ext_count(w->b, 1), 29999);
	fflow(&f, 29999, 0);
	assert_true(fnode_ext(w->b, 1, &f, &got));
	assert_int_equal(got.mark, 77);
	assert_true(id != 0);
}

/* A's restart with loss on the data channel: B pulls A's new state as a
 * bulk and sweeps what A's new run lacks, without waiting for a complete
 * multicast transmission. */
static int drop_data(struct fnet *n, struct fdgram *d, void *arg)
{
	int *k = arg;
	struct hafw_wire_hdr h;

	(void)n;
	if (d->from == 0 && hafw_wire_hdr_parse(d->buf, d->len, &h) == 0 &&
	    h.type == HAFW_MSG_DATA && ++*k % 3 == 0)
		return 1;
	return 0;
}

static void test_restart_repaired_by_bulk(void **state)
{
	struct fpair *w = *state;
	struct hafw_flow f;
	struct repl_peer *p;
	int k = 0;

	add_flows(w->a, 0, 500);
	fnode_start(w->a);
	fnode_start(w->b);
	fnet_pass(w->n, 2000);
	assert_int_equal(fnode_ext_count(w->b, 1), 500);
	fnode_stop(w->a);
	for (uint32_t i = 0; i < 50; i++) {
		fflow(&f, i, 1);
		ftrk_del_silent(&w->a->trk, &f);
	}
	fnet_advance(w->n, 500);
	w->b->cfg.sync_nack = false; /* only the bulk can repair */
	w->n->policy = drop_data;
	w->n->policy_arg = &k;
	fnode_start(w->a);
	fnet_pass(w->n, 3000);
	p = repl_peer_by_id(w->b->r, 1);
	assert_int_equal(p->st.restarts, 1);
	assert_true(p->st.bulks_received >= 1);
	assert_int_equal(fnode_ext_count(w->b, 1), 450);
	assert_int_equal(p->st.restart_swept, 50);
	assert_true(p->synced);
}

/* Hello from another major version: refused, the connection dropped. */
static void inject_ctl(struct fnode *to, uint32_t from_id, uint8_t type, const uint8_t *payload,
                       size_t len)
{
	uint8_t buf[HAFW_WIRE_HDR_LEN + 256];
	struct hafw_wire_hdr h = {
	    .type = type, .len = (uint16_t)len, .sender = from_id, .epoch = 5};

	hafw_wire_hdr_write(&h, buf);
	memcpy(buf + HAFW_WIRE_HDR_LEN, payload, len);
	to->ctl.ev->recv(to->ctl.arg, buf, HAFW_WIRE_HDR_LEN + len,
	                 &(struct chan_addr){.len = 4, .ip = {10, 0, 0, 0}});
}

static void test_version_negotiation(void **state)
{
	struct fpair *w = *state;
	Hafw__Hello m = HAFW__HELLO__INIT;
	uint8_t pb[128], frame[512];
	struct repl_peer *p;
	size_t n;

	fnode_start(w->a);
	fnode_start(w->b);
	fnet_pass(w->n, 2000);
	p = repl_peer_by_id(w->b->r, 1);
	assert_true(p->ctl_up);
	assert_int_equal(p->proto_minor, HAFW_PROTO_VERSION & 0xff);

	/* major 3: refused and the connection goes */
	m.node_id = 1;
	m.has_proto_version = 1;
	m.proto_version = 3 << 8;
	n = hafw__hello__pack(&m, pb);
	inject_ctl(w->b, 1, HAFW_MSG_HELLO, pb, n);
	assert_int_equal(p->st.version_refused, 1);
	assert_false(p->ctl_up);
	/* not connected to again at once (it would be refused again), but
	 * later: the peer may have been upgraded */
	assert_false(p->ctl_added);
	fnet_pass(w->n, 2000);
	assert_false(p->ctl_added);
	fnet_pass(w->n, 30000);
	assert_true(p->ctl_added);

	/* a next minor: a hello with a field this version does not know, a
	 * message type it does not know, and a data frame whose event has
	 * an unknown field: applied as far as known, the rest counted */
	m.proto_version = HAFW_PROTO_VERSION + 1;
	n = hafw__hello__pack(&m, pb);
	pb[n++] = (15 << 3) | 0; /* field 15, varint */
	pb[n++] = 7;
	inject_ctl(w->b, 1, HAFW_MSG_HELLO, pb, n);
	assert_true(p->ctl_up);
	assert_int_equal(p->proto_minor, (HAFW_PROTO_VERSION & 0xff) + 1);
	assert_true(p->st.unknown_fields >= 1);
	inject_ctl(w->b, 1, HAFW_MSG_MAX + 3, pb, 2);
	assert_int_equal(p->st.unknown_types, 1);

	{
		struct hafw_flow f;
		uint8_t blob[HAFW_FLOW_MAX_ENCODED], dg[600];
		struct frame_builder fb;
		struct hafw_wire_hdr h = {
		    .type = HAFW_MSG_DATA, .sender = 1, .epoch = p->epoch, .seq = p->win.hi + 1};
		int len;
		uint64_t unknown0 = p->st.unknown_fields;

		fflow(&f, 4242, 9);
		len = hafw_flow_encode(&f, blob, sizeof(blob));
		frame_init(&fb, frame, sizeof(frame));
		frame_add(&fb, HAFW_EV_NEW, FRAME_FLOW, blob, (size_t)len,
		          repl_next_version(w->a->r));
		/* an unknown field (number 9) appended to the frame */
		frame[fb.used++] = (9 << 3) | 0;
		frame[fb.used++] = 1;
		h.len = (uint16_t)fb.used;
		hafw_wire_hdr_write(&h, dg);
		memcpy(dg + HAFW_WIRE_HDR_LEN, frame, fb.used);
		w->b->chan.ev->recv(w->b->chan.arg, dg, HAFW_WIRE_HDR_LEN + fb.used,
		                    &(struct chan_addr){.len = 4, .ip = {10, 0, 0, 0}});
		assert_true(fnode_ext(w->b, 1, &f, &f));
		assert_int_equal(f.mark, 9);
		assert_int_equal(p->st.unknown_fields, unknown0 + 1);

		/* an unknown message type on the data channel: skipped, and its
		 * number is not a hole */
		h.type = HAFW_MSG_MAX + 1;
		h.seq = p->win.hi + 1;
		h.len = 0;
		hafw_wire_hdr_write(&h, dg);
		w->b->chan.ev->recv(w->b->chan.arg, dg, HAFW_WIRE_HDR_LEN,
		                    &(struct chan_addr){.len = 4, .ip = {10, 0, 0, 0}});
		assert_int_equal(p->st.unknown_types, 2);
		assert_int_equal(seqwin_missing(&p->win), 0);
	}
}

/* The data path's unicast fails (every NACK on it is lost) while A's
 * datagrams to B are lost now and then: after NACK_CTL_ROUNDS NACKs B asks
 * over the control connection, A resends there, and the holes close with
 * no resync. Control: without a control connection the same holes are
 * given up and need B to ask for A's full state. */
struct nack_loss {
	unsigned k;
};

static int lose_nacks_and_some(struct fnet *n, struct fdgram *d, void *arg)
{
	struct nack_loss *l = arg;
	struct hafw_wire_hdr h;

	(void)n;
	if (hafw_wire_hdr_parse(d->buf, d->len, &h) != HAFW_WIRE_OK)
		return 0;
	if (h.type == HAFW_MSG_NACK)
		return 1;
	return d->from == 0 && h.type == HAFW_MSG_DATA && ++l->k % 5 == 0;
}

static void nack_run(bool control, struct repl_peer_stats *out)
{
	struct fpair *w = fpair_new();
	struct nack_loss l = {0};
	struct repl_peer *p;

	for (int i = 0; i < 2; i++) {
		struct fnode *nd = i ? w->b : w->a;

		nd->cfg.sync_control = control;
		/* no digest repair: this is about the holes */
		nd->cfg.sync_digest_grace_ms = 0;
	}
	fnode_start(w->a);
	fnode_start(w->b);
	fnet_pass(w->n, 2000);
	w->n->policy = lose_nacks_and_some;
	w->n->policy_arg = &l;
	for (uint32_t i = 0; i < 3000; i++) {
		struct hafw_flow f;

		fflow(&f, i, 1);
		ftrk_add(&w->a->trk, &f);
		if (i % 100 == 99)
			fnet_pass(w->n, 100);
	}
	fnet_pass(w->n, 6000);
	p = repl_peer_by_id(w->b->r, 1);
	*out = p->st;
	if (control)
		assert_true(fnode_mirrors(w->a, w->b));
	fpair_free(w);
}

static void test_nack_over_control(void **state)
{
	struct repl_peer_stats with, without;

	(void)state;
	nack_run(true, &with);
	assert_true(with.nacks_sent_control > 0);
	assert_int_equal(with.resyncs_loss, 0);
	assert_int_equal(with.misses, 0);
	nack_run(false, &without);
	assert_int_equal(without.nacks_sent_control, 0);
	assert_true(without.resyncs_loss > 0);
}

/* hafwctl ready: not right after a start (peers not heard yet count as
 * down), not while a peer's bulk is under way, then ready; a node alone is
 * ready once a dead interval passed. */
static void test_ready(void **state)
{
	struct fpair *w = *state;
	struct repl_peer *p = NULL;
	char why[128];
	int steps = 0;

	add_flows(w->a, 0, 20000);
	w->a->ctl.limit = 8 * 1024; /* a slow bulk */
	fnode_start(w->a);
	fnet_pass(w->n, 500);
	assert_false(repl_ready(w->a->r, why, sizeof(why)));
	assert_non_null(strstr(why, "just started"));
	fnet_pass(w->n, w->a->cfg.sync_dead_interval_ms);
	assert_true(repl_ready(w->a->r, why, sizeof(why))); /* alone, after the grace */

	/* B's grace short, so its bulk is still under way after it */
	w->b->cfg.sync_heartbeat_ms = 100;
	w->b->cfg.sync_dead_interval_ms = 300;
	fnode_start(w->b);
	assert_false(repl_ready(w->b->r, why, sizeof(why)));
	while (steps++ < 4000) {
		event_base_loop(w->n->base, EVLOOP_ONCE | EVLOOP_NONBLOCK);
		for (int i = 0; i < 2; i++)
			repl_flush_frames(w->n->nodes[i]->r);
		fnet_deliver(w->n);
		fnet_advance(w->n, 5);
		for (int i = 0; i < 2; i++)
			repl_tick(w->n->nodes[i]->r);
		p = repl_peer_by_id(w->b->r, 1);
		if (p && p->bulk_rx_active && repl_now_ms(w->b->r) - w->b->r->started_ms > 300)
			break;
	}
	assert_non_null(p);
	assert_true(p->bulk_rx_active);
	assert_false(repl_ready(w->b->r, why, sizeof(why)));
	assert_non_null(strstr(why, "full state"));
	fnet_pass(w->n, 3000);
	assert_int_equal(fnode_ext_count(w->b, 1), 20000);
	assert_true(repl_ready(w->b->r, why, sizeof(why)));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_first_contact_pulls_bulk, fpair_setup,
	                                    fpair_teardown),
	    cmocka_unit_test_setup_teardown(test_bulk_resumes, fpair_setup, fpair_teardown),
	    cmocka_unit_test_setup_teardown(test_restart_repaired_by_bulk, fpair_setup,
	                                    fpair_teardown),
	    cmocka_unit_test_setup_teardown(test_version_negotiation, fpair_setup, fpair_teardown),
	    cmocka_unit_test(test_nack_over_control),
	    cmocka_unit_test_setup_teardown(test_ready, fpair_setup, fpair_teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
