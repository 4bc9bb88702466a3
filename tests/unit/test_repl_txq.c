/* Replication core: what waits for the flush. Changes of one flow inside
 * the flush window leave as one event; a flow created and destroyed inside
 * it costs nothing; with sync.delay_ms new flows wait for that age, a
 * short-lived one is never sent (counted), and what waits is left out of
 * the digest so no peer resyncs for it. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "fake_ops.h"
#include "repl_int.h"

#include <stdlib.h>
#include <string.h>

static int setup_started(void **state)
{
	struct fpair *w = fpair_new();

	fnode_start(w->a);
	fnode_start(w->b);
	fnet_pass(w->n, 1000);
	*state = w;
	return 0;
}

static void test_updates_coalesce(void **state)
{
	struct fpair *w = *state;
	struct hafw_flow f, got;
	uint64_t sent;

	fflow(&f, 1, 0);
	ftrk_add(&w->a->trk, &f);
	fnet_run(w->n, 2000);
	sent = w->a->r->st.events_sent;
	for (uint32_t m = 1; m <= 10; m++) { /* inside one flush window */
		fflow(&f, 1, m);
		ftrk_update(&w->a->trk, &f, &f);
	}
	fnet_run(w->n, 2000);
	assert_int_equal(w->a->r->st.events_sent - sent, 1);
	assert_int_equal(w->a->r->st.coalesced, 9);
	assert_true(fnode_ext(w->b, 1, &f, &got));
	assert_int_equal(got.mark, 10);

	/* an update then the destroy: only the destroy leaves */
	sent = w->a->r->st.events_sent;
	fflow(&f, 1, 11);
	ftrk_update(&w->a->trk, &f, &f);
	ftrk_del(&w->a->trk, &f);
	fnet_run(w->n, 2000);
	assert_int_equal(w->a->r->st.events_sent - sent, 1);
	assert_false(fnode_ext(w->b, 1, &f, &got));

	/* created and destroyed before anyone heard of it: nothing */
	sent = w->a->r->st.events_sent;
	fflow(&f, 2, 0);
	ftrk_add(&w->a->trk, &f);
	fflow(&f, 2, 5);
	ftrk_update(&w->a->trk, &f, &f);
	ftrk_del(&w->a->trk, &f);
	fnet_run(w->n, 2000);
	assert_int_equal(w->a->r->st.events_sent - sent, 0);
	fnet_pass(w->n, 3000);
	assert_int_equal(repl_peer_by_id(w->b->r, 1)->st.resyncs_digest, 0);
}

static void test_delayed_sync(void **state)
{
	struct fpair *w = *state;
	struct hafw_flow f, got;
	struct repl_peer *pa;

	w->a->cfg.sync_delay_ms = 2000;
	fnode_start(w->a);
	fnode_start(w->b);
	fnet_pass(w->n, 1000);
	pa = repl_peer_by_id(w->b->r, 1);
	fflow(&f, 1, 1);
	ftrk_add(&w->a->trk, &f);
	fflow(&f, 2, 1);
	ftrk_add(&w->a->trk, &f); /* this one will be short-lived */
	fnet_pass(w->n, 1000);
	assert_false(fnode_ext(w->b, 1, &f, &got));
	assert_int_equal(repl_txq_delayed_count(w->a->r), 2);
	fflow(&f, 1, 7); /* a change while it waits: it leaves as it is then */
	ftrk_update(&w->a->trk, &f, &f);
	fflow(&f, 2, 1);
	ftrk_del(&w->a->trk, &f);
	assert_int_equal(w->a->r->st.unprotected_gone, 1);
	fnet_pass(w->n, 2000);
	fflow(&f, 1, 0);
	assert_true(fnode_ext(w->b, 1, &f, &got));
	assert_int_equal(got.mark, 7);
	fflow(&f, 2, 0);
	assert_false(fnode_ext(w->b, 1, &f, &got));
	assert_int_equal(repl_txq_delayed_count(w->a->r), 0);
	/* what waited was never in the digest: no resync, and B is synced */
	fnet_pass(w->n, 5000);
	assert_int_equal(pa->st.resyncs_digest, 0);
	assert_true(pa->synced);
	assert_int_equal(pa->hb_flows, 1);
}

/* While flows wait, a new peer's announce leaves them out and the digest
 * agrees with what was sent. */
static void test_delayed_not_announced(void **state)
{
	struct fpair *w = *state;
	struct hafw_flow f, got;
	struct fnode *c;

	w->a->cfg.sync_delay_ms = 5000;
	fnode_start(w->a);
	fnode_start(w->b);
	fnet_pass(w->n, 1000);
	for (uint32_t i = 0; i < 20; i++) {
		fflow(&f, i, 1);
		ftrk_add(&w->a->trk, &f);
	}
	c = fnode_new(w->n, 3);
	fnode_start(c);
	fnet_pass(w->n, 2000);
	assert_int_equal(fnode_ext_count(c, 1), 0);
	assert_int_equal(repl_peer_by_id(c->r, 1)->st.digest_mismatch, 0);
	assert_true(repl_peer_by_id(c->r, 1)->synced);
	fnet_pass(w->n, 4000);
	assert_int_equal(fnode_ext_count(c, 1), 20);
	assert_int_equal(fnode_ext_count(w->b, 1), 20);
	fflow(&f, 3, 0);
	assert_true(fnode_ext(c, 1, &f, &got));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_updates_coalesce, setup_started, fpair_teardown),
	    cmocka_unit_test_setup_teardown(test_delayed_sync, fpair_setup, fpair_teardown),
	    cmocka_unit_test_setup_teardown(test_delayed_not_announced, fpair_setup,
	                                    fpair_teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
