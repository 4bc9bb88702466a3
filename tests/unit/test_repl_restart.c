/* Replication core: peers that restart. A restart is seen on whatever
 * datagram of the new epoch arrives first, handled once, and never empties
 * a cache before the new epoch's full state is known to be complete. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "fake_ops.h"
#include "repl_int.h"

#include <stdlib.h>
#include <string.h>

/* A holds n flows, B has replicated all of them. */
static void converge(struct fpair *w, uint32_t n)
{
	struct hafw_flow f;

	for (uint32_t i = 0; i < n; i++) {
		fflow(&f, i, 7);
		ftrk_put_silent(&w->a->trk, &f);
	}
	fnode_start(w->a);
	fnode_start(w->b);
	fnet_pass(w->n, 3000);
	assert_int_equal(fnode_ext_count(w->b, 1), n);
	assert_true(repl_peer_by_id(w->b->r, 1)->synced);
}

/* A restarts (a later epoch), holding the same table. */
static void restart_a(struct fpair *w)
{
	fnode_stop(w->a);
	fnet_advance(w->n, 500);
	fnode_start(w->a);
}

static int drop_first(struct fnet *n, struct fdgram *d, void *arg)
{
	int *left = arg;

	(void)n;
	if (d->from == 0 && *left > 0) {
		(*left)--;
		return 1;
	}
	return 0;
}

/* The foundation flushed everything when the heartbeat after a restart
 * brought a new boot id, after it had applied the new announce. */
static void test_lost_first_heartbeat(void **state)
{
	struct fpair *w = *state;
	struct repl_peer *p;
	int drop = 1;

	converge(w, 40);
	restart_a(w);
	w->n->policy = drop_first; /* A's first datagram is its heartbeat */
	w->n->policy_arg = &drop;
	fnet_pass(w->n, 5000);
	p = repl_peer_by_id(w->b->r, 1);
	assert_int_equal(p->st.restarts, 1);
	assert_int_equal(fnode_ext_count(w->b, 1), 40);
	assert_int_equal(p->st.restart_swept, 0);
	assert_true(p->synced);
}

/* What the restarted node no longer holds goes, but only once its new full
 * state has arrived complete. */
static void test_restart_sweeps_after_full_state(void **state)
{
	struct fpair *w = *state;
	struct hafw_flow f;
	struct repl_peer *p;

	converge(w, 40);
	fnode_stop(w->a);
	for (uint32_t i = 0; i < 10; i++) { /* gone while A was down */
		fflow(&f, i, 7);
		ftrk_del_silent(&w->a->trk, &f);
	}
	fnet_advance(w->n, 500);
	fnode_start(w->a);
	/* before anything of A's new epoch: all 40 are still there */
	assert_int_equal(fnode_ext_count(w->b, 1), 40);
	fnet_run(w->n, 5000);
	/* the dump's announce arrived, its completeness is told by the next
	 * heartbeat: nothing was swept before */
	p = repl_peer_by_id(w->b->r, 1);
	assert_int_equal(p->st.restarts, 1);
	assert_int_equal(fnode_ext_count(w->b, 1), 40);
	fnet_pass(w->n, 3000);
	assert_int_equal(fnode_ext_count(w->b, 1), 30);
	assert_int_equal(p->st.restart_swept, 10);
	fflow(&f, 3, 7);
	assert_false(fnode_ext(w->b, 1, &f, &f));
}

/* A restart with an empty table: the full state is a transmission of
 * nothing, and everything of the old epoch goes. */
static void test_restart_to_empty_table(void **state)
{
	struct fpair *w = *state;
	struct hafw_flow f;
	struct repl_peer *p;

	converge(w, 20);
	fnode_stop(w->a);
	for (uint32_t i = 0; i < 20; i++) {
		fflow(&f, i, 7);
		ftrk_del_silent(&w->a->trk, &f);
	}
	fnet_advance(w->n, 500);
	fnode_start(w->a);
	fnet_pass(w->n, 3000);
	p = repl_peer_by_id(w->b->r, 1);
	assert_int_equal(fnode_ext_count(w->b, 1), 0);
	assert_int_equal(p->st.restart_swept, 20);
	assert_true(p->synced);
	assert_false(p->need_full);
	/* and two idle nodes with empty tables are in sync with each other */
	assert_true(repl_peer_by_id(w->a->r, 2)->synced);
}

/* Datagrams of the new epoch lost in the middle of its full state: B keeps
 * the old entries, asks for the full state again, then sweeps. */
static int drop_some_data(struct fnet *n, struct fdgram *d, void *arg)
{
	int *count = arg;
	struct hafw_wire_hdr h;

	(void)n;
	if (*count >= 0 && d->from == 0 &&
	    hafw_wire_hdr_parse(d->buf, d->len, &h) == HAFW_WIRE_OK && h.type == HAFW_MSG_DATA &&
	    ++(*count) % 4 == 0)
		return 1;
	return 0;
}

static void test_restart_with_loss_keeps_then_repairs(void **state)
{
	struct fpair *w = *state;
	struct hafw_flow f;
	struct repl_peer *p;
	int count = 0;

	/* the multicast path: no control channel (with one, B pulls a bulk:
	 * see test_repl_bulk) */
	w->a->cfg.sync_control = w->b->cfg.sync_control = false;
	converge(w, 300); /* several datagrams of state */
	/* without NACK the holes stay: the full state is incomplete (with
	 * NACK they are filled: see test_repl_loss) */
	w->b->cfg.sync_nack = false;
	fnode_stop(w->a);
	for (uint32_t i = 0; i < 10; i++) {
		fflow(&f, i, 7);
		ftrk_del_silent(&w->a->trk, &f);
	}
	fnet_advance(w->n, 500);
	w->n->policy = drop_some_data;
	w->n->policy_arg = &count;
	fnode_start(w->a);
	fnet_pass(w->n, 2500);
	p = repl_peer_by_id(w->b->r, 1);
	/* incomplete: nothing swept, and B asked for A's state again */
	assert_int_equal(p->st.restart_swept, 0);
	assert_true(p->st.sweeps_skipped >= 1);
	assert_true(p->need_full);
	assert_int_equal(fnode_ext_count(w->b, 1), 300);
	count = -1; /* the link heals */
	fnet_pass(w->n, 5000);
	assert_true(w->a->r->st.announce_requests >= 1);
	assert_int_equal(fnode_ext_count(w->b, 1), 290);
	assert_int_equal(p->st.restart_swept, 10);
	assert_true(p->synced);
	assert_false(p->need_full);
	/* the holes left are given up in a few heartbeats: that asks for the
	 * full state once more, and a full state from before that request
	 * must not confirm it (it would sweep everything just marked) */
	fnet_pass(w->n, 5000);
	assert_int_equal(fnode_ext_count(w->b, 1), 290);
	assert_true(p->synced);
}

/* Every single byte of a heartbeat corrupted in turn: no flow of the peer
 * is ever lost for it. */
static int corrupt_heartbeat(struct fnet *n, struct fdgram *d, void *arg)
{
	int *pos = arg;
	struct hafw_wire_hdr h;

	(void)n;
	if (d->from == 0 && hafw_wire_hdr_parse(d->buf, d->len, &h) == HAFW_WIRE_OK &&
	    h.type == HAFW_MSG_HEARTBEAT && *pos >= 0 && (size_t)*pos < d->len) {
		d->buf[*pos] ^= 0x5a;
		*pos = -1;
	}
	return 0;
}

static void test_corrupt_heartbeat_never_wipes(void **state)
{
	struct fpair *w = *state;
	int pos;

	converge(w, 25);
	for (int i = 0; i < 80; i++) {
		pos = i;
		w->n->policy = corrupt_heartbeat;
		w->n->policy_arg = &pos;
		fnet_pass(w->n, 1000);
		assert_int_equal(fnode_ext_count(w->b, 1), 25);
	}
	w->n->policy = NULL;
	fnet_pass(w->n, 2000);
	assert_int_equal(fnode_ext_count(w->b, 1), 25);
}

/* Datagrams of the old epoch that arrive after the new one are dropped,
 * and the restart is handled exactly once even when the new epoch's
 * datagrams arrive out of order. */
static void test_restart_once_and_late_old_epoch(void **state)
{
	struct fpair *w = *state;
	struct hafw_flow f;
	struct repl_peer *p;

	converge(w, 10);
	/* a change of A that is still in flight when A dies */
	fflow(&f, 1, 99);
	ftrk_update(&w->a->trk, &f, &f);
	repl_flush_frames(w->a->r);
	struct fdgram old = w->n->q[w->n->nq - 1];
	uint8_t *copy = malloc(old.len);

	memcpy(copy, old.buf, old.len);
	fnet_discard(w->n);
	fflow(&f, 1, 7); /* the table as the new run of A finds it */
	ftrk_put_silent(&w->a->trk, &f);
	restart_a(w);
	w->n->reverse = true;
	fnet_run(w->n, 5000);
	w->n->reverse = false;
	p = repl_peer_by_id(w->b->r, 1);
	assert_int_equal(p->st.restarts, 1);
	w->b->chan.ev->recv(w->b->chan.arg, copy, old.len,
	                    &(struct chan_addr){.len = 4, .ip = {10, 0, 0, 0}});
	free(copy);
	assert_int_equal(p->st.stale_epoch, 1);
	assert_int_equal(p->st.restarts, 1);
	assert_true(fnode_ext(w->b, 1, &f, &f));
	assert_int_equal(f.mark, 7);
	fnet_pass(w->n, 3000);
	assert_int_equal(fnode_ext_count(w->b, 1), 10);
	assert_int_equal(p->st.restarts, 1);
}

/* A's wall clock went back across its restart: its new epoch is lower.
 * B drops it while the old epoch might still be alive, then follows it. */
static void test_epoch_going_back(void **state)
{
	struct fpair *w = *state;
	struct repl_peer *p;

	converge(w, 10);
	fnode_stop(w->a);
	w->n->wall_us -= 3600ull * 1000000;
	fnode_start(w->a);
	fnet_run(w->n, 5000);
	p = repl_peer_by_id(w->b->r, 1);
	assert_true(p->st.stale_epoch >= 1);
	assert_int_equal(p->st.restarts, 0);
	fnet_pass(w->n, (uint64_t)w->b->cfg.sync_dead_interval_ms + 3000);
	assert_int_equal(p->st.restarts, 1);
	assert_int_equal(fnode_ext_count(w->b, 1), 10);
	assert_true(p->synced);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_lost_first_heartbeat, fpair_setup, fpair_teardown),
	    cmocka_unit_test_setup_teardown(test_restart_to_empty_table, fpair_setup,
	                                    fpair_teardown),
	    cmocka_unit_test_setup_teardown(test_restart_sweeps_after_full_state, fpair_setup,
	                                    fpair_teardown),
	    cmocka_unit_test_setup_teardown(test_restart_with_loss_keeps_then_repairs, fpair_setup,
	                                    fpair_teardown),
	    cmocka_unit_test_setup_teardown(test_corrupt_heartbeat_never_wipes, fpair_setup,
	                                    fpair_teardown),
	    cmocka_unit_test_setup_teardown(test_restart_once_and_late_old_epoch, fpair_setup,
	                                    fpair_teardown),
	    cmocka_unit_test_setup_teardown(test_epoch_going_back, fpair_setup, fpair_teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
