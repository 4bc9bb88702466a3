/* Tuple helpers and merge/diff of the flow model. */
#include "flow.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <endian.h>
#include <string.h>

bool hafw_tuple_is_icmp(const struct hafw_tuple *t)
{
	return t->l4 == IPPROTO_ICMP || t->l4 == IPPROTO_ICMPV6;
}

/* ICMP replies use a different type: echo request 8 -> reply 0 and so on,
 * as in the kernel's icmp_invert_tuple(). */
static uint8_t icmp_invert_type(uint8_t l4, uint8_t type)
{
	if (l4 == IPPROTO_ICMP) {
		static const uint8_t inv[] = {[8] = 1,   [0] = 9,   [13] = 15, [14] = 14,
		                              [15] = 17, [16] = 16, [17] = 19, [18] = 18};
		/* table holds inverse + 1 so that 0 means "no inverse" */
		if (type < sizeof(inv) && inv[type])
			return inv[type] - 1;
		return type;
	}
	switch (type) {
	case 128:
		return 129;
	case 129:
		return 128;
	case 139:
		return 140;
	case 140:
		return 139;
	default:
		return type;
	}
}

void hafw_tuple_invert(const struct hafw_tuple *t, struct hafw_tuple *out)
{
	struct hafw_tuple r = *t;

	memcpy(r.src, t->dst, sizeof(r.src));
	memcpy(r.dst, t->src, sizeof(r.dst));
	if (hafw_tuple_is_icmp(t)) {
		r.icmp_type = icmp_invert_type(t->l4, t->icmp_type);
	} else {
		r.sport = t->dport;
		r.dport = t->sport;
	}
	*out = r;
}

bool hafw_tuple_equal(const struct hafw_tuple *a, const struct hafw_tuple *b)
{
	int alen = hafw_tuple_addr_len(a);

	return a->l3 == b->l3 && a->l4 == b->l4 && a->sport == b->sport && a->dport == b->dport &&
	       a->icmp_type == b->icmp_type && a->icmp_code == b->icmp_code &&
	       memcmp(a->src, b->src, alen) == 0 && memcmp(a->dst, b->dst, alen) == 0;
}

static inline uint64_t rotl64(uint64_t x, int r)
{
	return (x << r) | (x >> (64 - r));
}

static inline uint64_t mix64(uint64_t h, uint64_t v)
{
	h ^= v * 0x9e3779b97f4a7c15ull;
	h = rotl64(h, 27) * 0xff51afd7ed558ccdull;
	return h ^ (h >> 31);
}

/* Keyed hash: the seed is random per process, so a peer that floods us with
 * crafted tuples cannot aim them at one bucket. */
uint64_t hafw_tuple_hash(const struct hafw_tuple *t, uint16_t zone, uint64_t seed)
{
	uint64_t w[4];
	uint64_t h = seed;
	int alen = hafw_tuple_addr_len(t);

	/* address bytes read as little-endian words whatever the host: the
	 * hash feeds the digest that nodes compare, so it must not depend on
	 * the byte order of the machine */
	memset(w, 0, sizeof(w));
	memcpy(&w[0], t->src, alen == 4 ? 4 : 8);
	memcpy(&w[1], t->dst, alen == 4 ? 4 : 8);
	w[0] = le64toh(w[0]);
	w[1] = le64toh(w[1]);
	if (alen == 16) {
		uint64_t a, b;
		memcpy(&a, t->src + 8, 8);
		memcpy(&b, t->dst + 8, 8);
		h = mix64(h, le64toh(a));
		h = mix64(h, le64toh(b));
	}
	w[2] = (uint64_t)t->sport << 48 | (uint64_t)t->dport << 32 | (uint64_t)t->l3 << 24 |
	       (uint64_t)t->l4 << 16 | zone;
	w[3] = (uint64_t)t->icmp_type << 8 | t->icmp_code;
	for (int i = 0; i < 4; i++)
		h = mix64(h, w[i]);
	return h ^ (h >> 29);
}

const char *hafw_l4_name(uint8_t l4)
{
	switch (l4) {
	case IPPROTO_TCP:
		return "tcp";
	case IPPROTO_UDP:
		return "udp";
	case IPPROTO_UDPLITE:
		return "udplite";
	case IPPROTO_ICMP:
		return "icmp";
	case IPPROTO_ICMPV6:
		return "icmpv6";
	case IPPROTO_SCTP:
		return "sctp";
	case IPPROTO_GRE:
		return "gre";
	case IPPROTO_DCCP:
		return "dccp";
	default:
		return NULL;
	}
}

const char *hafw_tcp_state_name(uint8_t state)
{
	static const char *const names[] = {"NONE",     "SYN_SENT",   "SYN_RECV", "ESTABLISHED",
	                                    "FIN_WAIT", "CLOSE_WAIT", "LAST_ACK", "TIME_WAIT",
	                                    "CLOSE",    "SYN_SENT2"};
	return state < sizeof(names) / sizeof(names[0]) ? names[state] : "?";
}

int hafw_tuple_format(const struct hafw_tuple *t, char *buf, size_t len)
{
	char s[INET6_ADDRSTRLEN], d[INET6_ADDRSTRLEN], p[8];
	int af = t->l3 == 10 ? AF_INET6 : AF_INET;
	const char *l4 = hafw_l4_name(t->l4);

	inet_ntop(af, t->src, s, sizeof(s));
	inet_ntop(af, t->dst, d, sizeof(d));
	if (!l4) {
		snprintf(p, sizeof(p), "%u", t->l4);
		l4 = p;
	}
	if (hafw_tuple_is_icmp(t))
		return snprintf(buf, len, "%s -> %s %s type=%u code=%u id=%u", s, d, l4,
		                t->icmp_type, t->icmp_code, t->sport);
	if (af == AF_INET6)
		return snprintf(buf, len, "[%s]:%u -> [%s]:%u %s", s, t->sport, d, t->dport, l4);
	return snprintf(buf, len, "%s:%u -> %s:%u %s", s, t->sport, d, t->dport, l4);
}

#define MERGE(bit, field)                                                                          \
	do {                                                                                       \
		if (src->present & (bit)) {                                                        \
			memcpy(&dst->field, &src->field, sizeof(dst->field));                      \
			dst->present |= (bit);                                                     \
		}                                                                                  \
	} while (0)

static bool labels_set(const struct hafw_flow *f)
{
	for (int i = 0; i < HAFW_LABELS_LEN; i++)
		if (f->labels[i])
			return true;
	return false;
}

/* Attributes a flow loses. An update event carries what changed, but the
 * kernel says "all labels cleared" or "helper removed" by leaving the
 * attribute out, like "unchanged"; a reader that can tell marks them gone.
 * Labels stay present as all-zero: "no labels" is a value the peers and
 * their kernels can be told (a commit with zero labels clears them), and a
 * flow that never had labels stays without, so this costs nothing on the
 * wire for the others. A helper has no such value (the wire refuses an
 * empty name, and the kernel tracker cannot change a helper on an update):
 * it is dropped, the model converges, peers' kernels keep theirs. */
static void merge_gone(struct hafw_flow *dst, uint32_t gone)
{
	if ((gone & HAFW_FA_LABELS) && (dst->present & HAFW_FA_LABELS))
		memset(dst->labels, 0, sizeof(dst->labels));
	if (gone & HAFW_FA_HELPER) {
		memset(dst->helper, 0, sizeof(dst->helper));
		dst->present &= ~(uint32_t)HAFW_FA_HELPER;
	}
}

void hafw_flow_merge(struct hafw_flow *dst, const struct hafw_flow *src)
{
	merge_gone(dst, src->gone & ~src->present);
	MERGE(HAFW_FA_REPLY, reply);
	MERGE(HAFW_FA_ORIG_ZONE, orig_zone);
	MERGE(HAFW_FA_REPLY_ZONE, reply_zone);
	MERGE(HAFW_FA_STATUS, status);
	MERGE(HAFW_FA_TIMEOUT, timeout);
	MERGE(HAFW_FA_MARK, mark);
	MERGE(HAFW_FA_SECMARK, secmark);
	MERGE(HAFW_FA_LABELS, labels);
	MERGE(HAFW_FA_TCP_STATE, tcp_state);
	MERGE(HAFW_FA_TCP_WSCALE, tcp_wscale);
	MERGE(HAFW_FA_TCP_FLAGS, tcp_flags);
	MERGE(HAFW_FA_SCTP, sctp_state);
	MERGE(HAFW_FA_SCTP_VTAG, sctp_vtag);
	if (src->present & HAFW_FA_DCCP) {
		dst->dccp_state = src->dccp_state;
		dst->dccp_role = src->dccp_role;
		dst->dccp_handshake_seq = src->dccp_handshake_seq;
		dst->present |= HAFW_FA_DCCP;
	}
	MERGE(HAFW_FA_HELPER, helper);
	MERGE(HAFW_FA_MASTER, master);
	if (src->present & HAFW_FA_SEQADJ_ORIG) {
		dst->seqadj[0] = src->seqadj[0];
		dst->present |= HAFW_FA_SEQADJ_ORIG;
	}
	if (src->present & HAFW_FA_SEQADJ_REPLY) {
		dst->seqadj[1] = src->seqadj[1];
		dst->present |= HAFW_FA_SEQADJ_REPLY;
	}
	if (src->present & HAFW_FA_SYNPROXY) {
		dst->synproxy_isn = src->synproxy_isn;
		dst->synproxy_its = src->synproxy_its;
		dst->synproxy_tsoff = src->synproxy_tsoff;
		dst->present |= HAFW_FA_SYNPROXY;
	}
	MERGE(HAFW_FA_START, start_ns);
}

bool hafw_flow_needs_reread(const struct hafw_flow *dst, const struct hafw_flow *src)
{
	uint32_t stale = src->unsure & ~src->present & dst->present;

	/* all-zero labels cannot be stale: clearing them changes nothing */
	if ((stale & HAFW_FA_LABELS) && !labels_set(dst))
		stale &= ~(uint32_t)HAFW_FA_LABELS;
	return stale != 0;
}

void hafw_exp_merge(struct hafw_exp *dst, const struct hafw_exp *src)
{
	MERGE(HAFW_EA_TIMEOUT, timeout);
	MERGE(HAFW_EA_FLAGS, flags);
	MERGE(HAFW_EA_CLASS, class_);
	MERGE(HAFW_EA_HELPER, helper);
	MERGE(HAFW_EA_FN, fn);
	if (src->present & HAFW_EA_NAT) {
		dst->nat_tuple = src->nat_tuple;
		dst->nat_dir = src->nat_dir;
		dst->present |= HAFW_EA_NAT;
	}
}

#undef MERGE

static bool timeout_close(uint32_t a, uint32_t b, uint32_t slack)
{
	return (a > b ? a - b : b - a) <= slack;
}

#define DIFF(bit, cond, name)                                                                      \
	do {                                                                                       \
		if ((a->present & (bit)) != (b->present & (bit)))                                  \
			return name " (presence)";                                                 \
		if ((a->present & (bit)) && !(cond))                                               \
			return name;                                                               \
	} while (0)

const char *hafw_flow_diff(const struct hafw_flow *a, const struct hafw_flow *b,
                           uint32_t timeout_slack)
{
	if (!hafw_tuple_equal(&a->orig, &b->orig))
		return "orig";
	if (a->zone != b->zone)
		return "zone";
	DIFF(HAFW_FA_REPLY, hafw_tuple_equal(&a->reply, &b->reply), "reply");
	DIFF(HAFW_FA_ORIG_ZONE, a->orig_zone == b->orig_zone, "orig_zone");
	DIFF(HAFW_FA_REPLY_ZONE, a->reply_zone == b->reply_zone, "reply_zone");
	DIFF(HAFW_FA_STATUS, a->status == b->status, "status");
	DIFF(HAFW_FA_TIMEOUT, timeout_close(a->timeout, b->timeout, timeout_slack), "timeout");
	DIFF(HAFW_FA_MARK, a->mark == b->mark, "mark");
	DIFF(HAFW_FA_SECMARK, a->secmark == b->secmark, "secmark");
	DIFF(HAFW_FA_LABELS, !memcmp(a->labels, b->labels, sizeof(a->labels)), "labels");
	DIFF(HAFW_FA_TCP_STATE, a->tcp_state == b->tcp_state, "tcp_state");
	DIFF(HAFW_FA_TCP_WSCALE, !memcmp(a->tcp_wscale, b->tcp_wscale, 2), "tcp_wscale");
	DIFF(HAFW_FA_TCP_FLAGS, !memcmp(a->tcp_flags, b->tcp_flags, 2), "tcp_flags");
	DIFF(HAFW_FA_SCTP, a->sctp_state == b->sctp_state, "sctp_state");
	DIFF(HAFW_FA_SCTP_VTAG, !memcmp(a->sctp_vtag, b->sctp_vtag, sizeof(a->sctp_vtag)),
	     "sctp_vtag");
	DIFF(HAFW_FA_DCCP,
	     a->dccp_state == b->dccp_state && a->dccp_role == b->dccp_role &&
	         a->dccp_handshake_seq == b->dccp_handshake_seq,
	     "dccp");
	DIFF(HAFW_FA_HELPER, !strncmp(a->helper, b->helper, HAFW_HELPER_LEN), "helper");
	DIFF(HAFW_FA_MASTER, hafw_tuple_equal(&a->master, &b->master), "master");
	DIFF(HAFW_FA_SEQADJ_ORIG, !memcmp(&a->seqadj[0], &b->seqadj[0], sizeof(a->seqadj[0])),
	     "seqadj_orig");
	DIFF(HAFW_FA_SEQADJ_REPLY, !memcmp(&a->seqadj[1], &b->seqadj[1], sizeof(a->seqadj[1])),
	     "seqadj_reply");
	DIFF(HAFW_FA_SYNPROXY,
	     a->synproxy_isn == b->synproxy_isn && a->synproxy_its == b->synproxy_its &&
	         a->synproxy_tsoff == b->synproxy_tsoff,
	     "synproxy");
	DIFF(HAFW_FA_START, a->start_ns == b->start_ns, "start");
	return NULL;
}

const char *hafw_exp_diff(const struct hafw_exp *a, const struct hafw_exp *b,
                          uint32_t timeout_slack)
{
	if (!hafw_tuple_equal(&a->master, &b->master))
		return "master";
	if (!hafw_tuple_equal(&a->tuple, &b->tuple))
		return "tuple";
	if (!hafw_tuple_equal(&a->mask, &b->mask))
		return "mask";
	if (a->zone != b->zone)
		return "zone";
	DIFF(HAFW_EA_TIMEOUT, timeout_close(a->timeout, b->timeout, timeout_slack), "timeout");
	DIFF(HAFW_EA_FLAGS, a->flags == b->flags, "flags");
	DIFF(HAFW_EA_CLASS, a->class_ == b->class_, "class");
	DIFF(HAFW_EA_HELPER, !strncmp(a->helper, b->helper, HAFW_HELPER_LEN), "helper");
	DIFF(HAFW_EA_FN, !strncmp(a->fn, b->fn, HAFW_EXPFN_LEN), "fn");
	DIFF(HAFW_EA_NAT,
	     hafw_tuple_equal(&a->nat_tuple, &b->nat_tuple) && a->nat_dir == b->nat_dir, "nat");
	return NULL;
}

#undef DIFF
