/* Replication core: redundant sync links. Numbered datagrams go on the
 * active link, probes on the other; when the active link stops carrying
 * anything both nodes move to the other one and replication goes on with
 * no resync: what the dead link swallowed meanwhile is NACKed. Once the
 * first link is healthy again they go back to it. Control: the same run
 * with one link leaves B behind for as long as the link is down. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "fake_ops.h"
#include "repl_int.h"

#include <string.h>

/* Flows come, change and go on A for about `ms` of fake time. */
static void churn(struct fnet *n, struct fnode *a, uint32_t from, uint32_t count)
{
	struct hafw_flow f;

	for (uint32_t i = from; i < from + count; i++) {
		fflow(&f, i, 1);
		ftrk_add(&a->trk, &f);
		if (i % 3 == 0) {
			fflow(&f, i, 5);
			ftrk_update(&a->trk, &f, &f);
		}
		if (i % 7 == 0 && i > from) {
			fflow(&f, i - 1, 1);
			ftrk_del(&a->trk, &f);
		}
		if (i % 50 == 49)
			fnet_pass(n, 100);
	}
}

static uint64_t resyncs(struct fnode *nd, uint32_t peer)
{
	struct repl_peer *p = repl_peer_by_id(nd->r, peer);

	return p->st.resyncs_loss + p->st.resyncs_digest + p->st.bulks_requested + p->st.restarts;
}

struct run {
	bool backup;
	bool mirrored_during; /* B followed A while link 0 was down */
	bool mirrored_after;  /* ... and after it came back */
};

static void link_run(struct run *o)
{
	struct fnet *n = fnet_new();
	struct fnode *a = fnode_new(n, 1), *b = fnode_new(n, 2);
	uint64_t resyncs0;

	for (int i = 0; i < 2; i++) {
		struct fnode *nd = i ? b : a;

		nd->cfg.sync_heartbeat_ms = 250;
		nd->cfg.sync_dead_interval_ms = 1000;
		if (o->backup)
			snprintf(nd->cfg.sync_backup_if, sizeof(nd->cfg.sync_backup_if), "sync1");
	}
	fnode_start(a);
	fnode_start(b);
	fnet_pass(n, 3000);
	churn(n, a, 0, 1000);
	fnet_pass(n, 1000);
	assert_true(fnode_mirrors(a, b));
	if (o->backup) {
		/* both links heard: the active one by data, the other by probes */
		assert_int_equal(repl_active_link(a->r), 0);
		assert_true(repl_link_healthy(b->r, 0) && repl_link_healthy(b->r, 1));
		assert_true(repl_peer_by_id(b->r, 1)->st.probes > 0);
	}
	resyncs0 = resyncs(b, 1);

	/* link 0 goes quiet in both directions (its interface stays up) */
	n->link_cut[0] = true;
	churn(n, a, 1000, 1000);
	fnet_pass(n, 3000);
	o->mirrored_during = fnode_mirrors(a, b);
	if (o->backup) {
		assert_int_equal(repl_active_link(a->r), 1);
		assert_int_equal(repl_active_link(b->r), 1);
		assert_int_equal(a->r->st.link_switches, 1);
		assert_false(repl_link_healthy(a->r, 0));
		/* what link 0 swallowed before the switch came back by NACK */
		assert_true(repl_peer_by_id(b->r, 1)->st.nacks_sent > 0);
		assert_int_equal(resyncs(b, 1), resyncs0);
		assert_true(repl_peer_by_id(b->r, 1)->up);
	}

	/* link 0 back: after two dead intervals of health, home again */
	n->link_cut[0] = false;
	churn(n, a, 2000, 300);
	fnet_pass(n, 4000);
	o->mirrored_after = fnode_mirrors(a, b);
	if (o->backup) {
		assert_int_equal(repl_active_link(a->r), 0);
		assert_int_equal(repl_active_link(b->r), 0);
		assert_int_equal(a->r->st.link_switches, 2);
		assert_int_equal(resyncs(b, 1), resyncs0);
	}
	fnet_free(n);
}

static void test_backup_link_takes_over(void **state)
{
	struct run o = {.backup = true};

	(void)state;
	link_run(&o);
	assert_true(o.mirrored_during);
	assert_true(o.mirrored_after);
}

/* Control: without the backup link B cannot follow while link 0 is down. */
static void test_control_one_link(void **state)
{
	struct run o = {.backup = false};

	(void)state;
	link_run(&o);
	assert_false(o.mirrored_during);
	assert_true(o.mirrored_after);
}

/* A peer that only one link reaches: the link is not healthy, the other
 * one is, and the node sends where every peer hears it. */
static int cut_a_on_link0(struct fnet *n, struct fdgram *d, void *arg)
{
	(void)n;
	(void)arg;
	return d->link == 0 && (d->from == 0 || d->to == 0);
}

static void test_three_nodes_one_link_broken(void **state)
{
	struct fnet *n = fnet_new();
	struct fnode *nd[3];

	(void)state;
	for (int i = 0; i < 3; i++) {
		nd[i] = fnode_new(n, i + 1);
		nd[i]->cfg.sync_heartbeat_ms = 250;
		nd[i]->cfg.sync_dead_interval_ms = 1000;
		snprintf(nd[i]->cfg.sync_backup_if, sizeof(nd[i]->cfg.sync_backup_if), "sync1");
		fnode_start(nd[i]);
	}
	fnet_pass(n, 3000);
	n->policy = cut_a_on_link0;
	churn(n, nd[0], 0, 500);
	churn(n, nd[1], 5000, 500);
	fnet_pass(n, 4000);
	/* every node stopped hearing node 1 on link 0: all moved */
	for (int i = 0; i < 3; i++)
		assert_int_equal(repl_active_link(nd[i]->r), 1);
	for (int i = 0; i < 3; i++)
		for (int j = 0; j < 3; j++)
			if (i != j)
				assert_true(fnode_mirrors(nd[i], nd[j]));
	fnet_free(n);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_backup_link_takes_over),
	    cmocka_unit_test(test_control_one_link),
	    cmocka_unit_test(test_three_nodes_one_link_broken),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
