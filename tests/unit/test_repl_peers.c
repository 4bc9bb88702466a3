/* Replication core: who may talk to us. Made-up sender ids cannot lock a
 * real peer out, a configured list admits only its members (from their
 * address), a peer cannot fill memory past its cap, silent peers are
 * forgotten without losing a dead primary's flows too early, and a storm
 * of new peers costs one announce, not one each. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "fake_ops.h"
#include "flow_pb.h"
#include "repl_int.h"

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

/* A heartbeat as a made-up sender would send it, straight into nd. */
static void inject_hb(struct fnode *nd, uint32_t id, uint8_t from_ip, uint32_t seq)
{
	Hafw__Heartbeat hb = HAFW__HEARTBEAT__INIT;
	struct hafw_wire_hdr h = {
	    .type = HAFW_MSG_HEARTBEAT, .sender = id, .epoch = 77, .seq = seq};
	uint8_t buf[256];
	size_t len;

	hb.node_id = id;
	len = hafw__heartbeat__pack(&hb, buf + HAFW_WIRE_HDR_LEN);
	h.len = (uint16_t)len;
	hafw_wire_hdr_write(&h, buf);
	nd->chan.ev->recv(nd->chan.arg, buf, HAFW_WIRE_HDR_LEN + len,
	                  &(struct chan_addr){.len = 4, .ip = {10, 0, 0, from_ip}});
}

static void add_flows(struct fnode *nd, uint32_t from, uint32_t count)
{
	struct hafw_flow f;

	for (uint32_t i = from; i < from + count; i++) {
		fflow(&f, i, 1);
		ftrk_put_silent(&nd->trk, &f);
	}
}

/* The foundation gave a slot to every unseen id: 32 made-up ids locked the
 * real peer out for good. */
static void test_made_up_ids_do_not_lock_out(void **state)
{
	struct fnode *a = fnode_new(n, 1), *b = fnode_new(n, 2);
	const struct repl_stats *st;

	(void)state;
	add_flows(a, 0, 20);
	fnode_start(b);
	for (uint32_t id = 100; id < 140; id++)
		inject_hb(b, id, 9, 1);
	st = repl_get_stats(b->r);
	assert_true(repl_npeers(b->r) <= 8); /* a burst of new ids is rate-limited */
	assert_int_equal(st->peers_refused_rate, 40 - (uint64_t)repl_npeers(b->r));
	fnode_start(a);
	fnet_pass(n, 6000);
	/* the made-up ones went silent holding nothing: forgotten */
	assert_non_null(repl_peer_by_id(b->r, 1));
	assert_int_equal(fnode_ext_count(b, 1), 20);
	assert_int_equal(repl_npeers(b->r), 1);
	assert_true(st->peers_expired >= 1);

	/* a table full of silent made-up peers makes room for a real one */
	b->cfg.sync_max_peers = 2;
	fnode_stop(b);
	fnode_start(b);
	fnet_pass(n, 1000);
	fnet_pass(n, 10000); /* tokens refill */
	inject_hb(b, 200, 9, 1);
	assert_int_equal(repl_npeers(b->r), 2);
	fnet_pass(n, 250);
	inject_hb(b, 201, 9, 1); /* full, and every peer is alive */
	assert_null(repl_peer_by_id(b->r, 201));
	assert_int_equal(repl_get_stats(b->r)->peers_refused_full, 1);
	/* a live real peer is never the one to go */
	assert_non_null(repl_peer_by_id(b->r, 1));
}

static void test_peers_list(void **state)
{
	struct fnode *a = fnode_new(n, 1), *b = fnode_new(n, 2);
	const struct repl_stats *st;

	(void)state;
	add_flows(a, 0, 5);
	b->cfg.n_peers = 1;
	b->cfg.peers[0] = (struct hafw_config_peer){
	    .id = 1, .name = "node1", .addr_len = 4, .addr = {10, 0, 0, 0}};
	fnode_start(b);
	st = repl_get_stats(b->r);
	/* configured peers have their slot before they speak */
	assert_int_equal(repl_npeers(b->r), 1);
	assert_false(repl_peer_by_id(b->r, 1)->up);
	inject_hb(b, 3, 9, 1);
	assert_null(repl_peer_by_id(b->r, 3));
	assert_int_equal(st->peers_refused_unknown, 1);
	inject_hb(b, 1, 9, 1); /* the right id from the wrong address */
	assert_int_equal(st->peers_refused_source, 1);
	assert_false(repl_peer_by_id(b->r, 1)->up);
	fnode_start(a);
	fnet_pass(n, 2000);
	assert_true(repl_peer_by_id(b->r, 1)->up);
	assert_int_equal(fnode_ext_count(b, 1), 5);
	/* a configured peer that falls silent is down, never forgotten */
	fnode_stop(a);
	fnet_pass(n, (uint64_t)b->cfg.sync_peer_expire_s * 1000 / 50);
	b->cfg.sync_peer_expire_s = 1;
	fnet_pass(n, 5000);
	assert_non_null(repl_peer_by_id(b->r, 1));
	assert_false(repl_peer_by_id(b->r, 1)->up);
	assert_int_equal(fnode_ext_count(b, 1), 5);
}

static void test_cap_per_peer(void **state)
{
	struct fnode *a = fnode_new(n, 1), *b = fnode_new(n, 2);

	(void)state;
	add_flows(a, 0, 150);
	b->cfg.sync_max_entries = 100;
	fnode_start(b);
	fnode_start(a);
	fnet_pass(n, 2000);
	assert_int_equal(fnode_ext_count(b, 1), 100);
	assert_true(repl_peer_by_id(b->r, 1)->st.cap_refused >= 50);
	/* tombstones have a bound of their own (a burst of destroys does not
	 * keep live entries out) */
	struct hafw_flow f;

	for (uint32_t i = 1000; i < 1200; i++) {
		fflow(&f, i, 0);
		ftrk_del(&a->trk, &f);
	}
	fnet_run(n, 2000);
	struct repl_peer *pa = repl_peer_by_id(b->r, 1);

	assert_true(cache_count(pa->flows) <= 100);
	assert_true(cache_tombs(pa->flows) <= 100);
	assert_true(pa->st.tombs_dropped >= 100);
	/* default: the tracker's own maximum */
	fnode_stop(b);
	b->cfg.sync_max_entries = 0;
	b->trk.max = 120;
	fnode_start(b);
	fnet_pass(n, 3000);
	assert_int_equal(fnode_ext_count(b, 1), 120);
}

/* A discovered peer that dies keeps its flows (they are what a failover
 * commits) past the dead interval, and is forgotten after peer_expire_s. */
static void test_silent_peer_expiry(void **state)
{
	struct fnode *a = fnode_new(n, 1), *b = fnode_new(n, 2);
	struct repl_peer *p;

	(void)state;
	add_flows(a, 0, 30);
	b->cfg.sync_peer_expire_s = 20;
	fnode_start(b);
	fnode_start(a);
	fnet_pass(n, 2000);
	fnode_stop(a);
	fnet_pass(n, (uint64_t)b->cfg.sync_dead_interval_ms + 1000);
	p = repl_peer_by_id(b->r, 1);
	assert_non_null(p);
	assert_false(p->up);
	assert_int_equal(p->st.went_down, 1);
	assert_int_equal(fnode_ext_count(b, 1), 30);
	fnet_pass(n, 20000);
	assert_null(repl_peer_by_id(b->r, 1));
	assert_int_equal(repl_get_stats(b->r)->peers_expired, 1);
}

/* One loop turn, one delivery round: lets an announce advance a slice. */
static void step(void)
{
	event_base_loop(n->base, EVLOOP_ONCE | EVLOOP_NONBLOCK);
	for (int i = 0; i < n->nnodes; i++)
		if (n->nodes[i]->r)
			repl_flush_frames(n->nodes[i]->r);
	fnet_deliver(n);
}

static void test_announce_storm(void **state)
{
	struct fnode *a = fnode_new(n, 1);
	struct fnode *late[7];
	const struct repl_stats *st;

	(void)state;
	add_flows(a, 0, 20000);
	/* multicast announces (with a control channel peers pull bulks) */
	a->cfg.sync_control = false;
	fnode_start(a);
	fnet_pass(n, 1000);
	st = repl_get_stats(a->r);
	uint64_t before = st->announces;

	for (int i = 0; i < 7; i++) {
		late[i] = fnode_new(n, 10 + i);
		late[i]->cfg.sync_control = false;
	}
	/* A's channel says its queue is long: the announce waits (as it does
	 * for a real backlog), so every join below happens while it runs */
	a->chan.backlog = 1000;
	fnode_start(late[0]);
	step();
	step();
	assert_true(a->r->announcing);
	for (int i = 1; i < 7; i++) {
		fnode_start(late[i]);
		step();
	}
	assert_true(a->r->announcing);
	a->chan.backlog = 0;
	fnet_pass(n, 5000);
	/* the running announce, plus one for everyone who came during it */
	assert_true(st->announces - before <= 2);
	assert_true(st->announces_merged >= 5);
	for (int i = 0; i < 7; i++) {
		assert_int_equal(fnode_ext_count(late[i], 1), 20000);
		assert_true(repl_peer_by_id(late[i]->r, 1)->synced);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_made_up_ids_do_not_lock_out, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_peers_list, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_cap_per_peer, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_silent_peer_expiry, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_announce_storm, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
