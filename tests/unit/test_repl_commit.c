/* Replication core: commit. Of a flow several peers hold, the newest copy
 * is written (a newer destroy means none); the committed flows are then
 * announced as this node's own; a commit runs in slices with datagrams read
 * between them; a flow alive at its source never gets less time than the
 * source would give it. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "fake_ops.h"
#include "repl_int.h"
#include "samples.h"

#include <stdlib.h>
#include <string.h>

static struct fnet *n;

static int setup(void **state)
{
	(void)state;
	n = fnet_new();
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	fnet_free(n);
	return 0;
}

struct done {
	int calls, status;
	struct repl_commit_result res;
};

static void on_done(void *arg, int status, const struct repl_commit_result *res)
{
	struct done *d = arg;

	d->calls++;
	d->status = status;
	d->res = *res;
}

static void commit(struct fnode *nd, struct done *d)
{
	memset(d, 0, sizeof(*d));
	assert_int_equal(repl_commit_start(nd->r, on_done, d), 0);
	assert_int_equal(d->calls, 0); /* never from inside the call */
	assert_int_equal(repl_commit_start(nd->r, on_done, d), -EBUSY);
	fnet_run(n, 10000);
	assert_int_equal(d->calls, 1);
}

/* The last put of flow f in nd's tracker log, and how many there were. */
static unsigned puts_of(struct fnode *nd, const struct hafw_flow *f, struct hafw_flow *last)
{
	unsigned k = 0;

	for (size_t i = 0; i < nd->trk.nlog; i++)
		if (hafw_tuple_equal(&nd->trk.log[i].orig, &f->orig)) {
			*last = nd->trk.log[i];
			k++;
		}
	return k;
}

/* A owns F and G; B takes over (commit), changes F, destroys G; A is gone.
 * C holds A's stale copies and B's newer ones: it must commit B's F and no
 * G. The foundation walked the peers in slot order and the last copy won,
 * stale or not. */
static void test_three_peers_newest_copy(void **state)
{
	struct fnode *a = fnode_new(n, 1), *b = fnode_new(n, 2), *c = fnode_new(n, 3);
	struct hafw_flow f, g, got;
	struct done d;

	(void)state;
	fflow(&f, 1, 10);
	fflow(&g, 2, 10);
	ftrk_put_silent(&a->trk, &f);
	ftrk_put_silent(&a->trk, &g);
	fnode_start(a);
	fnode_start(b);
	fnode_start(c);
	fnet_pass(n, 2000);
	assert_int_equal(fnode_ext_count(c, 1), 2);
	fnode_stop(a); /* A dies: C keeps A's copies */
	commit(b, &d);
	assert_int_equal(d.status, 0);
	assert_int_equal(d.res.flows, 2);
	fnet_pass(n, 2000);
	/* B announced the committed flows as its own */
	assert_int_equal(fnode_ext_count(c, 2), 2);
	fflow(&f, 1, 20);
	ftrk_update(&b->trk, &f, &f);
	ftrk_del(&b->trk, &g);
	fnet_run(n, 2000);
	assert_true(fnode_ext(c, 1, &f, &got));
	assert_int_equal(got.mark, 10); /* A's stale copy is still there */
	assert_true(fnode_ext(c, 2, &f, &got));
	assert_int_equal(got.mark, 20);

	commit(c, &d);
	assert_int_equal(puts_of(c, &f, &got), 1);
	assert_int_equal(got.mark, 20);
	assert_int_equal(puts_of(c, &g, &got), 0);
	assert_int_equal(d.res.flows, 1);
	assert_int_equal(d.res.superseded, 2);
	assert_int_equal(ftrk_count(&c->trk), 1);
}

/* After a commit the node announces what it now holds as its own: every
 * other peer learns the new owner. */
static void test_reannounce_after_commit(void **state)
{
	struct fnode *a = fnode_new(n, 1), *b = fnode_new(n, 2), *c = fnode_new(n, 3);
	struct hafw_flow f;
	struct done d;

	(void)state;
	for (uint32_t i = 0; i < 30; i++) {
		fflow(&f, i, 1);
		ftrk_put_silent(&a->trk, &f);
	}
	fnode_start(a);
	fnode_start(b);
	fnode_start(c);
	fnet_pass(n, 2000);
	commit(b, &d);
	fnet_pass(n, 2000);
	assert_int_equal(ftrk_count(&b->trk), 30);
	assert_int_equal(cache_count(repl_internal_flows(b->r)), 30);
	assert_int_equal(fnode_ext_count(c, 2), 30);
	assert_int_equal(fnode_ext_count(a, 2), 30);
	/* muted while committing, resumed after */
	assert_int_equal(b->trk.mutes, 1);
	assert_false(b->trk.muted);
}

/* The commit runs in slices of commit_batch; the peer's datagrams are
 * read between slices. */
static void test_commit_in_slices(void **state)
{
	struct fnode *a = fnode_new(n, 1), *b = fnode_new(n, 2);
	struct hafw_flow f;
	struct done d = {0};
	struct repl_peer *pa;
	unsigned turns = 0;
	uint64_t seen0, seen_during = 0;

	(void)state;
	for (uint32_t i = 0; i < 5000; i++) {
		fflow(&f, i, 1);
		ftrk_put_silent(&a->trk, &f);
	}
	fnode_start(a);
	fnode_start(b);
	fnet_pass(n, 2000);
	assert_int_equal(fnode_ext_count(b, 1), 5000);
	pa = repl_peer_by_id(b->r, 1);
	seen0 = pa->st.dgrams;
	assert_int_equal(repl_commit_start(b->r, on_done, &d), 0);
	while (repl_committing(b->r) && turns < 100000) {
		event_base_loop(n->base, EVLOOP_ONCE | EVLOOP_NONBLOCK);
		fnet_advance(n, 1);
		repl_send_heartbeat(a->r);
		fnet_deliver(n);
		if (repl_committing(b->r))
			seen_during = pa->st.dgrams - seen0;
		turns++;
	}
	assert_int_equal(d.calls, 1);
	assert_int_equal(d.res.flows, 5000);
	assert_true(b->trk.flushes >= 5000 / 64);
	assert_true(seen_during >= 5000 / 64 - 2);
}

/* The timeout a commit gives: a flow alive at its source (no destroy came)
 * gets at least what a packet would give it here, and never a remainder
 * of one second because no event came for a while. */
static void test_commit_timeouts(void **state)
{
	struct fnode *a = fnode_new(n, 1), *b = fnode_new(n, 2);
	struct hafw_flow f, got;
	struct done d;

	(void)state;
	fflow(&f, 1, 1);
	f.timeout = 30;
	ftrk_put_silent(&a->trk, &f);
	fflow(&f, 2, 1);
	f.timeout = 5000; /* set by hand, above any state timeout */
	ftrk_put_silent(&a->trk, &f);
	fnode_start(a);
	fnode_start(b);
	fnet_pass(n, 1000);
	fnet_advance(n, 100000); /* 100 s without an event */
	b->trk.refresh = 0;      /* tracker cannot tell */
	commit(b, &d);
	fflow(&f, 1, 1);
	puts_of(b, &f, &got);
	assert_int_equal(got.timeout, 30);
	fflow(&f, 2, 1);
	puts_of(b, &f, &got);
	assert_in_range(got.timeout, 4895, 4900);

	b->trk.refresh = 120; /* what a packet gives it here */
	fnet_pass(n, 1000);
	commit(b, &d);
	fflow(&f, 1, 1);
	puts_of(b, &f, &got);
	assert_int_equal(got.timeout, 120);
	fflow(&f, 2, 1);
	puts_of(b, &f, &got);
	assert_in_range(got.timeout, 4890, 4900);
}

/* Refusals are counted; masters go before related flows, flows before
 * expectations. */
static void test_commit_order_and_errors(void **state)
{
	struct fnode *a = fnode_new(n, 1), *b = fnode_new(n, 2);
	struct hafw_flow master, related, f;
	struct hafw_exp x;
	struct done d;

	(void)state;
	for (uint32_t i = 0; i < 200; i++) {
		fflow(&f, i, 1);
		ftrk_put_silent(&a->trk, &f);
	}
	fflow(&master, 1000, 1);
	fflow(&related, 1001, 1);
	related.master = master.orig;
	related.present |= HAFW_FA_MASTER;
	ftrk_put_silent(&a->trk, &related);
	ftrk_put_silent(&a->trk, &master);
	fnode_start(a);
	fnode_start(b);
	ts_exp_full(&x, false);
	x.zone = 0;
	x.master = master.orig;
	ftrk_add_exp(&a->trk, &x);
	fnet_pass(n, 1000);
	b->trk.fail_sport = f.orig.sport; /* flow 199 is refused */
	commit(b, &d);
	assert_int_equal(d.status, -EIO);
	assert_int_equal(d.res.errors, 1);
	assert_int_equal(d.res.flows, 202);
	assert_int_equal(d.res.exps, 1);
	assert_int_equal(repl_get_stats(b->r)->commit_errors, 1);
	/* the related flow is the last flow written, the expectation after */
	assert_true(hafw_tuple_equal(&b->trk.log[201].orig, &related.orig));
	assert_int_equal(b->trk.puts_at_first_exp, 202);
}

/* A waiter that goes away: the commit goes on and finishes quietly. */
static void test_commit_forget(void **state)
{
	struct fnode *a = fnode_new(n, 1), *b = fnode_new(n, 2);
	struct hafw_flow f;
	struct done d = {0};

	(void)state;
	for (uint32_t i = 0; i < 300; i++) {
		fflow(&f, i, 1);
		ftrk_put_silent(&a->trk, &f);
	}
	fnode_start(a);
	fnode_start(b);
	fnet_pass(n, 1000);
	assert_int_equal(repl_commit_start(b->r, on_done, &d), 0);
	repl_commit_forget(b->r);
	fnet_run(n, 5000);
	assert_int_equal(d.calls, 0);
	assert_false(repl_committing(b->r));
	assert_int_equal(ftrk_count(&b->trk), 300);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_three_peers_newest_copy, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_reannounce_after_commit, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_commit_in_slices, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_commit_timeouts, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_commit_order_and_errors, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_commit_forget, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
