/* Replication core: order and versions. Duplicated or reordered datagrams
 * neither move a peer's sequence backwards nor count as loss; an older
 * copy of a flow never overwrites a newer one, and a destroyed flow is not
 * brought back by a late copy. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "fake_ops.h"
#include "repl_int.h"

#include <stdlib.h>
#include <string.h>

static int setup(void **state)
{
	struct fpair *w = fpair_new();

	fnode_start(w->a);
	fnode_start(w->b);
	fnet_pass(w->n, 1000);
	*state = w;
	return 0;
}

static struct repl_peer *peer_a(struct fpair *w)
{
	return repl_peer_by_id(w->b->r, 1);
}

static uint32_t mark_at_b(struct fpair *w, uint32_t n)
{
	struct hafw_flow f;

	fflow(&f, n, 0);
	return fnode_ext(w->b, 1, &f, &f) ? f.mark : 0xffffffff;
}

/* Each change of flow n on A leaves in its own datagram. */
static void change(struct fpair *w, uint32_t n, uint32_t mark)
{
	struct hafw_flow f;

	fflow(&f, n, mark);
	ftrk_update(&w->a->trk, &f, &f);
	repl_flush_frames(w->a->r);
}

static int dup_all(struct fnet *n, struct fdgram *d, void *arg)
{
	(void)n;
	(void)d;
	(void)arg;
	return 2;
}

static void test_duplicates(void **state)
{
	struct fpair *w = *state;
	struct hafw_flow f;

	w->n->policy = dup_all;
	for (uint32_t i = 0; i < 50; i++) {
		fflow(&f, i, 1);
		ftrk_add(&w->a->trk, &f);
		repl_flush_frames(w->a->r);
	}
	fnet_pass(w->n, 2000);
	assert_int_equal(fnode_ext_count(w->b, 1), 50);
	assert_true(peer_a(w)->st.dup_dgrams >= 50);
	assert_int_equal(peer_a(w)->st.lost_dgrams, 0);
	assert_int_equal(peer_a(w)->st.stale_events, 0);
}

/* Two changes of one flow, delivered in reverse order. */
static void test_reorder_keeps_newest(void **state)
{
	struct fpair *w = *state;
	struct hafw_flow f;

	fflow(&f, 5, 1);
	ftrk_add(&w->a->trk, &f);
	fnet_run(w->n, 2000);
	change(w, 5, 2);
	change(w, 5, 3);
	w->n->reverse = true;
	fnet_deliver(w->n);
	w->n->reverse = false;
	assert_int_equal(mark_at_b(w, 5), 3);
	assert_int_equal(peer_a(w)->st.late_dgrams, 1);
	assert_int_equal(peer_a(w)->st.stale_events, 1);
	fnet_pass(w->n, 2000);
	assert_int_equal(peer_a(w)->st.lost_dgrams, 0);
	assert_int_equal(mark_at_b(w, 5), 3);
}

/* Many datagrams in a shuffled order: the window takes them all, nothing
 * counts as lost, every flow ends with its last mark. */
static int hold(struct fnet *n, struct fdgram *d, void *arg)
{
	(void)n;
	(void)d;
	(void)arg;
	return 0;
}

static void test_shuffle(void **state)
{
	struct fpair *w = *state;
	struct hafw_flow f;
	uint64_t seed = 42;

	for (uint32_t i = 0; i < 20; i++) {
		fflow(&f, i, 0);
		ftrk_add(&w->a->trk, &f);
	}
	fnet_run(w->n, 2000);
	for (uint32_t round = 1; round <= 5; round++)
		for (uint32_t i = 0; i < 20; i++)
			change(w, i, round);
	w->n->policy = hold;
	/* shuffle what is in flight (Fisher-Yates, deterministic) */
	for (size_t i = w->n->nq - 1; i > 0; i--) {
		size_t j;
		struct fdgram t;

		seed ^= seed << 13;
		seed ^= seed >> 7;
		seed ^= seed << 17;
		j = seed % (i + 1);
		t = w->n->q[i];
		w->n->q[i] = w->n->q[j];
		w->n->q[j] = t;
	}
	fnet_deliver(w->n);
	for (uint32_t i = 0; i < 20; i++)
		assert_int_equal(mark_at_b(w, i), 5);
	fnet_pass(w->n, 2000);
	assert_int_equal(peer_a(w)->st.lost_dgrams, 0);
	assert_true(peer_a(w)->st.late_dgrams > 10);
}

/* A destroy overtakes the create; a late update after a destroy: neither
 * brings the flow back. After the tombstone expired, a new flow with the
 * same key (a newer version) is accepted. */
static void test_tombstones(void **state)
{
	struct fpair *w = *state;
	struct hafw_flow f;

	fflow(&f, 9, 1);
	ftrk_add(&w->a->trk, &f);
	repl_flush_frames(w->a->r);
	ftrk_del(&w->a->trk, &f);
	repl_flush_frames(w->a->r);
	w->n->reverse = true;
	fnet_deliver(w->n);
	w->n->reverse = false;
	assert_false(fnode_ext(w->b, 1, &f, &f));
	assert_int_equal(peer_a(w)->st.resurrections, 1);
	assert_int_equal(cache_tombs(peer_a(w)->flows), 1);

	/* an update that was in flight before the destroy */
	fflow(&f, 10, 1);
	ftrk_add(&w->a->trk, &f);
	fnet_run(w->n, 2000);
	change(w, 10, 2);
	struct fdgram late = w->n->q[w->n->nq - 1];
	uint8_t *copy = malloc(late.len);

	memcpy(copy, late.buf, late.len);
	fnet_discard(w->n);
	fflow(&f, 10, 2);
	ftrk_del(&w->a->trk, &f);
	fnet_run(w->n, 2000);
	assert_false(fnode_ext(w->b, 1, &f, &f));
	/* its sequence number is a hole in the window, so the window lets
	 * it in; the version refuses it */
	w->b->chan.ev->recv(w->b->chan.arg, copy, late.len,
	                    &(struct chan_addr){.len = 4, .ip = {10, 0, 0, 0}});
	free(copy);
	assert_false(fnode_ext(w->b, 1, &f, &f));
	assert_int_equal(peer_a(w)->st.resurrections, 2);

	/* tombstones expire; a reused key later is a new flow */
	fnet_pass(w->n, (uint64_t)w->b->cfg.sync_tombstone_ms + 2000);
	assert_int_equal(cache_tombs(peer_a(w)->flows), 0);
	assert_true(w->b->r->st.tombs_expired >= 2);
	fflow(&f, 10, 3);
	ftrk_add(&w->a->trk, &f);
	fnet_run(w->n, 2000);
	assert_int_equal(mark_at_b(w, 10), 3);
}

/* Sequence numbers wrap around 2^32 without loss or staleness. */
static void test_sequence_wrap(void **state)
{
	struct fpair *w = *state;
	struct hafw_flow f;

	fnode_stop(w->a);
	fnet_advance(w->n, 500);
	w->a->seq0 = 0xffffffffu - 20;
	fnode_start(w->a);
	fnet_run(w->n, 2000);
	for (uint32_t i = 0; i < 60; i++) {
		fflow(&f, i, i);
		ftrk_add(&w->a->trk, &f);
		repl_flush_frames(w->a->r);
		if (i % 7 == 0) {
			w->n->reverse = true;
			fnet_deliver(w->n);
			w->n->reverse = false;
		}
	}
	fnet_pass(w->n, 2000);
	assert_true(w->a->r->seq < 100);
	assert_int_equal(fnode_ext_count(w->b, 1), 60);
	assert_int_equal(peer_a(w)->st.restarts, 1);
	assert_true(peer_a(w)->synced);
	assert_int_equal(peer_a(w)->st.lost_dgrams, 0);
	assert_int_equal(peer_a(w)->st.stale_dgrams, 0);
}

/* Lost datagrams at the tail: B learns of them from the next heartbeat,
 * NACKs them and A resends them; with NACK off they are counted lost,
 * once each. */
static int drop_data(struct fnet *n, struct fdgram *d, void *arg)
{
	int *left = arg;
	struct hafw_wire_hdr h;

	(void)n;
	if (*left > 0 && d->from == 0 && hafw_wire_hdr_parse(d->buf, d->len, &h) == 0 &&
	    h.type == HAFW_MSG_DATA) {
		(*left)--;
		return 1;
	}
	return 0;
}

static void tail_loss(struct fpair *w)
{
	struct hafw_flow f;
	int drop = 3;

	w->n->policy = drop_data;
	w->n->policy_arg = &drop;
	for (uint32_t i = 0; i < 3; i++) {
		fflow(&f, i, i);
		ftrk_add(&w->a->trk, &f);
		repl_flush_frames(w->a->r);
	}
	fnet_pass(w->n, 3000);
}

static void test_tail_loss_repaired(void **state)
{
	struct fpair *w = *state;

	tail_loss(w);
	assert_int_equal(peer_a(w)->st.lost_dgrams, 0);
	assert_true(peer_a(w)->st.nacks_sent >= 1);
	assert_int_equal(w->a->r->st.retransmits, 3);
	assert_int_equal(peer_a(w)->st.late_dgrams, 3);
	assert_int_equal(fnode_ext_count(w->b, 1), 3);
	assert_int_equal(peer_a(w)->st.resyncs_loss, 0);
}

static void test_tail_loss_counted_without_nack(void **state)
{
	struct fpair *w = *state;

	w->b->cfg.sync_nack = false;
	w->b->cfg.sync_resync = false;
	tail_loss(w);
	fnet_pass(w->n, 3000); /* given up after a few heartbeats */
	assert_int_equal(peer_a(w)->st.lost_dgrams, 3);
	fnet_pass(w->n, 3000);
	assert_int_equal(peer_a(w)->st.lost_dgrams, 3);
	assert_int_equal(peer_a(w)->st.nacks_sent, 0);
	assert_int_equal(fnode_ext_count(w->b, 1), 0);
}

/* A corrupted sequence number far ahead must not silence the peer. */
static void test_window_follows_after_corruption(void **state)
{
	struct fpair *w = *state;
	struct hafw_flow f;

	fflow(&f, 1, 1);
	ftrk_add(&w->a->trk, &f);
	repl_flush_frames(w->a->r);
	w->n->q[w->n->nq - 1].buf[16] ^= 0x40; /* seq += 2^30 */
	fnet_deliver(w->n);
	for (uint32_t i = 2; i < 100; i++) {
		fflow(&f, i, 1);
		ftrk_add(&w->a->trk, &f);
		repl_flush_frames(w->a->r);
		fnet_deliver(w->n);
	}
	fnet_pass(w->n, 2000);
	assert_int_equal(peer_a(w)->st.window_resets, 1);
	assert_true(fnode_ext_count(w->b, 1) >= 99 - 64);
	fflow(&f, 99, 1);
	assert_true(fnode_ext(w->b, 1, &f, &f));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_duplicates, setup, fpair_teardown),
	    cmocka_unit_test_setup_teardown(test_reorder_keeps_newest, setup, fpair_teardown),
	    cmocka_unit_test_setup_teardown(test_shuffle, setup, fpair_teardown),
	    cmocka_unit_test_setup_teardown(test_tombstones, setup, fpair_teardown),
	    cmocka_unit_test_setup_teardown(test_sequence_wrap, setup, fpair_teardown),
	    cmocka_unit_test_setup_teardown(test_tail_loss_repaired, setup, fpair_teardown),
	    cmocka_unit_test_setup_teardown(test_tail_loss_counted_without_nack, setup,
	                                    fpair_teardown),
	    cmocka_unit_test_setup_teardown(test_window_follows_after_corruption, setup,
	                                    fpair_teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
