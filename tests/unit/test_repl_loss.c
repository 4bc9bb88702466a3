/* Replication core: repair under loss. Datagrams (NACKs and retransmits
 * too) are dropped at random in every direction; the receivers' copies
 * must end exactly equal to the sources' tables, through NACKs, ring misses
 * answered by a resync, and the digest noticing what nobody saw go missing.
 * Control: with NACK and resync off the same run ends diverged. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "fake_ops.h"
#include "flow_pb.h"
#include "repl_int.h"

#include <event2/event.h>

#include <stdlib.h>
#include <string.h>

struct lossy {
	unsigned percent;
	uint64_t rng;
	uint64_t dropped;
};

static int lose(struct fnet *n, struct fdgram *d, void *arg)
{
	struct lossy *l = arg;

	(void)n;
	(void)d;
	l->rng ^= l->rng << 13;
	l->rng ^= l->rng >> 7;
	l->rng ^= l->rng << 17;
	if (l->rng % 100 < l->percent) {
		l->dropped++;
		return 1;
	}
	return 0;
}

/* Flows come, change and go on A while datagrams are lost. */
static void churn(struct fnet *n, struct fnode *a, uint32_t count)
{
	struct hafw_flow f;

	for (uint32_t i = 0; i < count; i++) {
		fflow(&f, i, 1);
		ftrk_add(&a->trk, &f);
		if (i % 50 == 49)
			fnet_pass(n, 250);
	}
	for (uint32_t i = 0; i < count; i += 4) {
		fflow(&f, i, 2);
		ftrk_update(&a->trk, &f, &f);
		if (i % 200 == 196)
			fnet_pass(n, 250);
	}
	for (uint32_t i = 1; i < count; i += 4) {
		fflow(&f, i, 1);
		ftrk_del(&a->trk, &f);
		if (i % 200 == 197)
			fnet_pass(n, 250);
	}
}

static void lossy_run(unsigned percent, bool repair)
{
	struct fnet *n = fnet_new();
	struct fnode *a = fnode_new(n, 1), *b = fnode_new(n, 2);
	struct lossy l = {percent, 0x9e3779b97f4a7c15ull, 0};
	bool converged = false;
	unsigned secs = 0;

	for (int i = 0; i < 2; i++) {
		struct fnode *nd = i ? b : a;

		nd->cfg.sync_nack = repair;
		nd->cfg.sync_resync = repair;
		if (!repair)
			nd->cfg.sync_digest_grace_ms = 0;
	}
	fnode_start(a);
	fnode_start(b);
	fnet_pass(n, 1000);
	n->policy = lose;
	n->policy_arg = &l;
	churn(n, a, 2000);
	/* the loss goes on; a bounded time to converge */
	for (secs = 0; secs < 30 && !converged; secs++) {
		fnet_pass(n, 1000);
		converged = fnode_mirrors(a, b);
	}
	print_message("%u%% loss, repair %s: %s after %u s; %llu dropped, %llu NACKs, %llu "
	              "retransmits, %llu resyncs\n",
	              percent, repair ? "on" : "off", converged ? "converged" : "diverged", secs,
	              (unsigned long long)l.dropped,
	              (unsigned long long)repl_peer_by_id(b->r, 1)->st.nacks_sent,
	              (unsigned long long)a->r->st.retransmits,
	              (unsigned long long)(repl_peer_by_id(b->r, 1)->st.resyncs_loss +
	                                   repl_peer_by_id(b->r, 1)->st.resyncs_digest));
	assert_true(l.dropped > 0);
	/* the holes were seen as they came, repaired or not */
	assert_true(repl_peer_by_id(b->r, 1)->st.gaps > 0);
	if (repair) {
		assert_true(converged);
		assert_true(repl_peer_by_id(b->r, 1)->st.nacks_sent > 0);
		assert_true(a->r->st.retransmits > 0);
	} else {
		assert_false(converged);
	}
	fnet_free(n);
}

static void test_10_percent(void **state)
{
	(void)state;
	lossy_run(10, true);
}

static void test_30_percent(void **state)
{
	(void)state;
	lossy_run(30, true);
}

static void test_control_no_repair(void **state)
{
	(void)state;
	lossy_run(10, false);
}

/* The sender's ring has moved on: it answers with a miss, the receiver
 * asks for the full state, marks, and sweeps what the state lacks. */
static int hold_from_a(struct fnet *n, struct fdgram *d, void *arg)
{
	int *mode = arg;

	(void)n;
	return *mode && d->from == 0 ? 1 : 0;
}

static void test_ring_miss_resyncs(void **state)
{
	struct fpair *w = *state;
	struct hafw_flow f;
	struct repl_peer *p;
	int mode = 0;

	w->a->cfg.sync_retransmit_ring = 4;
	fnode_start(w->a);
	fnode_start(w->b);
	fnet_pass(w->n, 1000);
	w->n->policy = hold_from_a;
	w->n->policy_arg = &mode;
	for (uint32_t i = 0; i < 10; i++) {
		fflow(&f, i, 1);
		ftrk_add(&w->a->trk, &f);
	}
	fnet_run(w->n, 2000);
	mode = 1; /* a burst B never sees */
	for (uint32_t i = 10; i < 30; i++) {
		fflow(&f, i, 1);
		ftrk_add(&w->a->trk, &f);
		repl_flush_frames(w->a->r);
	}
	fflow(&f, 3, 1);
	ftrk_del(&w->a->trk, &f);
	repl_flush_frames(w->a->r);
	fnet_deliver(w->n);
	mode = 0;
	fnet_pass(w->n, 5000);
	p = repl_peer_by_id(w->b->r, 1);
	assert_true(w->a->r->st.ring_misses > 0);
	assert_true(p->st.misses >= 1);
	assert_int_equal(p->st.resyncs_loss, 1);
	assert_true(fnode_mirrors(w->a, w->b));
	assert_true(p->synced);
}

/* Divergence nobody saw: an entry vanishes from B's copy behind the
 * core's back. The digest in A's heartbeats notices, and after the grace
 * period B asks for the full state. */
static void test_digest_notices_divergence(void **state)
{
	struct fpair *w = *state;
	struct hafw_flow f;
	struct repl_peer *p;

	for (uint32_t i = 0; i < 50; i++) {
		fflow(&f, i, 1);
		ftrk_put_silent(&w->a->trk, &f);
	}
	fnode_start(w->a);
	fnode_start(w->b);
	fnet_pass(w->n, 2000);
	p = repl_peer_by_id(w->b->r, 1);
	assert_true(fnode_mirrors(w->a, w->b));
	fflow(&f, 7, 1);
	cache_del(p->flows, &f.orig, 0);
	assert_false(fnode_mirrors(w->a, w->b));
	fnet_pass(w->n, 1500);
	assert_true(p->st.digest_mismatch >= 1);
	assert_int_equal(p->st.resyncs_digest, 0); /* within the grace period */
	fnet_pass(w->n, (uint64_t)w->b->cfg.sync_digest_grace_ms + 3000);
	assert_int_equal(p->st.resyncs_digest, 1);
	assert_true(fnode_mirrors(w->a, w->b));
	assert_true(p->synced);
	/* and it stays quiet once they agree */
	fnet_pass(w->n, 5000);
	assert_int_equal(p->st.resyncs_digest, 1);
}

/* Three nodes, each with its own flows, 10% loss everywhere: every node's
 * copy of every other node equals that node's table. */
static void test_three_nodes_under_loss(void **state)
{
	struct fnet *n = fnet_new();
	struct fnode *nd[3];
	struct lossy l = {10, 12345, 0};
	struct hafw_flow f;
	bool ok = false;

	(void)state;
	for (int i = 0; i < 3; i++) {
		nd[i] = fnode_new(n, i + 1);
		fnode_start(nd[i]);
	}
	fnet_pass(n, 1000);
	n->policy = lose;
	n->policy_arg = &l;
	for (uint32_t i = 0; i < 900; i++) {
		fflow(&f, i * 3 + (i % 3), 1);
		f.orig.src[1] = (uint8_t)(100 + i % 3); /* disjoint per node */
		hafw_tuple_invert(&f.orig, &f.reply);
		ftrk_add(&nd[i % 3]->trk, &f);
		if (i % 90 == 89)
			fnet_pass(n, 250);
	}
	for (int secs = 0; secs < 30 && !ok; secs++) {
		fnet_pass(n, 1000);
		ok = true;
		for (int a = 0; a < 3; a++)
			for (int b = 0; b < 3; b++)
				if (a != b && !fnode_mirrors(nd[a], nd[b]))
					ok = false;
	}
	assert_true(l.dropped > 0);
	assert_true(ok);
	for (int i = 0; i < 3; i++)
		assert_int_equal(cache_count(repl_internal_flows(nd[i]->r)), 300);
	fnet_free(n);
}

/* A burst longer than 4096 datagrams at 30% loss, NACKs and retransmits
 * lost too: every hole stays repairable while the sender's ring holds it,
 * so B converges by NACK alone, with no resync. The NACKs keep up (fresh
 * holes at once, open ones every round, several datagrams of ranges per
 * round). */
static void test_burst_at_30_percent_needs_no_resync(void **state)
{
	struct fnet *n = fnet_new();
	struct fnode *a = fnode_new(n, 1), *b = fnode_new(n, 2);
	struct lossy l = {30, 0x2545f4914f6cdd1dull, 0};
	struct repl_peer *p;
	struct hafw_flow f;
	bool converged = false;
	int step;

	(void)state;
	a->cfg.sync_control = b->cfg.sync_control = false; /* the data path alone */
	fnode_start(a);
	fnode_start(b);
	fnet_pass(n, 1000);
	n->policy = lose;
	n->policy_arg = &l;
	for (uint32_t i = 0; i < 150000; i++) {
		fflow(&f, i, 1);
		ftrk_add(&a->trk, &f);
	}
	for (step = 0; step < 1000 && !converged; step++) {
		event_base_loop(n->base, EVLOOP_ONCE | EVLOOP_NONBLOCK);
		repl_flush_frames(a->r);
		repl_flush_frames(b->r);
		fnet_deliver(n);
		fnet_advance(n, 10);
		repl_tick(a->r);
		repl_tick(b->r);
		if (step % 50 == 49)
			converged = fnode_mirrors(a, b);
	}
	p = repl_peer_by_id(b->r, 1);
	print_message("burst of %u datagrams at 30%% loss: %s after %d ms; %llu dropped, %llu "
	              "NACKs, %llu retransmits, %llu lost, %llu resyncs\n",
	              (unsigned)a->r->seq, converged ? "converged" : "diverged", step * 10,
	              (unsigned long long)l.dropped, (unsigned long long)p->st.nacks_sent,
	              (unsigned long long)a->r->st.retransmits,
	              (unsigned long long)p->st.lost_dgrams,
	              (unsigned long long)(p->st.resyncs_loss + p->st.resyncs_digest));
	assert_true(a->r->seq > 4096 + 1000);
	assert_true(converged);
	assert_int_equal(p->st.lost_dgrams, 0);
	assert_int_equal(p->st.resyncs_loss, 0);
	assert_int_equal(a->r->st.ring_misses, 0);
	fnet_free(n);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_10_percent),
	    cmocka_unit_test(test_30_percent),
	    cmocka_unit_test(test_control_no_repair),
	    cmocka_unit_test_setup_teardown(test_ring_miss_resyncs, fpair_setup, fpair_teardown),
	    cmocka_unit_test_setup_teardown(test_digest_notices_divergence, fpair_setup,
	                                    fpair_teardown),
	    cmocka_unit_test(test_three_nodes_under_loss),
	    cmocka_unit_test(test_burst_at_30_percent_needs_no_resync),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
