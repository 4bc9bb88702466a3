#include "syncd_cmds.h"
#include "config.h"
#include "flow_json.h"
#include "flow_pb.h"
#include "repl.h"

#include <json-c/json.h>
#include <string.h>

#define ADD(o, k, v) json_object_object_add((o), (k), (v))

static bool req_bool(struct json_object *req, const char *key)
{
	struct json_object *v;

	return json_object_object_get_ex(req, key, &v) && json_object_get_boolean(v);
}

/* Returns -1 when absent, -2 when not a valid id. */
static long long req_id(struct json_object *req, const char *key)
{
	struct json_object *v;

	if (!json_object_object_get_ex(req, key, &v))
		return -1;
	if (!json_object_is_type(v, json_type_int) || json_object_get_int64(v) < 1 ||
	    json_object_get_int64(v) > 0x7fffffff)
		return -2;
	return json_object_get_int64(v);
}

static struct json_object *cmd_status(void *arg, struct json_object *req)
{
	struct syncd_ctx *s = arg;
	struct json_object *o = json_object_new_object(), *node = json_object_new_object(),
	                   *in = json_object_new_object(), *peers = json_object_new_array();
	uint64_t now = repl_now_ms();

	(void)req;
	ADD(node, "id", json_object_new_int(s->cfg->node_id));
	ADD(node, "name", json_object_new_string(s->cfg->node_name));
	ADD(node, "role", json_object_new_string(repl_role_name(repl_role(s->repl))));
	ADD(node, "tracker", json_object_new_string(s->cfg->tracker_type));
	ADD(node, "sync_interface", json_object_new_string(s->cfg->sync_if));
	ADD(node, "sync_group", json_object_new_string(s->cfg->sync_group));
	ADD(node, "uptime_s", json_object_new_int64((int64_t)(now - s->started_ms) / 1000));
	ADD(o, "node", node);
	ADD(in, "flows", json_object_new_int64((int64_t)cache_count(repl_internal_flows(s->repl))));
	ADD(in, "expectations",
	    json_object_new_int64((int64_t)cache_count(repl_internal_exps(s->repl))));
	ADD(in, "bytes", json_object_new_int64((int64_t)cache_bytes(repl_internal_flows(s->repl))));
	ADD(o, "internal", in);
	for (int i = 0; i < repl_npeers(s->repl); i++) {
		struct repl_peer *p = repl_peer_at(s->repl, i);
		struct json_object *po = json_object_new_object();

		ADD(po, "id", json_object_new_int64(p->id));
		ADD(po, "name", json_object_new_string(p->name));
		ADD(po, "role", json_object_new_string(repl_role_name(p->role)));
		ADD(po, "flows", json_object_new_int64((int64_t)cache_count(p->flows)));
		ADD(po, "expectations", json_object_new_int64((int64_t)cache_count(p->exps)));
		ADD(po, "announced_flows", json_object_new_int64(p->hb_flows));
		ADD(po, "announced_expectations", json_object_new_int64(p->hb_exps));
		ADD(po, "last_seen_ms", json_object_new_int64((int64_t)(now - p->last_seen_ms)));
		ADD(po, "last_seq", json_object_new_int64(p->last_seq));
		ADD(po, "frames", json_object_new_int64((int64_t)p->frames));
		ADD(po, "events", json_object_new_int64((int64_t)p->events));
		ADD(po, "lost_datagrams", json_object_new_int64((int64_t)p->lost_dgrams));
		ADD(po, "restarts", json_object_new_int64((int64_t)p->restarts));
		json_object_array_add(peers, po);
	}
	ADD(o, "peers", peers);
	return o;
}

struct list_ctx {
	struct json_object *arr;
	bool exp;
	long long peer;
};

static int list_entry(struct cache_entry *e, void *arg)
{
	struct list_ctx *l = arg;
	struct json_object *o;

	if (l->exp) {
		struct hafw_exp x;

		if (hafw_exp_decode(e->blob, e->len, &x) < 0)
			return 0;
		o = exp_json(&x);
	} else {
		struct hafw_flow f;

		if (hafw_flow_decode(e->blob, e->len, &f) < 0)
			return 0;
		o = flow_json(&f);
	}
	if (l->peer > 0)
		ADD(o, "peer", json_object_new_int64(l->peer));
	json_object_array_add(l->arr, o);
	return 0;
}

static struct json_object *list(struct syncd_ctx *s, struct json_object *req, bool exp)
{
	struct list_ctx l = {.exp = exp};
	long long peer = req_id(req, "peer");
	bool external = req_bool(req, "external") || peer > 0;
	struct json_object *o;

	if (peer == -2)
		return ctl_error("\"peer\" must be a node id (1 to 2147483647)");
	if (peer > 0 && !repl_peer_by_id(s->repl, (uint32_t)peer))
		return ctl_error("no peer with id %lld", peer);
	o = json_object_new_object();
	l.arr = json_object_new_array();
	if (!external) {
		cache_walk(exp ? repl_internal_exps(s->repl) : repl_internal_flows(s->repl),
		           list_entry, &l);
	} else {
		for (int i = 0; i < repl_npeers(s->repl); i++) {
			struct repl_peer *p = repl_peer_at(s->repl, i);

			if (peer > 0 && p->id != (uint32_t)peer)
				continue;
			l.peer = p->id;
			cache_walk(exp ? p->exps : p->flows, list_entry, &l);
		}
	}
	ADD(o, "cache", json_object_new_string(external ? "external" : "internal"));
	ADD(o, exp ? "expectations" : "flows", l.arr);
	return o;
}

static struct json_object *cmd_flows(void *arg, struct json_object *req)
{
	return list(arg, req, false);
}

static struct json_object *cmd_expectations(void *arg, struct json_object *req)
{
	return list(arg, req, true);
}

#define STAT(o, st, f) ADD(o, #f, json_object_new_int64((int64_t)(st)->f))

static struct json_object *cmd_stats(void *arg, struct json_object *req)
{
	struct syncd_ctx *s = arg;
	const struct repl_stats *st = repl_get_stats(s->repl);
	struct json_object *o = json_object_new_object(), *rp = json_object_new_object(),
	                   *tr = json_object_new_object(), *ch = json_object_new_object(),
	                   *bad = json_object_new_object();
	struct tracker_stat ts[64];
	struct chan_stat cs[32];
	int n;

	(void)req;
	STAT(rp, st, local_new);
	STAT(rp, st, local_update);
	STAT(rp, st, local_destroy);
	STAT(rp, st, local_exp_new);
	STAT(rp, st, local_exp_destroy);
	STAT(rp, st, filtered);
	STAT(rp, st, encode_errors);
	STAT(rp, st, frames_sent);
	STAT(rp, st, events_sent);
	STAT(rp, st, heartbeats_sent);
	STAT(rp, st, send_errors);
	STAT(rp, st, dgrams_received);
	STAT(rp, st, own_dgrams);
	STAT(rp, st, bad_frames);
	STAT(rp, st, bad_events);
	STAT(rp, st, peers_refused);
	STAT(rp, st, events_received);
	STAT(rp, st, heartbeats_received);
	STAT(rp, st, resyncs);
	STAT(rp, st, resync_added);
	STAT(rp, st, resync_removed);
	STAT(rp, st, resync_changed);
	STAT(rp, st, announces);
	STAT(rp, st, commits);
	STAT(rp, st, commit_flows);
	STAT(rp, st, commit_exps);
	STAT(rp, st, commit_errors);
	STAT(rp, st, last_commit_us);
	STAT(rp, st, cache_nomem);
	for (int i = 1; i < HAFW_WIRE_NERR; i++)
		ADD(bad, hafw_wire_err_name(i), json_object_new_int64((int64_t)st->bad_dgrams[i]));
	ADD(rp, "bad_datagrams", bad);
	n = repl_tracker_stats(s->repl, ts, 64);
	for (int i = 0; i < n; i++)
		ADD(tr, ts[i].name, json_object_new_int64((int64_t)ts[i].value));
	n = repl_chan_stats(s->repl, cs, 32);
	for (int i = 0; i < n; i++)
		ADD(ch, cs[i].name, json_object_new_int64((int64_t)cs[i].value));
	ADD(o, "replication", rp);
	ADD(o, "tracker", tr);
	ADD(o, "channel", ch);
	return o;
}

static struct json_object *cmd_commit(void *arg, struct json_object *req)
{
	struct syncd_ctx *s = arg;
	struct repl_commit_result res;
	struct json_object *o = json_object_new_object();
	int ret;

	(void)req;
	ret = repl_commit(s->repl, &res);
	ADD(o, "ok", json_object_new_boolean(ret == 0));
	if (ret)
		ADD(o, "error",
		    json_object_new_string("some entries were refused by the tracker "
		                           "(see hafwctl stats, sink_err_*)"));
	ADD(o, "flows", json_object_new_int64((int64_t)res.flows));
	ADD(o, "expectations", json_object_new_int64((int64_t)res.exps));
	ADD(o, "errors", json_object_new_int64((int64_t)res.errors));
	ADD(o, "seconds", json_object_new_double(res.usec / 1e6));
	return o;
}

static struct json_object *cmd_flush(void *arg, struct json_object *req)
{
	struct syncd_ctx *s = arg;
	bool in = req_bool(req, "internal"), ex = req_bool(req, "external");
	struct json_object *o = json_object_new_object();

	if (!in && !ex)
		in = ex = true;
	if (in)
		repl_flush_internal(s->repl);
	if (ex)
		repl_flush_external(s->repl);
	ADD(o, "internal", json_object_new_boolean(in));
	ADD(o, "external", json_object_new_boolean(ex));
	return o;
}

static struct json_object *cmd_role(void *arg, struct json_object *req)
{
	struct syncd_ctx *s = arg;
	struct json_object *v, *o;
	static const char *const names[] = {"primary", "backup", "fault"};
	const char *name;

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
    {"status", cmd_status}, {"flows", cmd_flows},   {"expectations", cmd_expectations},
    {"stats", cmd_stats},   {"commit", cmd_commit}, {"flush", cmd_flush},
    {"role", cmd_role},     {NULL, NULL},
};
