/* The peer table: who may talk to us, who is alive, who is forgotten.
 *
 * With a "peers" list in the config only those ids are accepted (and, with
 * an address, only from it); they always have a slot and never expire.
 * Without it, senders are discovered, at a bounded rate and up to
 * sync.max_peers; a discovered peer that falls silent is marked down after
 * the dead interval and forgotten later: at once when it holds nothing (and
 * neither its control connection is up nor a bulk to it under way), else
 * after sync.peer_expire_s (a dead primary's flows are what a failover
 * commits). A full table makes room by evicting the smallest silent
 * discovered peer, never a live one nor one whose connection is up. */
#include "repl_int.h"
#include "config.h"
#include "log.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#define DISCOVERY_BURST    8
#define DISCOVERY_EVERY_MS 1000
#define SWEEP_CHUNK        1024
#define TOMB_GC_SLICE      2048

static struct hafw_ratelimit rl_admit = HAFW_RATELIMIT_INIT(10, 5);

size_t repl_peer_entries(const struct repl_peer *p)
{
	return cache_count(p->flows) + cache_tombs(p->flows) + cache_count(p->exps) +
	       cache_tombs(p->exps);
}

static void peer_free(struct repl_peer *p)
{
	if (!p)
		return;
	repl_bulk_forget(p);
	cache_free(p->flows);
	cache_free(p->exps);
	free(p);
}

static struct repl_peer *peer_new(struct repl *r, uint32_t id)
{
	struct repl_peer *p;

	if (r->npeers >= r->maxpeers)
		return NULL;
	p = calloc(1, sizeof(*p));
	if (!p)
		return NULL;
	p->id = id;
	p->flows = cache_new(1024, r->seed);
	p->exps = cache_new(64, r->seed);
	if (!p->flows || !p->exps) {
		peer_free(p);
		return NULL;
	}
	r->peers[r->npeers++] = p;
	return p;
}

static void peer_remove(struct repl *r, int i)
{
	const uint64_t *a = (const uint64_t *)&r->peers[i]->st;
	uint64_t *sum = (uint64_t *)&r->gone_peers_st;

	/* its counters stay in the totals: counters never go down */
	for (size_t k = 0; k < sizeof(r->gone_peers_st) / sizeof(uint64_t); k++)
		sum[k] += a[k];
	if (r->ccops && r->cchan && r->peers[i]->ctl_added)
		r->ccops->peer_del(r->cchan, r->peers[i]->id);
	peer_free(r->peers[i]);
	r->peers[i] = r->peers[--r->npeers];
	r->peers[r->npeers] = NULL;
}

int repl_peers_init(struct repl *r)
{
	const struct hafw_config *c = r->cfg;

	r->maxpeers = c->sync_max_peers > c->n_peers ? c->sync_max_peers : c->n_peers;
	if (r->maxpeers < 1)
		r->maxpeers = 1;
	r->peers = calloc((size_t)r->maxpeers, sizeof(*r->peers));
	if (!r->peers)
		return -ENOMEM;
	r->disc_tokens = DISCOVERY_BURST;
	for (int i = 0; i < c->n_peers; i++) {
		struct repl_peer *p = peer_new(r, (uint32_t)c->peers[i].id);

		if (!p)
			return -ENOMEM;
		p->configured = true;
		snprintf(p->name, sizeof(p->name), "%s", c->peers[i].name);
		p->cfg_addr.len = c->peers[i].addr_len;
		memcpy(p->cfg_addr.ip, c->peers[i].addr, sizeof(p->cfg_addr.ip));
		p->cfg_addr2.len = c->peers[i].backup_addr_len;
		p->cfg_addr2.link = 1;
		memcpy(p->cfg_addr2.ip, c->peers[i].backup_addr, sizeof(p->cfg_addr2.ip));
	}
	return 0;
}

void repl_peers_free(struct repl *r)
{
	for (int i = 0; i < r->npeers; i++)
		peer_free(r->peers[i]);
	free(r->peers);
	r->peers = NULL;
	r->npeers = 0;
}

struct repl_peer *repl_peer_by_id(struct repl *r, uint32_t id)
{
	for (int i = 0; i < r->npeers; i++)
		if (r->peers[i]->id == id)
			return r->peers[i];
	return NULL;
}

static bool same_ip(const struct chan_addr *a, const struct chan_addr *b)
{
	return a->len == b->len && !memcmp(a->ip, b->ip, a->len);
}

/* Token bucket: DISCOVERY_BURST new peers at once, then one per
 * DISCOVERY_EVERY_MS, so a flood of made-up ids is slow to fill the table
 * and a real peer still finds a slot between them. */
static bool take_token(struct repl *r)
{
	uint64_t now = repl_now_ms(r);

	if (!r->disc_tokens_ms)
		r->disc_tokens_ms = now;
	while (r->disc_tokens < DISCOVERY_BURST && now - r->disc_tokens_ms >= DISCOVERY_EVERY_MS) {
		r->disc_tokens++;
		r->disc_tokens_ms += DISCOVERY_EVERY_MS;
	}
	if (r->disc_tokens == DISCOVERY_BURST)
		r->disc_tokens_ms = now;
	if (!r->disc_tokens)
		return false;
	r->disc_tokens--;
	return true;
}

/* The smallest discovered peer that is down, if any. */
static int evictable(struct repl *r)
{
	int best = -1;

	if (r->commit)
		return -1; /* the commit walks the peers by index */
	for (int i = 0; i < r->npeers; i++) {
		struct repl_peer *p = r->peers[i];

		if (p->configured || p->up || p->ctl_up || p->btx)
			continue;
		if (best < 0 || repl_peer_entries(p) < repl_peer_entries(r->peers[best]) ||
		    (repl_peer_entries(p) == repl_peer_entries(r->peers[best]) &&
		     p->last_seen_ms < r->peers[best]->last_seen_ms))
			best = i;
	}
	return best;
}

struct repl_peer *repl_peer_admit(struct repl *r, uint32_t id, const struct chan_addr *from)
{
	struct repl_peer *p = repl_peer_by_id(r, id);
	int victim = -1;

	if (p) {
		/* either of its addresses: the control connection may run
		 * over either link */
		if (p->cfg_addr.len && from && !same_ip(&p->cfg_addr, from) &&
		    !(p->cfg_addr2.len && same_ip(&p->cfg_addr2, from))) {
			r->st.peers_refused_source++;
			hafw_log_rl(
			    &rl_admit, LOG_WARNING,
			    "datagram with the id of peer %u (%s) from another address: dropped",
			    id, p->name);
			return NULL;
		}
		return p;
	}
	if (r->cfg->n_peers) {
		r->st.peers_refused_unknown++;
		hafw_log_rl(&rl_admit, LOG_WARNING, "datagram from unknown node id %u: dropped",
		            id);
		return NULL;
	}
	if (r->npeers >= r->maxpeers) {
		victim = evictable(r);
		if (victim < 0) {
			r->st.peers_refused_full++;
			hafw_log_rl(&rl_admit, LOG_WARNING,
			            "node id %u refused: %d peers known and all alive", id,
			            r->npeers);
			return NULL;
		}
	}
	if (!take_token(r)) {
		r->st.peers_refused_rate++;
		hafw_log_rl(&rl_admit, LOG_WARNING, "node id %u refused: too many new peers", id);
		return NULL;
	}
	if (victim >= 0) {
		hafw_log(LOG_NOTICE, "forgetting silent peer %u to make room for %u",
		         r->peers[victim]->id, id);
		peer_remove(r, victim);
		r->st.peers_evicted++;
	}
	p = peer_new(r, id);
	if (!p) {
		r->st.cache_nomem++;
		return NULL;
	}
	hafw_log(LOG_NOTICE, "new peer %u", id);
	return p;
}

void repl_peer_seen(struct repl *r, struct repl_peer *p, const struct chan_addr *from)
{
	uint64_t now = repl_now_ms(r);

	p->last_seen_ms = now;
	if (from)
		p->addr = *from;
	if (!p->up) {
		p->up = true;
		p->up_since_ms = now;
		hafw_log(LOG_NOTICE, "peer %u (%s) is up", p->id, p->name[0] ? p->name : "?");
	}
}

void repl_peer_set_down(struct repl *r, struct repl_peer *p)
{
	(void)r;
	if (!p->up)
		return;
	p->up = false;
	p->st.went_down++;
	hafw_log(LOG_NOTICE, "peer %u (%s) is down; keeping its %zu flows", p->id,
	         p->name[0] ? p->name : "?", cache_count(p->flows));
}

void repl_peers_tick(struct repl *r)
{
	uint64_t now = repl_now_ms(r), dead = (uint64_t)r->cfg->sync_dead_interval_ms;
	uint64_t expire = (uint64_t)r->cfg->sync_peer_expire_s * 1000;
	uint32_t tomb_s = (uint32_t)((r->cfg->sync_tombstone_ms + 999) / 1000);
	uint32_t older = repl_now_s(r) - tomb_s;

	for (int i = 0; i < r->npeers; i++) {
		struct repl_peer *p = r->peers[i];
		uint64_t silent = now - p->last_seen_ms;
		size_t n;

		if (p->up && silent > dead)
			repl_peer_set_down(r, p);
		if (p->up)
			repl_nack_maybe(r, p); /* holes still open: ask again */
		repl_bulk_tick(r, p);
		/* a peer whose connection is up is alive even if its datagrams
		 * do not arrive: not forgotten before it expires (nor its bulk
		 * dropped) */
		if (!p->configured && !p->up && !r->commit &&
		    ((repl_peer_entries(p) == 0 && silent > dead && !p->ctl_up && !p->btx) ||
		     silent > expire)) {
			hafw_log(LOG_NOTICE,
			         "forgetting peer %u (%s): silent for %llu s, %zu flows", p->id,
			         p->name[0] ? p->name : "?", (unsigned long long)(silent / 1000),
			         cache_count(p->flows));
			r->st.peers_expired++;
			peer_remove(r, i--);
			continue;
		}
		n = cache_expire_tombs(p->flows, &p->gc_cursor_f, TOMB_GC_SLICE, older);
		n += cache_expire_tombs(p->exps, &p->gc_cursor_x, TOMB_GC_SLICE, older);
		r->st.tombs_expired += n;
	}
}

/* Restart sweeps: a slice per turn for each peer whose new state is
 * complete. */
bool repl_peers_work(struct repl *r, uint64_t t0)
{
	bool more = false;

	for (int i = 0; i < r->npeers; i++) {
		struct repl_peer *p = r->peers[i];
		size_t n = 0;
		bool over = false;

		if (!p->sweeping)
			continue;
		while (
		    !cache_gen_sweep_some(p->flows, &p->sweep_cursor_f, SWEEP_CHUNK, NULL, NULL,
		                          &n) ||
		    !cache_gen_sweep_some(p->exps, &p->sweep_cursor_x, SWEEP_CHUNK, NULL, NULL, &n))
			if ((over = repl_slice_over(t0)))
				break;
		p->st.restart_swept += n;
		if (over) {
			more = true;
			continue;
		}
		p->sweeping = p->sweep_pending = p->yield_old_gen = false;
		p->synced = true;
		hafw_log(LOG_INFO, "peer %u (%s): full state received, %zu flows", p->id,
		         p->name[0] ? p->name : "?", cache_count(p->flows));
	}
	return more;
}
