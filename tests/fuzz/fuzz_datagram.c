/* libFuzzer harness: datagrams from the sync link into the daemon's real
 * receive entry point (the channel's recv callback of the replication
 * core), on a node built with the fake tracker and channel of the unit
 * tests. So the header, admission, epoch, sequence window, heartbeat,
 * version and tombstone logic are all under the fuzzer, not a copy.
 *
 * An input that starts with the wire magic is one datagram. Anything else
 * is a script of records:
 *   0xxxxxxx  a datagram: [from: 1][length: 2, big endian][bytes]; from's
 *             low 6 bits are the sender's address, bit 7 sends it over the
 *             control connection instead (hello, bulk, NACK...), bit 6 on
 *             the backup sync link
 *   10xxxxxx  advance the clock by (low bits + 1) * 250 ms and tick
 *   110xxxxx  run the loop (announces, sweeps, dumps progress)
 *   111xxxxx  commit the peers' caches into the fake tracker, to the end
 * After every input the node's invariants are checked: no peer holds more
 * live entries or tombstones than its cap, the peer table is within its
 * bound. */
#include "fake_ops.h"
#include "fuzz_assert.h"
#include "log.h"
#include "repl_int.h"
#include "wire.h"

#include <event2/event.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#define CAP       500
#define MAX_PEERS 6

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void deliver(struct fnode *b, uint8_t from, const uint8_t *buf, size_t len)
{
	uint8_t link = from >> 6 & 1;
	struct chan_addr a = {.len = 4, .ip = {10, 0, link, from & 0x3f}};

	if (from & 0x80)
		b->ctl.ev->recv(b->ctl.arg, buf, len, &a);
	else if (link)
		b->bchan.ev->recv(b->bchan.arg, buf, len, &a);
	else
		b->chan.ev->recv(b->chan.arg, buf, len, &a);
}

static void check(struct fnode *b)
{
	struct repl *r = b->r;

	FUZZ_ASSERT(repl_npeers(r) <= MAX_PEERS);
	for (int i = 0; i < repl_npeers(r); i++) {
		struct repl_peer *p = repl_peer_at(r, i);

		FUZZ_ASSERT(cache_count(p->flows) + cache_count(p->exps) <= CAP);
		FUZZ_ASSERT(cache_tombs(p->flows) + cache_tombs(p->exps) <= CAP);
		FUZZ_ASSERT(p->id != (uint32_t)b->cfg.node_id);
	}
}

static void run(struct fnet *n, int turns)
{
	for (int i = 0; i < turns; i++)
		event_base_loop(n->base, EVLOOP_ONCE | EVLOOP_NONBLOCK);
}

static void done(void *arg, int status, const struct repl_commit_result *res)
{
	(void)status;
	(void)res;
	*(bool *)arg = true;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static bool quiet;
	struct fnet *n;
	struct fnode *a, *b;
	size_t i = 0;

	if (!quiet) {
		hafw_log_init("fuzz", false, LOG_CRIT);
		quiet = true;
	}
	n = fnet_new();
	a = fnode_new(n, 1); /* a slot for "from" 0; never started */
	b = fnode_new(n, 2);
	b->cfg.sync_max_entries = CAP;
	b->cfg.sync_max_peers = MAX_PEERS;
	snprintf(b->cfg.sync_backup_if, sizeof(b->cfg.sync_backup_if), "sync1");
	fnode_start(b);
	run(n, 4);
	if (size >= 4 && !memcmp(data, "HAFW", 4)) {
		deliver(b, 1, data, size);
		run(n, 2);
	} else {
		while (i < size) {
			uint8_t op = data[i++];

			if (!(op & 0x80)) {
				size_t len;

				if (i + 3 > size)
					break;
				len = (size_t)data[i + 1] << 8 | data[i + 2];
				if (len > size - i - 3)
					len = size - i - 3;
				deliver(b, data[i], data + i + 3, len);
				i += 3 + len;
			} else if ((op & 0xc0) == 0x80) {
				fnet_advance(n, ((uint64_t)(op & 0x3f) + 1) * 250);
				repl_tick(b->r);
			} else if ((op & 0xe0) == 0xc0) {
				run(n, 8);
			} else {
				bool finished = false;

				if (repl_commit_start(b->r, done, &finished) == 0)
					for (int k = 0; k < 100000 && !finished; k++)
						run(n, 1);
				FUZZ_ASSERT(!repl_committing(b->r));
			}
			check(b);
		}
	}
	repl_flush_frames(b->r);
	check(b);
	(void)a;
	fnet_free(n);
	return 0;
}
