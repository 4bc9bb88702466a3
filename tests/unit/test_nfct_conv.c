/* syncd/nfct_conv.c: model <-> libnetfilter_conntrack objects.
 *
 * Two legs are tested:
 *  - the object leg: model -> nf_conntrack -> model, in memory;
 *  - the netlink leg: model -> nf_conntrack -> nfct_nlmsg_build() ->
 *    nfct_conv_flow_parse() -> model. This is the shape of what the kernel
 *    tracker sends and receives (it reads events and dumps with
 *    nfct_conv_flow_parse()), so it catches attributes that only work for
 *    objects we filled ourselves.
 *
 * What legitimately does not survive:
 *  - status bits the kernel owns (EXPECTED, CONFIRMED, DYING, *_NAT_DONE,
 *    TEMPLATE, UNTRACKED, OFFLOAD, HW_OFFLOAD, HELPER) are masked for a
 *    create; NAT is expressed as SNAT/DNAT attributes instead;
 *  - a NAT'ed reply tuple: a NAT'ed flow is created with the plain inverse
 *    as its reply (but the reply's own ICMP id) and the mapping as
 *    SNAT/DNAT attributes (the kernel rebuilds the reply and sets
 *    SRC_NAT/DST_NAT itself);
 *  - TCP, SCTP and DCCP protocol info share one union in
 *    libnetfilter_conntrack, so a flow carries only its own protocol's;
 *  - expectation class, expectfn and NAT: nfct_conv_exp_to() leaves them to
 *    the kernel tracker, which adds them as raw attributes;
 *  - the start timestamp: libnetfilter_conntrack has no setter for
 *    ATTR_TIMESTAMP_START (the kernel stamps flows itself); reading it is
 *    tested with a kernel-shaped message;
 *  - on the netlink leg, the ports of an unknown L4 protocol (libnfct does
 *    not build them; the kernel's generic tracker has none); and libnfct
 *    adds CONFIRMED to every status it builds. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "flow_pb.h"
#include "nfct_conv.h"
#include "nlmsg.h"
#include "samples.h"

#include <arpa/inet.h>
#include <endian.h>
#include <errno.h>
#include <libmnl/libmnl.h>
#include <stdio.h>
#include <string.h>

static bool is_nat(const struct hafw_flow *f)
{
	return (f->present & HAFW_FA_STATUS) && (f->status & (HAFW_IPS_SRC_NAT | HAFW_IPS_DST_NAT));
}

static void want_after_nfct(const struct hafw_flow *f, struct hafw_flow *w)
{
	uint32_t foreign = TS_PROTO_STATE_BITS & ~ts_proto_state_bits(f->orig.l4);

	*w = *f;
	/* another protocol's state is not written (one union) */
	w->present &= ~foreign;
	if (foreign & HAFW_FA_TCP_STATE) {
		w->tcp_state = 0;
		memset(w->tcp_wscale, 0, sizeof(w->tcp_wscale));
		memset(w->tcp_flags, 0, sizeof(w->tcp_flags));
	}
	if (foreign & HAFW_FA_SCTP) {
		w->sctp_state = 0;
		memset(w->sctp_vtag, 0, sizeof(w->sctp_vtag));
	}
	if (foreign & HAFW_FA_DCCP) {
		w->dccp_state = w->dccp_role = 0;
		w->dccp_handshake_seq = 0;
	}
	if (is_nat(f) || !(f->present & HAFW_FA_REPLY))
		hafw_tuple_invert(&f->orig, &w->reply);
	/* NAT's own ICMP id is sent in the reply: the kernel keeps it */
	if (is_nat(f) && (f->present & HAFW_FA_REPLY) && hafw_tuple_is_icmp(&f->orig))
		w->reply.sport = f->reply.sport;
	w->status &= ~TS_NFCT_STATUS_DROP;
	w->present &= ~HAFW_FA_START;
	w->start_ns = 0;
	w->present |= HAFW_FA_REPLY;
	if (w->zone)
		w->present |= HAFW_FA_ZONE;
	else
		w->present &= ~HAFW_FA_ZONE;
}

static void obj_leg(const struct hafw_flow *f, struct hafw_flow *out)
{
	struct nf_conntrack *ct = nfct_new();

	assert_non_null(ct);
	nfct_conv_flow_to(f, ct);
	memset(out, 0x5a, sizeof(*out));
	assert_int_equal(nfct_conv_flow_from(ct, out), 0);
	nfct_destroy(ct);
}

/* extra() may append attributes the kernel would send. */
static int netlink_leg(const struct hafw_flow *f, struct hafw_flow *out,
                       void (*extra)(struct nlmsghdr *nlh, const struct hafw_flow *f))
{
	static char buf[16384];
	struct nf_conntrack *ct = nfct_new();
	struct nlmsghdr *nlh = put_ct_msg(buf, f->orig.l3);
	int ret;

	assert_non_null(ct);
	nfct_conv_flow_to(f, ct);
	assert_int_equal(nfct_nlmsg_build(nlh, ct), 0);
	nfct_destroy(ct);
	if (extra)
		extra(nlh, f);
	memset(out, 0x5a, sizeof(*out));
	ret = nfct_conv_flow_parse(nlh, NFCT_CONV_SNAPSHOT, out);
	return ret;
}

static void check_same(const struct hafw_flow *want, const struct hafw_flow *got, const char *what)
{
	const char *d = hafw_flow_diff(want, got, 0);

	if (d)
		fail_msg("%s: differs in %s (status 0x%x want 0x%x)", what, d, got->status,
		         want->status);
	if (want->present != got->present)
		fail_msg("%s: presence 0x%x, want 0x%x", what, got->present, want->present);
}

static void test_object_leg_every_attribute(void **state)
{
	struct ts_variant v[32];
	size_t nv = ts_variants(v, 32);
	struct hafw_flow f, w, g;
	char what[64];

	(void)state;
	for (size_t i = 0; i < nv; i++) {
		for (int nat = 0; nat < 2; nat++) {
			ts_flow_full(&f, &v[i].orig, nat);
			if (nat) /* and every protocol's state: only its own is written */
				ts_flow_all_state(&f);
			want_after_nfct(&f, &w);
			obj_leg(&f, &g);
			snprintf(what, sizeof(what), "%s%s", v[i].name, nat ? "+nat" : "");
			check_same(&w, &g, what);
			/* the check can fail */
			g.mark ^= 1;
			assert_string_equal(hafw_flow_diff(&w, &g, 0), "mark");
		}
		ts_flow_plain(&f, &v[i].orig);
		obj_leg(&f, &g);
		check_same(&f, &g, v[i].name);
	}
}

/* Every attribute alone: nothing leaks into another attribute, and the
 * state of another protocol than the flow's is not written. */
static void test_object_leg_single_attributes(void **state)
{
	static const uint8_t protos[] = {IPPROTO_TCP, IPPROTO_SCTP, IPPROTO_DCCP, IPPROTO_UDP};
	struct hafw_tuple t;
	struct hafw_flow full, f, w, g;
	char what[64];

	(void)state;
	for (size_t p = 0; p < sizeof(protos); p++) {
		uint32_t own = ts_proto_state_bits(protos[p]);

		ts_tuple(&t, protos[p], "2001:db8::1", "2001:db8::2", 1, 2);
		ts_flow_full(&full, &t, false);
		ts_flow_all_state(&full);
		full.zone = 0;
		for (uint32_t bit = 1; bit <= HAFW_FA_SECMARK; bit <<= 1) {
			if (bit == HAFW_FA_START || bit == HAFW_FA_ZONE)
				continue;
			f = full;
			f.present = HAFW_FA_REPLY | bit;
			want_after_nfct(&f, &w);
			obj_leg(&f, &g);
			snprintf(what, sizeof(what), "%s single 0x%x", hafw_l4_name(protos[p]),
			         bit);
			check_same(&w, &g, what);
			if ((bit & TS_PROTO_STATE_BITS) && !(bit & own))
				assert_int_equal(g.present, HAFW_FA_REPLY);
		}
	}
	ts_tuple(&t, IPPROTO_TCP, "2001:db8::1", "2001:db8::2", 1, 2);
	ts_flow_full(&full, &t, false);
	full.zone = 0;
	/* without a reply tuple, the inverse is sent */
	f = full;
	f.present = 0;
	obj_leg(&f, &g);
	assert_int_equal(g.present, HAFW_FA_REPLY);
	hafw_tuple_invert(&t, &w.reply);
	assert_true(hafw_tuple_equal(&g.reply, &w.reply));
	/* label bits at both ends */
	f = full;
	f.present = HAFW_FA_REPLY | HAFW_FA_LABELS;
	memset(f.labels, 0, sizeof(f.labels));
	f.labels[0] = 0x01;
	f.labels[15] = 0x80;
	obj_leg(&f, &g);
	assert_memory_equal(g.labels, f.labels, sizeof(f.labels));
	memset(f.labels, 0, sizeof(f.labels));
	obj_leg(&f, &g);
	assert_true(g.present & HAFW_FA_LABELS); /* "no labels" is a value */
	assert_memory_equal(g.labels, f.labels, sizeof(f.labels));
}

static void test_status_and_nat(void **state)
{
	struct hafw_tuple t;
	struct hafw_flow f;
	struct nf_conntrack *ct;
	uint8_t a[16];

	(void)state;
	/* every status bit: the kernel-owned ones are masked */
	ts_tuple(&t, IPPROTO_TCP, "10.0.0.1", "198.51.100.7", 40000, 80);
	ts_flow_full(&f, &t, true);
	f.status = UINT32_MAX;
	ct = nfct_new();
	nfct_conv_flow_to(&f, ct);
	assert_int_equal(nfct_get_attr_u32(ct, ATTR_STATUS), ~(uint32_t)TS_NFCT_STATUS_DROP);
	/* SNAT: the reply goes back to reply.dst:reply.dport */
	assert_true(nfct_attr_is_set(ct, ATTR_SNAT_IPV4));
	assert_memory_equal(nfct_get_attr(ct, ATTR_SNAT_IPV4), f.reply.dst, 4);
	assert_int_equal(ntohs(nfct_get_attr_u16(ct, ATTR_SNAT_PORT)), 50123);
	/* DNAT: the reply comes from reply.src:reply.sport */
	assert_memory_equal(nfct_get_attr(ct, ATTR_DNAT_IPV4), f.reply.src, 4);
	assert_int_equal(ntohs(nfct_get_attr_u16(ct, ATTR_DNAT_PORT)), 8080);
	assert_false(nfct_attr_is_set(ct, ATTR_SNAT_IPV6));
	/* the reply sent is the plain inverse: the kernel applies the NAT */
	assert_memory_equal(nfct_get_attr(ct, ATTR_REPL_IPV4_SRC), f.orig.dst, 4);
	assert_memory_equal(nfct_get_attr(ct, ATTR_REPL_IPV4_DST), f.orig.src, 4);
	assert_int_equal(ntohs(nfct_get_attr_u16(ct, ATTR_REPL_PORT_SRC)), 80);
	assert_int_equal(ntohs(nfct_get_attr_u16(ct, ATTR_REPL_PORT_DST)), 40000);
	nfct_destroy(ct);

	/* only SNAT, port kept: no port attribute */
	ts_flow_plain(&f, &t);
	f.present |= HAFW_FA_STATUS;
	f.status = HAFW_IPS_SRC_NAT | HAFW_IPS_CONFIRMED;
	ts_addr(f.reply.dst, "203.0.113.1");
	ct = nfct_new();
	nfct_conv_flow_to(&f, ct);
	assert_int_equal(nfct_get_attr_u32(ct, ATTR_STATUS), HAFW_IPS_SRC_NAT);
	assert_true(nfct_attr_is_set(ct, ATTR_SNAT_IPV4));
	assert_false(nfct_attr_is_set(ct, ATTR_SNAT_PORT));
	assert_false(nfct_attr_is_set(ct, ATTR_DNAT_IPV4));
	assert_false(nfct_attr_is_set(ct, ATTR_DNAT_PORT));
	nfct_destroy(ct);

	/* IPv6 */
	ts_tuple(&t, IPPROTO_UDP, "2001:db8::1", "2001:db8::2", 1000, 53);
	ts_flow_full(&f, &t, true);
	ct = nfct_new();
	nfct_conv_flow_to(&f, ct);
	ts_addr(a, "2001:db8:ffff::1");
	assert_memory_equal(nfct_get_attr(ct, ATTR_SNAT_IPV6), a, 16);
	ts_addr(a, "fd00:10::10");
	assert_memory_equal(nfct_get_attr(ct, ATTR_DNAT_IPV6), a, 16);
	assert_false(nfct_attr_is_set(ct, ATTR_SNAT_IPV4));
	assert_false(nfct_attr_is_set(ct, ATTR_DNAT_IPV4));
	nfct_destroy(ct);

	/* ICMP: addresses only */
	ts_icmp(&t, "10.0.0.1", "198.51.100.7", 8, 0, 77);
	ts_flow_full(&f, &t, true);
	ct = nfct_new();
	nfct_conv_flow_to(&f, ct);
	assert_true(nfct_attr_is_set(ct, ATTR_SNAT_IPV4));
	assert_true(nfct_attr_is_set(ct, ATTR_DNAT_IPV4));
	assert_false(nfct_attr_is_set(ct, ATTR_SNAT_PORT));
	assert_false(nfct_attr_is_set(ct, ATTR_DNAT_PORT));
	nfct_destroy(ct);

	/* no NAT bits, or no status at all: no NAT attributes */
	ts_tuple(&t, IPPROTO_TCP, "10.0.0.1", "198.51.100.7", 40000, 80);
	ts_flow_full(&f, &t, true);
	f.status &= ~(HAFW_IPS_SRC_NAT | HAFW_IPS_DST_NAT);
	ct = nfct_new();
	nfct_conv_flow_to(&f, ct);
	assert_false(nfct_attr_is_set(ct, ATTR_SNAT_IPV4));
	assert_false(nfct_attr_is_set(ct, ATTR_DNAT_IPV4));
	nfct_destroy(ct);
	ts_flow_full(&f, &t, true);
	f.present &= ~HAFW_FA_STATUS;
	ct = nfct_new();
	nfct_conv_flow_to(&f, ct);
	assert_false(nfct_attr_is_set(ct, ATTR_STATUS));
	assert_false(nfct_attr_is_set(ct, ATTR_SNAT_IPV4));
	assert_false(nfct_attr_is_set(ct, ATTR_DNAT_IPV4));
	nfct_destroy(ct);
}

static void test_key_to(void **state)
{
	struct hafw_tuple t;
	struct hafw_flow f, g;
	struct nf_conntrack *ct;

	(void)state;
	ts_tuple(&t, IPPROTO_SCTP, "2001:db8::1", "2001:db8::2", 5, 6);
	ts_flow_full(&f, &t, true);
	ct = nfct_new();
	nfct_conv_flow_key_to(&f, ct);
	assert_int_equal(nfct_get_attr_u16(ct, ATTR_ZONE), 7);
	assert_false(nfct_attr_is_set(ct, ATTR_REPL_L3PROTO));
	assert_false(nfct_attr_is_set(ct, ATTR_STATUS));
	assert_false(nfct_attr_is_set(ct, ATTR_MARK));
	assert_false(nfct_attr_is_set(ct, ATTR_HELPER_NAME));
	assert_int_equal(nfct_conv_flow_from(ct, &g), 0);
	assert_true(hafw_tuple_equal(&g.orig, &t));
	assert_int_equal(g.present, HAFW_FA_ZONE);
	nfct_destroy(ct);
	f.zone = 0;
	ct = nfct_new();
	nfct_conv_flow_key_to(&f, ct);
	assert_false(nfct_attr_is_set(ct, ATTR_ZONE));
	nfct_destroy(ct);
}

static void test_from_unsupported(void **state)
{
	struct nf_conntrack *ct;
	struct hafw_flow f;
	uint32_t a = htonl(0x0a000001);

	(void)state;
	ct = nfct_new();
	nfct_set_attr_u8(ct, ATTR_ORIG_L3PROTO, AF_UNSPEC);
	assert_int_equal(nfct_conv_flow_from(ct, &f), -EAFNOSUPPORT);
	nfct_set_attr_u8(ct, ATTR_ORIG_L3PROTO, 7);
	assert_int_equal(nfct_conv_flow_from(ct, &f), -EAFNOSUPPORT);
	nfct_destroy(ct);
	/* a reply of an unknown family */
	ct = nfct_new();
	nfct_set_attr_u8(ct, ATTR_ORIG_L3PROTO, AF_INET);
	nfct_set_attr_u8(ct, ATTR_ORIG_L4PROTO, IPPROTO_UDP);
	nfct_set_attr_u32(ct, ATTR_ORIG_IPV4_SRC, a);
	nfct_set_attr_u32(ct, ATTR_ORIG_IPV4_DST, a);
	nfct_set_attr_u8(ct, ATTR_REPL_L3PROTO, 99);
	assert_int_equal(nfct_conv_flow_from(ct, &f), -EAFNOSUPPORT);
	nfct_destroy(ct);
}

/* protobuf -> nfct -> protobuf gives the same bytes. */
static void test_pb_nfct_pb(void **state)
{
	struct ts_variant v[32];
	size_t nv = ts_variants(v, 32);
	uint8_t b1[HAFW_FLOW_MAX_ENCODED], b2[HAFW_FLOW_MAX_ENCODED];

	(void)state;
	for (size_t i = 0; i < nv; i++) {
		for (int nat = 0; nat < 2; nat++) {
			struct hafw_flow f, w, d, g;
			int n1, n2;

			ts_flow_full(&f, &v[i].orig, nat);
			want_after_nfct(&f, &w);
			n1 = hafw_flow_encode(&w, b1, sizeof(b1));
			assert_true(n1 > 0);
			assert_int_equal(hafw_flow_decode(b1, (size_t)n1, &d), 0);
			obj_leg(&d, &g);
			n2 = hafw_flow_encode(&g, b2, sizeof(b2));
			assert_int_equal(n2, n1);
			assert_memory_equal(b1, b2, (size_t)n1);
		}
	}
}

static void test_netlink_leg(void **state)
{
	struct ts_variant v[32];
	size_t nv = ts_variants(v, 32);
	char what[64];

	(void)state;
	for (size_t i = 0; i < nv; i++) {
		for (int nat = 0; nat < 2; nat++) {
			struct hafw_flow f, w, g;

			ts_flow_full(&f, &v[i].orig, nat);
			if (nat) /* and every protocol's state: only its own is written */
				ts_flow_all_state(&f);
			want_after_nfct(&f, &w);
			assert_int_equal(netlink_leg(&f, &g, NULL), 0);
			snprintf(what, sizeof(what), "netlink %s%s", v[i].name, nat ? "+nat" : "");
			/* nfct_nlmsg_build() always sends CONFIRMED */
			w.status |= HAFW_IPS_CONFIRMED;
			if (f.orig.l4 == 99) {
				w.orig.sport = w.orig.dport = 0;
				w.reply.sport = w.reply.dport = 0;
			}
			check_same(&w, &g, what);
		}
	}
}

static void put_timestamp(struct nlmsghdr *nlh, const struct hafw_flow *f)
{
	struct nlattr *nest = mnl_attr_nest_start(nlh, CTA_TIMESTAMP);

	mnl_attr_put_u64(nlh, CTA_TIMESTAMP_START, htobe64(f->start_ns));
	mnl_attr_nest_end(nlh, nest);
}

/* The kernel sends the start timestamp; we read it. */
static void test_timestamp_from_kernel(void **state)
{
	struct hafw_tuple t;
	struct hafw_flow f, g;

	(void)state;
	ts_tuple(&t, IPPROTO_TCP, "10.0.0.1", "198.51.100.7", 40000, 80);
	ts_flow_full(&f, &t, false);
	assert_int_equal(netlink_leg(&f, &g, put_timestamp), 0);
	assert_true(g.present & HAFW_FA_START);
	assert_true(g.start_ns == f.start_ns);
}

/* An ICMP flow through a message: nfct_nlmsg_parse() stores the reply ICMP
 * fields without setting any ATTR_REPL_* bit, nfct_conv_flow_parse() takes
 * them from the message (with NAT they differ from the inverse of orig's:
 * test_icmp_nat_reply_id_read). */
static void test_icmp_reply_from_kernel(void **state)
{
	struct hafw_tuple t;
	struct hafw_flow f, g;

	(void)state;
	ts_icmp(&t, "10.0.0.1", "198.51.100.7", 13, 0, 0x4321); /* timestamp */
	ts_flow_plain(&f, &t);
	assert_int_equal(netlink_leg(&f, &g, NULL), 0);
	assert_int_equal(g.reply.icmp_type, 14);
	assert_int_equal(g.reply.sport, 0x4321);
	check_same(&f, &g, "icmp from kernel");
	ts_icmp(&t, "2001:db8::1", "2001:db8::2", 128, 0, 0xbeef);
	ts_flow_plain(&f, &t);
	assert_int_equal(netlink_leg(&f, &g, NULL), 0);
	assert_int_equal(g.reply.icmp_type, 129);
	check_same(&f, &g, "icmpv6 from kernel");
}

/* A tuple nest as the kernel writes it (ctnetlink_dump_tuples()): the
 * ICMP and ICMPv6 trackers put id, type and code, the others ports. */
static void put_kernel_tuple(struct nlmsghdr *nlh, int type, const struct hafw_tuple *t)
{
	struct nlattr *outer = mnl_attr_nest_start(nlh, type), *in;
	bool v6 = t->l3 == AF_INET6;

	in = mnl_attr_nest_start(nlh, CTA_TUPLE_IP);
	mnl_attr_put(nlh, v6 ? CTA_IP_V6_SRC : CTA_IP_V4_SRC, v6 ? 16 : 4, t->src);
	mnl_attr_put(nlh, v6 ? CTA_IP_V6_DST : CTA_IP_V4_DST, v6 ? 16 : 4, t->dst);
	mnl_attr_nest_end(nlh, in);
	in = mnl_attr_nest_start(nlh, CTA_TUPLE_PROTO);
	mnl_attr_put_u8(nlh, CTA_PROTO_NUM, t->l4);
	if (t->l4 == IPPROTO_ICMP) {
		mnl_attr_put_u16(nlh, CTA_PROTO_ICMP_ID, htons(t->sport));
		mnl_attr_put_u8(nlh, CTA_PROTO_ICMP_TYPE, t->icmp_type);
		mnl_attr_put_u8(nlh, CTA_PROTO_ICMP_CODE, t->icmp_code);
	} else if (t->l4 == IPPROTO_ICMPV6) {
		mnl_attr_put_u16(nlh, CTA_PROTO_ICMPV6_ID, htons(t->sport));
		mnl_attr_put_u8(nlh, CTA_PROTO_ICMPV6_TYPE, t->icmp_type);
		mnl_attr_put_u8(nlh, CTA_PROTO_ICMPV6_CODE, t->icmp_code);
	} else {
		mnl_attr_put_u16(nlh, CTA_PROTO_SRC_PORT, htons(t->sport));
		mnl_attr_put_u16(nlh, CTA_PROTO_DST_PORT, htons(t->dport));
	}
	mnl_attr_nest_end(nlh, in);
	mnl_attr_nest_end(nlh, outer);
}

/* A flow message as the kernel builds it (ctnetlink_conntrack_event(),
 * ctnetlink_fill_info()): tuples, id, status, timeout, then mark, labels
 * and helper when f has them. flags and pid as in the netlink header: an
 * event has NLM_F_CREATE|NLM_F_EXCL for NEW, 0 for UPDATE, and the port id
 * of the socket whose request caused it (0 for a packet). */
static struct nlmsghdr *put_kernel_flow(char *buf, const struct hafw_flow *f, uint16_t type,
                                        uint16_t flags, uint32_t pid)
{
	struct nlmsghdr *nlh = put_ct_msg(buf, f->orig.l3);
	struct nlattr *nest;

	nlh->nlmsg_type = (NFNL_SUBSYS_CTNETLINK << 8) | type;
	nlh->nlmsg_flags = flags;
	nlh->nlmsg_pid = pid;
	put_kernel_tuple(nlh, CTA_TUPLE_ORIG, &f->orig);
	put_kernel_tuple(nlh, CTA_TUPLE_REPLY, &f->reply);
	mnl_attr_put_u32(nlh, CTA_ID, htonl(0x12345678));
	mnl_attr_put_u32(nlh, CTA_STATUS, htonl(f->status));
	mnl_attr_put_u32(nlh, CTA_TIMEOUT, htonl(f->timeout));
	if (f->present & HAFW_FA_MARK)
		mnl_attr_put_u32(nlh, CTA_MARK, htonl(f->mark));
	if (f->present & HAFW_FA_LABELS)
		mnl_attr_put(nlh, CTA_LABELS, sizeof(f->labels), f->labels);
	if (f->present & HAFW_FA_HELPER) {
		nest = mnl_attr_nest_start(nlh, CTA_HELP);
		mnl_attr_put_strz(nlh, CTA_HELP_NAME, f->helper);
		mnl_attr_nest_end(nlh, nest);
	}
	return nlh;
}

/* Two clients behind a masquerading firewall ping the same server with
 * the same ICMP id: the second flow's reply gets another id (measured in a
 * network namespace: orig id 777, reply id 23273). */
static void icmp_nat_flow(struct hafw_flow *f, bool v6)
{
	struct hafw_tuple t;

	if (v6)
		ts_icmp(&t, "fd00:1::3", "2001:db8:3::2", 128, 0, 777);
	else
		ts_icmp(&t, "10.99.1.3", "10.99.3.2", 8, 0, 777);
	ts_flow_plain(f, &t);
	f->present |= HAFW_FA_STATUS | HAFW_FA_TIMEOUT;
	f->status = HAFW_IPS_SEEN_REPLY | HAFW_IPS_CONFIRMED | HAFW_IPS_SRC_NAT |
	            HAFW_IPS_SRC_NAT_DONE | HAFW_IPS_DST_NAT_DONE;
	f->timeout = 29;
	ts_addr(f->reply.dst, v6 ? "2001:db8:3::1" : "10.99.3.1");
	f->reply.sport = 23273;
}

/* Regression: the reply direction's ICMP id was taken from the original
 * direction, so an ICMP flow whose id NAT had changed was replicated with
 * the wrong reply tuple. It is read from the kernel's reply tuple. */
static void test_icmp_nat_reply_id_read(void **state)
{
	static char buf[4096];
	struct hafw_flow f, g;
	struct nlmsghdr *nlh;

	(void)state;
	for (int v6 = 0; v6 < 2; v6++) {
		icmp_nat_flow(&f, v6);
		nlh = put_kernel_flow(buf, &f, IPCTNL_MSG_CT_NEW, NLM_F_CREATE | NLM_F_EXCL, 0);
		memset(&g, 0x5a, sizeof(g));
		assert_int_equal(nfct_conv_flow_parse(nlh, NFCT_CONV_EVENT, &g), 0);
		assert_int_equal(g.reply.sport, 23273);
		assert_int_equal(g.reply.icmp_type, v6 ? 129 : 0);
		check_same(&f, &g, v6 ? "icmpv6 nat event" : "icmp nat event");
		nlh = put_kernel_flow(buf, &f, IPCTNL_MSG_CT_NEW, NLM_F_MULTI, 1);
		assert_int_equal(nfct_conv_flow_parse(nlh, NFCT_CONV_SNAPSHOT, &g), 0);
		check_same(&f, &g, v6 ? "icmpv6 nat dump" : "icmp nat dump");
	}
	/* a type and code of the kernel's reply are taken as they are */
	icmp_nat_flow(&f, false);
	f.reply.icmp_type = 3;
	f.reply.icmp_code = 1;
	nlh = put_kernel_flow(buf, &f, IPCTNL_MSG_CT_NEW, 0, 0);
	assert_int_equal(nfct_conv_flow_parse(nlh, NFCT_CONV_EVENT, &g), 0);
	check_same(&f, &g, "icmp reply type");
}

/* The other half: a commit sends the reply's own ICMP id. A NATed flow is
 * created with the plain inverse as its reply and the kernel redoes the
 * mapping from there; it keeps the id it is given when no other flow
 * uses it (get_unique_tuple()), so the id the primary's NAT chose
 * survives. With the original id instead, the second flow of the example
 * clashes with the first and the kernel picks a random one. */
static void test_icmp_nat_reply_id_write(void **state)
{
	struct hafw_flow f, g, w;
	struct nf_conntrack *ct;

	(void)state;
	for (int v6 = 0; v6 < 2; v6++) {
		icmp_nat_flow(&f, v6);
		ct = nfct_new();
		nfct_conv_flow_to(&f, ct);
		assert_int_equal(ntohs(nfct_get_attr_u16(ct, ATTR_REPL_PORT_SRC)), 23273);
		/* the addresses are still the inverse: SNAT rewrites them */
		assert_memory_equal(nfct_get_attr(ct, v6 ? ATTR_REPL_IPV6_DST : ATTR_REPL_IPV4_DST),
		                    f.orig.src, v6 ? 16 : 4);
		assert_int_equal(nfct_get_attr_u16(ct, ATTR_ICMP_ID), htons(777));
		nfct_destroy(ct);
		/* and through a message */
		want_after_nfct(&f, &w);
		w.status |= HAFW_IPS_CONFIRMED;
		assert_int_equal(netlink_leg(&f, &g, NULL), 0);
		assert_int_equal(g.reply.sport, 23273);
		check_same(&w, &g, v6 ? "icmpv6 nat commit" : "icmp nat commit");
		/* without NAT the reply is sent as it is */
		f.status &= ~(uint32_t)HAFW_IPS_SRC_NAT;
		ct = nfct_new();
		nfct_conv_flow_to(&f, ct);
		assert_int_equal(ntohs(nfct_get_attr_u16(ct, ATTR_REPL_PORT_SRC)), 23273);
		assert_memory_equal(nfct_get_attr(ct, v6 ? ATTR_REPL_IPV6_DST : ATTR_REPL_IPV4_DST),
		                    f.reply.dst, v6 ? 16 : 4);
		nfct_destroy(ct);
	}
}

/* read -> model -> protobuf -> model -> commit -> read: the reply id of an
 * ICMP flow whose id NAT changed comes back whole. */
static void test_icmp_nat_reply_id_roundtrip(void **state)
{
	static char buf[4096];
	uint8_t pb[HAFW_FLOW_MAX_ENCODED];
	struct hafw_flow f, g, d, h;
	int n;

	(void)state;
	icmp_nat_flow(&f, false);
	assert_int_equal(nfct_conv_flow_parse(put_kernel_flow(buf, &f, IPCTNL_MSG_CT_NEW, 0, 0),
	                                      NFCT_CONV_EVENT, &g),
	                 0);
	n = hafw_flow_encode(&g, pb, sizeof(pb));
	assert_true(n > 0);
	assert_int_equal(hafw_flow_decode(pb, (size_t)n, &d), 0);
	assert_int_equal(netlink_leg(&d, &h, NULL), 0);
	assert_int_equal(h.reply.sport, 23273);
	assert_int_equal(h.orig.sport, 777);
}

/* nfct_conv_flow_parse() reads the message itself too. (An attribute of
 * the wrong size cannot be tested: nfct_nlmsg_parse() sees it first and
 * exits the process, "ctnetlink kernel ABI is broken".) */
static void test_parse_malformed(void **state)
{
	static char buf[4096];
	struct hafw_flow f, g;
	struct nlmsghdr *nlh;
	struct nlattr *outer, *in;

	(void)state;
	icmp_nat_flow(&f, false);
	nlh = put_ct_msg(buf, AF_INET);
	nlh->nlmsg_len = sizeof(*nlh) + 2; /* shorter than the nfgenmsg */
	assert_int_equal(nfct_conv_flow_parse(nlh, NFCT_CONV_EVENT, &g), -EINVAL);
	/* a reply without ICMP fields: derived from orig */
	nlh = put_ct_msg(buf, AF_INET);
	put_kernel_tuple(nlh, CTA_TUPLE_ORIG, &f.orig);
	outer = mnl_attr_nest_start(nlh, CTA_TUPLE_REPLY);
	in = mnl_attr_nest_start(nlh, CTA_TUPLE_IP);
	mnl_attr_put(nlh, CTA_IP_V4_SRC, 4, f.reply.src);
	mnl_attr_put(nlh, CTA_IP_V4_DST, 4, f.reply.dst);
	mnl_attr_nest_end(nlh, in);
	in = mnl_attr_nest_start(nlh, CTA_TUPLE_PROTO);
	mnl_attr_put_u8(nlh, CTA_PROTO_NUM, IPPROTO_ICMP);
	mnl_attr_nest_end(nlh, in);
	mnl_attr_nest_end(nlh, outer);
	assert_int_equal(nfct_conv_flow_parse(nlh, NFCT_CONV_EVENT, &g), 0);
	assert_int_equal(g.reply.sport, 777);
	assert_int_equal(g.reply.icmp_type, 0);
}

/* A TCP flow with labels, as the firewall holds it. */
static void labeled_flow(struct hafw_flow *f)
{
	struct hafw_tuple t;

	ts_tuple(&t, IPPROTO_TCP, "10.7.0.1", "10.7.0.2", 1000, 80);
	ts_flow_plain(f, &t);
	f->present |= HAFW_FA_STATUS | HAFW_FA_TIMEOUT | HAFW_FA_MARK | HAFW_FA_LABELS;
	f->status = HAFW_IPS_SEEN_REPLY | HAFW_IPS_ASSURED | HAFW_IPS_CONFIRMED;
	f->timeout = 100;
	f->mark = 0;
	memset(f->labels, 0, sizeof(f->labels));
	f->labels[0] = 0x05;
}

static void parse_kernel(const struct hafw_flow *f, uint16_t type, uint16_t flags, uint32_t pid,
                         enum nfct_conv_origin origin, struct hafw_flow *out)
{
	static char buf[4096];

	memset(out, 0x5a, sizeof(*out));
	assert_int_equal(
	    nfct_conv_flow_parse(put_kernel_flow(buf, f, type, flags, pid), origin, out), 0);
}

/* Clearing the last label (conntrack -U --label-del, or any ctnetlink
 * update with zero labels): measured in a network namespace with an nft
 * rule using "ct label", the UPDATE event comes from the requester's port
 * id and has no CTA_LABELS (ctnetlink_dump_labels() writes nothing when
 * every bit is 0); a dump of the flow has none either. Every ctnetlink
 * update reports IPCT_LABEL (ctnetlink_new_conntrack()), so in an event
 * with a port id the absence means "no labels". The cached flow must end
 * with all-zero labels, which a commit then writes to the peers' kernels. */
static void test_labels_cleared(void **state)
{
	static const uint8_t zero[HAFW_LABELS_LEN];
	uint8_t pb[HAFW_FLOW_MAX_ENCODED];
	struct hafw_flow f, cached, upd, d;
	const struct nfct_bitmask *b;
	struct nf_conntrack *ct;
	int n;

	(void)state;
	labeled_flow(&f);
	parse_kernel(&f, IPCTNL_MSG_CT_NEW, NLM_F_CREATE | NLM_F_EXCL, 0, NFCT_CONV_EVENT, &cached);
	assert_true(cached.present & HAFW_FA_LABELS);
	assert_int_equal(cached.labels[0], 0x05);
	assert_int_equal(cached.gone & HAFW_FA_LABELS, 0);
	assert_int_equal(cached.unsure, 0);

	/* the clearing update, from conntrack(8)'s socket */
	f.present &= ~HAFW_FA_LABELS;
	parse_kernel(&f, IPCTNL_MSG_CT_NEW, 0, 2714310495u, NFCT_CONV_EVENT, &upd);
	assert_false(upd.present & HAFW_FA_LABELS);
	assert_true(upd.gone & HAFW_FA_LABELS);
	assert_false(upd.unsure & HAFW_FA_LABELS);
	assert_false(hafw_flow_needs_reread(&cached, &upd));
	hafw_flow_merge(&cached, &upd);
	assert_true(cached.present & HAFW_FA_LABELS);
	assert_memory_equal(cached.labels, zero, sizeof(zero));
	/* it travels to the peers as a value */
	n = hafw_flow_encode(&cached, pb, sizeof(pb));
	assert_true(n > 0);
	assert_int_equal(hafw_flow_decode(pb, (size_t)n, &d), 0);
	assert_true(d.present & HAFW_FA_LABELS);
	assert_memory_equal(d.labels, zero, sizeof(zero));
	/* and a commit clears them in a kernel that has them */
	ct = nfct_new();
	nfct_conv_flow_to(&d, ct);
	assert_true(nfct_attr_is_set(ct, ATTR_CONNLABELS));
	b = nfct_get_attr(ct, ATTR_CONNLABELS);
	for (unsigned i = 0; i < HAFW_LABELS_LEN * 8; i++)
		assert_false(nfct_bitmask_test_bit(b, i));
	nfct_destroy(ct);

	/* a dump or GET carries every label there is: none is none */
	labeled_flow(&f);
	parse_kernel(&f, IPCTNL_MSG_CT_NEW, 0, 0, NFCT_CONV_EVENT, &cached);
	f.present &= ~HAFW_FA_LABELS;
	parse_kernel(&f, IPCTNL_MSG_CT_NEW, NLM_F_MULTI, 77, NFCT_CONV_SNAPSHOT, &upd);
	assert_true(upd.gone & HAFW_FA_LABELS);
	hafw_flow_merge(&cached, &upd);
	assert_memory_equal(cached.labels, zero, sizeof(zero));
	parse_kernel(&f, IPCTNL_MSG_CT_NEW, 0, 0, NFCT_CONV_SNAPSHOT, &upd); /* a GET answer */
	assert_true(upd.gone & HAFW_FA_LABELS);

	/* a NEW event has the labels a rule set before it left: none is none */
	parse_kernel(&f, IPCTNL_MSG_CT_NEW, NLM_F_CREATE | NLM_F_EXCL, 0, NFCT_CONV_EVENT, &upd);
	assert_true(upd.gone & HAFW_FA_LABELS);
	assert_false(upd.unsure & HAFW_FA_LABELS);
}

/* An update a packet caused (port id 0) has labels only when they changed
 * (IPCT_LABEL) and are not all 0: measured, the SEEN_REPLY update of a flow
 * labeled by an nft rule has no CTA_LABELS. It cannot say "cleared" (and a
 * firewall's rules cannot clear labels: nft and xt_connlabel only set
 * bits), so the labels are kept and the reader says it is unsure: the core
 * re-reads the flow when it holds labels. */
static void test_labels_unsure(void **state)
{
	struct hafw_flow f, cached, upd;

	(void)state;
	labeled_flow(&f);
	parse_kernel(&f, IPCTNL_MSG_CT_NEW, NLM_F_CREATE | NLM_F_EXCL, 0, NFCT_CONV_EVENT, &cached);
	f.present &= ~HAFW_FA_LABELS;
	f.status |= HAFW_IPS_SEEN_REPLY;
	parse_kernel(&f, IPCTNL_MSG_CT_NEW, 0, 0, NFCT_CONV_EVENT, &upd);
	assert_false(upd.gone & HAFW_FA_LABELS);
	assert_true(upd.unsure & HAFW_FA_LABELS);
	assert_true(hafw_flow_needs_reread(&cached, &upd));
	hafw_flow_merge(&cached, &upd);
	assert_int_equal(cached.labels[0], 0x05);
	/* labels in the update: sure */
	labeled_flow(&f);
	f.labels[0] = 0x04;
	parse_kernel(&f, IPCTNL_MSG_CT_NEW, 0, 0, NFCT_CONV_EVENT, &upd);
	assert_int_equal(upd.unsure, 0);
	assert_int_equal(upd.gone & HAFW_FA_LABELS, 0);
	assert_false(hafw_flow_needs_reread(&cached, &upd));
	hafw_flow_merge(&cached, &upd);
	assert_int_equal(cached.labels[0], 0x04);
	/* a DESTROY says nothing about what it leaves out */
	f.present &= ~(HAFW_FA_LABELS | HAFW_FA_MARK);
	parse_kernel(&f, IPCTNL_MSG_CT_DELETE, 0, 0, NFCT_CONV_EVENT, &upd);
	assert_int_equal(upd.gone, 0);
	assert_int_equal(upd.unsure, 0);
}

/* Every event but DESTROY, and every dump entry, carries the helper while
 * the flow has one (ctnetlink_conntrack_event(): "events & IPCT_HELPER ||
 * nfct_help(ct)"). Measured: an update that set the mark of an ftp flow had
 * CTA_HELP; the update that removed the helper (empty name) had none. */
static void test_helper_removed(void **state)
{
	struct hafw_flow f, cached, upd;

	(void)state;
	labeled_flow(&f);
	f.orig.dport = 21;
	hafw_tuple_invert(&f.orig, &f.reply);
	f.present |= HAFW_FA_HELPER;
	strcpy(f.helper, "ftp");
	parse_kernel(&f, IPCTNL_MSG_CT_NEW, NLM_F_CREATE | NLM_F_EXCL, 0, NFCT_CONV_EVENT, &cached);
	assert_string_equal(cached.helper, "ftp");
	assert_int_equal(cached.gone & HAFW_FA_HELPER, 0);
	parse_kernel(&f, IPCTNL_MSG_CT_NEW, 0, 0, NFCT_CONV_EVENT, &upd);
	assert_int_equal(upd.gone & HAFW_FA_HELPER, 0);
	f.present &= ~HAFW_FA_HELPER;
	for (int snap = 0; snap < 2; snap++) {
		parse_kernel(&f, IPCTNL_MSG_CT_NEW, snap ? NLM_F_MULTI : 0, snap ? 1 : 0,
		             snap ? NFCT_CONV_SNAPSHOT : NFCT_CONV_EVENT, &upd);
		assert_true(upd.gone & HAFW_FA_HELPER);
		assert_int_equal(upd.unsure & HAFW_FA_HELPER, 0);
		upd.present &= ~(uint32_t)HAFW_FA_LABELS;
		upd.gone &= ~(uint32_t)HAFW_FA_LABELS;
		hafw_flow_merge(&cached, &upd);
		assert_false(cached.present & HAFW_FA_HELPER);
		assert_int_equal(cached.helper[0], 0);
		cached.present |= HAFW_FA_HELPER;
		strcpy(cached.helper, "ftp");
	}
}

/* The mark needs nothing of the kind: an event carries it when it is not 0
 * or changed (ctnetlink_dump_mark(), IPCT_MARK; measured: "conntrack -U -m
 * 0" gave CTA_MARK 0), a dump always. A mark set to 0 is a value. */
static void test_mark_zeroed(void **state)
{
	struct hafw_flow f, cached, upd;

	(void)state;
	labeled_flow(&f);
	f.mark = 5;
	parse_kernel(&f, IPCTNL_MSG_CT_NEW, 0, 0, NFCT_CONV_EVENT, &cached);
	assert_int_equal(cached.mark, 5);
	f.mark = 0;
	parse_kernel(&f, IPCTNL_MSG_CT_NEW, 0, 3147048553u, NFCT_CONV_EVENT, &upd);
	assert_true(upd.present & HAFW_FA_MARK);
	assert_int_equal(upd.gone & HAFW_FA_MARK, 0);
	hafw_flow_merge(&cached, &upd);
	assert_true(cached.present & HAFW_FA_MARK);
	assert_int_equal(cached.mark, 0);
}

/* A master tuple of another family than the flow's cannot be committed
 * (the kernel reads it with the message's family): refused, like a reply
 * of another family in the protobuf decoder. */
static void test_master_family(void **state)
{
	struct hafw_tuple t, m6;
	struct hafw_flow f, g;
	struct nf_conntrack *ct;

	(void)state;
	ts_tuple(&t, IPPROTO_TCP, "10.0.0.1", "198.51.100.7", 40000, 50000);
	ts_flow_plain(&f, &t);
	f.present |= HAFW_FA_MASTER;
	ts_tuple(&f.master, IPPROTO_TCP, "10.0.0.1", "198.51.100.7", 40001, 21);
	ct = nfct_new();
	nfct_conv_flow_to(&f, ct);
	assert_int_equal(nfct_conv_flow_from(ct, &g), 0);
	assert_true(g.present & HAFW_FA_MASTER);
	ts_tuple(&m6, IPPROTO_TCP, "2001:db8::1", "2001:db8::2", 40001, 21);
	nfct_set_attr_u8(ct, ATTR_MASTER_L3PROTO, AF_INET6);
	nfct_set_attr(ct, ATTR_MASTER_IPV6_SRC, m6.src);
	nfct_set_attr(ct, ATTR_MASTER_IPV6_DST, m6.dst);
	assert_int_equal(nfct_conv_flow_from(ct, &g), -EINVAL);
	/* a master without addresses (it was dropped silently) */
	nfct_attr_unset(ct, ATTR_MASTER_IPV6_SRC);
	nfct_set_attr_u8(ct, ATTR_MASTER_L3PROTO, AF_INET);
	nfct_attr_unset(ct, ATTR_MASTER_IPV4_SRC);
	assert_int_equal(nfct_conv_flow_from(ct, &g), -EINVAL);
	nfct_destroy(ct);
}

/* Regression (hardening): an object whose family is set but whose address
 * attributes are not made tuple_from() memcpy() from NULL. It returns
 * -EINVAL, as the header promises for objects the model cannot hold. */
static void test_from_without_addresses(void **state)
{
	struct nf_conntrack *ct;
	struct hafw_flow f;
	uint8_t a6[16];
	uint32_t a = htonl(0x0a000001);

	(void)state;
	ct = nfct_new();
	nfct_set_attr_u8(ct, ATTR_ORIG_L3PROTO, AF_INET);
	nfct_set_attr_u8(ct, ATTR_ORIG_L4PROTO, IPPROTO_TCP);
	assert_int_equal(nfct_conv_flow_from(ct, &f), -EINVAL);
	/* one address is not enough */
	nfct_set_attr_u32(ct, ATTR_ORIG_IPV4_SRC, a);
	assert_int_equal(nfct_conv_flow_from(ct, &f), -EINVAL);
	/* nor the other family's */
	ts_addr(a6, "2001:db8::1");
	nfct_set_attr_u8(ct, ATTR_ORIG_L3PROTO, AF_INET6);
	nfct_set_attr(ct, ATTR_ORIG_IPV6_SRC, a6);
	assert_int_equal(nfct_conv_flow_from(ct, &f), -EINVAL);
	nfct_set_attr(ct, ATTR_ORIG_IPV6_DST, a6);
	assert_int_equal(nfct_conv_flow_from(ct, &f), 0);
	assert_int_equal(f.orig.l3, AF_INET6);
	assert_memory_equal(f.orig.dst, a6, 16);
	/* a reply with a family and no addresses */
	nfct_set_attr_u8(ct, ATTR_REPL_L3PROTO, AF_INET6);
	nfct_set_attr_u8(ct, ATTR_REPL_L4PROTO, IPPROTO_TCP);
	assert_int_equal(nfct_conv_flow_from(ct, &f), -EINVAL);
	nfct_destroy(ct);
}

/* Regression (validation): TCP, SCTP and DCCP protocol info share one union
 * in libnetfilter_conntrack, and nfct_conv_flow_to() used to set whatever
 * was present: SCTP state on a TCP flow changed the TCP state that was
 * committed (ESTABLISHED became 7, TIME_WAIT). Only the state of orig.l4 is
 * written now (and the decoder refuses the rest: test_flow_pb). */
static void test_foreign_protoinfo(void **state)
{
	static const struct {
		uint8_t l4;
		int state_attr;
		uint8_t state;
	} protos[] = {
	    {IPPROTO_TCP, ATTR_TCP_STATE, 3},
	    {IPPROTO_SCTP, ATTR_SCTP_STATE, 3},
	    {IPPROTO_DCCP, ATTR_DCCP_STATE, 4},
	    {IPPROTO_UDP, -1, 0},
	    {IPPROTO_ICMP, -1, 0},
	};
	static const struct {
		int attr;
		uint8_t l4;
	} attrs[] = {
	    {ATTR_TCP_STATE, IPPROTO_TCP},       {ATTR_TCP_WSCALE_ORIG, IPPROTO_TCP},
	    {ATTR_TCP_WSCALE_REPL, IPPROTO_TCP}, {ATTR_TCP_FLAGS_ORIG, IPPROTO_TCP},
	    {ATTR_TCP_FLAGS_REPL, IPPROTO_TCP},  {ATTR_TCP_MASK_ORIG, IPPROTO_TCP},
	    {ATTR_SCTP_STATE, IPPROTO_SCTP},     {ATTR_SCTP_VTAG_ORIG, IPPROTO_SCTP},
	    {ATTR_SCTP_VTAG_REPL, IPPROTO_SCTP}, {ATTR_DCCP_STATE, IPPROTO_DCCP},
	    {ATTR_DCCP_ROLE, IPPROTO_DCCP},      {ATTR_DCCP_HANDSHAKE_SEQ, IPPROTO_DCCP},
	};
	struct hafw_tuple t;
	struct hafw_flow f, g;
	struct nf_conntrack *ct;

	(void)state;
	/* the case of the report */
	ts_tuple(&t, IPPROTO_TCP, "10.0.0.1", "10.0.0.2", 1, 2);
	ts_flow_plain(&f, &t);
	f.present |= HAFW_FA_TCP_STATE | HAFW_FA_SCTP;
	f.tcp_state = 3;
	f.sctp_state = 7;
	ct = nfct_new();
	nfct_conv_flow_to(&f, ct);
	assert_int_equal(nfct_get_attr_u8(ct, ATTR_TCP_STATE), 3);
	assert_false(nfct_attr_is_set(ct, ATTR_SCTP_STATE));
	nfct_destroy(ct);

	/* every protocol with every protocol's state: only its own is set */
	for (size_t p = 0; p < sizeof(protos) / sizeof(protos[0]); p++) {
		if (protos[p].l4 == IPPROTO_ICMP)
			ts_icmp(&t, "10.0.0.1", "10.0.0.2", 8, 0, 1);
		else
			ts_tuple(&t, protos[p].l4, "10.0.0.1", "10.0.0.2", 1, 2);
		ts_flow_plain(&f, &t);
		ts_flow_all_state(&f);
		ct = nfct_new();
		nfct_conv_flow_to(&f, ct);
		for (size_t a = 0; a < sizeof(attrs) / sizeof(attrs[0]); a++)
			if (nfct_attr_is_set(ct, attrs[a].attr) != (attrs[a].l4 == protos[p].l4))
				fail_msg("%s flow: attribute %d of %s is%s set",
				         hafw_l4_name(protos[p].l4), attrs[a].attr,
				         hafw_l4_name(attrs[a].l4),
				         nfct_attr_is_set(ct, attrs[a].attr) ? "" : " not");
		if (protos[p].state_attr >= 0)
			assert_int_equal(nfct_get_attr_u8(ct, protos[p].state_attr),
			                 protos[p].state);
		assert_int_equal(nfct_conv_flow_from(ct, &g), 0);
		assert_int_equal(g.present & TS_PROTO_STATE_BITS,
		                 ts_proto_state_bits(protos[p].l4));
		nfct_destroy(ct);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_object_leg_every_attribute),
	    cmocka_unit_test(test_object_leg_single_attributes),
	    cmocka_unit_test(test_status_and_nat),
	    cmocka_unit_test(test_key_to),
	    cmocka_unit_test(test_from_unsupported),
	    cmocka_unit_test(test_pb_nfct_pb),
	    cmocka_unit_test(test_netlink_leg),
	    cmocka_unit_test(test_timestamp_from_kernel),
	    cmocka_unit_test(test_icmp_reply_from_kernel),
	    cmocka_unit_test(test_from_without_addresses),
	    cmocka_unit_test(test_foreign_protoinfo),
	    cmocka_unit_test(test_icmp_nat_reply_id_read),
	    cmocka_unit_test(test_icmp_nat_reply_id_write),
	    cmocka_unit_test(test_icmp_nat_reply_id_roundtrip),
	    cmocka_unit_test(test_master_family),
	    cmocka_unit_test(test_parse_malformed),
	    cmocka_unit_test(test_labels_cleared),
	    cmocka_unit_test(test_labels_unsure),
	    cmocka_unit_test(test_helper_removed),
	    cmocka_unit_test(test_mark_zeroed),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
