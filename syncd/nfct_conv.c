/* Flow model <-> libnetfilter_conntrack.
 *
 * libnetfilter_conntrack has no reply-direction ICMP attributes, and the
 * reply's ICMP id is not always the original's: NAT changes it when two
 * clients behind one address use the same id. Writing, the library keeps
 * ICMP id and type,code in the same unions as the ports, so the REPL_PORT
 * setters carry them into the message. Reading an object, the REPL_PORT
 * getters give them back when they were set that way; nfct_nlmsg_parse()
 * stores the kernel's values without a bit that lets them be read, so
 * nfct_conv_flow_parse() takes them from the message itself. Only when
 * neither is there are they derived from the original direction, as the
 * kernel does without NAT (icmp_invert_tuple). */
#include "nfct_conv.h"

#include <arpa/inet.h>
#include <errno.h>
#include <libmnl/libmnl.h>
#include <linux/netfilter/nfnetlink.h>
#include <linux/netfilter/nfnetlink_conntrack.h>
#include <netinet/in.h>
#include <string.h>

struct dir_attrs {
	int l3, l4, v4src, v4dst, v6src, v6dst, psrc, pdst;
};

static const struct dir_attrs dirs[] = {
    {ATTR_ORIG_L3PROTO, ATTR_ORIG_L4PROTO, ATTR_ORIG_IPV4_SRC, ATTR_ORIG_IPV4_DST,
     ATTR_ORIG_IPV6_SRC, ATTR_ORIG_IPV6_DST, ATTR_ORIG_PORT_SRC, ATTR_ORIG_PORT_DST},
    {ATTR_REPL_L3PROTO, ATTR_REPL_L4PROTO, ATTR_REPL_IPV4_SRC, ATTR_REPL_IPV4_DST,
     ATTR_REPL_IPV6_SRC, ATTR_REPL_IPV6_DST, ATTR_REPL_PORT_SRC, ATTR_REPL_PORT_DST},
    {ATTR_MASTER_L3PROTO, ATTR_MASTER_L4PROTO, ATTR_MASTER_IPV4_SRC, ATTR_MASTER_IPV4_DST,
     ATTR_MASTER_IPV6_SRC, ATTR_MASTER_IPV6_DST, ATTR_MASTER_PORT_SRC, ATTR_MASTER_PORT_DST},
};

enum { D_ORIG, D_REPL, D_MASTER };

static int tuple_from(const struct nf_conntrack *ct, int d, struct hafw_tuple *t)
{
	const struct dir_attrs *a = &dirs[d];
	const void *src, *dst;

	memset(t, 0, sizeof(*t));
	t->l3 = nfct_get_attr_u8(ct, a->l3);
	t->l4 = nfct_get_attr_u8(ct, a->l4);
	if (t->l3 == AF_INET) {
		src = nfct_get_attr(ct, a->v4src);
		dst = nfct_get_attr(ct, a->v4dst);
	} else if (t->l3 == AF_INET6) {
		src = nfct_get_attr(ct, a->v6src);
		dst = nfct_get_attr(ct, a->v6dst);
	} else {
		return -EAFNOSUPPORT;
	}
	if (!src || !dst)
		return -EINVAL;
	memcpy(t->src, src, hafw_tuple_addr_len(t));
	memcpy(t->dst, dst, hafw_tuple_addr_len(t));
	if (hafw_tuple_is_icmp(t) && d == D_ORIG) {
		t->icmp_type = nfct_get_attr_u8(ct, ATTR_ICMP_TYPE);
		t->icmp_code = nfct_get_attr_u8(ct, ATTR_ICMP_CODE);
		t->sport = ntohs(nfct_get_attr_u16(ct, ATTR_ICMP_ID));
	} else if (hafw_tuple_is_icmp(t)) {
		/* filled in by the caller (reply_icmp_from) */
	} else {
		t->sport = ntohs(nfct_get_attr_u16(ct, a->psrc));
		t->dport = ntohs(nfct_get_attr_u16(ct, a->pdst));
	}
	return 0;
}

static void tuple_to(struct nf_conntrack *ct, int d, const struct hafw_tuple *t)
{
	const struct dir_attrs *a = &dirs[d];

	nfct_set_attr_u8(ct, a->l3, t->l3);
	nfct_set_attr_u8(ct, a->l4, t->l4);
	if (t->l3 == AF_INET) {
		nfct_set_attr_l(ct, a->v4src, t->src, 4);
		nfct_set_attr_l(ct, a->v4dst, t->dst, 4);
	} else {
		nfct_set_attr_l(ct, a->v6src, t->src, 16);
		nfct_set_attr_l(ct, a->v6dst, t->dst, 16);
	}
	if (hafw_tuple_is_icmp(t) && d == D_ORIG) {
		nfct_set_attr_u8(ct, ATTR_ICMP_TYPE, t->icmp_type);
		nfct_set_attr_u8(ct, ATTR_ICMP_CODE, t->icmp_code);
		nfct_set_attr_u16(ct, ATTR_ICMP_ID, htons(t->sport));
	} else if (hafw_tuple_is_icmp(t)) {
		uint16_t tc;

		((uint8_t *)&tc)[0] = t->icmp_type;
		((uint8_t *)&tc)[1] = t->icmp_code;
		nfct_set_attr_u16(ct, a->pdst, tc);
		nfct_set_attr_u16(ct, a->psrc, htons(t->sport));
	} else {
		nfct_set_attr_u16(ct, a->psrc, htons(t->sport));
		nfct_set_attr_u16(ct, a->pdst, htons(t->dport));
	}
}

static void reply_icmp_from(const struct nf_conntrack *ct, const struct hafw_tuple *orig,
                            struct hafw_tuple *r)
{
	struct hafw_tuple inv;

	hafw_tuple_invert(orig, &inv);
	r->sport = inv.sport;
	r->icmp_type = inv.icmp_type;
	r->icmp_code = inv.icmp_code;
	if (nfct_attr_is_set(ct, ATTR_REPL_PORT_SRC))
		r->sport = ntohs(nfct_get_attr_u16(ct, ATTR_REPL_PORT_SRC));
	if (nfct_attr_is_set(ct, ATTR_REPL_PORT_DST)) {
		const uint8_t *tc = nfct_get_attr(ct, ATTR_REPL_PORT_DST);

		r->icmp_type = tc[0];
		r->icmp_code = tc[1];
	}
}

#define GET_IF(attr, bit, field, getter)                                                           \
	do {                                                                                       \
		if (nfct_attr_is_set(ct, attr)) {                                                  \
			f->field = getter(ct, attr);                                               \
			f->present |= (bit);                                                       \
		}                                                                                  \
	} while (0)

int nfct_conv_flow_from(const struct nf_conntrack *ct, struct hafw_flow *f)
{
	int ret;

	memset(f, 0, sizeof(*f));
	ret = tuple_from(ct, D_ORIG, &f->orig);
	if (ret)
		return ret;
	if (nfct_attr_is_set(ct, ATTR_REPL_L3PROTO)) {
		ret = tuple_from(ct, D_REPL, &f->reply);
		if (ret)
			return ret;
		if (hafw_tuple_is_icmp(&f->reply))
			reply_icmp_from(ct, &f->orig, &f->reply);
		f->present |= HAFW_FA_REPLY;
	}
	GET_IF(ATTR_ZONE, HAFW_FA_ZONE, zone, nfct_get_attr_u16);
	GET_IF(ATTR_ORIG_ZONE, HAFW_FA_ORIG_ZONE, orig_zone, nfct_get_attr_u16);
	GET_IF(ATTR_REPL_ZONE, HAFW_FA_REPLY_ZONE, reply_zone, nfct_get_attr_u16);
	GET_IF(ATTR_STATUS, HAFW_FA_STATUS, status, nfct_get_attr_u32);
	GET_IF(ATTR_TIMEOUT, HAFW_FA_TIMEOUT, timeout, nfct_get_attr_u32);
	GET_IF(ATTR_MARK, HAFW_FA_MARK, mark, nfct_get_attr_u32);
	GET_IF(ATTR_SECMARK, HAFW_FA_SECMARK, secmark, nfct_get_attr_u32);
	if (nfct_attr_is_set(ct, ATTR_CONNLABELS)) {
		const struct nfct_bitmask *b = nfct_get_attr(ct, ATTR_CONNLABELS);
		unsigned int max = nfct_bitmask_maxbit(b);

		for (unsigned int i = 0; i <= max && i < HAFW_LABELS_LEN * 8; i++)
			if (nfct_bitmask_test_bit(b, i))
				f->labels[i / 8] |= 1u << (i % 8);
		f->present |= HAFW_FA_LABELS;
	}
	GET_IF(ATTR_TCP_STATE, HAFW_FA_TCP_STATE, tcp_state, nfct_get_attr_u8);
	if (nfct_attr_is_set(ct, ATTR_TCP_WSCALE_ORIG)) {
		f->tcp_wscale[0] = nfct_get_attr_u8(ct, ATTR_TCP_WSCALE_ORIG);
		f->tcp_wscale[1] = nfct_get_attr_u8(ct, ATTR_TCP_WSCALE_REPL);
		f->present |= HAFW_FA_TCP_WSCALE;
	}
	if (nfct_attr_is_set(ct, ATTR_TCP_FLAGS_ORIG)) {
		f->tcp_flags[0] = nfct_get_attr_u8(ct, ATTR_TCP_FLAGS_ORIG);
		f->tcp_flags[1] = nfct_get_attr_u8(ct, ATTR_TCP_FLAGS_REPL);
		f->present |= HAFW_FA_TCP_FLAGS;
	}
	GET_IF(ATTR_SCTP_STATE, HAFW_FA_SCTP, sctp_state, nfct_get_attr_u8);
	if (nfct_attr_is_set(ct, ATTR_SCTP_VTAG_ORIG)) {
		f->sctp_vtag[0] = nfct_get_attr_u32(ct, ATTR_SCTP_VTAG_ORIG);
		f->sctp_vtag[1] = nfct_get_attr_u32(ct, ATTR_SCTP_VTAG_REPL);
		f->present |= HAFW_FA_SCTP_VTAG;
	}
	if (nfct_attr_is_set(ct, ATTR_DCCP_STATE)) {
		f->dccp_state = nfct_get_attr_u8(ct, ATTR_DCCP_STATE);
		f->dccp_role = nfct_get_attr_u8(ct, ATTR_DCCP_ROLE);
		f->dccp_handshake_seq = nfct_get_attr_u64(ct, ATTR_DCCP_HANDSHAKE_SEQ);
		f->present |= HAFW_FA_DCCP;
	}
	if (nfct_attr_is_set(ct, ATTR_HELPER_NAME)) {
		const char *h = nfct_get_attr(ct, ATTR_HELPER_NAME);

		if (h && h[0]) {
			strncpy(f->helper, h, sizeof(f->helper) - 1);
			f->present |= HAFW_FA_HELPER;
		}
	}
	if (nfct_attr_is_set(ct, ATTR_MASTER_L3PROTO)) {
		/* the kernel reads a master with the flow's family */
		if (tuple_from(ct, D_MASTER, &f->master) || f->master.l3 != f->orig.l3)
			return -EINVAL;
		f->present |= HAFW_FA_MASTER;
	}
	if (nfct_attr_is_set(ct, ATTR_ORIG_NAT_SEQ_CORRECTION_POS)) {
		f->seqadj[0].correction_pos =
		    nfct_get_attr_u32(ct, ATTR_ORIG_NAT_SEQ_CORRECTION_POS);
		f->seqadj[0].offset_before = nfct_get_attr_u32(ct, ATTR_ORIG_NAT_SEQ_OFFSET_BEFORE);
		f->seqadj[0].offset_after = nfct_get_attr_u32(ct, ATTR_ORIG_NAT_SEQ_OFFSET_AFTER);
		f->present |= HAFW_FA_SEQADJ_ORIG;
	}
	if (nfct_attr_is_set(ct, ATTR_REPL_NAT_SEQ_CORRECTION_POS)) {
		f->seqadj[1].correction_pos =
		    nfct_get_attr_u32(ct, ATTR_REPL_NAT_SEQ_CORRECTION_POS);
		f->seqadj[1].offset_before = nfct_get_attr_u32(ct, ATTR_REPL_NAT_SEQ_OFFSET_BEFORE);
		f->seqadj[1].offset_after = nfct_get_attr_u32(ct, ATTR_REPL_NAT_SEQ_OFFSET_AFTER);
		f->present |= HAFW_FA_SEQADJ_REPLY;
	}
	if (nfct_attr_is_set(ct, ATTR_SYNPROXY_ISN)) {
		f->synproxy_isn = nfct_get_attr_u32(ct, ATTR_SYNPROXY_ISN);
		f->synproxy_its = nfct_get_attr_u32(ct, ATTR_SYNPROXY_ITS);
		f->synproxy_tsoff = nfct_get_attr_u32(ct, ATTR_SYNPROXY_TSOFF);
		f->present |= HAFW_FA_SYNPROXY;
	}
	GET_IF(ATTR_TIMESTAMP_START, HAFW_FA_START, start_ns, nfct_get_attr_u64);
	return 0;
}

#undef GET_IF

struct attr_find {
	int type;
	const struct nlattr *found;
};

static int attr_find_cb(const struct nlattr *a, void *data)
{
	struct attr_find *af = data;

	if (mnl_attr_get_type(a) == af->type)
		af->found = a;
	return MNL_CB_OK;
}

/* The last attribute of that type, as the kernel's nla_parse() takes it. */
static const struct nlattr *nested_find(const struct nlattr *nest, int type)
{
	struct attr_find af = {type, NULL};

	if (!nest || mnl_attr_parse_nested(nest, attr_find_cb, &af) < 0)
		return NULL;
	return af.found;
}

static const struct nlattr *msg_find(const struct nlmsghdr *nlh, int type)
{
	struct attr_find af = {type, NULL};

	if (mnl_attr_parse(nlh, sizeof(struct nfgenmsg), attr_find_cb, &af) < 0)
		return NULL;
	return af.found;
}

/* The kernel's reply tuple as it sent it (icmp_tuple_to_nlattr()). */
static int reply_icmp_from_msg(const struct nlmsghdr *nlh, struct hafw_tuple *r)
{
	bool v6 = r->l4 == IPPROTO_ICMPV6;
	const struct nlattr *proto = nested_find(msg_find(nlh, CTA_TUPLE_REPLY), CTA_TUPLE_PROTO);
	const struct nlattr *a;

	a = nested_find(proto, v6 ? CTA_PROTO_ICMPV6_ID : CTA_PROTO_ICMP_ID);
	if (a) {
		if (mnl_attr_validate(a, MNL_TYPE_U16) < 0)
			return -EINVAL;
		r->sport = ntohs(mnl_attr_get_u16(a));
	}
	a = nested_find(proto, v6 ? CTA_PROTO_ICMPV6_TYPE : CTA_PROTO_ICMP_TYPE);
	if (a) {
		if (mnl_attr_validate(a, MNL_TYPE_U8) < 0)
			return -EINVAL;
		r->icmp_type = mnl_attr_get_u8(a);
	}
	a = nested_find(proto, v6 ? CTA_PROTO_ICMPV6_CODE : CTA_PROTO_ICMP_CODE);
	if (a) {
		if (mnl_attr_validate(a, MNL_TYPE_U8) < 0)
			return -EINVAL;
		r->icmp_code = mnl_attr_get_u8(a);
	}
	return 0;
}

/* What the kernel means by leaving labels or the helper out of a message
 * (ctnetlink_fill_info(), ctnetlink_conntrack_event()):
 *  - a dump entry or GET answer has every label that is set and the helper
 *    if there is one: absent is gone;
 *  - an event other than DESTROY has the helper whenever the flow has one
 *    (nfct_help(ct) alone is enough): absent is gone;
 *  - labels are in an event only when IPCT_LABEL is in it and a bit is set.
 *    A NEW event has the labels set before it left, and every event caused
 *    by a ctnetlink request (a port id in the header: conntrack -U, our
 *    peers' tools) reports IPCT_LABEL; there absent is gone. Any other
 *    update (a packet's, port id 0) may have cleared them or not: unsure.
 *  - a DESTROY says nothing about what it leaves out.
 * The mark needs no such rule: an event has it when it changed or is not
 * 0, a dump always. Seqadj, synproxy and the master cannot be removed from
 * a flow, the secmark does not come from the kernel (CTA_SECCTX instead). */
static void absent_from_msg(const struct nlmsghdr *nlh, enum nfct_conv_origin origin,
                            struct hafw_flow *f)
{
	uint32_t absent = ~f->present & (HAFW_FA_LABELS | HAFW_FA_HELPER);

	if (origin == NFCT_CONV_SNAPSHOT) {
		f->gone = absent;
		return;
	}
	if (NFNL_MSG_TYPE(nlh->nlmsg_type) != IPCTNL_MSG_CT_NEW)
		return;
	f->gone = absent & HAFW_FA_HELPER;
	if (nlh->nlmsg_pid || (nlh->nlmsg_flags & NLM_F_CREATE))
		f->gone |= absent & HAFW_FA_LABELS;
	else
		f->unsure = absent & HAFW_FA_LABELS;
}

int nfct_conv_flow_parse(const struct nlmsghdr *nlh, enum nfct_conv_origin origin,
                         struct hafw_flow *f)
{
	struct nf_conntrack *ct;
	int ret;

	if (nlh->nlmsg_len < mnl_nlmsg_size(sizeof(struct nfgenmsg)))
		return -EINVAL;
	ct = nfct_new();
	if (!ct)
		return -ENOMEM;
	ret = nfct_nlmsg_parse(nlh, ct) < 0 ? -EINVAL : nfct_conv_flow_from(ct, f);
	nfct_destroy(ct);
	if (ret)
		return ret;
	if ((f->present & HAFW_FA_REPLY) && hafw_tuple_is_icmp(&f->reply))
		ret = reply_icmp_from_msg(nlh, &f->reply);
	if (ret == 0)
		absent_from_msg(nlh, origin, f);
	return ret;
}

void nfct_conv_flow_key_to(const struct hafw_flow *f, struct nf_conntrack *ct)
{
	tuple_to(ct, D_ORIG, &f->orig);
	if (f->zone)
		nfct_set_attr_u16(ct, ATTR_ZONE, f->zone);
}

static void nat_to(const struct hafw_flow *f, struct nf_conntrack *ct)
{
	bool v6 = f->orig.l3 == AF_INET6;

	/* SNAT rewrote the source: the reply goes back to reply.dst. DNAT
	 * rewrote the destination: the reply comes from reply.src. */
	if (f->status & HAFW_IPS_SRC_NAT) {
		if (v6)
			nfct_set_attr_l(ct, ATTR_SNAT_IPV6, f->reply.dst, 16);
		else
			nfct_set_attr_l(ct, ATTR_SNAT_IPV4, f->reply.dst, 4);
		if (!hafw_tuple_is_icmp(&f->orig) && f->reply.dport != f->orig.sport)
			nfct_set_attr_u16(ct, ATTR_SNAT_PORT, htons(f->reply.dport));
	}
	if (f->status & HAFW_IPS_DST_NAT) {
		if (v6)
			nfct_set_attr_l(ct, ATTR_DNAT_IPV6, f->reply.src, 16);
		else
			nfct_set_attr_l(ct, ATTR_DNAT_IPV4, f->reply.src, 4);
		if (!hafw_tuple_is_icmp(&f->orig) && f->reply.sport != f->orig.dport)
			nfct_set_attr_u16(ct, ATTR_DNAT_PORT, htons(f->reply.sport));
	}
}

static void tcp_to(const struct hafw_flow *f, struct nf_conntrack *ct)
{
	if (f->present & HAFW_FA_TCP_STATE)
		nfct_set_attr_u8(ct, ATTR_TCP_STATE, f->tcp_state);
	if (f->present & HAFW_FA_TCP_WSCALE) {
		nfct_set_attr_u8(ct, ATTR_TCP_WSCALE_ORIG, f->tcp_wscale[0]);
		nfct_set_attr_u8(ct, ATTR_TCP_WSCALE_REPL, f->tcp_wscale[1]);
	}
	if (f->present & HAFW_FA_TCP_FLAGS) {
		nfct_set_attr_u8(ct, ATTR_TCP_FLAGS_ORIG, f->tcp_flags[0]);
		nfct_set_attr_u8(ct, ATTR_TCP_MASK_ORIG, 0xff);
		nfct_set_attr_u8(ct, ATTR_TCP_FLAGS_REPL, f->tcp_flags[1]);
		nfct_set_attr_u8(ct, ATTR_TCP_MASK_REPL, 0xff);
	}
}

static void sctp_to(const struct hafw_flow *f, struct nf_conntrack *ct)
{
	if (f->present & HAFW_FA_SCTP)
		nfct_set_attr_u8(ct, ATTR_SCTP_STATE, f->sctp_state);
	if (f->present & HAFW_FA_SCTP_VTAG) {
		nfct_set_attr_u32(ct, ATTR_SCTP_VTAG_ORIG, f->sctp_vtag[0]);
		nfct_set_attr_u32(ct, ATTR_SCTP_VTAG_REPL, f->sctp_vtag[1]);
	}
}

static void dccp_to(const struct hafw_flow *f, struct nf_conntrack *ct)
{
	if (f->present & HAFW_FA_DCCP) {
		nfct_set_attr_u8(ct, ATTR_DCCP_STATE, f->dccp_state);
		nfct_set_attr_u8(ct, ATTR_DCCP_ROLE, f->dccp_role);
		nfct_set_attr_u64(ct, ATTR_DCCP_HANDSHAKE_SEQ, f->dccp_handshake_seq);
	}
}

void nfct_conv_flow_to(const struct hafw_flow *f, struct nf_conntrack *ct)
{
	bool nat =
	    (f->present & HAFW_FA_STATUS) && (f->status & (HAFW_IPS_SRC_NAT | HAFW_IPS_DST_NAT));

	tuple_to(ct, D_ORIG, &f->orig);
	/* A NATed flow is created with the plain inverse as its reply and the
	 * mapping as NAT attributes: the kernel then rewrites the reply tuple
	 * itself and sets SRC_NAT/DST_NAT, without which it would not mangle
	 * a single packet of the flow. */
	if ((f->present & HAFW_FA_REPLY) && !nat) {
		tuple_to(ct, D_REPL, &f->reply);
	} else {
		struct hafw_tuple inv;

		hafw_tuple_invert(&f->orig, &inv);
		/* NAT may have given an ICMP flow another id (the clients
		 * behind one address pinged with the same). libnetfilter_conntrack
		 * cannot ask for an id in the NAT attributes, but the kernel
		 * keeps the one of the reply it is given when no other flow uses
		 * it (get_unique_tuple()): without it, this flow would clash
		 * with the one that kept the id and get a random one. */
		if (nat && (f->present & HAFW_FA_REPLY) && hafw_tuple_is_icmp(&f->orig) &&
		    f->reply.l4 == f->orig.l4)
			inv.sport = f->reply.sport;
		tuple_to(ct, D_REPL, &inv);
	}
	if (f->zone)
		nfct_set_attr_u16(ct, ATTR_ZONE, f->zone);
	if (f->present & HAFW_FA_ORIG_ZONE)
		nfct_set_attr_u16(ct, ATTR_ORIG_ZONE, f->orig_zone);
	if (f->present & HAFW_FA_REPLY_ZONE)
		nfct_set_attr_u16(ct, ATTR_REPL_ZONE, f->reply_zone);
	if (f->present & HAFW_FA_STATUS) {
		/* the kernel owns these: they are refused or meaningless on create
		 * (EXPECTED follows from the master tuple) */
		uint32_t keep =
		    f->status & ~(HAFW_IPS_EXPECTED | HAFW_IPS_CONFIRMED | HAFW_IPS_DYING |
		                  HAFW_IPS_SRC_NAT_DONE | HAFW_IPS_DST_NAT_DONE |
		                  HAFW_IPS_TEMPLATE | HAFW_IPS_UNTRACKED | HAFW_IPS_OFFLOAD |
		                  HAFW_IPS_HW_OFFLOAD | HAFW_IPS_HELPER);
		nfct_set_attr_u32(ct, ATTR_STATUS, keep);
		nat_to(f, ct);
	}
	if (f->present & HAFW_FA_TIMEOUT)
		nfct_set_attr_u32(ct, ATTR_TIMEOUT, f->timeout);
	if (f->present & HAFW_FA_MARK)
		nfct_set_attr_u32(ct, ATTR_MARK, f->mark);
	if (f->present & HAFW_FA_LABELS) {
		struct nfct_bitmask *b = nfct_bitmask_new(HAFW_LABELS_LEN * 8 - 1);

		if (b) {
			for (unsigned int i = 0; i < HAFW_LABELS_LEN * 8; i++)
				if (f->labels[i / 8] & (1u << (i % 8)))
					nfct_bitmask_set_bit(b, i);
			nfct_set_attr(ct, ATTR_CONNLABELS, b);
		}
	}
	/* TCP, SCTP and DCCP state share a union in the object: write only the
	 * flow's own protocol's */
	if (f->orig.l4 == IPPROTO_TCP)
		tcp_to(f, ct);
	else if (f->orig.l4 == IPPROTO_SCTP)
		sctp_to(f, ct);
	else if (f->orig.l4 == IPPROTO_DCCP)
		dccp_to(f, ct);
	if (f->present & HAFW_FA_HELPER)
		nfct_set_attr(ct, ATTR_HELPER_NAME, f->helper);
	if (f->present & HAFW_FA_MASTER)
		tuple_to(ct, D_MASTER, &f->master);
	if (f->present & HAFW_FA_SEQADJ_ORIG) {
		nfct_set_attr_u32(ct, ATTR_ORIG_NAT_SEQ_CORRECTION_POS,
		                  f->seqadj[0].correction_pos);
		nfct_set_attr_u32(ct, ATTR_ORIG_NAT_SEQ_OFFSET_BEFORE, f->seqadj[0].offset_before);
		nfct_set_attr_u32(ct, ATTR_ORIG_NAT_SEQ_OFFSET_AFTER, f->seqadj[0].offset_after);
	}
	if (f->present & HAFW_FA_SEQADJ_REPLY) {
		nfct_set_attr_u32(ct, ATTR_REPL_NAT_SEQ_CORRECTION_POS,
		                  f->seqadj[1].correction_pos);
		nfct_set_attr_u32(ct, ATTR_REPL_NAT_SEQ_OFFSET_BEFORE, f->seqadj[1].offset_before);
		nfct_set_attr_u32(ct, ATTR_REPL_NAT_SEQ_OFFSET_AFTER, f->seqadj[1].offset_after);
	}
	if (f->present & HAFW_FA_SYNPROXY) {
		nfct_set_attr_u32(ct, ATTR_SYNPROXY_ISN, f->synproxy_isn);
		nfct_set_attr_u32(ct, ATTR_SYNPROXY_ITS, f->synproxy_its);
		nfct_set_attr_u32(ct, ATTR_SYNPROXY_TSOFF, f->synproxy_tsoff);
	}
	if (f->present & HAFW_FA_SECMARK)
		nfct_set_attr_u32(ct, ATTR_SECMARK, f->secmark);
}

/* Expectation tuples are whole nf_conntrack objects of which only the
 * original direction is used. */
static int exp_tuple_from(const struct nf_expect *exp, int attr, struct hafw_tuple *t)
{
	const struct nf_conntrack *ct = nfexp_get_attr(exp, attr);

	if (!ct)
		return -EINVAL;
	return tuple_from(ct, D_ORIG, t);
}

/* One family for every tuple, as in hafw_exp_from_pb(): the kernel reads
 * them all with the message's. libnetfilter_conntrack gives each parsed
 * tuple the message's family, so from the kernel a tuple of another one
 * is one without addresses; an object may be built any way. */
int nfct_conv_exp_from(const struct nf_expect *exp, struct hafw_exp *e)
{
	memset(e, 0, sizeof(*e));
	if (exp_tuple_from(exp, ATTR_EXP_MASTER, &e->master) ||
	    exp_tuple_from(exp, ATTR_EXP_EXPECTED, &e->tuple) ||
	    exp_tuple_from(exp, ATTR_EXP_MASK, &e->mask))
		return -EINVAL;
	if (e->tuple.l3 != e->master.l3 || e->mask.l3 != e->master.l3)
		return -EINVAL;
	if (nfexp_attr_is_set(exp, ATTR_EXP_TIMEOUT)) {
		e->timeout = nfexp_get_attr_u32(exp, ATTR_EXP_TIMEOUT);
		e->present |= HAFW_EA_TIMEOUT;
	}
	if (nfexp_attr_is_set(exp, ATTR_EXP_FLAGS)) {
		e->flags = nfexp_get_attr_u32(exp, ATTR_EXP_FLAGS);
		e->present |= HAFW_EA_FLAGS;
	}
	if (nfexp_attr_is_set(exp, ATTR_EXP_CLASS)) {
		e->class_ = nfexp_get_attr_u32(exp, ATTR_EXP_CLASS);
		e->present |= HAFW_EA_CLASS;
	}
	if (nfexp_attr_is_set(exp, ATTR_EXP_HELPER_NAME)) {
		const char *h = nfexp_get_attr(exp, ATTR_EXP_HELPER_NAME);

		if (h && h[0]) {
			strncpy(e->helper, h, sizeof(e->helper) - 1);
			e->present |= HAFW_EA_HELPER;
		}
	}
	if (nfexp_attr_is_set(exp, ATTR_EXP_FN)) {
		const char *fn = nfexp_get_attr(exp, ATTR_EXP_FN);

		if (fn && fn[0]) {
			strncpy(e->fn, fn, sizeof(e->fn) - 1);
			e->present |= HAFW_EA_FN;
		}
	}
	if (nfexp_attr_is_set(exp, ATTR_EXP_NAT_TUPLE)) {
		if (exp_tuple_from(exp, ATTR_EXP_NAT_TUPLE, &e->nat_tuple) ||
		    e->nat_tuple.l3 != e->master.l3)
			return -EINVAL;
		e->nat_dir = nfexp_get_attr_u32(exp, ATTR_EXP_NAT_DIR);
		e->present |= HAFW_EA_NAT;
	}
	if (nfexp_attr_is_set(exp, ATTR_EXP_ZONE)) {
		e->zone = nfexp_get_attr_u16(exp, ATTR_EXP_ZONE);
		e->present |= HAFW_EA_ZONE;
	}
	return 0;
}

static int exp_tuple_to(struct nf_expect *exp, int attr, const struct hafw_tuple *t)
{
	struct nf_conntrack *ct = nfct_new();

	if (!ct)
		return -ENOMEM;
	tuple_to(ct, D_ORIG, t);
	nfexp_set_attr(exp, attr, ct); /* copies the object */
	nfct_destroy(ct);
	return 0;
}

int nfct_conv_exp_to(const struct hafw_exp *e, struct nf_expect *exp)
{
	if (exp_tuple_to(exp, ATTR_EXP_MASTER, &e->master) ||
	    exp_tuple_to(exp, ATTR_EXP_EXPECTED, &e->tuple) ||
	    exp_tuple_to(exp, ATTR_EXP_MASK, &e->mask))
		return -ENOMEM;
	if (e->present & HAFW_EA_TIMEOUT)
		nfexp_set_attr_u32(exp, ATTR_EXP_TIMEOUT, e->timeout);
	if (e->present & HAFW_EA_FLAGS)
		nfexp_set_attr_u32(exp, ATTR_EXP_FLAGS, e->flags);
	if (e->present & HAFW_EA_HELPER)
		nfexp_set_attr(exp, ATTR_EXP_HELPER_NAME, e->helper);
	/* class, fn and NAT are not built by libnetfilter_conntrack 1.0.9: the
	 * kernel tracker adds them as raw attributes */
	if (e->zone)
		nfexp_set_attr_u16(exp, ATTR_EXP_ZONE, e->zone);
	return 0;
}
