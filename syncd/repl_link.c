/* Sync links: sync.interface and, optionally, sync.backup_interface, one
 * data channel each. Numbered datagrams leave on the active link only;
 * every other link carries a probe per heartbeat interval, so each node
 * knows, for every link, when it last heard every peer there.
 *
 * A link is healthy while every peer that is up was heard on it within
 * the dead interval: a link's health is what arrives over it, not its
 * interface flags (a dead switch port keeps the carrier). When the active
 * link is not healthy and another is, datagrams move there. Both links
 * are read all the time and the sequence numbers are the sender's, not the
 * link's, so a switch needs no resync: what the dead link swallowed is
 * NACKed and retransmitted like any other loss. Back to the first link once
 * it has been healthy for two dead intervals (no flapping). */
#include "repl_int.h"
#include "config.h"
#include "log.h"

#include <errno.h>
#include <string.h>

#define FAILBACK_DEAD_INTERVALS 2

static void link_recv(void *arg, const uint8_t *buf, size_t len, const struct chan_addr *from)
{
	struct repl_link *l = arg;
	struct chan_addr f = *from;

	f.link = (uint8_t)l->idx;
	l->dgrams++;
	repl_rx_dgram(l->r, buf, len, &f);
}

static const struct chan_events link_cb = {
    .recv = link_recv,
};

int repl_links_open(struct repl *r, const char **what)
{
	r->nlinks = r->cfg->sync_backup_if[0] ? 2 : 1;
	for (int i = 0; i < r->nlinks; i++) {
		struct repl_link *l = &r->links[i];
		int ret;

		l->r = r;
		l->idx = i;
		l->name = i ? r->cfg->sync_backup_if : r->cfg->sync_if;
		*what = i ? "backup sync link" : "channel";
		ret = r->cops->open(&l->chan, r->cfg, i, r->base, &link_cb, l);
		if (ret < 0)
			return ret;
	}
	r->active = 0;
	r->chan = r->links[0].chan;
	r->max_dgram = r->cops->max_dgram(r->chan);
	/* a datagram must fit whichever link carries it */
	for (int i = 1; i < r->nlinks; i++) {
		size_t m = r->cops->max_dgram(r->links[i].chan);

		if (m < r->max_dgram)
			r->max_dgram = m;
	}
	return 0;
}

void repl_links_close(struct repl *r)
{
	for (int i = 0; i < r->nlinks; i++)
		if (r->links[i].chan)
			r->cops->close(r->links[i].chan);
	memset(r->links, 0, sizeof(r->links));
	r->chan = NULL;
	r->nlinks = 0;
}

int repl_send_to(struct repl *r, const struct chan_addr *to, const uint8_t *buf, size_t len)
{
	int link = to->link < r->nlinks ? to->link : r->active;

	return r->cops->send_to(r->links[link].chan, to, buf, len);
}

/* With the heartbeat: a probe on every link but the active one. */
void repl_links_probe(struct repl *r)
{
	uint8_t buf[HAFW_WIRE_HDR_LEN];
	struct hafw_wire_hdr h = {.type = HAFW_MSG_PROBE};

	h.sender = (uint32_t)r->cfg->node_id;
	h.epoch = r->epoch;
	hafw_wire_hdr_write(&h, buf);
	for (int i = 0; i < r->nlinks; i++) {
		if (i == r->active)
			continue;
		if (r->cops->send(r->links[i].chan, buf, sizeof(buf)) < 0)
			r->links[i].send_errors++;
		else
			r->links[i].probes_sent++;
	}
}

/* Whether every peer that is up (long enough to have been heard on every
 * link) was heard on link i within the dead interval. *quiet: the first
 * that was not. */
static bool link_healthy(struct repl *r, int i, uint64_t now, struct repl_peer **quiet)
{
	uint64_t dead = (uint64_t)r->cfg->sync_dead_interval_ms;

	for (int k = 0; k < r->npeers; k++) {
		struct repl_peer *p = r->peers[k];

		if (!p->up || now - p->up_since_ms < dead)
			continue;
		if (now - p->link_seen_ms[i] > dead) {
			*quiet = p;
			return false;
		}
	}
	return true;
}

static void link_switch(struct repl *r, int to, const char *why, const struct repl_peer *quiet,
                        uint64_t now)
{
	struct repl_link *from = &r->links[r->active];

	if (quiet)
		hafw_log(LOG_WARNING,
		         "sync link %s: nothing from peer %u (%s) for %llu ms; sending on %s",
		         from->name, quiet->id, quiet->name[0] ? quiet->name : "?",
		         (unsigned long long)(now - quiet->link_seen_ms[r->active]),
		         r->links[to].name);
	else
		hafw_log(LOG_NOTICE, "sync link %s %s; sending on it again", r->links[to].name,
		         why);
	r->active = to;
	r->chan = r->links[to].chan;
	r->links[to].switched_ms = now;
	r->st.link_switches++;
	/* a probe now on the link we left: it is not the active one any more */
	repl_links_probe(r);
}

void repl_links_tick(struct repl *r)
{
	uint64_t now = repl_now_ms(r), dead = (uint64_t)r->cfg->sync_dead_interval_ms;
	bool ok[REPL_MAX_LINKS];
	struct repl_peer *quiet = NULL, *q;

	if (r->nlinks < 2)
		return;
	for (int i = 0; i < r->nlinks; i++) {
		q = NULL;
		ok[i] = link_healthy(r, i, now, &q);
		if (ok[i] && !r->links[i].healthy)
			r->links[i].healthy_since_ms = now;
		r->links[i].healthy = ok[i];
		if (i == r->active)
			quiet = q;
	}
	if (!ok[r->active]) {
		for (int i = 0; i < r->nlinks; i++)
			if (ok[i]) {
				link_switch(r, i, "is quiet", quiet, now);
				return;
			}
		return; /* none is better: stay */
	}
	if (r->active != 0 && ok[0] &&
	    now - r->links[0].healthy_since_ms >= FAILBACK_DEAD_INTERVALS * dead)
		link_switch(r, 0, "is healthy again", NULL, now);
}

int repl_active_link(const struct repl *r)
{
	return r->active;
}

const char *repl_link_name(const struct repl *r, int link)
{
	return link >= 0 && link < r->nlinks ? r->links[link].name : "?";
}

int repl_nlinks(const struct repl *r)
{
	return r->nlinks;
}

bool repl_link_healthy(const struct repl *r, int link)
{
	return link >= 0 && link < r->nlinks && (r->nlinks < 2 || r->links[link].healthy);
}

int repl_link_stats(struct repl *r, int link, struct chan_stat *out, int max)
{
	struct repl_link *l;
	int n;

	if (link < 0 || link >= r->nlinks || !r->links[link].chan)
		return 0;
	l = &r->links[link];
	n = r->cops->stats(l->chan, out, max);
	if (n < max)
		out[n++] = (struct chan_stat){"probes_sent", l->probes_sent};
	if (n < max)
		out[n++] = (struct chan_stat){"probe_errors", l->send_errors};
	return n;
}
