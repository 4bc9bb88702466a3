/*
 * hafw-cttool dump: the canonical one-line-per-entry format of flows and
 * expectations, used by "dump" and consumed by "compare".
 */
#include <errno.h>
#include <getopt.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>
#include <linux/netlink.h>

#include "cttool.h"

/* ---- canonical formatting ---- */

struct sbuf {
	char *p;
	size_t len, cap;
	bool trunc;
};

__attribute__((format(printf, 2, 3))) static void sb_printf(struct sbuf *b, const char *fmt, ...)
{
	va_list ap;
	int n;

	if (b->trunc)
		return;
	va_start(ap, fmt);
	n = vsnprintf(b->p + b->len, b->cap - b->len, fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n >= b->cap - b->len) {
		b->trunc = true;
		return;
	}
	b->len += (size_t)n;
}

struct tattr {
	enum nf_conntrack_attr l3, l4, v4s, v4d, v6s, v6d, ps, pd;
};

static const struct tattr TA_ORIG = {ATTR_ORIG_L3PROTO,  ATTR_ORIG_L4PROTO,  ATTR_ORIG_IPV4_SRC,
                                     ATTR_ORIG_IPV4_DST, ATTR_ORIG_IPV6_SRC, ATTR_ORIG_IPV6_DST,
                                     ATTR_ORIG_PORT_SRC, ATTR_ORIG_PORT_DST};
static const struct tattr TA_REPL = {ATTR_REPL_L3PROTO,  ATTR_REPL_L4PROTO,  ATTR_REPL_IPV4_SRC,
                                     ATTR_REPL_IPV4_DST, ATTR_REPL_IPV6_SRC, ATTR_REPL_IPV6_DST,
                                     ATTR_REPL_PORT_SRC, ATTR_REPL_PORT_DST};
static const struct tattr TA_MASTER = {
    ATTR_MASTER_L3PROTO,  ATTR_MASTER_L4PROTO,  ATTR_MASTER_IPV4_SRC, ATTR_MASTER_IPV4_DST,
    ATTR_MASTER_IPV6_SRC, ATTR_MASTER_IPV6_DST, ATTR_MASTER_PORT_SRC, ATTR_MASTER_PORT_DST};

struct icmpv {
	bool set;
	uint8_t type, code;
	uint16_t id;
};

static const char *l3name(uint8_t l3, char *tmp, size_t n)
{
	if (l3 == AF_INET)
		return "ipv4";
	if (l3 == AF_INET6)
		return "ipv6";
	snprintf(tmp, n, "af%u", l3);
	return tmp;
}

static const char *l4name(uint8_t l4, char *tmp, size_t n)
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
	case IPPROTO_DCCP:
		return "dccp";
	case IPPROTO_GRE:
		return "gre";
	default:
		snprintf(tmp, n, "p%u", l4);
		return tmp;
	}
}

static void sb_addr(struct sbuf *b, const struct nf_conntrack *ct, uint8_t l3,
                    enum nf_conntrack_attr v4, enum nf_conntrack_attr v6)
{
	char a[INET6_ADDRSTRLEN];

	if (l3 == AF_INET && nfct_attr_is_set(ct, v4) > 0 &&
	    inet_ntop(AF_INET, nfct_get_attr(ct, v4), a, sizeof(a)))
		sb_printf(b, "%s", a);
	else if (l3 == AF_INET6 && nfct_attr_is_set(ct, v6) > 0 &&
	         inet_ntop(AF_INET6, nfct_get_attr(ct, v6), a, sizeof(a)))
		sb_printf(b, "[%s]", a);
	else
		sb_printf(b, "?");
}

static void sb_tuple(struct sbuf *b, const struct nf_conntrack *ct, const struct tattr *ta,
                     const struct icmpv *icmp)
{
	uint8_t l3 = nfct_get_attr_u8(ct, ta->l3);
	bool ports = nfct_attr_is_set(ct, ta->ps) > 0 && nfct_attr_is_set(ct, ta->pd) > 0;

	sb_addr(b, ct, l3, ta->v4s, ta->v6s);
	if (ports)
		sb_printf(b, ":%u", ntohs(nfct_get_attr_u16(ct, ta->ps)));
	sb_printf(b, "->");
	sb_addr(b, ct, l3, ta->v4d, ta->v6d);
	if (ports)
		sb_printf(b, ":%u", ntohs(nfct_get_attr_u16(ct, ta->pd)));
	if (icmp && icmp->set)
		sb_printf(b, ",type=%u,code=%u,id=%u", icmp->type, icmp->code, icmp->id);
}

static bool is_icmp(uint8_t l4)
{
	return l4 == IPPROTO_ICMP || l4 == IPPROTO_ICMPV6;
}

static void orig_icmp(const struct nf_conntrack *ct, struct icmpv *v)
{
	memset(v, 0, sizeof(*v));
	if (!is_icmp(nfct_get_attr_u8(ct, ATTR_ORIG_L4PROTO)) ||
	    nfct_attr_is_set(ct, ATTR_ICMP_TYPE) <= 0)
		return;
	v->set = true;
	v->type = nfct_get_attr_u8(ct, ATTR_ICMP_TYPE);
	v->code = nfct_get_attr_u8(ct, ATTR_ICMP_CODE);
	v->id = ntohs(nfct_get_attr_u16(ct, ATTR_ICMP_ID));
}

/*
 * libnetfilter_conntrack has no getters for the ICMP part of the reply
 * tuple, so pick it from the raw message.
 */
static void reply_icmp(const struct nlmsghdr *nlh, struct icmpv *v)
{
	const struct nlattr *a, *t, *p;
	unsigned int got = 0;

	memset(v, 0, sizeof(*v));
	if (!nlh)
		return;
	mnl_attr_for_each(a, nlh, sizeof(struct nfgenmsg))
	{
		if (mnl_attr_get_type(a) != CTA_TUPLE_REPLY)
			continue;
		mnl_attr_for_each_nested(t, a)
		{
			if (mnl_attr_get_type(t) != CTA_TUPLE_PROTO)
				continue;
			mnl_attr_for_each_nested(p, t)
			{
				uint16_t len = mnl_attr_get_payload_len(p);

				switch (mnl_attr_get_type(p)) {
				case CTA_PROTO_ICMP_TYPE:
				case CTA_PROTO_ICMPV6_TYPE:
					if (len >= 1) {
						v->type = mnl_attr_get_u8(p);
						got |= 1;
					}
					break;
				case CTA_PROTO_ICMP_CODE:
				case CTA_PROTO_ICMPV6_CODE:
					if (len >= 1) {
						v->code = mnl_attr_get_u8(p);
						got |= 2;
					}
					break;
				case CTA_PROTO_ICMP_ID:
				case CTA_PROTO_ICMPV6_ID:
					if (len >= 2) {
						v->id = ntohs(mnl_attr_get_u16(p));
						got |= 4;
					}
					break;
				default:
					break;
				}
			}
		}
	}
	v->set = got == 7;
}

static const char *state_name(const char *const *names, size_t n, unsigned int s, char *tmp,
                              size_t tn)
{
	if (s < n && names[s])
		return names[s];
	snprintf(tmp, tn, "%u", s);
	return tmp;
}

static const char *const tcp_states[] = {"NONE",     "SYN_SENT",   "SYN_RECV", "ESTABLISHED",
                                         "FIN_WAIT", "CLOSE_WAIT", "LAST_ACK", "TIME_WAIT",
                                         "CLOSE",    "SYN_SENT2"};
static const char *const sctp_states[] = {
    "NONE",          "CLOSED",        "COOKIE_WAIT",       "COOKIE_ECHOED",  "ESTABLISHED",
    "SHUTDOWN_SENT", "SHUTDOWN_RECD", "SHUTDOWN_ACK_SENT", "HEARTBEAT_SENT", "HEARTBEAT_ACKED"};
static const char *const dccp_states[] = {"NONE",     "REQUEST", "RESPOND",  "PARTOPEN", "OPEN",
                                          "CLOSEREQ", "CLOSING", "TIMEWAIT", "IGNORE",   "INVALID"};

static bool isset(const struct nf_conntrack *ct, enum nf_conntrack_attr a)
{
	return nfct_attr_is_set(ct, a) > 0;
}

static void sb_u8(struct sbuf *b, const struct nf_conntrack *ct, enum nf_conntrack_attr a,
                  const char *name, bool hex)
{
	if (isset(ct, a))
		sb_printf(b, hex ? " %s=0x%02x" : " %s=%u", name, nfct_get_attr_u8(ct, a));
}

static void sb_u32(struct sbuf *b, const struct nf_conntrack *ct, enum nf_conntrack_attr a,
                   const char *name, bool hex)
{
	if (isset(ct, a))
		sb_printf(b, hex ? " %s=0x%08x" : " %s=%u", name, nfct_get_attr_u32(ct, a));
}

static void sb_natseq(struct sbuf *b, const struct nf_conntrack *ct, enum nf_conntrack_attr pos,
                      enum nf_conntrack_attr before, enum nf_conntrack_attr after, const char *name)
{
	if (isset(ct, pos) || isset(ct, before) || isset(ct, after))
		sb_printf(b, " %s=%u,%u,%u", name, nfct_get_attr_u32(ct, pos),
		          nfct_get_attr_u32(ct, before), nfct_get_attr_u32(ct, after));
}

int fmt_ct_line(const struct nlmsghdr *nlh, const struct nf_conntrack *ct, char *out, size_t outlen)
{
	struct sbuf b = {.p = out, .cap = outlen};
	char t1[16], t2[16];
	struct icmpv iv;
	uint8_t l3 = nfct_get_attr_u8(ct, ATTR_ORIG_L3PROTO);
	uint8_t l4 = nfct_get_attr_u8(ct, ATTR_ORIG_L4PROTO);

	out[0] = '\0';
	/* identity key */
	sb_printf(&b, "key=z%u", isset(ct, ATTR_ZONE) ? nfct_get_attr_u16(ct, ATTR_ZONE) : 0);
	if (isset(ct, ATTR_ORIG_ZONE))
		sb_printf(&b, "o%u", nfct_get_attr_u16(ct, ATTR_ORIG_ZONE));
	sb_printf(&b, "/%s/%s/", l3name(l3, t1, sizeof(t1)), l4name(l4, t2, sizeof(t2)));
	orig_icmp(ct, &iv);
	sb_tuple(&b, ct, &TA_ORIG, &iv);

	if (isset(ct, ATTR_REPL_L3PROTO)) {
		sb_printf(&b, " reply=");
		if (is_icmp(nfct_get_attr_u8(ct, ATTR_REPL_L4PROTO)))
			reply_icmp(nlh, &iv);
		else
			memset(&iv, 0, sizeof(iv));
		sb_tuple(&b, ct, &TA_REPL, &iv);
	}
	if (isset(ct, ATTR_ZONE))
		sb_printf(&b, " zone=%u", nfct_get_attr_u16(ct, ATTR_ZONE));
	if (isset(ct, ATTR_ORIG_ZONE))
		sb_printf(&b, " orig_zone=%u", nfct_get_attr_u16(ct, ATTR_ORIG_ZONE));
	if (isset(ct, ATTR_REPL_ZONE))
		sb_printf(&b, " repl_zone=%u", nfct_get_attr_u16(ct, ATTR_REPL_ZONE));
	if (isset(ct, ATTR_STATUS))
		sb_printf(&b, " status=0x%x", nfct_get_attr_u32(ct, ATTR_STATUS));
	sb_u32(&b, ct, ATTR_TIMEOUT, "timeout", false);
	sb_u32(&b, ct, ATTR_MARK, "mark", false);
	sb_u32(&b, ct, ATTR_SECMARK, "secmark", false);
	if (isset(ct, ATTR_CONNLABELS)) {
		const struct nfct_bitmask *bm = nfct_get_attr(ct, ATTR_CONNLABELS);
		unsigned int i, max = bm ? nfct_bitmask_maxbit(bm) : 0, n = 0;

		for (i = 0; bm && i <= max && i < 4096; i++) {
			if (!nfct_bitmask_test_bit(bm, i))
				continue;
			sb_printf(&b, n++ ? ",%u" : " labels=%u", i);
		}
	}
	if (isset(ct, ATTR_TCP_STATE))
		sb_printf(&b, " tcp_state=%s",
		          state_name(tcp_states, NELEM(tcp_states),
		                     nfct_get_attr_u8(ct, ATTR_TCP_STATE), t1, sizeof(t1)));
	sb_u8(&b, ct, ATTR_TCP_WSCALE_ORIG, "tcp_wscale_orig", false);
	sb_u8(&b, ct, ATTR_TCP_WSCALE_REPL, "tcp_wscale_repl", false);
	sb_u8(&b, ct, ATTR_TCP_FLAGS_ORIG, "tcp_flags_orig", true);
	sb_u8(&b, ct, ATTR_TCP_FLAGS_REPL, "tcp_flags_repl", true);
	if (isset(ct, ATTR_SCTP_STATE))
		sb_printf(&b, " sctp_state=%s",
		          state_name(sctp_states, NELEM(sctp_states),
		                     nfct_get_attr_u8(ct, ATTR_SCTP_STATE), t1, sizeof(t1)));
	sb_u32(&b, ct, ATTR_SCTP_VTAG_ORIG, "sctp_vtag_orig", true);
	sb_u32(&b, ct, ATTR_SCTP_VTAG_REPL, "sctp_vtag_repl", true);
	if (isset(ct, ATTR_DCCP_STATE))
		sb_printf(&b, " dccp_state=%s",
		          state_name(dccp_states, NELEM(dccp_states),
		                     nfct_get_attr_u8(ct, ATTR_DCCP_STATE), t1, sizeof(t1)));
	sb_u8(&b, ct, ATTR_DCCP_ROLE, "dccp_role", false);
	if (isset(ct, ATTR_DCCP_HANDSHAKE_SEQ))
		sb_printf(&b, " dccp_hs_seq=%llu",
		          (unsigned long long)nfct_get_attr_u64(ct, ATTR_DCCP_HANDSHAKE_SEQ));
	if (isset(ct, ATTR_HELPER_NAME)) {
		const char *h = nfct_get_attr(ct, ATTR_HELPER_NAME);

		sb_printf(&b, " helper=%s", h && *h ? h : "-");
	}
	if (isset(ct, ATTR_MASTER_L3PROTO)) {
		sb_printf(&b, " master=%s/%s/",
		          l3name(nfct_get_attr_u8(ct, ATTR_MASTER_L3PROTO), t1, sizeof(t1)),
		          l4name(nfct_get_attr_u8(ct, ATTR_MASTER_L4PROTO), t2, sizeof(t2)));
		sb_tuple(&b, ct, &TA_MASTER, NULL);
	}
	sb_natseq(&b, ct, ATTR_ORIG_NAT_SEQ_CORRECTION_POS, ATTR_ORIG_NAT_SEQ_OFFSET_BEFORE,
	          ATTR_ORIG_NAT_SEQ_OFFSET_AFTER, "natseq_orig");
	sb_natseq(&b, ct, ATTR_REPL_NAT_SEQ_CORRECTION_POS, ATTR_REPL_NAT_SEQ_OFFSET_BEFORE,
	          ATTR_REPL_NAT_SEQ_OFFSET_AFTER, "natseq_repl");
	/* ctnetlink adds an (all-zero) synproxy extension to every entry it
	 * creates; treat all-zero as absent so such entries compare equal to
	 * packet-created ones. */
	if (nfct_get_attr_u32(ct, ATTR_SYNPROXY_ISN) || nfct_get_attr_u32(ct, ATTR_SYNPROXY_ITS) ||
	    nfct_get_attr_u32(ct, ATTR_SYNPROXY_TSOFF))
		sb_printf(&b, " synproxy=%u,%u,%u", nfct_get_attr_u32(ct, ATTR_SYNPROXY_ISN),
		          nfct_get_attr_u32(ct, ATTR_SYNPROXY_ITS),
		          nfct_get_attr_u32(ct, ATTR_SYNPROXY_TSOFF));
	if (isset(ct, ATTR_TIMESTAMP_START))
		sb_printf(&b, " tstamp_start=%llu",
		          (unsigned long long)nfct_get_attr_u64(ct, ATTR_TIMESTAMP_START));
	return b.trunc ? -1 : 0;
}

/* "l3/l4/tuple" of one tuple object inside an expectation */
static void sb_exp_tuple(struct sbuf *b, const struct nf_conntrack *t)
{
	struct icmpv iv;

	if (!t) {
		sb_printf(b, "?");
		return;
	}
	orig_icmp(t, &iv);
	sb_tuple(b, t, &TA_ORIG, &iv);
}

int fmt_exp_line(const struct nf_expect *exp, char *out, size_t outlen)
{
	struct sbuf b = {.p = out, .cap = outlen};
	const struct nf_conntrack *master = NULL, *expected = NULL, *mask = NULL;
	char t1[16], t2[16];
	uint8_t l3 = 0, l4 = 0;

	out[0] = '\0';
	if (nfexp_attr_is_set(exp, ATTR_EXP_MASTER) > 0)
		master = nfexp_get_attr(exp, ATTR_EXP_MASTER);
	if (nfexp_attr_is_set(exp, ATTR_EXP_EXPECTED) > 0)
		expected = nfexp_get_attr(exp, ATTR_EXP_EXPECTED);
	if (nfexp_attr_is_set(exp, ATTR_EXP_MASK) > 0)
		mask = nfexp_get_attr(exp, ATTR_EXP_MASK);
	if (expected) {
		l3 = nfct_get_attr_u8(expected, ATTR_ORIG_L3PROTO);
		l4 = nfct_get_attr_u8(expected, ATTR_ORIG_L4PROTO);
	}
	sb_printf(&b, "key=z%u/%s/%s/",
	          nfexp_attr_is_set(exp, ATTR_EXP_ZONE) > 0 ? nfexp_get_attr_u16(exp, ATTR_EXP_ZONE)
	                                                    : 0,
	          l3name(l3, t1, sizeof(t1)), l4name(l4, t2, sizeof(t2)));
	sb_exp_tuple(&b, master);
	sb_printf(&b, "=>");
	sb_exp_tuple(&b, expected);
	sb_printf(&b, "/");
	sb_exp_tuple(&b, mask);

	if (master) {
		sb_printf(&b, " master=");
		sb_exp_tuple(&b, master);
	}
	if (expected) {
		sb_printf(&b, " tuple=");
		sb_exp_tuple(&b, expected);
	}
	if (mask) {
		sb_printf(&b, " mask=");
		sb_exp_tuple(&b, mask);
	}
	if (nfexp_attr_is_set(exp, ATTR_EXP_TIMEOUT) > 0)
		sb_printf(&b, " timeout=%u", nfexp_get_attr_u32(exp, ATTR_EXP_TIMEOUT));
	if (nfexp_attr_is_set(exp, ATTR_EXP_FLAGS) > 0)
		sb_printf(&b, " flags=0x%x", nfexp_get_attr_u32(exp, ATTR_EXP_FLAGS));
	if (nfexp_attr_is_set(exp, ATTR_EXP_CLASS) > 0)
		sb_printf(&b, " class=%u", nfexp_get_attr_u32(exp, ATTR_EXP_CLASS));
	if (nfexp_attr_is_set(exp, ATTR_EXP_HELPER_NAME) > 0) {
		const char *h = nfexp_get_attr(exp, ATTR_EXP_HELPER_NAME);

		sb_printf(&b, " helper=%s", h && *h ? h : "-");
	}
	if (nfexp_attr_is_set(exp, ATTR_EXP_FN) > 0) {
		const char *fn = nfexp_get_attr(exp, ATTR_EXP_FN);

		sb_printf(&b, " fn=%s", fn && *fn ? fn : "-");
	}
	if (nfexp_attr_is_set(exp, ATTR_EXP_NAT_TUPLE) > 0) {
		sb_printf(&b, " nat=");
		sb_exp_tuple(&b, nfexp_get_attr(exp, ATTR_EXP_NAT_TUPLE));
	}
	if (nfexp_attr_is_set(exp, ATTR_EXP_NAT_DIR) > 0)
		sb_printf(&b, " natdir=%u", nfexp_get_attr_u8(exp, ATTR_EXP_NAT_DIR));
	if (nfexp_attr_is_set(exp, ATTR_EXP_ZONE) > 0)
		sb_printf(&b, " zone=%u", nfexp_get_attr_u16(exp, ATTR_EXP_ZONE));
	return b.trunc ? -1 : 0;
}

/* ---- dump command ---- */

struct dump_ctx {
	bool exp;
	char **lines;
	size_t n, cap;
	bool failed;
};

static int dump_cb(const struct nlmsghdr *nlh, void *data)
{
	struct dump_ctx *d = data;
	char line[CT_LINE_MAX];
	int r;

	if (d->n >= CT_MAX_ENTRIES) {
		fprintf(stderr, "dump: more than %u entries, giving up\n", CT_MAX_ENTRIES);
		goto fail;
	}
	if (d->exp) {
		struct nf_expect *exp = nfexp_new();

		if (!exp)
			goto oom;
		r = nfexp_nlmsg_parse(nlh, exp);
		if (r == 0)
			r = fmt_exp_line(exp, line, sizeof(line));
		nfexp_destroy(exp);
	} else {
		struct nf_conntrack *ct = nfct_new();

		if (!ct)
			goto oom;
		r = nfct_nlmsg_parse(nlh, ct);
		if (r == 0)
			r = fmt_ct_line(nlh, ct, line, sizeof(line));
		nfct_destroy(ct);
	}
	if (r < 0) {
		fprintf(stderr, "dump: cannot parse/format entry %zu\n", d->n);
		goto fail;
	}
	if (d->n == d->cap) {
		size_t ncap = d->cap ? d->cap * 2 : 4096;
		char **nl = realloc(d->lines, ncap * sizeof(*nl));

		if (!nl)
			goto oom;
		d->lines = nl;
		d->cap = ncap;
	}
	d->lines[d->n] = strdup(line);
	if (!d->lines[d->n])
		goto oom;
	d->n++;
	return MNL_CB_OK;
oom:
	fprintf(stderr, "dump: out of memory\n");
fail:
	d->failed = true;
	errno = 0;
	return MNL_CB_ERROR;
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

int cmd_dump(int argc, char **argv)
{
	static const struct option opts[] = {{"flows", no_argument, NULL, 'f'},
	                                     {"exp", no_argument, NULL, 'e'},
	                                     {"help", no_argument, NULL, 'h'},
	                                     {NULL, 0, NULL, 0}};
	struct dump_ctx d = {0};
	struct ctnl c;
	size_t i;
	int opt, ret = EXIT_FAIL;

	while ((opt = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (opt) {
		case 'f':
			d.exp = false;
			break;
		case 'e':
			d.exp = true;
			break;
		case 'h':
			usage(stdout);
			return EXIT_OK;
		default:
			return EXIT_USAGE;
		}
	}
	if (optind != argc) {
		fprintf(stderr, "dump: unexpected argument '%s'\n", argv[optind]);
		return EXIT_USAGE;
	}
	if (ctnl_open(&c, 8 * 1024 * 1024) < 0)
		return EXIT_FAIL;
	if (ctnl_dump(&c, d.exp, AF_UNSPEC, dump_cb, &d) < 0 || d.failed)
		goto out;
	if (d.n > 1)
		qsort(d.lines, d.n, sizeof(*d.lines), cmp_str);
	for (i = 0; i < d.n; i++) {
		fputs(d.lines[i], stdout);
		fputc('\n', stdout);
	}
	if (fflush(stdout) != 0 || ferror(stdout)) {
		fprintf(stderr, "dump: write error: %s\n", strerror(errno));
		goto out;
	}
	ret = EXIT_OK;
out:
	for (i = 0; i < d.n; i++)
		free(d.lines[i]);
	free(d.lines);
	ctnl_close(&c);
	return ret;
}
