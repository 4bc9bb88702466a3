/* Flow model <-> protobuf. The encoder fills stack-allocated protobuf-c
 * structs (no heap per flow); the decoder validates every field before it
 * reaches the model. */
#include "flow_pb.h"

#include <errno.h>
#include <netinet/in.h>
#include <string.h>
#include <sys/socket.h>

static void tuple_to_pb(const struct hafw_tuple *t, Hafw__Tuple *m)
{
	int alen = hafw_tuple_addr_len(t);

	hafw__tuple__init(m);
	m->has_src = m->has_dst = 1;
	m->src.data = (uint8_t *)t->src;
	m->src.len = alen;
	m->dst.data = (uint8_t *)t->dst;
	m->dst.len = alen;
	m->has_l4proto = 1;
	m->l4proto = t->l4;
	if (t->sport) {
		m->has_sport = 1;
		m->sport = t->sport;
	}
	/* ICMP has no destination port: keep the one canonical form */
	if (t->dport && !hafw_tuple_is_icmp(t)) {
		m->has_dport = 1;
		m->dport = t->dport;
	}
	if (hafw_tuple_is_icmp(t)) {
		m->has_icmp_type = m->has_icmp_code = 1;
		m->icmp_type = t->icmp_type;
		m->icmp_code = t->icmp_code;
	}
}

static int tuple_from_pb(const Hafw__Tuple *m, struct hafw_tuple *t)
{
	memset(t, 0, sizeof(*t));
	if (!m->has_src || !m->has_dst || m->src.len != m->dst.len)
		return -EINVAL;
	if (m->src.len == 4)
		t->l3 = AF_INET;
	else if (m->src.len == 16)
		t->l3 = AF_INET6;
	else
		return -EINVAL;
	memcpy(t->src, m->src.data, m->src.len);
	memcpy(t->dst, m->dst.data, m->dst.len);
	if (!m->has_l4proto || m->l4proto > 255 || m->sport > 65535 || m->dport > 65535 ||
	    m->icmp_type > 255 || m->icmp_code > 255)
		return -EINVAL;
	t->l4 = m->l4proto;
	/* one canonical form per tuple: it is a cache key, and a second
	 * spelling of the same flow would never be found by its destroy */
	if (hafw_tuple_is_icmp(t) ? m->has_dport : (m->has_icmp_type || m->has_icmp_code))
		return -EINVAL;
	t->sport = m->sport;
	t->dport = m->dport;
	t->icmp_type = m->icmp_type;
	t->icmp_code = m->icmp_code;
	return 0;
}

#define SET(field, val)                                                                            \
	do {                                                                                       \
		m.has_##field = 1;                                                                 \
		m.field = (val);                                                                   \
	} while (0)

int hafw_flow_encode(const struct hafw_flow *f, uint8_t *buf, size_t len)
{
	Hafw__Flow m;
	Hafw__Tuple orig, reply, master;
	Hafw__SeqAdj sa[2];
	size_t need;

	hafw__flow__init(&m);
	tuple_to_pb(&f->orig, &orig);
	m.orig = &orig;
	if (f->present & HAFW_FA_REPLY) {
		struct hafw_tuple inv;

		hafw_tuple_invert(&f->orig, &inv);
		if (!hafw_tuple_equal(&inv, &f->reply)) {
			tuple_to_pb(&f->reply, &reply);
			m.reply = &reply;
		}
	}
	if (f->zone)
		SET(zone, f->zone);
	if (f->present & HAFW_FA_ORIG_ZONE)
		SET(orig_zone, f->orig_zone);
	if (f->present & HAFW_FA_REPLY_ZONE)
		SET(reply_zone, f->reply_zone);
	if (f->present & HAFW_FA_STATUS)
		SET(status, f->status);
	if (f->present & HAFW_FA_TIMEOUT)
		SET(timeout, f->timeout);
	if (f->present & HAFW_FA_MARK)
		SET(mark, f->mark);
	if (f->present & HAFW_FA_SECMARK)
		SET(secmark, f->secmark);
	if (f->present & HAFW_FA_LABELS) {
		m.has_labels = 1;
		m.labels.data = (uint8_t *)f->labels;
		m.labels.len = HAFW_LABELS_LEN;
	}
	if (f->present & HAFW_FA_TCP_STATE)
		SET(tcp_state, f->tcp_state);
	if (f->present & HAFW_FA_TCP_WSCALE) {
		SET(tcp_wscale_orig, f->tcp_wscale[0]);
		SET(tcp_wscale_reply, f->tcp_wscale[1]);
	}
	if (f->present & HAFW_FA_TCP_FLAGS) {
		SET(tcp_flags_orig, f->tcp_flags[0]);
		SET(tcp_flags_reply, f->tcp_flags[1]);
	}
	if (f->present & HAFW_FA_SCTP)
		SET(sctp_state, f->sctp_state);
	if (f->present & HAFW_FA_SCTP_VTAG) {
		SET(sctp_vtag_orig, f->sctp_vtag[0]);
		SET(sctp_vtag_reply, f->sctp_vtag[1]);
	}
	if (f->present & HAFW_FA_DCCP) {
		SET(dccp_state, f->dccp_state);
		SET(dccp_role, f->dccp_role);
		SET(dccp_handshake_seq, f->dccp_handshake_seq);
	}
	if (f->present & HAFW_FA_HELPER)
		m.helper = (char *)f->helper;
	if (f->present & HAFW_FA_MASTER) {
		tuple_to_pb(&f->master, &master);
		m.master = &master;
	}
	for (int d = 0; d < 2; d++) {
		if (!(f->present & (d ? HAFW_FA_SEQADJ_REPLY : HAFW_FA_SEQADJ_ORIG)))
			continue;
		hafw__seq_adj__init(&sa[d]);
		sa[d].has_correction_pos = sa[d].has_offset_before = sa[d].has_offset_after = 1;
		sa[d].correction_pos = f->seqadj[d].correction_pos;
		sa[d].offset_before = f->seqadj[d].offset_before;
		sa[d].offset_after = f->seqadj[d].offset_after;
		if (d)
			m.seqadj_reply = &sa[d];
		else
			m.seqadj_orig = &sa[d];
	}
	if (f->present & HAFW_FA_SYNPROXY) {
		SET(synproxy_isn, f->synproxy_isn);
		SET(synproxy_its, f->synproxy_its);
		SET(synproxy_tsoff, f->synproxy_tsoff);
	}
	if (f->present & HAFW_FA_START)
		SET(start_ns, f->start_ns);

	need = hafw__flow__get_packed_size(&m);
	if (need > len)
		return -ENOSPC;
	return (int)hafw__flow__pack(&m, buf);
}

#undef SET

/* A helper name must be a printable C string that fits the kernel's field. */
static int copy_name(char *dst, size_t dlen, const char *src)
{
	size_t n = strnlen(src, dlen);

	if (n == 0 || n >= dlen)
		return -EINVAL;
	for (size_t i = 0; i < n; i++)
		if (src[i] < 0x21 || src[i] > 0x7e)
			return -EINVAL;
	memcpy(dst, src, n + 1);
	return 0;
}

#define GET(bit, field, max)                                                                       \
	do {                                                                                       \
		if (m->has_##field) {                                                              \
			if ((uint64_t)m->field > (max))                                            \
				return -EINVAL;                                                    \
			f->field = m->field;                                                       \
			f->present |= (bit);                                                       \
		}                                                                                  \
	} while (0)

int hafw_flow_from_pb(const Hafw__Flow *m, struct hafw_flow *f)
{
	memset(f, 0, sizeof(*f));
	if (!m->orig || tuple_from_pb(m->orig, &f->orig))
		return -EINVAL;
	if (m->reply) {
		if (tuple_from_pb(m->reply, &f->reply) || f->reply.l3 != f->orig.l3)
			return -EINVAL;
	} else {
		hafw_tuple_invert(&f->orig, &f->reply);
	}
	f->present |= HAFW_FA_REPLY;
	if (m->has_zone) {
		if (m->zone > 0xffff)
			return -EINVAL;
		f->zone = m->zone;
		f->present |= HAFW_FA_ZONE;
	}
	GET(HAFW_FA_ORIG_ZONE, orig_zone, 0xffff);
	GET(HAFW_FA_REPLY_ZONE, reply_zone, 0xffff);
	GET(HAFW_FA_STATUS, status, UINT32_MAX);
	GET(HAFW_FA_TIMEOUT, timeout, UINT32_MAX);
	GET(HAFW_FA_MARK, mark, UINT32_MAX);
	GET(HAFW_FA_SECMARK, secmark, UINT32_MAX);
	if (m->has_labels) {
		if (m->labels.len > HAFW_LABELS_LEN)
			return -EINVAL;
		/* protobuf-c hands out NULL for empty bytes */
		if (m->labels.len)
			memcpy(f->labels, m->labels.data, m->labels.len);
		f->present |= HAFW_FA_LABELS;
	}
	/* TCP, SCTP and DCCP state share one union in the kernel's and the
	 * library's objects: state of another protocol would be written over
	 * this flow's own */
	if ((m->has_tcp_state || m->has_tcp_wscale_orig || m->has_tcp_flags_orig) &&
	    f->orig.l4 != IPPROTO_TCP)
		return -EINVAL;
	if ((m->has_sctp_state || m->has_sctp_vtag_orig) && f->orig.l4 != IPPROTO_SCTP)
		return -EINVAL;
	if ((m->has_dccp_state || m->has_dccp_role || m->has_dccp_handshake_seq) &&
	    f->orig.l4 != IPPROTO_DCCP)
		return -EINVAL;
	GET(HAFW_FA_TCP_STATE, tcp_state, 255);
	if (m->has_tcp_wscale_orig != m->has_tcp_wscale_reply ||
	    m->has_tcp_flags_orig != m->has_tcp_flags_reply ||
	    m->has_sctp_vtag_orig != m->has_sctp_vtag_reply)
		return -EINVAL;
	if (m->has_tcp_wscale_orig) {
		if (m->tcp_wscale_orig > 255 || m->tcp_wscale_reply > 255)
			return -EINVAL;
		f->tcp_wscale[0] = m->tcp_wscale_orig;
		f->tcp_wscale[1] = m->tcp_wscale_reply;
		f->present |= HAFW_FA_TCP_WSCALE;
	}
	if (m->has_tcp_flags_orig) {
		if (m->tcp_flags_orig > 255 || m->tcp_flags_reply > 255)
			return -EINVAL;
		f->tcp_flags[0] = m->tcp_flags_orig;
		f->tcp_flags[1] = m->tcp_flags_reply;
		f->present |= HAFW_FA_TCP_FLAGS;
	}
	if (m->has_sctp_state) {
		if (m->sctp_state > 255)
			return -EINVAL;
		f->sctp_state = m->sctp_state;
		f->present |= HAFW_FA_SCTP;
	}
	if (m->has_sctp_vtag_orig) {
		f->sctp_vtag[0] = m->sctp_vtag_orig;
		f->sctp_vtag[1] = m->sctp_vtag_reply;
		f->present |= HAFW_FA_SCTP_VTAG;
	}
	if (m->has_dccp_state || m->has_dccp_role || m->has_dccp_handshake_seq) {
		if (m->dccp_state > 255 || m->dccp_role > 255)
			return -EINVAL;
		f->dccp_state = m->dccp_state;
		f->dccp_role = m->dccp_role;
		f->dccp_handshake_seq = m->dccp_handshake_seq;
		f->present |= HAFW_FA_DCCP;
	}
	if (m->helper) {
		if (copy_name(f->helper, sizeof(f->helper), m->helper))
			return -EINVAL;
		f->present |= HAFW_FA_HELPER;
	}
	if (m->master) {
		if (tuple_from_pb(m->master, &f->master) || f->master.l3 != f->orig.l3)
			return -EINVAL;
		f->present |= HAFW_FA_MASTER;
	}
	for (int d = 0; d < 2; d++) {
		const Hafw__SeqAdj *sa = d ? m->seqadj_reply : m->seqadj_orig;

		if (!sa)
			continue;
		f->seqadj[d].correction_pos = sa->correction_pos;
		f->seqadj[d].offset_before = sa->offset_before;
		f->seqadj[d].offset_after = sa->offset_after;
		f->present |= d ? HAFW_FA_SEQADJ_REPLY : HAFW_FA_SEQADJ_ORIG;
	}
	if (m->has_synproxy_isn || m->has_synproxy_its || m->has_synproxy_tsoff) {
		f->synproxy_isn = m->synproxy_isn;
		f->synproxy_its = m->synproxy_its;
		f->synproxy_tsoff = m->synproxy_tsoff;
		f->present |= HAFW_FA_SYNPROXY;
	}
	if (m->has_start_ns) {
		f->start_ns = m->start_ns;
		f->present |= HAFW_FA_START;
	}
	return 0;
}

#undef GET

int hafw_flow_decode(const uint8_t *buf, size_t len, struct hafw_flow *f)
{
	Hafw__Flow *m = hafw__flow__unpack(NULL, len, buf);
	int ret;

	if (!m)
		return -EINVAL;
	ret = hafw_flow_from_pb(m, f);
	hafw__flow__free_unpacked(m, NULL);
	return ret;
}

int hafw_exp_encode(const struct hafw_exp *e, uint8_t *buf, size_t len)
{
	Hafw__Expectation m;
	Hafw__Tuple master, tuple, mask, nat;
	size_t need;

	hafw__expectation__init(&m);
	tuple_to_pb(&e->master, &master);
	tuple_to_pb(&e->tuple, &tuple);
	tuple_to_pb(&e->mask, &mask);
	/* a mask may be all-zero in a field the tuple uses: keep it explicit */
	mask.has_sport = 1;
	mask.has_dport = !hafw_tuple_is_icmp(&e->mask);
	m.master = &master;
	m.tuple = &tuple;
	m.mask = &mask;
	if (e->present & HAFW_EA_TIMEOUT) {
		m.has_timeout = 1;
		m.timeout = e->timeout;
	}
	if (e->present & HAFW_EA_FLAGS) {
		m.has_flags = 1;
		m.flags = e->flags;
	}
	if (e->present & HAFW_EA_CLASS) {
		m.has_class_ = 1;
		m.class_ = e->class_;
	}
	if (e->present & HAFW_EA_HELPER)
		m.helper = (char *)e->helper;
	if (e->present & HAFW_EA_FN)
		m.fn = (char *)e->fn;
	if (e->present & HAFW_EA_NAT) {
		tuple_to_pb(&e->nat_tuple, &nat);
		m.nat_tuple = &nat;
		m.has_nat_dir = 1;
		m.nat_dir = e->nat_dir;
	}
	if (e->zone) {
		m.has_zone = 1;
		m.zone = e->zone;
	}
	need = hafw__expectation__get_packed_size(&m);
	if (need > len)
		return -ENOSPC;
	return (int)hafw__expectation__pack(&m, buf);
}

/* The kernel reads every tuple of an expectation with the message's one
 * family, as it reads a flow's reply and master: a mixed expectation cannot
 * be committed as it is, whatever was meant. The mask's family is its
 * address length. */
int hafw_exp_from_pb(const Hafw__Expectation *m, struct hafw_exp *e)
{
	memset(e, 0, sizeof(*e));
	if (!m->master || !m->tuple || !m->mask || tuple_from_pb(m->master, &e->master) ||
	    tuple_from_pb(m->tuple, &e->tuple) || tuple_from_pb(m->mask, &e->mask))
		return -EINVAL;
	if (e->tuple.l3 != e->master.l3 || e->mask.l3 != e->master.l3)
		return -EINVAL;
	if (m->has_timeout) {
		e->timeout = m->timeout;
		e->present |= HAFW_EA_TIMEOUT;
	}
	if (m->has_flags) {
		e->flags = m->flags;
		e->present |= HAFW_EA_FLAGS;
	}
	if (m->has_class_) {
		e->class_ = m->class_;
		e->present |= HAFW_EA_CLASS;
	}
	if (m->helper) {
		if (copy_name(e->helper, sizeof(e->helper), m->helper))
			return -EINVAL;
		e->present |= HAFW_EA_HELPER;
	}
	if (m->fn) {
		if (copy_name(e->fn, sizeof(e->fn), m->fn))
			return -EINVAL;
		e->present |= HAFW_EA_FN;
	}
	if (m->nat_tuple) {
		if (tuple_from_pb(m->nat_tuple, &e->nat_tuple) || m->nat_dir > 1 ||
		    e->nat_tuple.l3 != e->master.l3)
			return -EINVAL;
		e->nat_dir = m->nat_dir;
		e->present |= HAFW_EA_NAT;
	}
	if (m->has_zone) {
		if (m->zone > 0xffff)
			return -EINVAL;
		e->zone = m->zone;
		e->present |= HAFW_EA_ZONE;
	}
	return 0;
}

int hafw_exp_decode(const uint8_t *buf, size_t len, struct hafw_exp *e)
{
	Hafw__Expectation *m = hafw__expectation__unpack(NULL, len, buf);
	int ret;

	if (!m)
		return -EINVAL;
	ret = hafw_exp_from_pb(m, e);
	hafw__expectation__free_unpacked(m, NULL);
	return ret;
}
