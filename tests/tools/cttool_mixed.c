/*
 * hafw-cttool mixed: flows of every kind plus FTP expectations.
 */
#include <errno.h>
#include <getopt.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>
#include <linux/netlink.h>

#include <libnetfilter_conntrack/libnetfilter_conntrack_tcp.h>
#include <libnetfilter_conntrack/libnetfilter_conntrack_sctp.h>
#include <libnetfilter_conntrack/libnetfilter_conntrack_dccp.h>

#include "cttool.h"

#define NF_CT_EXPECT_PERMANENT_ 0x1
#define NF_CT_EXPECT_INACTIVE_  0x2

#define FLAGS_CREATE (NLM_F_REQUEST | NLM_F_CREATE | NLM_F_EXCL)

#include "cttool_reqlog.h"

/* ---- mixed ---- */

union addr {
	uint32_t v4;
	struct in6_addr v6;
};

static uint64_t rnd(uint64_t *st)
{
	/* xorshift64* */
	uint64_t x = *st;

	x ^= x >> 12;
	x ^= x << 25;
	x ^= x >> 27;
	*st = x;
	return x * 0x2545F4914F6CDD1DULL;
}

/* v4: PREFIX.0.0.0/8-ish + n; v6: 2001:db8:NET::n */
static void mkaddr(int fam, uint32_t v4base, uint16_t v6net, uint32_t n, union addr *a)
{
	memset(a, 0, sizeof(*a));
	if (fam == AF_INET) {
		a->v4 = htonl(v4base + n);
		return;
	}
	a->v6.s6_addr[0] = 0x20;
	a->v6.s6_addr[1] = 0x01;
	a->v6.s6_addr[2] = 0x0d;
	a->v6.s6_addr[3] = 0xb8;
	a->v6.s6_addr[4] = (uint8_t)(v6net >> 8);
	a->v6.s6_addr[5] = (uint8_t)v6net;
	n = htonl(n);
	memcpy(&a->v6.s6_addr[12], &n, 4);
}

static void set_tuple(struct nf_conntrack *ct, bool reply, int fam, const union addr *s,
                      const union addr *d)
{
	if (fam == AF_INET) {
		nfct_set_attr_u32(ct, reply ? ATTR_REPL_IPV4_SRC : ATTR_ORIG_IPV4_SRC, s->v4);
		nfct_set_attr_u32(ct, reply ? ATTR_REPL_IPV4_DST : ATTR_ORIG_IPV4_DST, d->v4);
	} else {
		nfct_set_attr(ct, reply ? ATTR_REPL_IPV6_SRC : ATTR_ORIG_IPV6_SRC, &s->v6);
		nfct_set_attr(ct, reply ? ATTR_REPL_IPV6_DST : ATTR_ORIG_IPV6_DST, &d->v6);
	}
}

static void set_ports(struct nf_conntrack *ct, bool reply, uint16_t sp, uint16_t dp)
{
	nfct_set_attr_u16(ct, reply ? ATTR_REPL_PORT_SRC : ATTR_ORIG_PORT_SRC, htons(sp));
	nfct_set_attr_u16(ct, reply ? ATTR_REPL_PORT_DST : ATTR_ORIG_PORT_DST, htons(dp));
}

static void set_tcp(struct nf_conntrack *ct, uint8_t state, uint64_t r)
{
	static const uint8_t fl[] = {0x03, 0x0b, 0x01, 0x03};
	bool replied = state != TCP_CONNTRACK_SYN_SENT;
	uint8_t fo = fl[r % 4], fr = replied ? fl[(r >> 2) % 4] : 0;

	if (state == TCP_CONNTRACK_FIN_WAIT || state == TCP_CONNTRACK_TIME_WAIT)
		fo |= 0x04; /* IP_CT_TCP_FLAG_CLOSE_INIT */
	nfct_set_attr_u8(ct, ATTR_TCP_STATE, state);
	nfct_set_attr_u8(ct, ATTR_TCP_WSCALE_ORIG, (uint8_t)((r >> 8) % 15));
	nfct_set_attr_u8(ct, ATTR_TCP_WSCALE_REPL, replied ? (uint8_t)((r >> 12) % 15) : 0);
	nfct_set_attr_u8(ct, ATTR_TCP_FLAGS_ORIG, fo);
	nfct_set_attr_u8(ct, ATTR_TCP_MASK_ORIG, 0xff);
	nfct_set_attr_u8(ct, ATTR_TCP_FLAGS_REPL, fr);
	nfct_set_attr_u8(ct, ATTR_TCP_MASK_REPL, 0xff);
}

struct mixed_opts {
	uint64_t seed;
	bool labels;
};

static struct nf_conntrack *mixed_flow(uint32_t i, enum kind k, uint64_t *rng,
                                       const struct mixed_opts *mo, bool *labeled)
{
	static const uint16_t dports[] = {80, 443, 22, 53, 5060, 8080};
	static const uint16_t zones[] = {0, 1, 7};
	static const uint8_t sctp_st[] = {SCTP_CONNTRACK_ESTABLISHED, SCTP_CONNTRACK_COOKIE_WAIT,
	                                  SCTP_CONNTRACK_SHUTDOWN_SENT, SCTP_CONNTRACK_CLOSED};
	static const uint8_t dccp_st[] = {DCCP_CONNTRACK_OPEN, DCCP_CONNTRACK_REQUEST,
	                                  DCCP_CONNTRACK_PARTOPEN, DCCP_CONNTRACK_CLOSING};
	struct nf_conntrack *ct = nfct_new();
	uint64_t r1 = rnd(rng), r2 = rnd(rng), r3 = rnd(rng);
	bool v6 = k == K_TCP6_EST || k == K_TCP6_SYN || k == K_UDP6 || k == K_UDPLITE6 ||
	          k == K_ICMP6 || k == K_SCTP6 || k == K_UNK6;
	int fam = v6 ? AF_INET6 : AF_INET;
	uint32_t cycle = i / K_NFLOWKINDS;
	uint16_t sp = (uint16_t)(1024 + r1 % 60000), dp = dports[(r1 >> 20) % 6];
	uint16_t zone = zones[cycle % 3];
	uint32_t status = IPS_SEEN_REPLY | IPS_ASSURED;
	union addr os, od, nat;
	bool ports = true, nat_ok = false;
	uint8_t l4;

	if (!ct)
		return NULL;
	switch (k) {
	case K_TCP4_EST:
	case K_TCP4_SYN:
	case K_TCP4_FIN:
	case K_TCP4_TW:
	case K_TCP4_CW:
	case K_TCP6_EST:
	case K_TCP6_SYN:
		l4 = IPPROTO_TCP;
		nat_ok = k == K_TCP4_EST || k == K_TCP6_EST;
		break;
	case K_UDP4:
	case K_UDP6:
		l4 = IPPROTO_UDP;
		nat_ok = true;
		if (cycle % 3 == 0)
			status = IPS_SEEN_REPLY;
		break;
	case K_UDPLITE4:
	case K_UDPLITE6:
		l4 = IPPROTO_UDPLITE;
		break;
	case K_ICMP4:
		l4 = IPPROTO_ICMP;
		ports = false;
		status = IPS_SEEN_REPLY;
		break;
	case K_ICMP6:
		l4 = IPPROTO_ICMPV6;
		ports = false;
		status = IPS_SEEN_REPLY;
		break;
	case K_SCTP4:
	case K_SCTP6:
		l4 = IPPROTO_SCTP;
		break;
	case K_GRE4:
		l4 = IPPROTO_GRE;
		break;
	case K_DCCP4:
		l4 = IPPROTO_DCCP;
		break;
	default:
		l4 = 253; /* RFC 3692 experimental: handled by the generic tracker */
		ports = false;
		break;
	}
	mkaddr(fam, 0x0a400000, 0x64, i, &os);            /* 10.64.0.0 + i */
	mkaddr(fam, 0x0a800000, 0x128, i % 200 + 1, &od); /* 10.128.0.1 + n */

	nfct_set_attr_u8(ct, ATTR_ORIG_L3PROTO, (uint8_t)fam);
	nfct_set_attr_u8(ct, ATTR_REPL_L3PROTO, (uint8_t)fam);
	nfct_set_attr_u8(ct, ATTR_ORIG_L4PROTO, l4);
	nfct_set_attr_u8(ct, ATTR_REPL_L4PROTO, l4);
	if (l4 == IPPROTO_ICMP || l4 == IPPROTO_ICMPV6) {
		/* the setters fill in the reply type (echo reply) and id too */
		nfct_set_attr_u8(ct, ATTR_ICMP_TYPE, l4 == IPPROTO_ICMP ? 8 : 128);
		nfct_set_attr_u8(ct, ATTR_ICMP_CODE, 0);
		nfct_set_attr_u16(ct, ATTR_ICMP_ID, htons((uint16_t)(r1 >> 32)));
	}
	/*
	 * NAT: the reply tuple is sent un-translated (plain inverse of the
	 * original); the kernel's NAT setup then rewrites it and sets
	 * IPS_{SRC,DST}_NAT. Sending an already translated reply tuple would
	 * leave those bits clear, i.e. an entry that is never NATed.
	 */
	if (nat_ok && cycle % 4 == 1) {
		uint16_t np = (uint16_t)(20000 + i % 40000);

		mkaddr(fam, 0x64400000, 0xfff1, i, &nat); /* 100.64.0.0 + i */
		if (fam == AF_INET)
			nfct_set_attr_u32(ct, ATTR_SNAT_IPV4, nat.v4);
		else
			nfct_set_attr(ct, ATTR_SNAT_IPV6, &nat.v6);
		nfct_set_attr_u16(ct, ATTR_SNAT_PORT, htons(np));
	} else if (nat_ok && cycle % 4 == 2) {
		uint16_t np = (uint16_t)(8000 + i % 1000);

		mkaddr(fam, 0x0ac80000, 0xfff2, i, &nat); /* 10.200.0.0 + i */
		if (fam == AF_INET)
			nfct_set_attr_u32(ct, ATTR_DNAT_IPV4, nat.v4);
		else
			nfct_set_attr(ct, ATTR_DNAT_IPV6, &nat.v6);
		nfct_set_attr_u16(ct, ATTR_DNAT_PORT, htons(np));
	}
	set_tuple(ct, false, fam, &os, &od);
	set_tuple(ct, true, fam, &od, &os);
	if (ports) {
		set_ports(ct, false, sp, dp);
		set_ports(ct, true, dp, sp);
	}

	switch (k) {
	case K_TCP4_EST:
	case K_TCP6_EST:
		set_tcp(ct, TCP_CONNTRACK_ESTABLISHED, r2);
		break;
	case K_TCP4_SYN:
	case K_TCP6_SYN:
		set_tcp(ct, TCP_CONNTRACK_SYN_SENT, r2);
		status = 0;
		break;
	case K_TCP4_FIN:
		set_tcp(ct, TCP_CONNTRACK_FIN_WAIT, r2);
		break;
	case K_TCP4_TW:
		set_tcp(ct, TCP_CONNTRACK_TIME_WAIT, r2);
		break;
	case K_TCP4_CW:
		set_tcp(ct, TCP_CONNTRACK_CLOSE_WAIT, r2);
		break;
	case K_SCTP4:
	case K_SCTP6:
		/* the kernel wants state and both vtags together */
		nfct_set_attr_u8(ct, ATTR_SCTP_STATE, sctp_st[r2 % 4]);
		nfct_set_attr_u32(ct, ATTR_SCTP_VTAG_ORIG, (uint32_t)(r2 >> 8) | 1);
		nfct_set_attr_u32(ct, ATTR_SCTP_VTAG_REPL, (uint32_t)(r2 >> 32) | 1);
		break;
	case K_DCCP4:
		nfct_set_attr_u8(ct, ATTR_DCCP_STATE, dccp_st[r2 % 4]);
		nfct_set_attr_u8(ct, ATTR_DCCP_ROLE, (uint8_t)((r2 >> 4) % 2));
		nfct_set_attr_u64(ct, ATTR_DCCP_HANDSHAKE_SEQ, (r2 >> 16) & 0xffffffffffffULL);
		break;
	default:
		break;
	}
	if (zone)
		nfct_set_attr_u16(ct, ATTR_ZONE, zone);
	nfct_set_attr_u32(ct, ATTR_TIMEOUT, (uint32_t)(100 + r3 % 2901));
	nfct_set_attr_u32(ct, ATTR_STATUS, status);
	if ((r3 >> 16) % 4)
		nfct_set_attr_u32(ct, ATTR_MARK, (uint32_t)(r3 >> 24) & 0xffffff);
	if (mo->labels && (r3 >> 20) % 5 == 0) {
		struct nfct_bitmask *bm = nfct_bitmask_new(127);

		if (bm) {
			nfct_bitmask_set_bit(bm, 1);
			nfct_bitmask_set_bit(bm, 5);
			nfct_bitmask_set_bit(bm, 42);
			nfct_bitmask_set_bit(bm, (unsigned int)((r3 >> 48) % 128));
			nfct_set_attr(ct, ATTR_CONNLABELS, bm); /* ct owns bm now */
			*labeled = true;
		}
	}
	return ct;
}

/* FTP control connection j: client:20000+j -> server:21 */
struct ftp_pair {
	int fam;
	uint16_t zone;
	union addr client, server;
	uint16_t cport;
};

static void ftp_pair(uint32_t j, struct ftp_pair *p)
{
	p->fam = j % 4 == 3 ? AF_INET6 : AF_INET;
	p->zone = j % 5 == 4 ? 7 : 0;
	mkaddr(p->fam, 0x0a200000, 0x32, j, &p->client); /* 10.32.0.0 + j */
	mkaddr(p->fam, 0x0a210000, 0x33, 1, &p->server); /* 10.33.0.1 */
	p->cport = (uint16_t)(20000 + j);
}

static struct nf_conntrack *ftp_master(const struct ftp_pair *p)
{
	struct nf_conntrack *ct = nfct_new();

	if (!ct)
		return NULL;
	nfct_set_attr_u8(ct, ATTR_ORIG_L3PROTO, (uint8_t)p->fam);
	nfct_set_attr_u8(ct, ATTR_REPL_L3PROTO, (uint8_t)p->fam);
	nfct_set_attr_u8(ct, ATTR_ORIG_L4PROTO, IPPROTO_TCP);
	nfct_set_attr_u8(ct, ATTR_REPL_L4PROTO, IPPROTO_TCP);
	set_tuple(ct, false, p->fam, &p->client, &p->server);
	set_tuple(ct, true, p->fam, &p->server, &p->client);
	set_ports(ct, false, p->cport, 21);
	set_ports(ct, true, 21, p->cport);
	set_tcp(ct, TCP_CONNTRACK_ESTABLISHED, 0);
	nfct_set_attr_u32(ct, ATTR_TIMEOUT, 3000);
	nfct_set_attr_u32(ct, ATTR_STATUS, IPS_SEEN_REPLY | IPS_ASSURED);
	nfct_set_attr(ct, ATTR_HELPER_NAME, "ftp");
	if (p->zone)
		nfct_set_attr_u16(ct, ATTR_ZONE, p->zone);
	return ct;
}

/* FTP data connection j, created as related to its control connection */
static struct nf_conntrack *ftp_related(const struct ftp_pair *p, uint32_t j)
{
	struct nf_conntrack *ct = nfct_new();
	uint16_t sp = (uint16_t)(30000 + j), dp = (uint16_t)(45000 + j);

	if (!ct)
		return NULL;
	nfct_set_attr_u8(ct, ATTR_ORIG_L3PROTO, (uint8_t)p->fam);
	nfct_set_attr_u8(ct, ATTR_REPL_L3PROTO, (uint8_t)p->fam);
	nfct_set_attr_u8(ct, ATTR_ORIG_L4PROTO, IPPROTO_TCP);
	nfct_set_attr_u8(ct, ATTR_REPL_L4PROTO, IPPROTO_TCP);
	set_tuple(ct, false, p->fam, &p->client, &p->server);
	set_tuple(ct, true, p->fam, &p->server, &p->client);
	set_ports(ct, false, sp, dp);
	set_ports(ct, true, dp, sp);
	set_tcp(ct, TCP_CONNTRACK_ESTABLISHED, j);
	nfct_set_attr_u32(ct, ATTR_TIMEOUT, 600);
	nfct_set_attr_u32(ct, ATTR_STATUS, IPS_SEEN_REPLY | IPS_ASSURED);
	if (p->zone)
		nfct_set_attr_u16(ct, ATTR_ZONE, p->zone);
	/* master = original tuple of the control connection */
	nfct_set_attr_u8(ct, ATTR_MASTER_L3PROTO, (uint8_t)p->fam);
	nfct_set_attr_u8(ct, ATTR_MASTER_L4PROTO, IPPROTO_TCP);
	if (p->fam == AF_INET) {
		nfct_set_attr_u32(ct, ATTR_MASTER_IPV4_SRC, p->client.v4);
		nfct_set_attr_u32(ct, ATTR_MASTER_IPV4_DST, p->server.v4);
	} else {
		nfct_set_attr(ct, ATTR_MASTER_IPV6_SRC, &p->client.v6);
		nfct_set_attr(ct, ATTR_MASTER_IPV6_DST, &p->server.v6);
	}
	nfct_set_attr_u16(ct, ATTR_MASTER_PORT_SRC, htons(p->cport));
	nfct_set_attr_u16(ct, ATTR_MASTER_PORT_DST, htons(21));
	return ct;
}

/* orig-tuple-only object as used inside expectations */
static struct nf_conntrack *exp_tuple(int fam, const union addr *s, const union addr *d,
                                      uint16_t sp, uint16_t dp)
{
	struct nf_conntrack *t = nfct_new();

	if (!t)
		return NULL;
	nfct_set_attr_u8(t, ATTR_ORIG_L3PROTO, (uint8_t)fam);
	nfct_set_attr_u8(t, ATTR_ORIG_L4PROTO, IPPROTO_TCP);
	set_tuple(t, false, fam, s, d);
	set_ports(t, false, sp, dp);
	return t;
}

/* raw CTA tuple nest (the library does not build the expectation NAT tuple) */
static void put_raw_tuple(struct nlmsghdr *nlh, uint16_t type, int fam, const union addr *s,
                          const union addr *d, uint16_t sp, uint16_t dp)
{
	struct nlattr *t = mnl_attr_nest_start(nlh, type), *n;

	n = mnl_attr_nest_start(nlh, CTA_TUPLE_IP);
	if (fam == AF_INET) {
		mnl_attr_put_u32(nlh, CTA_IP_V4_SRC, s->v4);
		mnl_attr_put_u32(nlh, CTA_IP_V4_DST, d->v4);
	} else {
		mnl_attr_put(nlh, CTA_IP_V6_SRC, sizeof(s->v6), &s->v6);
		mnl_attr_put(nlh, CTA_IP_V6_DST, sizeof(d->v6), &d->v6);
	}
	mnl_attr_nest_end(nlh, n);
	n = mnl_attr_nest_start(nlh, CTA_TUPLE_PROTO);
	mnl_attr_put_u8(nlh, CTA_PROTO_NUM, IPPROTO_TCP);
	mnl_attr_put_u16(nlh, CTA_PROTO_SRC_PORT, htons(sp));
	mnl_attr_put_u16(nlh, CTA_PROTO_DST_PORT, htons(dp));
	mnl_attr_nest_end(nlh, n);
	mnl_attr_nest_end(nlh, t);
}

/* Expectation for a passive FTP data connection of control connection j. */
static int build_expectation(struct nlmsghdr *nlh, uint32_t j, uint64_t *rng)
{
	struct nf_expect *exp = nfexp_new();
	struct nf_conntrack *master, *expected, *mask;
	struct ftp_pair p;
	union addr ones, natsrc, any;
	uint16_t dport = (uint16_t)(40000 + j);
	int ret = -1;

	ftp_pair(j, &p);
	memset(&ones, 0xff, sizeof(ones));
	memset(&any, 0, sizeof(any));
	master = exp_tuple(p.fam, &p.client, &p.server, p.cport, 21);
	expected = exp_tuple(p.fam, &p.client, &p.server, 0, dport);
	mask = exp_tuple(p.fam, &ones, &ones, 0, 0xffff);
	if (!exp || !master || !expected || !mask)
		goto out;
	nfexp_set_attr(exp, ATTR_EXP_MASTER, master);
	nfexp_set_attr(exp, ATTR_EXP_EXPECTED, expected);
	nfexp_set_attr(exp, ATTR_EXP_MASK, mask);
	nfexp_set_attr_u32(exp, ATTR_EXP_TIMEOUT, (uint32_t)(100 + rnd(rng) % 2900));
	nfexp_set_attr(exp, ATTR_EXP_HELPER_NAME, "ftp");
	if (j % 4 == 1)
		nfexp_set_attr_u32(exp, ATTR_EXP_FLAGS, NF_CT_EXPECT_PERMANENT_);
	else if (j % 4 == 2)
		nfexp_set_attr_u32(exp, ATTR_EXP_FLAGS, NF_CT_EXPECT_INACTIVE_);
	if (p.zone)
		nfexp_set_attr_u16(exp, ATTR_EXP_ZONE, p.zone);
	if (nfexp_nlmsg_build(nlh, exp) < 0)
		goto out;
	/*
	 * nfexp_nlmsg_build() ignores ATTR_EXP_CLASS, ATTR_EXP_NAT_* and
	 * ATTR_EXP_FN, so add them by hand for a share of the expectations.
	 */
	if (j % 2 == 0)
		mnl_attr_put_u32(nlh, CTA_EXPECT_CLASS, htonl(0));
	if (j % 3 == 0) {
		struct nlattr *nest = mnl_attr_nest_start(nlh, CTA_EXPECT_NAT);

		mkaddr(p.fam, 0x0a220000, 0x34, j, &natsrc);         /* 10.34.0.0 + j */
		mnl_attr_put_u32(nlh, CTA_EXPECT_NAT_DIR, htonl(1)); /* IP_CT_DIR_REPLY */
		put_raw_tuple(nlh, CTA_EXPECT_NAT_TUPLE, p.fam, &natsrc, &any, dport, 0);
		mnl_attr_nest_end(nlh, nest);
		mnl_attr_put_strz(nlh, CTA_EXPECT_FN, "nat-follow-master");
	}
	ret = 0;
out:
	if (master)
		nfct_destroy(master);
	if (expected)
		nfct_destroy(expected);
	if (mask)
		nfct_destroy(mask);
	if (exp)
		nfexp_destroy(exp);
	return ret;
}

static int count_labels_cb(const struct nlmsghdr *nlh, void *data)
{
	const struct nlattr *a;

	mnl_attr_for_each(a, nlh, sizeof(struct nfgenmsg))
	{
		if (mnl_attr_get_type(a) == CTA_LABELS) {
			(*(uint64_t *)data)++;
			break;
		}
	}
	return MNL_CB_OK;
}

int cmd_mixed(int argc, char **argv)
{
	static const struct option opts[] = {
	    {"seed", required_argument, NULL, 's'},  {"exp", required_argument, NULL, 'e'},
	    {"batch", required_argument, NULL, 'b'}, {"no-labels", no_argument, NULL, 'L'},
	    {"help", no_argument, NULL, 'h'},        {NULL, 0, NULL, 0}};
	struct mixed_opts mo = {.seed = 1, .labels = true};
	uint64_t count, nexp_opt = 20, batch = 64, nexp, nrel, nflows, i, rng, flows_ok = 0;
	uint64_t labels_sent = 0, labels_kept = 0;
	struct req_log log;
	struct sender s;
	struct ctnl c;
	bool failed = false;
	int opt, k, ret = EXIT_FAIL;

	while ((opt = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (opt) {
		case 's':
			if (parse_uint(optarg, 0, UINT64_MAX, &mo.seed, "--seed") < 0)
				return EXIT_USAGE;
			break;
		case 'e':
			if (parse_uint(optarg, 0, 60000, &nexp_opt, "--exp") < 0)
				return EXIT_USAGE;
			break;
		case 'b':
			if (parse_uint(optarg, 1, 1024, &batch, "--batch") < 0)
				return EXIT_USAGE;
			break;
		case 'L':
			mo.labels = false;
			break;
		case 'h':
			fputs("Usage: hafw-cttool mixed COUNT [--seed N] [--exp N] [--batch N] "
			      "[--no-labels]\n(see hafw-cttool --help)\n",
			      stdout);
			return EXIT_OK;
		default:
			return EXIT_USAGE;
		}
	}
	if (argc - optind != 1) {
		fprintf(stderr, "mixed: need exactly one COUNT argument\n");
		return EXIT_USAGE;
	}
	if (parse_uint(argv[optind], 1, 4000000, &count, "COUNT") < 0)
		return EXIT_USAGE;
	nexp = nexp_opt < count / 2 ? nexp_opt : count / 2;
	nrel = (nexp + 1) / 2;
	nflows = count - nexp - nrel;
	rng = mo.seed * 0x9E3779B97F4A7C15ULL + 0x1234567;
	if (!rng)
		rng = 1;

	if (ctnl_open(&c, 16 * 1024 * 1024) < 0)
		return EXIT_FAIL;
	if (reqlog_init(&log, "mixed", (unsigned int)batch * 2) < 0)
		goto out_close;
	if (sender_init(&s, &c, (unsigned int)batch, true, reqlog_cb, &log) < 0)
		goto out_log;

	/* FTP control connections (helper "ftp") that will own the expectations */
	for (i = 0; i < nexp && !failed; i++) {
		struct ftp_pair p;
		struct nf_conntrack *ct;

		ftp_pair((uint32_t)i, &p);
		ct = ftp_master(&p);
		if (!ct || send_ct(&s, &log, ct, FLAGS_CREATE | NLM_F_ACK, K_MASTER, (uint32_t)i))
			failed = true;
		if (ct)
			nfct_destroy(ct);
	}
	/* data connections of every other control connection (CTA_TUPLE_MASTER) */
	for (i = 0; i < nrel && !failed; i++) {
		struct ftp_pair p;
		struct nf_conntrack *ct;

		ftp_pair((uint32_t)(2 * i), &p);
		ct = ftp_related(&p, (uint32_t)(2 * i));
		if (!ct ||
		    send_ct(&s, &log, ct, FLAGS_CREATE | NLM_F_ACK, K_RELATED, (uint32_t)(2 * i)))
			failed = true;
		if (ct)
			nfct_destroy(ct);
	}
	for (i = 0; i < nflows && !failed; i++) {
		enum kind kd = (enum kind)(i % K_NFLOWKINDS);
		bool labeled = false;
		struct nf_conntrack *ct = mixed_flow((uint32_t)i, kd, &rng, &mo, &labeled);

		labels_sent += labeled;

		if (!ct || send_ct(&s, &log, ct, FLAGS_CREATE | NLM_F_ACK, kd, (uint32_t)i))
			failed = true;
		if (ct)
			nfct_destroy(ct);
	}
	if (!failed && sender_flush(&s) < 0)
		failed = true;
	/*
	 * Since Linux 6.6 ctnetlink silently drops CTA_LABELS unless the
	 * namespace's ruleset uses ct labels (connlabel match / nft ct label).
	 */
	if (!failed && labels_sent &&
	    ctnl_dump(&c, false, AF_UNSPEC, count_labels_cb, &labels_kept) == 0 &&
	    labels_kept < labels_sent)
		fprintf(stderr,
		        "mixed: warning: %llu flows were sent with labels but only %llu entries "
		        "have labels; the netns needs a ruleset using ct labels (e.g. nft add "
		        "rule inet t c ct label set 1) or use --no-labels\n",
		        (unsigned long long)labels_sent, (unsigned long long)labels_kept);

	/* expectations, after all masters are in the table */
	for (i = 0; i < nexp && !failed; i++) {
		uint32_t seq = ++c.seq;
		struct nlmsghdr *nlh;
		struct ftp_pair p;

		ftp_pair((uint32_t)i, &p);
		nlh =
		    ct_msg_put_header(sender_cur(&s), NFNL_SUBSYS_CTNETLINK_EXP, IPCTNL_MSG_EXP_NEW,
		                      FLAGS_CREATE | NLM_F_ACK, (uint8_t)p.fam, seq);
		if (build_expectation(nlh, (uint32_t)i, &rng) < 0) {
			fprintf(stderr, "mixed: cannot build expectation #%llu\n",
			        (unsigned long long)i);
			failed = true;
			break;
		}
		reqlog_req(&log, seq, K_EXP, "expectation #%llu (%s%s%s)", (unsigned long long)i,
		           p.fam == AF_INET ? "ipv4" : "ipv6", i % 2 == 0 ? ",class" : "",
		           i % 3 == 0 ? ",nat,fn" : "");
		if (sender_commit(&s) < 0)
			failed = true;
	}
	if (!failed && sender_flush(&s) < 0)
		failed = true;

	for (k = 0; k < K_EXP; k++)
		flows_ok += log.ok[k];
	printf("mixed: %llu flows, %llu expectations created\n", (unsigned long long)flows_ok,
	       (unsigned long long)log.ok[K_EXP]);
	fflush(stdout);
	for (k = 0; k < K_ALL; k++) {
		if (!log.fail[k])
			continue;
		fprintf(stderr, "mixed: %s: %llu of %llu rejected (first: %s%s%s)\n", kind_names[k],
		        (unsigned long long)log.fail[k],
		        (unsigned long long)(log.fail[k] + log.ok[k]), strerror(log.first_err[k]),
		        log.first_extack[k][0] ? " - " : "", log.first_extack[k]);
	}
	if (!failed && !s.errors && flows_ok == count && log.ok[K_EXP] == nexp)
		ret = EXIT_OK;
	sender_free(&s);
out_log:
	reqlog_free(&log);
out_close:
	ctnl_close(&c);
	return ret;
}
