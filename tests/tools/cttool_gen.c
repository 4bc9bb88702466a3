/*
 * hafw-cttool: table writers: "gen" (fast bulk create), "mixed" (many
 * kinds of flows plus expectations, every message ACKed) and
 * "update-marks".
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

/* ---- gen ---- */

int cmd_gen(int argc, char **argv)
{
	static const struct option opts[] = {{"proto", required_argument, NULL, 'p'},
	                                     {"src", required_argument, NULL, 's'},
	                                     {"dst", required_argument, NULL, 'd'},
	                                     {"timeout", required_argument, NULL, 't'},
	                                     {"zone", required_argument, NULL, 'z'},
	                                     {"mark", required_argument, NULL, 'm'},
	                                     {"batch", required_argument, NULL, 'b'},
	                                     {"help", no_argument, NULL, 'h'},
	                                     {NULL, 0, NULL, 0}};
	uint64_t count, timeout = 600, zone = 0, mark = 0, batch = 256, i;
	bool have_zone = false, have_mark = false, failed = false;
	uint8_t proto = IPPROTO_TCP;
	struct in_addr src, dst;
	struct nf_conntrack *ct = NULL;
	struct req_log log;
	struct sender s;
	struct ctnl c;
	uint32_t base;
	uint16_t dport;
	double t0, dt;
	uint64_t created;
	int opt, ret = EXIT_FAIL;

	inet_pton(AF_INET, "10.1.0.0", &src);
	inet_pton(AF_INET, "10.2.0.1", &dst);
	while ((opt = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (opt) {
		case 'p':
			if (!strcmp(optarg, "tcp")) {
				proto = IPPROTO_TCP;
			} else if (!strcmp(optarg, "udp")) {
				proto = IPPROTO_UDP;
			} else {
				fprintf(stderr, "gen: --proto must be tcp or udp\n");
				return EXIT_USAGE;
			}
			break;
		case 's':
		case 'd':
			if (inet_pton(AF_INET, optarg, opt == 's' ? &src : &dst) != 1) {
				fprintf(stderr, "gen: invalid IPv4 address '%s'\n", optarg);
				return EXIT_USAGE;
			}
			break;
		case 't':
			if (parse_uint(optarg, 1, 0x7fffffff, &timeout, "--timeout") < 0)
				return EXIT_USAGE;
			break;
		case 'z':
			if (parse_uint(optarg, 0, 65535, &zone, "--zone") < 0)
				return EXIT_USAGE;
			have_zone = true;
			break;
		case 'm':
			if (parse_uint(optarg, 0, 0xffffffffu, &mark, "--mark") < 0)
				return EXIT_USAGE;
			have_mark = true;
			break;
		case 'b':
			if (parse_uint(optarg, 1, 8192, &batch, "--batch") < 0)
				return EXIT_USAGE;
			break;
		case 'h':
			fputs("Usage: hafw-cttool gen COUNT [--proto tcp|udp] [--src A.B.C.D] "
			      "[--dst A.B.C.D] [--timeout S] [--zone N] [--mark N] [--batch N]\n"
			      "(see hafw-cttool --help)\n",
			      stdout);
			return EXIT_OK;
		default:
			return EXIT_USAGE;
		}
	}
	if (argc - optind != 1) {
		fprintf(stderr, "gen: need exactly one COUNT argument\n");
		return EXIT_USAGE;
	}
	if (parse_uint(argv[optind], 1, CT_MAX_ENTRIES, &count, "COUNT") < 0)
		return EXIT_USAGE;
	base = ntohl(src.s_addr);
	if ((uint64_t)base + (count - 1) / 60000 > 0xffffffffu) {
		fprintf(stderr, "gen: source address range overflows 255.255.255.255\n");
		return EXIT_USAGE;
	}
	dport = proto == IPPROTO_TCP ? 80 : 53;

	if (ctnl_open(&c, 16 * 1024 * 1024) < 0)
		return EXIT_FAIL;
	if (reqlog_init(&log, "gen", 0) < 0)
		goto out_close;
	if (sender_init(&s, &c, (unsigned int)batch, false, reqlog_cb, &log) < 0)
		goto out_log;
	ct = nfct_new();
	if (!ct) {
		fprintf(stderr, "gen: out of memory\n");
		goto out_sender;
	}
	nfct_set_attr_u8(ct, ATTR_ORIG_L3PROTO, AF_INET);
	nfct_set_attr_u8(ct, ATTR_REPL_L3PROTO, AF_INET);
	nfct_set_attr_u8(ct, ATTR_ORIG_L4PROTO, proto);
	nfct_set_attr_u8(ct, ATTR_REPL_L4PROTO, proto);
	nfct_set_attr_u32(ct, ATTR_ORIG_IPV4_DST, dst.s_addr);
	nfct_set_attr_u32(ct, ATTR_REPL_IPV4_SRC, dst.s_addr);
	nfct_set_attr_u16(ct, ATTR_ORIG_PORT_DST, htons(dport));
	nfct_set_attr_u16(ct, ATTR_REPL_PORT_SRC, htons(dport));
	nfct_set_attr_u32(ct, ATTR_TIMEOUT, (uint32_t)timeout);
	nfct_set_attr_u32(ct, ATTR_STATUS, IPS_SEEN_REPLY | IPS_ASSURED);
	if (proto == IPPROTO_TCP) {
		nfct_set_attr_u8(ct, ATTR_TCP_STATE, TCP_CONNTRACK_ESTABLISHED);
		nfct_set_attr_u8(ct, ATTR_TCP_WSCALE_ORIG, 7);
		nfct_set_attr_u8(ct, ATTR_TCP_WSCALE_REPL, 7);
		/* window scale only sticks if both sides have the WSCALE flag */
		nfct_set_attr_u8(ct, ATTR_TCP_FLAGS_ORIG, 0x03);
		nfct_set_attr_u8(ct, ATTR_TCP_MASK_ORIG, 0x03);
		nfct_set_attr_u8(ct, ATTR_TCP_FLAGS_REPL, 0x03);
		nfct_set_attr_u8(ct, ATTR_TCP_MASK_REPL, 0x03);
	}
	if (have_zone)
		nfct_set_attr_u16(ct, ATTR_ZONE, (uint16_t)zone);
	if (have_mark)
		nfct_set_attr_u32(ct, ATTR_MARK, (uint32_t)mark);

	log.seq_base = c.seq + 1;
	t0 = now_mono();
	for (i = 0; i < count; i++) {
		uint32_t sa = htonl(base + (uint32_t)(i / 60000));
		uint16_t sp = htons((uint16_t)(1024 + i % 60000));
		struct nlmsghdr *nlh;

		nfct_set_attr_u32(ct, ATTR_ORIG_IPV4_SRC, sa);
		nfct_set_attr_u32(ct, ATTR_REPL_IPV4_DST, sa);
		nfct_set_attr_u16(ct, ATTR_ORIG_PORT_SRC, sp);
		nfct_set_attr_u16(ct, ATTR_REPL_PORT_DST, sp);
		nlh = ct_msg_put_header(sender_cur(&s), NFNL_SUBSYS_CTNETLINK, IPCTNL_MSG_CT_NEW,
		                        FLAGS_CREATE, AF_INET, ++c.seq);
		if (nfct_nlmsg_build(nlh, ct) < 0) {
			fprintf(stderr, "gen: cannot build message: %s\n", strerror(errno));
			failed = true;
			break;
		}
		if (sender_commit(&s) < 0) {
			failed = true;
			break;
		}
	}
	if (!failed && sender_flush(&s) < 0)
		failed = true;
	dt = now_mono() - t0;
	created = s.sent >= s.errors ? s.sent - s.errors : 0;
	printf("gen: created %llu in %.3f s (%.0f/s), %llu errors\n", (unsigned long long)created,
	       dt, dt > 0 ? (double)created / dt : 0.0, (unsigned long long)s.errors);
	fflush(stdout);
	if (s.overruns)
		fprintf(stderr, "gen: %llu receive overruns, some error replies were lost\n",
		        (unsigned long long)s.overruns);
	if (!failed && !s.errors && !s.overruns && created == count)
		ret = EXIT_OK;
	nfct_destroy(ct);
out_sender:
	sender_free(&s);
out_log:
	reqlog_free(&log);
out_close:
	ctnl_close(&c);
	return ret;
}

/* ---- update-marks ---- */

struct um_ctx {
	struct nf_conntrack **v;
	size_t n, cap;
	uint64_t limit, total;
	uint32_t mark;
	bool failed;
};

static int um_cb(const struct nlmsghdr *nlh, void *data)
{
	static const enum nf_conntrack_attr keep[] = {
	    ATTR_ORIG_L3PROTO,  ATTR_ORIG_L4PROTO,  ATTR_ORIG_IPV4_SRC, ATTR_ORIG_IPV4_DST,
	    ATTR_ORIG_IPV6_SRC, ATTR_ORIG_IPV6_DST, ATTR_ORIG_PORT_SRC, ATTR_ORIG_PORT_DST,
	    ATTR_ICMP_TYPE,     ATTR_ICMP_CODE,     ATTR_ICMP_ID,       ATTR_ZONE,
	    ATTR_ORIG_ZONE};
	struct um_ctx *u = data;
	struct nf_conntrack *ct, *upd;
	size_t i;

	u->total++;
	if (u->n >= u->limit)
		return MNL_CB_OK;
	ct = nfct_new();
	upd = nfct_new();
	if (!ct || !upd)
		goto oom;
	if (nfct_nlmsg_parse(nlh, ct) < 0) {
		fprintf(stderr, "update-marks: cannot parse dumped entry\n");
		goto fail;
	}
	for (i = 0; i < sizeof(keep) / sizeof(keep[0]); i++)
		nfct_copy_attr(upd, ct, keep[i]);
	nfct_set_attr_u32(upd, ATTR_MARK, u->mark);
	if (u->n == u->cap) {
		size_t ncap = u->cap ? u->cap * 2 : 1024;
		struct nf_conntrack **nv = realloc(u->v, ncap * sizeof(*nv));

		if (!nv)
			goto oom;
		u->v = nv;
		u->cap = ncap;
	}
	u->v[u->n++] = upd;
	nfct_destroy(ct);
	return MNL_CB_OK;
oom:
	fprintf(stderr, "update-marks: out of memory\n");
fail:
	if (ct)
		nfct_destroy(ct);
	if (upd)
		nfct_destroy(upd);
	u->failed = true;
	errno = 0;
	return MNL_CB_ERROR;
}

int cmd_update_marks(int argc, char **argv)
{
	static const struct option opts[] = {{"mark", required_argument, NULL, 'm'},
	                                     {"limit", required_argument, NULL, 'l'},
	                                     {"help", no_argument, NULL, 'h'},
	                                     {NULL, 0, NULL, 0}};
	struct um_ctx u = {.limit = CT_MAX_ENTRIES, .mark = 1};
	uint64_t v;
	struct req_log log;
	struct sender s;
	struct ctnl c;
	bool failed = false;
	size_t i;
	int opt, ret = EXIT_FAIL;

	while ((opt = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (opt) {
		case 'm':
			if (parse_uint(optarg, 0, 0xffffffffu, &v, "--mark") < 0)
				return EXIT_USAGE;
			u.mark = (uint32_t)v;
			break;
		case 'l':
			if (parse_uint(optarg, 0, CT_MAX_ENTRIES, &u.limit, "--limit") < 0)
				return EXIT_USAGE;
			break;
		case 'h':
			fputs("Usage: hafw-cttool update-marks [--mark N] [--limit K]\n"
			      "(see hafw-cttool --help)\n",
			      stdout);
			return EXIT_OK;
		default:
			return EXIT_USAGE;
		}
	}
	if (optind != argc) {
		fprintf(stderr, "update-marks: unexpected argument '%s'\n", argv[optind]);
		return EXIT_USAGE;
	}
	if (ctnl_open(&c, 16 * 1024 * 1024) < 0)
		return EXIT_FAIL;
	if (reqlog_init(&log, "update-marks", 0) < 0)
		goto out_close;
	if (ctnl_dump(&c, false, AF_UNSPEC, um_cb, &u) < 0 || u.failed)
		goto out_free;
	if (sender_init(&s, &c, 64, true, reqlog_cb, &log) < 0)
		goto out_free;
	log.seq_base = c.seq + 1;
	for (i = 0; i < u.n && !failed; i++) {
		/* no NLM_F_CREATE: update of an existing entry only */
		if (send_ct(&s, &log, u.v[i], NLM_F_REQUEST | NLM_F_ACK, K_GENERIC, (uint32_t)i))
			failed = true;
	}
	if (!failed && sender_flush(&s) < 0)
		failed = true;
	printf("update-marks: updated %llu of %llu flows, %llu errors\n",
	       (unsigned long long)s.acks, (unsigned long long)u.total,
	       (unsigned long long)s.errors);
	fflush(stdout);
	if (!failed && !s.errors && s.acks == u.n)
		ret = EXIT_OK;
	sender_free(&s);
out_free:
	for (i = 0; i < u.n; i++)
		nfct_destroy(u.v[i]);
	free(u.v);
	reqlog_free(&log);
out_close:
	ctnl_close(&c);
	return ret;
}
