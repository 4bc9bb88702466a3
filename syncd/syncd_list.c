/* "flows" and "expectations": a cache listed as a stream, a slice of
 * entries per call while the client reads, never the whole table in memory.
 * The cache may change between slices (events keep coming): the listing is
 * a live view, not a snapshot, and a peer that is forgotten meanwhile just
 * ends its part early. */
#include "syncd_cmds.h"
#include "flow_json.h"
#include "flow_pb.h"
#include "repl.h"

#include <event2/buffer.h>
#include <json-c/json.h>
#include <stdlib.h>
#include <string.h>

#define LIST_SLICE 256

struct list_stream {
	struct syncd_ctx *s;
	bool exp, external, started, first;
	uint32_t *ids; /* peers to list, by id (slots move when peers go) */
	int nids, cur;
	size_t cursor;
	struct evbuffer *out; /* of the current fill() */
	unsigned emitted;
};

static void emit(struct list_stream *l, struct json_object *o, const struct cache_entry *e,
                 uint32_t peer)
{
	const char *s;

	if (!o)
		return;
	if (peer)
		json_object_object_add(o, "peer", json_object_new_int64(peer));
	json_object_object_add(o, "version", json_object_new_int64((int64_t)e->version));
	json_object_object_add(
	    o, "age_s",
	    json_object_new_int64((int64_t)(repl_now_ms(l->s->repl) / 1000) - (int64_t)e->stamp));
	s = json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN);
	if (!l->first)
		evbuffer_add(l->out, ",", 1);
	evbuffer_add(l->out, s, strlen(s));
	l->first = false;
	json_object_put(o);
}

static int list_entry(struct cache_entry *e, void *arg)
{
	struct list_stream *l = arg;
	uint32_t peer = l->external ? l->ids[l->cur] : 0;

	if (l->exp) {
		struct hafw_exp x;

		if (hafw_exp_decode(e->blob, e->len, &x) == 0)
			emit(l, exp_json(&x), e, peer);
	} else {
		struct hafw_flow f;

		if (hafw_flow_decode(e->blob, e->len, &f) == 0)
			emit(l, flow_json(&f), e, peer);
	}
	return 0;
}

static struct cache *current(struct list_stream *l)
{
	struct repl *r = l->s->repl;

	while (l->cur < l->nids) {
		struct repl_peer *p;

		if (!l->external)
			return l->exp ? repl_internal_exps(r) : repl_internal_flows(r);
		p = repl_peer_by_id(r, l->ids[l->cur]);
		if (p)
			return l->exp ? p->exps : p->flows;
		l->cur++;
		l->cursor = 0;
	}
	return NULL;
}

static bool list_fill(void *state, struct evbuffer *out)
{
	struct list_stream *l = state;
	struct cache *c;

	l->out = out;
	if (!l->started) {
		evbuffer_add_printf(out, "{\"ok\":true,\"cache\":\"%s\",\"%s\":[",
		                    l->external ? "external" : "internal",
		                    l->exp ? "expectations" : "flows");
		l->started = l->first = true;
	}
	while ((c = current(l))) {
		if (!cache_walk_some(c, &l->cursor, LIST_SLICE, list_entry, l))
			return false;
		l->cur++;
		l->cursor = 0;
		if (evbuffer_get_length(out) > 64 * 1024)
			return false;
	}
	evbuffer_add(out, "]}\n", 3);
	return true;
}

static void list_done(void *state)
{
	struct list_stream *l = state;

	free(l->ids);
	free(l);
}

static const struct ctl_stream_ops list_ops = {.fill = list_fill, .done = list_done};

struct json_object *syncd_list(struct syncd_ctx *s, struct json_object *req, struct ctl_req *cr,
                               bool exp)
{
	long long peer = syncd_req_id(req, "peer");
	struct list_stream *l;

	if (peer == -2)
		return ctl_error("\"peer\" must be a node id (1 to 2147483647)");
	if (peer > 0 && !repl_peer_by_id(s->repl, (uint32_t)peer))
		return ctl_error("no peer with id %lld", peer);
	l = calloc(1, sizeof(*l));
	if (!l)
		return ctl_error("out of memory");
	l->s = s;
	l->exp = exp;
	l->external = syncd_req_bool(req, "external") || peer > 0;
	if (!l->external) {
		l->nids = 1;
	} else {
		int n = repl_npeers(s->repl);

		l->ids = calloc((size_t)(n ? n : 1), sizeof(*l->ids));
		if (!l->ids) {
			free(l);
			return ctl_error("out of memory");
		}
		for (int i = 0; i < n; i++) {
			struct repl_peer *p = repl_peer_at(s->repl, i);

			if (peer <= 0 || p->id == (uint32_t)peer)
				l->ids[l->nids++] = p->id;
		}
	}
	return ctl_stream(cr, &list_ops, l);
}
