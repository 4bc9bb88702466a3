/* Replication core, local side: the internal cache follows the tracker
 * through flushes, lost memory, lost events and aborted dumps, and never
 * sends a peer a partial flow or forgets to send a destroy. */
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
	struct hafw_flow f;

	for (uint32_t i = 0; i < 50; i++) {
		fflow(&f, i, 1);
		ftrk_put_silent(&w->a->trk, &f);
	}
	fnode_start(w->a);
	fnode_start(w->b);
	fnet_pass(w->n, 2000);
	assert_int_equal(fnode_ext_count(w->b, 1), 50);
	*state = w;
	return 0;
}

/* The foundation announced no destroy after a flush of the internal
 * cache, and let partial updates replace full flows on peers. */
static void test_flush_internal(void **state)
{
	struct fpair *w = *state;
	struct hafw_flow f, got;

	repl_flush_internal(w->a->r);
	assert_int_equal(cache_count(repl_internal_flows(w->a->r)), 0);
	/* a destroy right away, before the reconciling dump has run */
	fflow(&f, 3, 1);
	ftrk_del(&w->a->trk, &f);
	fnet_run(w->n, 2000);
	assert_false(fnode_ext(w->b, 1, &f, &got));
	/* the flush scheduled a dump: the cache holds the table again */
	assert_int_equal(cache_count(repl_internal_flows(w->a->r)), 49);
	/* and an update after it is merged into a whole flow */
	fflow(&f, 4, 1);
	struct hafw_flow partial = {0};

	partial.orig = f.orig;
	partial.present = HAFW_FA_MARK;
	partial.mark = 44;
	f.mark = 44;
	ftrk_update(&w->a->trk, &f, &partial);
	fnet_run(w->n, 2000);
	assert_true(fnode_ext(w->b, 1, &f, &got));
	assert_int_equal(got.mark, 44);
	assert_true(got.present & HAFW_FA_TCP_STATE);
	assert_true(got.present & HAFW_FA_REPLY);
	assert_int_equal(got.timeout, 300);
	fnet_pass(w->n, 2000);
	assert_int_equal(fnode_ext_count(w->b, 1), 49);
}

/* An update of a flow the cache does not hold (its insert failed, or the
 * cache was flushed and the dump is still to come) is read back from the
 * tracker: the peer gets the whole flow, never the partial event. */
static void test_update_of_unknown_flow_is_read_back(void **state)
{
	struct fpair *w = *state;
	struct hafw_flow f, partial = {0}, got;

	fflow(&f, 7, 1);
	cache_del(repl_internal_flows(w->a->r), &f.orig, 0); /* as if the insert had failed */
	partial.orig = f.orig;
	partial.present = HAFW_FA_MARK;
	partial.mark = 77;
	f.mark = 77;
	ftrk_update(&w->a->trk, &f, &partial);
	assert_int_equal(w->a->trk.gets_asked, 1);
	assert_int_equal(w->a->r->st.update_reads, 1);
	fnet_run(w->n, 2000);
	assert_true(fnode_ext(w->b, 1, &f, &got));
	assert_int_equal(got.mark, 77);
	assert_true(got.present & HAFW_FA_TCP_STATE);
	assert_int_equal(hafw_flow_diff(&got, &f, 0), NULL);
	assert_non_null(cache_find(repl_internal_flows(w->a->r), &f.orig, 0));

	/* destroyed before the answer came: the answer must not bring it back */
	fflow(&f, 8, 1);
	cache_del(repl_internal_flows(w->a->r), &f.orig, 0);
	partial.orig = f.orig;
	ftrk_update(&w->a->trk, &f, &partial);
	ftrk_del(&w->a->trk, &f);
	fnet_run(w->n, 2000);
	assert_false(fnode_ext(w->b, 1, &f, &got));
	assert_null(cache_find(repl_internal_flows(w->a->r), &f.orig, 0));
	assert_int_equal(w->a->r->st.update_reads_stale, 1);

	/* the tracker cannot take another read: a dump answers instead */
	unsigned dumps = w->a->trk.dumps;

	w->a->trk.get_busy = true;
	fflow(&f, 9, 1);
	f.mark = 77;
	cache_del(repl_internal_flows(w->a->r), &f.orig, 0);
	partial.orig = f.orig;
	ftrk_update(&w->a->trk, &f, &partial);
	fnet_run(w->n, 2000);
	assert_int_equal(w->a->trk.dumps, dumps + 1);
	assert_true(fnode_ext(w->b, 1, &f, &got));
	assert_int_equal(got.mark, 77);
}

/* A destroy of a flow the cache lost still reaches the peers. */
static void test_destroy_of_unknown_flow(void **state)
{
	struct fpair *w = *state;
	struct hafw_flow f, got;

	fflow(&f, 11, 1);
	cache_del(repl_internal_flows(w->a->r), &f.orig, 0);
	ftrk_del(&w->a->trk, &f);
	fnet_run(w->n, 2000);
	assert_false(fnode_ext(w->b, 1, &f, &got));
	assert_int_equal(w->a->r->st.destroy_unknown, 1);
}

/* The foundation swept after a dump that timed out and deleted live
 * entries. An aborted dump sweeps nothing; the retry reconciles. */
static void test_aborted_dump_never_sweeps(void **state)
{
	struct fpair *w = *state;
	struct hafw_flow f;

	for (uint32_t i = 0; i < 5; i++) { /* destroys lost: only a dump can tell */
		fflow(&f, i, 1);
		ftrk_del_silent(&w->a->trk, &f);
	}
	w->a->trk.dump_abort_after = 10;
	repl_resync(w->a->r);
	fnet_run(w->n, 500);
	assert_int_equal(w->a->trk.dumps_aborted, 1);
	assert_int_equal(w->a->r->st.dumps_aborted, 1);
	/* nothing was swept on a partial view */
	assert_int_equal(cache_count(repl_internal_flows(w->a->r)), 50);
	assert_int_equal(fnode_ext_count(w->b, 1), 50);
	assert_int_equal(w->a->r->st.resync_removed, 0);
	/* the retry a second later completes and sweeps exactly the five */
	fnet_pass(w->n, 1500);
	assert_int_equal(w->a->trk.dumps_aborted, 1);
	assert_int_equal(cache_count(repl_internal_flows(w->a->r)), 45);
	assert_int_equal(fnode_ext_count(w->b, 1), 45);
	assert_int_equal(w->a->r->st.resync_removed, 5);
}

/* An overrun: events lost; the dump finds what changed and only that is
 * sent (with new versions); events during the dump come after it. */
static void test_overrun_reconcile(void **state)
{
	struct fpair *w = *state;
	struct hafw_flow f, got;
	uint64_t events = w->a->r->st.events_sent;
	struct repl_stats st0 = *repl_get_stats(w->a->r);

	fflow(&f, 20, 5);
	ftrk_put_silent(&w->a->trk, &f); /* a changed mark, event lost */
	fflow(&f, 500, 1);
	ftrk_put_silent(&w->a->trk, &f); /* a new flow, event lost */
	fflow(&f, 21, 1);
	ftrk_del_silent(&w->a->trk, &f); /* a destroy, event lost */
	w->a->trk.ev->overrun(w->a->trk.arg);
	/* a live change while the dump runs */
	fflow(&f, 22, 9);
	ftrk_update(&w->a->trk, &f, &f);
	assert_true(w->a->trk.nheld >= 1);
	fnet_run(w->n, 2000);
	/* the dump already shows the live change; its event follows and is
	 * merged with the dump's into one before the frame leaves */
	assert_int_equal(w->a->r->st.events_sent - events, 4);
	assert_true(w->a->r->st.coalesced >= 1);
	assert_int_equal(w->a->r->st.resync_added - st0.resync_added, 1);
	assert_int_equal(w->a->r->st.resync_changed - st0.resync_changed, 2);
	assert_int_equal(w->a->r->st.resync_removed - st0.resync_removed, 1);
	fflow(&f, 20, 0);
	assert_true(fnode_ext(w->b, 1, &f, &got));
	assert_int_equal(got.mark, 5);
	fflow(&f, 22, 0);
	assert_true(fnode_ext(w->b, 1, &f, &got));
	assert_int_equal(got.mark, 9);
	assert_int_equal(fnode_ext_count(w->b, 1), 50);
}

/* The sweep after a dump works in slices, and the peer's datagrams are
 * read between them. */
static void test_sweep_in_slices(void **state)
{
	struct fpair *w = *state;
	struct hafw_flow f;
	struct repl_peer *pb;
	unsigned turns = 0;
	uint64_t dgrams_before, dgrams_during = 0;

	for (uint32_t i = 1000; i < 31000; i++) { /* destroyed, events lost */
		fflow(&f, i, 1);
		ftrk_add(&w->a->trk, &f);
	}
	fnet_run(w->n, 5000);
	assert_int_equal(fnode_ext_count(w->b, 1), 30050);
	for (uint32_t i = 1000; i < 31000; i++) {
		fflow(&f, i, 1);
		ftrk_del_silent(&w->a->trk, &f);
	}
	repl_resync(w->a->r);
	pb = repl_peer_by_id(w->a->r, 2);
	dgrams_before = pb->st.dgrams;
	while (repl_dumping(w->a->r) && turns < 100000) {
		/* one round of the loop (NONBLOCK alone runs until idle) */
		event_base_loop(w->n->base, EVLOOP_ONCE | EVLOOP_NONBLOCK);
		/* B keeps talking: a heartbeat per turn */
		fnet_advance(w->n, 1);
		repl_send_heartbeat(w->b->r);
		fnet_deliver(w->n);
		if (w->a->r->isweeping)
			dgrams_during = pb->st.dgrams - dgrams_before;
		turns++;
	}
	assert_false(repl_dumping(w->a->r));
	/* 30000 entries in slices of 4096 */
	assert_true(turns >= 30000 / 4096);
	assert_true(dgrams_during >= 30000 / 4096 - 1);
	fnet_run(w->n, 5000);
	assert_int_equal(w->a->r->st.resync_removed, 30000);
	assert_int_equal(fnode_ext_count(w->b, 1), 50);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_flush_internal, setup, fpair_teardown),
	    cmocka_unit_test_setup_teardown(test_update_of_unknown_flow_is_read_back, setup,
	                                    fpair_teardown),
	    cmocka_unit_test_setup_teardown(test_destroy_of_unknown_flow, setup, fpair_teardown),
	    cmocka_unit_test_setup_teardown(test_aborted_dump_never_sweeps, setup, fpair_teardown),
	    cmocka_unit_test_setup_teardown(test_overrun_reconcile, setup, fpair_teardown),
	    cmocka_unit_test_setup_teardown(test_sweep_in_slices, setup, fpair_teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
