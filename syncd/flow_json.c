#include "flow_json.h"

#include <arpa/inet.h>
#include <json-c/json.h>
#include <stdio.h>
#include <string.h>

#define ADD(o, k, v) json_object_object_add((o), (k), (v))

struct json_object *tuple_json(const struct hafw_tuple *t)
{
	struct json_object *o = json_object_new_object();
	char a[INET6_ADDRSTRLEN], p[8];
	int af = t->l3 == AF_INET6 ? AF_INET6 : AF_INET;
	const char *l4 = hafw_l4_name(t->l4);

	if (!l4) {
		snprintf(p, sizeof(p), "%u", t->l4);
		l4 = p;
	}
	ADD(o, "family", json_object_new_string(af == AF_INET6 ? "ipv6" : "ipv4"));
	ADD(o, "proto", json_object_new_string(l4));
	inet_ntop(af, t->src, a, sizeof(a));
	ADD(o, "src", json_object_new_string(a));
	inet_ntop(af, t->dst, a, sizeof(a));
	ADD(o, "dst", json_object_new_string(a));
	if (hafw_tuple_is_icmp(t)) {
		ADD(o, "type", json_object_new_int(t->icmp_type));
		ADD(o, "code", json_object_new_int(t->icmp_code));
		ADD(o, "id", json_object_new_int(t->sport));
	} else {
		ADD(o, "sport", json_object_new_int(t->sport));
		ADD(o, "dport", json_object_new_int(t->dport));
	}
	return o;
}

static struct json_object *status_names(uint32_t s)
{
	static const char *const bits[] = {
	    "EXPECTED",   "SEEN_REPLY",   "ASSURED",      "CONFIRMED", "SRC_NAT",       "DST_NAT",
	    "SEQ_ADJUST", "SRC_NAT_DONE", "DST_NAT_DONE", "DYING",     "FIXED_TIMEOUT", "TEMPLATE",
	    "UNTRACKED",  "HELPER",       "OFFLOAD",      "HW_OFFLOAD"};
	struct json_object *a = json_object_new_array();

	for (unsigned i = 0; i < sizeof(bits) / sizeof(bits[0]); i++)
		if (s & (1u << i))
			json_object_array_add(a, json_object_new_string(bits[i]));
	return a;
}

struct json_object *flow_json(const struct hafw_flow *f)
{
	struct json_object *o = json_object_new_object();

	ADD(o, "orig", tuple_json(&f->orig));
	if (f->present & HAFW_FA_REPLY)
		ADD(o, "reply", tuple_json(&f->reply));
	ADD(o, "zone", json_object_new_int(f->zone));
	if (f->present & HAFW_FA_STATUS) {
		ADD(o, "status", json_object_new_int64(f->status));
		ADD(o, "flags", status_names(f->status));
	}
	if (f->present & HAFW_FA_TIMEOUT)
		ADD(o, "timeout", json_object_new_int64(f->timeout));
	if (f->present & HAFW_FA_MARK)
		ADD(o, "mark", json_object_new_int64(f->mark));
	if (f->present & HAFW_FA_LABELS) {
		struct json_object *a = json_object_new_array();

		for (unsigned i = 0; i < HAFW_LABELS_LEN * 8; i++)
			if (f->labels[i / 8] & (1u << (i % 8)))
				json_object_array_add(a, json_object_new_int(i));
		ADD(o, "labels", a);
	}
	if (f->present & HAFW_FA_TCP_STATE)
		ADD(o, "state", json_object_new_string(hafw_tcp_state_name(f->tcp_state)));
	if (f->present & HAFW_FA_TCP_WSCALE) {
		struct json_object *a = json_object_new_array();
		json_object_array_add(a, json_object_new_int(f->tcp_wscale[0]));
		json_object_array_add(a, json_object_new_int(f->tcp_wscale[1]));
		ADD(o, "tcp_wscale", a);
	}
	if (f->present & HAFW_FA_TCP_FLAGS) {
		struct json_object *a = json_object_new_array();
		json_object_array_add(a, json_object_new_int(f->tcp_flags[0]));
		json_object_array_add(a, json_object_new_int(f->tcp_flags[1]));
		ADD(o, "tcp_flags", a);
	}
	if (f->present & HAFW_FA_SCTP)
		ADD(o, "sctp_state", json_object_new_int(f->sctp_state));
	if (f->present & HAFW_FA_DCCP)
		ADD(o, "dccp_state", json_object_new_int(f->dccp_state));
	if (f->present & HAFW_FA_HELPER)
		ADD(o, "helper", json_object_new_string(f->helper));
	if (f->present & HAFW_FA_MASTER)
		ADD(o, "master", tuple_json(&f->master));
	return o;
}

struct json_object *exp_json(const struct hafw_exp *e)
{
	struct json_object *o = json_object_new_object();

	ADD(o, "master", tuple_json(&e->master));
	ADD(o, "tuple", tuple_json(&e->tuple));
	ADD(o, "mask", tuple_json(&e->mask));
	ADD(o, "zone", json_object_new_int(e->zone));
	if (e->present & HAFW_EA_TIMEOUT)
		ADD(o, "timeout", json_object_new_int64(e->timeout));
	if (e->present & HAFW_EA_FLAGS)
		ADD(o, "flags", json_object_new_int64(e->flags));
	if (e->present & HAFW_EA_CLASS)
		ADD(o, "class", json_object_new_int64(e->class_));
	if (e->present & HAFW_EA_HELPER)
		ADD(o, "helper", json_object_new_string(e->helper));
	if (e->present & HAFW_EA_FN)
		ADD(o, "fn", json_object_new_string(e->fn));
	if (e->present & HAFW_EA_NAT) {
		ADD(o, "nat", tuple_json(&e->nat_tuple));
		ADD(o, "nat_dir", json_object_new_int64(e->nat_dir));
	}
	return o;
}
