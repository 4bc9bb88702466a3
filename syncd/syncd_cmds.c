#include "syncd_cmds.h"
#include "config.h"
#include "localaddr.h"
#include "repl.h"

#include <errno.h>
#include <json-c/json.h>
#include <string.h>

#define ADD(o, k, v) json_object_object_add((o), (k), (v))
#define I64(v)       json_object_new_int64((int64_t)(v))

bool syncd_req_bool(struct json_object *req, const char *key)
{
	struct json_object *v;

	return json_object_object_get_ex(req, key, &v) && json_object_get_boolean(v);
}

long long syncd_req_id(struct json_object *req, const char *key)
{
	struct json_object *v;

	if (!json_object_object_get_ex(req, key, &v))
		return -1;
	if (!json_object_is_type(v, json_type_int) || json_object_get_int64(v) < 1 ||
	    json_object_get_int64(v) > 0x7fffffff)
		return -2;
	return json_object_get_int64(v);
}

static struct json_object *peer_json(struct repl_peer *p, uint64_t now)
{
	struct json_object *po = json_object_new_object();

	ADD(po, "id", I64(p->id));
	ADD(po, "name", json_object_new_string(p->name));
	ADD(po, "configured", json_object_new_boolean(p->configured));
	ADD(po, "up", json_object_new_boolean(p->up));
	ADD(po, "role", json_object_new_string(repl_role_name(p->role)));
	ADD(po, "epoch", I64(p->epoch));
	ADD(po, "synced", json_object_new_boolean(p->synced));
	ADD(po, "flows", I64(cache_count(p->flows)));
	ADD(po, "expectations", I64(cache_count(p->exps)));
	ADD(po, "tombstones", I64(cache_tombs(p->flows) + cache_tombs(p->exps)));
	ADD(po, "bytes", I64(cache_bytes(p->flows) + cache_bytes(p->exps)));
	ADD(po, "announced_flows", I64(p->hb_flows));
	ADD(po, "announced_expectations", I64(p->hb_exps));
	ADD(po, "last_seen_ms", I64(p->last_seen_ms ? now - p->last_seen_ms : 0));
	ADD(po, "last_seq", I64(p->win.hi));
	ADD(po, "missing", I64(seqwin_missing(&p->win)));
	ADD(po, "datagrams", I64(p->st.dgrams));
	ADD(po, "frames", I64(p->st.frames));
	ADD(po, "events", I64(p->st.events));
	ADD(po, "lost_datagrams", I64(p->st.lost_dgrams));
	ADD(po, "restarts", I64(p->st.restarts));
	ADD(po, "nacks_sent", I64(p->st.nacks_sent));
	ADD(po, "resyncs", I64(p->st.resyncs_loss + p->st.resyncs_digest));
	ADD(po, "digest_match", json_object_new_boolean(p->digest_bad_ms == 0));
	ADD(po, "resync_pending", json_object_new_boolean(p->sweep_pending || p->need_full));
	ADD(po, "last_resync_ms",
	    json_object_new_int64(p->resync_ms ? (int64_t)(now - p->resync_ms) : -1));
	return po;
}

static struct json_object *cmd_status(void *arg, struct json_object *req, struct ctl_req *cr)
{
	struct syncd_ctx *s = arg;
	struct json_object *o = json_object_new_object(), *node = json_object_new_object(),
	                   *in = json_object_new_object(), *peers = json_object_new_array();
	uint64_t now = repl_now_ms(s->repl);

	(void)req;
	(void)cr;
	ADD(node, "id", json_object_new_int(s->cfg->node_id));
	ADD(node, "name", json_object_new_string(s->cfg->node_name));
	ADD(node, "role", json_object_new_string(repl_role_name(repl_role(s->repl))));
	ADD(node, "epoch", I64(repl_epoch(s->repl)));
	ADD(node, "tracker", json_object_new_string(s->cfg->tracker_type));
	ADD(node, "sync_interface", json_object_new_string(s->cfg->sync_if));
	{
		struct json_object *links = json_object_new_array();

		for (int i = 0; i < repl_nlinks(s->repl); i++) {
			struct json_object *l = json_object_new_object();

			ADD(l, "interface", json_object_new_string(repl_link_name(s->repl, i)));
			ADD(l, "active", json_object_new_boolean(i == repl_active_link(s->repl)));
			ADD(l, "healthy", json_object_new_boolean(repl_link_healthy(s->repl, i)));
			json_object_array_add(links, l);
		}
		ADD(node, "sync_links", links);
	}
	ADD(node, "sync_group", json_object_new_string(s->cfg->sync_group));
	ADD(node, "uptime_s", I64((now - s->started_ms) / 1000));
	ADD(node, "committing", json_object_new_boolean(repl_committing(s->repl)));
	ADD(node, "reconciling", json_object_new_boolean(repl_dumping(s->repl)));
	ADD(o, "node", node);
	ADD(in, "flows", I64(cache_count(repl_internal_flows(s->repl))));
	ADD(in, "expectations", I64(cache_count(repl_internal_exps(s->repl))));
	ADD(in, "bytes",
	    I64(cache_bytes(repl_internal_flows(s->repl)) +
	        cache_bytes(repl_internal_exps(s->repl))));
	ADD(o, "internal", in);
	for (int i = 0; i < repl_npeers(s->repl); i++)
		json_object_array_add(peers, peer_json(repl_peer_at(s->repl, i), now));
	ADD(o, "peers", peers);
	return o;
}

static struct json_object *cmd_peers(void *arg, struct json_object *req, struct ctl_req *cr)
{
	struct syncd_ctx *s = arg;
	struct json_object *o = json_object_new_object(), *peers = json_object_new_array();
	uint64_t now = repl_now_ms(s->repl);

	(void)req;
	(void)cr;
	for (int i = 0; i < repl_npeers(s->repl); i++) {
		struct repl_peer *p = repl_peer_at(s->repl, i);
		struct json_object *po = peer_json(p, now);

		/* where its numbered datagrams arrive */
		ADD(po, "link",
		    json_object_new_string(p->addr.len ? repl_link_name(s->repl, p->addr.link)
		                                       : ""));
		ADD(po, "control_connected", json_object_new_boolean(p->ctl_up));
		json_object_array_add(peers, po);
	}
	ADD(o, "peers", peers);
	return o;
}

static struct json_object *cmd_resync(void *arg, struct json_object *req, struct ctl_req *cr)
{
	struct syncd_ctx *s = arg;
	long long peer = syncd_req_id(req, "peer");
	struct json_object *o;
	int n;

	(void)cr;
	if (peer == -2)
		return ctl_error("\"peer\" must be a node id (1 to 2147483647)");
	if (peer > 0 && !repl_peer_by_id(s->repl, (uint32_t)peer))
		return ctl_error("no peer with id %lld", peer);
	n = repl_resync_peers(s->repl, peer > 0 ? (uint32_t)peer : 0);
	o = json_object_new_object();
	ADD(o, "peers", json_object_new_int(n));
	return o;
}

static struct json_object *cmd_ready(void *arg, struct json_object *req, struct ctl_req *cr)
{
	struct syncd_ctx *s = arg;
	struct json_object *o = json_object_new_object();
	char why[256];
	bool ready = repl_ready(s->repl, why, sizeof(why));

	(void)req;
	(void)cr;
	ADD(o, "ready", json_object_new_boolean(ready));
	ADD(o, "reason", json_object_new_string(why));
	return o;
}

/* Test support: make a peer's copy diverge behind the core's back, so the
 * digest check can be seen at work on a real node. */
static struct json_object *cmd_debug_forget(void *arg, struct json_object *req, struct ctl_req *cr)
{
	struct syncd_ctx *s = arg;
	long long peer = syncd_req_id(req, "peer"), count = syncd_req_id(req, "count");
	struct json_object *o;

	(void)cr;
	if (peer < 1 || !repl_peer_by_id(s->repl, (uint32_t)peer))
		return ctl_error("\"peer\" must name a known peer");
	if (count == -2)
		return ctl_error("\"count\" must be 1 to 2147483647");
	o = json_object_new_object();
	ADD(o, "forgotten",
	    I64(repl_debug_forget(s->repl, (uint32_t)peer, count > 0 ? (size_t)count : 1)));
	return o;
}

static struct json_object *cmd_flows(void *arg, struct json_object *req, struct ctl_req *cr)
{
	return syncd_list(arg, req, cr, false);
}

static struct json_object *cmd_expectations(void *arg, struct json_object *req, struct ctl_req *cr)
{
	return syncd_list(arg, req, cr, true);
}

#define STAT(o, st, f) ADD(o, #f, I64((st)->f))

static void repl_counters(struct json_object *rp, const struct repl_stats *st)
{
	STAT(rp, st, local_new);
	STAT(rp, st, local_update);
	STAT(rp, st, local_destroy);
	STAT(rp, st, local_exp_new);
	STAT(rp, st, local_exp_destroy);
	STAT(rp, st, destroy_unknown);
	STAT(rp, st, update_reads);
	STAT(rp, st, update_reads_stale);
	STAT(rp, st, update_reads_failed);
	STAT(rp, st, filtered);
	STAT(rp, st, encode_errors);
	STAT(rp, st, frames_sent);
	STAT(rp, st, events_sent);
	STAT(rp, st, heartbeats_sent);
	STAT(rp, st, send_errors);
	STAT(rp, st, dgrams_received);
	STAT(rp, st, own_dgrams);
	STAT(rp, st, peers_refused_unknown);
	STAT(rp, st, peers_refused_source);
	STAT(rp, st, peers_refused_full);
	STAT(rp, st, peers_refused_rate);
	STAT(rp, st, peers_expired);
	STAT(rp, st, peers_evicted);
	STAT(rp, st, version_future);
	STAT(rp, st, nack_ignored);
	STAT(rp, st, nacks_received);
	STAT(rp, st, nacks_refused);
	STAT(rp, st, retransmits);
	STAT(rp, st, ring_misses);
	STAT(rp, st, coalesced);
	STAT(rp, st, unprotected_gone);
	STAT(rp, st, control_msgs);
	STAT(rp, st, bulk_requests);
	STAT(rp, st, bulks_sent);
	STAT(rp, st, bulk_entries_sent);
	STAT(rp, st, link_switches);
	STAT(rp, st, events_received);
	STAT(rp, st, heartbeats_received);
	STAT(rp, st, dumps);
	STAT(rp, st, dumps_aborted);
	STAT(rp, st, resync_added);
	STAT(rp, st, resync_removed);
	STAT(rp, st, resync_changed);
	STAT(rp, st, announces);
	STAT(rp, st, announces_merged);
	STAT(rp, st, announce_requests);
	STAT(rp, st, commits);
	STAT(rp, st, commit_flows);
	STAT(rp, st, commit_exps);
	STAT(rp, st, commit_errors);
	STAT(rp, st, commit_superseded);
	STAT(rp, st, last_commit_us);
	STAT(rp, st, cache_nomem);
	STAT(rp, st, tombs_expired);
	STAT(rp, st, slice_max_us);
}

/* The peers' counters summed, forgotten peers' included (per peer: hafwctl
 * status --json). The struct is a row of counters, summed as such. */
_Static_assert(sizeof(struct repl_peer_stats) % sizeof(uint64_t) == 0,
               "repl_peer_stats holds uint64_t counters only");

static void peer_counters(struct json_object *rp, struct repl *r)
{
	struct repl_peer_stats t = *repl_gone_peers_stats(r);

	for (int i = 0; i < repl_npeers(r); i++) {
		const struct repl_peer_stats *p = &repl_peer_at(r, i)->st;
		const uint64_t *a = (const uint64_t *)p;
		uint64_t *b = (uint64_t *)&t;

		for (size_t k = 0; k < sizeof(t) / sizeof(uint64_t); k++)
			b[k] += a[k];
	}
	STAT(rp, &t, lost_dgrams);
	STAT(rp, &t, dup_dgrams);
	STAT(rp, &t, late_dgrams);
	STAT(rp, &t, stale_dgrams);
	STAT(rp, &t, stale_epoch);
	STAT(rp, &t, stale_events);
	STAT(rp, &t, resurrections);
	STAT(rp, &t, cap_refused);
	STAT(rp, &t, tombs_dropped);
	STAT(rp, &t, bad_frames);
	STAT(rp, &t, bad_events);
	STAT(rp, &t, bad_heartbeats);
	STAT(rp, &t, restarts);
	STAT(rp, &t, restart_swept);
	STAT(rp, &t, sweeps_skipped);
	STAT(rp, &t, name_mismatch);
	STAT(rp, &t, went_down);
	STAT(rp, &t, window_resets);
	STAT(rp, &t, nacks_sent);
	STAT(rp, &t, nack_ranges);
	STAT(rp, &t, nacks_sent_control);
	STAT(rp, &t, misses);
	STAT(rp, &t, resyncs_loss);
	STAT(rp, &t, resyncs_digest);
	STAT(rp, &t, digest_mismatch);
	STAT(rp, &t, late_heartbeats);
	STAT(rp, &t, resyncs_requested);
	STAT(rp, &t, bad_nacks);
	STAT(rp, &t, bulks_requested);
	STAT(rp, &t, bulks_received);
	STAT(rp, &t, bulks_resumed);
	STAT(rp, &t, bulks_stalled);
	STAT(rp, &t, bad_control);
	STAT(rp, &t, unknown_fields);
	STAT(rp, &t, unknown_types);
	STAT(rp, &t, version_refused);
	STAT(rp, &t, probes);
	STAT(rp, &t, nomem);
}

static struct json_object *cmd_stats(void *arg, struct json_object *req, struct ctl_req *cr)
{
	struct syncd_ctx *s = arg;
	const struct repl_stats *st = repl_get_stats(s->repl);
	struct json_object *o = json_object_new_object(), *rp = json_object_new_object(),
	                   *pr = json_object_new_object(), *tr = json_object_new_object(),
	                   *ch = json_object_new_object(), *bad = json_object_new_object(),
	                   *cs = json_object_new_object();
	struct tracker_stat ts[64];
	struct chan_stat chs[32];
	struct ctl_stats ctls;
	int n;

	(void)req;
	(void)cr;
	repl_counters(rp, st);
	for (int i = 1; i < HAFW_WIRE_NERR; i++)
		ADD(bad, hafw_wire_err_name(i), I64(st->bad_dgrams[i]));
	ADD(rp, "bad_datagrams", bad);
	peer_counters(pr, s->repl);
	n = repl_tracker_stats(s->repl, ts, 64);
	for (int i = 0; i < n; i++)
		ADD(tr, ts[i].name, I64(ts[i].value));
	n = repl_chan_stats(s->repl, chs, 32);
	for (int i = 0; i < n; i++)
		ADD(ch, chs[i].name, I64(chs[i].value));
	if (repl_nlinks(s->repl) > 1) {
		struct json_object *bc = json_object_new_object();

		n = repl_link_stats(s->repl, 1, chs, 32);
		for (int i = 0; i < n; i++)
			ADD(bc, chs[i].name, I64(chs[i].value));
		ADD(o, "backup_channel", bc);
	}
	n = repl_control_stats(s->repl, chs, 32);
	if (n > 0) {
		struct json_object *cc = json_object_new_object();

		for (int i = 0; i < n; i++)
			ADD(cc, chs[i].name, I64(chs[i].value));
		ADD(o, "control_channel", cc);
	}
	ctl_get_stats(s->ctl, &ctls);
	ADD(cs, "accepted", I64(ctls.accepted));
	ADD(cs, "refused", I64(ctls.refused));
	ADD(cs, "bad_requests", I64(ctls.bad_requests));
	ADD(cs, "timeouts", I64(ctls.timeouts));
	ADD(cs, "aborted", I64(ctls.aborted));
	ADD(cs, "open_now", I64(ctls.open_now));
	ADD(o, "replication", rp);
	ADD(o, "peers", pr);
	ADD(o, "tracker", tr);
	ADD(o, "channel", ch);
	ADD(o, "control", cs);
	if (s->local) {
		struct localaddr_stat ls[16];
		struct json_object *lo = json_object_new_object();

		n = localaddr_watch_stats(s->local, ls, 16);
		for (int i = 0; i < n; i++)
			ADD(lo, ls[i].name, I64(ls[i].value));
		ADD(o, "local_addresses", lo);
	}
	return o;
}

static void commit_done(void *arg, int status, const struct repl_commit_result *res)
{
	struct syncd_ctx *s = arg;
	struct json_object *o;

	if (!s->commit_req)
		return;
	o = json_object_new_object();
	ADD(o, "ok", json_object_new_boolean(status == 0));
	if (status)
		ADD(o, "error",
		    json_object_new_string("some entries were refused by the tracker "
		                           "(see hafwctl stats, sink_err_*)"));
	ADD(o, "flows", I64(res->flows));
	ADD(o, "expectations", I64(res->exps));
	ADD(o, "errors", I64(res->errors));
	ADD(o, "superseded", I64(res->superseded));
	ADD(o, "seconds", json_object_new_double((double)res->usec / 1e6));
	ctl_answer(s->commit_req, o);
	s->commit_req = NULL;
}

/* The client left before the commit ended: the commit goes on. */
static void commit_cancel(void *arg)
{
	struct syncd_ctx *s = arg;

	s->commit_req = NULL;
	repl_commit_forget(s->repl);
}

static struct json_object *cmd_commit(void *arg, struct json_object *req, struct ctl_req *cr)
{
	struct syncd_ctx *s = arg;
	int ret;

	(void)req;
	if (repl_committing(s->repl))
		return ctl_error("a commit is already running");
	ret = repl_commit_start(s->repl, commit_done, s);
	if (ret < 0)
		return ctl_error("commit: %s", strerror(-ret));
	s->commit_req = cr;
	return ctl_later(cr, commit_cancel, s);
}

static struct json_object *cmd_flush(void *arg, struct json_object *req, struct ctl_req *cr)
{
	struct syncd_ctx *s = arg;
	bool in = syncd_req_bool(req, "internal"), ex = syncd_req_bool(req, "external");
	struct json_object *o;

	(void)cr;
	if (repl_committing(s->repl))
		return ctl_error("a commit is running; flush after it");
	if (!in && !ex)
		in = ex = true;
	if (in)
		repl_flush_internal(s->repl);
	if (ex)
		repl_flush_external(s->repl);
	o = json_object_new_object();
	ADD(o, "internal", json_object_new_boolean(in));
	ADD(o, "external", json_object_new_boolean(ex));
	return o;
}

static struct json_object *cmd_role(void *arg, struct json_object *req, struct ctl_req *cr)
{
	struct syncd_ctx *s = arg;
	struct json_object *v, *o;
	static const char *const names[] = {"primary", "backup", "fault"};
	const char *name;

	(void)cr;
	if (!json_object_object_get_ex(req, "role", &v) ||
	    !json_object_is_type(v, json_type_string))
		return ctl_error("\"role\" must be primary, backup or fault");
	name = json_object_get_string(v);
	for (int i = 0; i < 3; i++) {
		if (strcmp(name, names[i]))
			continue;
		repl_set_role(s->repl, (enum repl_role)(i + 1));
		o = json_object_new_object();
		ADD(o, "role", json_object_new_string(names[i]));
		return o;
	}
	return ctl_error("\"role\" must be primary, backup or fault, not \"%.32s\"", name);
}

const struct ctl_cmd syncd_cmds[] = {
    {"status", cmd_status},
    {"flows", cmd_flows},
    {"expectations", cmd_expectations},
    {"stats", cmd_stats},
    {"commit", cmd_commit},
    {"flush", cmd_flush},
    {"role", cmd_role},
    {"peers", cmd_peers},
    {"resync", cmd_resync},
    {"ready", cmd_ready},
    {"debug_forget", cmd_debug_forget},
    {NULL, NULL},
};
