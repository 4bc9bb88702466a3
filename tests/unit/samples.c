#include "samples.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

void ts_addr(uint8_t *dst, const char *text)
{
	memset(dst, 0, 16);
	if (inet_pton(strchr(text, ':') ? AF_INET6 : AF_INET, text, dst) != 1) {
		fprintf(stderr, "bad test address %s\n", text);
		abort();
	}
}

void ts_tuple(struct hafw_tuple *t, uint8_t l4, const char *src, const char *dst, uint16_t sport,
              uint16_t dport)
{
	memset(t, 0, sizeof(*t));
	t->l3 = strchr(src, ':') ? AF_INET6 : AF_INET;
	t->l4 = l4;
	ts_addr(t->src, src);
	ts_addr(t->dst, dst);
	t->sport = sport;
	t->dport = dport;
}

void ts_icmp(struct hafw_tuple *t, const char *src, const char *dst, uint8_t type, uint8_t code,
             uint16_t id)
{
	bool v6 = strchr(src, ':') != NULL;

	ts_tuple(t, v6 ? IPPROTO_ICMPV6 : IPPROTO_ICMP, src, dst, id, 0);
	t->icmp_type = type;
	t->icmp_code = code;
}

void ts_flow_plain(struct hafw_flow *f, const struct hafw_tuple *orig)
{
	memset(f, 0, sizeof(*f));
	f->orig = *orig;
	hafw_tuple_invert(orig, &f->reply);
	f->present = HAFW_FA_REPLY;
}

static bool has_ports(uint8_t l4)
{
	return l4 == IPPROTO_TCP || l4 == IPPROTO_UDP || l4 == IPPROTO_UDPLITE ||
	       l4 == IPPROTO_SCTP || l4 == IPPROTO_DCCP;
}

uint32_t ts_proto_state_bits(uint8_t l4)
{
	switch (l4) {
	case IPPROTO_TCP:
		return HAFW_FA_TCP_STATE | HAFW_FA_TCP_WSCALE | HAFW_FA_TCP_FLAGS;
	case IPPROTO_SCTP:
		return HAFW_FA_SCTP | HAFW_FA_SCTP_VTAG;
	case IPPROTO_DCCP:
		return HAFW_FA_DCCP;
	default:
		return 0;
	}
}

/* Distinctive protocol state values of one protocol (no presence bits). */
static void set_proto_state(struct hafw_flow *f, uint8_t l4)
{
	switch (l4) {
	case IPPROTO_TCP:
		f->tcp_state = 3; /* ESTABLISHED */
		f->tcp_wscale[0] = 7;
		f->tcp_wscale[1] = 14;
		f->tcp_flags[0] = 0x23;
		f->tcp_flags[1] = 0x32;
		break;
	case IPPROTO_SCTP:
		f->sctp_state = 3;
		f->sctp_vtag[0] = 0xa1b2c3d4;
		f->sctp_vtag[1] = 0x01020304;
		break;
	case IPPROTO_DCCP:
		f->dccp_state = 4;
		f->dccp_role = 1;
		f->dccp_handshake_seq = 0x0000123456789abcull;
		break;
	}
}

void ts_flow_full(struct hafw_flow *f, const struct hafw_tuple *orig, bool nat)
{
	bool v6 = orig->l3 == AF_INET6;

	ts_flow_plain(f, orig);
	f->present = TS_ALL_FLOW_BITS;
	f->status = HAFW_IPS_SEEN_REPLY | HAFW_IPS_ASSURED | HAFW_IPS_CONFIRMED |
	            HAFW_IPS_SEQ_ADJUST | HAFW_IPS_HELPER;
	if (nat) {
		/* DNAT to an inside server, SNAT to the firewall's address */
		ts_addr(f->reply.src, v6 ? "fd00:10::10" : "192.168.1.10");
		ts_addr(f->reply.dst, v6 ? "2001:db8:ffff::1" : "203.0.113.1");
		if (has_ports(orig->l4)) {
			f->reply.sport = 8080;
			f->reply.dport = 50123;
		} else if (hafw_tuple_is_icmp(orig)) {
			/* NAT gave the flow another ICMP id, as masquerading does
			 * when two clients ping with the same one */
			f->reply.sport = orig->sport ^ 0x5aa5;
		}
		f->status |= HAFW_IPS_SRC_NAT | HAFW_IPS_DST_NAT | HAFW_IPS_SRC_NAT_DONE |
		             HAFW_IPS_DST_NAT_DONE;
	}
	f->zone = 7;
	f->orig_zone = 8;
	f->reply_zone = 9;
	f->timeout = 431999;
	f->mark = 0xdeadbeef;
	f->secmark = 0x1234;
	for (int i = 0; i < HAFW_LABELS_LEN; i++)
		f->labels[i] = (uint8_t)(0x11 * i + 1);
	f->labels[HAFW_LABELS_LEN - 1] |= 0x80; /* label bit 127 */
	strcpy(f->helper, "ftp");
	ts_tuple(&f->master, IPPROTO_TCP, v6 ? "2001:db8::1" : "10.0.0.1",
	         v6 ? "2001:db8::2" : "198.51.100.7", 40001, 21);
	f->seqadj[0].correction_pos = 0x10203040;
	f->seqadj[0].offset_before = -12;
	f->seqadj[0].offset_after = 34;
	f->seqadj[1].correction_pos = 0x50607080;
	f->seqadj[1].offset_before = 56;
	f->seqadj[1].offset_after = -78;
	f->synproxy_isn = 0x11111111;
	f->synproxy_its = 0x22222222;
	f->synproxy_tsoff = 0x33333333;
	f->start_ns = 1700000000123456789ull;
	/* protocol state only for its own protocol, the others' values stay
	 * zero: the decoder refuses them (they share a union in the kernel's
	 * objects) */
	set_proto_state(f, orig->l4);
	f->present &= ~(TS_PROTO_STATE_BITS & ~ts_proto_state_bits(orig->l4));
}

void ts_flow_all_state(struct hafw_flow *f)
{
	set_proto_state(f, IPPROTO_TCP);
	set_proto_state(f, IPPROTO_SCTP);
	set_proto_state(f, IPPROTO_DCCP);
	f->present |= TS_PROTO_STATE_BITS;
}

void ts_exp_full(struct hafw_exp *e, bool v6)
{
	memset(e, 0, sizeof(*e));
	e->present = TS_ALL_EXP_BITS;
	ts_tuple(&e->master, IPPROTO_TCP, v6 ? "2001:db8::1" : "10.0.0.1",
	         v6 ? "2001:db8::2" : "198.51.100.7", 40001, 21);
	ts_tuple(&e->tuple, IPPROTO_TCP, v6 ? "2001:db8::2" : "198.51.100.7",
	         v6 ? "2001:db8::1" : "10.0.0.1", 0, 50000);
	ts_tuple(&e->mask, IPPROTO_TCP,
	         v6 ? "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff" : "255.255.255.255",
	         v6 ? "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff" : "255.255.255.255", 0, 0xffff);
	ts_tuple(&e->nat_tuple, IPPROTO_TCP, v6 ? "fd00:10::10" : "192.168.1.10",
	         v6 ? "::" : "0.0.0.0", 50000, 0);
	e->timeout = 300;
	e->flags = 0x5;
	e->class_ = 1;
	e->nat_dir = 1;
	e->zone = 7;
	strcpy(e->helper, "ftp");
	strcpy(e->fn, "nf_nat_follow_master");
}

size_t ts_variants(struct ts_variant *out, size_t max)
{
	static const char *const names[] = {
	    "tcp4",      "tcp6",    "udp4",         "udp6",       "udplite",
	    "icmp_echo", "icmp_ts", "icmp_unreach", "icmpv6",     "icmpv6_ni",
	    "sctp",      "gre",     "dccp",         "unknown_l4", "sctp6",
	};
	struct ts_variant v[sizeof(names) / sizeof(names[0])];
	size_t i = 0;

	ts_tuple(&v[i++].orig, IPPROTO_TCP, "10.0.0.1", "198.51.100.7", 40000, 80);
	ts_tuple(&v[i++].orig, IPPROTO_TCP, "2001:db8::1", "2001:db8::2", 40000, 443);
	ts_tuple(&v[i++].orig, IPPROTO_UDP, "10.0.0.1", "198.51.100.7", 5353, 53);
	ts_tuple(&v[i++].orig, IPPROTO_UDP, "2001:db8::1", "2001:db8::2", 5353, 53);
	ts_tuple(&v[i++].orig, IPPROTO_UDPLITE, "10.0.0.1", "198.51.100.7", 7000, 7001);
	ts_icmp(&v[i++].orig, "10.0.0.1", "198.51.100.7", 8, 0, 0x1234);
	ts_icmp(&v[i++].orig, "10.0.0.1", "198.51.100.7", 13, 0, 0x4321);
	ts_icmp(&v[i++].orig, "10.0.0.1", "198.51.100.7", 3, 1, 0); /* no inverse */
	ts_icmp(&v[i++].orig, "2001:db8::1", "2001:db8::2", 128, 0, 0xbeef);
	ts_icmp(&v[i++].orig, "2001:db8::1", "2001:db8::2", 139, 0, 0x0102);
	ts_tuple(&v[i++].orig, IPPROTO_SCTP, "10.0.0.1", "198.51.100.7", 2905, 2905);
	ts_tuple(&v[i++].orig, IPPROTO_GRE, "10.0.0.1", "198.51.100.7", 0x1111, 0x2222);
	ts_tuple(&v[i++].orig, IPPROTO_DCCP, "10.0.0.1", "198.51.100.7", 5004, 5005);
	ts_tuple(&v[i++].orig, 99, "10.0.0.1", "198.51.100.7", 0, 0);
	ts_tuple(&v[i++].orig, IPPROTO_SCTP, "2001:db8::1", "2001:db8::2", 36412, 36412);
	for (size_t k = 0; k < i; k++)
		v[k].name = names[k];
	if (i > max)
		i = max;
	memcpy(out, v, i * sizeof(v[0]));
	return i;
}

uint64_t ts_rand(uint64_t *state)
{
	uint64_t x = *state;

	x ^= x >> 12;
	x ^= x << 25;
	x ^= x >> 27;
	*state = x;
	return x * 0x2545f4914f6cdd1dull;
}
