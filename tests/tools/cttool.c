/*
 * hafw-cttool: conntrack test/benchmark helper.
 *
 * main(), usage and shared netlink plumbing (socket setup, batched sender
 * with ACK/error accounting, dumps). The dump format is in cttool_dump.c.
 */
#include <errno.h>
#include <getopt.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <arpa/inet.h>
#include <sys/socket.h>
#include <linux/netlink.h>

#include "cttool.h"

#ifndef SOL_NETLINK
#define SOL_NETLINK 270
#endif

static const char usage_text[] =
    "Usage: hafw-cttool <command> [options]\n"
    "\n"
    "Works on the conntrack table of the network namespace it runs in.\n"
    "Exit status: 0 success, 1 failure or difference, 2 usage error.\n"
    "\n"
    "Commands:\n"
    "  dump [--flows|--exp]\n"
    "      Dump the conntrack (default) or expectation table, one canonical line\n"
    "      per entry, sorted. First token is the identity key:\n"
    "        flows: key=z<zone>[o<origzone>]/<l3>/<l4>/<orig tuple>\n"
    "        exp:   key=z<zone>/<l3>/<l4>/<master tuple>=><expected tuple>/<mask tuple>\n"
    "      tuple: SRC[:SPORT]->DST[:DPORT][,type=T,code=C,id=I]  (IPv6 as [addr])\n"
    "      flow attributes (only if present, in this order): reply zone orig_zone\n"
    "        repl_zone status timeout mark secmark labels tcp_state tcp_wscale_orig\n"
    "        tcp_wscale_repl tcp_flags_orig tcp_flags_repl sctp_state sctp_vtag_orig\n"
    "        sctp_vtag_repl dccp_state dccp_role dccp_hs_seq helper master\n"
    "        natseq_orig natseq_repl synproxy tstamp_start\n"
    "      expectation attributes: master tuple mask timeout flags class helper fn\n"
    "        nat natdir zone\n"
    "\n"
    "  compare FILE_A FILE_B [--timeout-slack N] [--timeout-at-least]\n"
    "          [--ignore ATTR1,ATTR2,...]\n"
    "      Match two dump files by key and report differences:\n"
    "        missing: <key>            (only in FILE_A)\n"
    "        extra: <key>              (only in FILE_B)\n"
    "        <key>: attr <name>: <a> vs <b>   ('-' = absent)\n"
    "      timeout is equal if |a-b| <= slack (default 5); with\n"
    "      --timeout-at-least if b >= a - slack (a commit may give more time).\n"
    "      At most 50 detail\n"
    "      lines are printed, all are counted. Last line:\n"
    "        compare: N entries, M missing, K extra, D differing\n"
    "      (N = entries in FILE_A, D = entries with at least one differing attr)\n"
    "\n"
    "  gen COUNT [--proto tcp|udp] [--src A.B.C.D] [--dst A.B.C.D] [--timeout S]\n"
    "            [--zone N] [--mark N] [--batch N]\n"
    "      Create COUNT flows as fast as possible (batched, no ACKs; only errors\n"
    "      are answered). sport = 1024 + i % 60000, src = SRC + i / 60000.\n"
    "      Defaults: tcp, src 10.1.0.0, dst 10.2.0.1, timeout 600, batch 256.\n"
    "      Output: gen: created N in X.XXX s (R/s), E errors\n"
    "\n"
    "  count-events [--expect N] [--timeout S] [--rcvbuf BYTES]\n"
    "               [--type new|destroy|all]\n"
    "      Subscribe to conntrack events, print READY, count events of the type\n"
    "      (default all = new+update+destroy) until N seen, S seconds (default\n"
    "      10) after the first event, or 60 s without any event.\n"
    "      Output: events: N in X.XXX s (R/s) first-to-last, overruns O\n"
    "      Exit 1 if --expect was given and fewer events were seen.\n"
    "\n"
    "  mixed COUNT [--seed N] [--exp N] [--batch N] [--no-labels]\n"
    "      Create COUNT flows of many kinds (IPv4/IPv6, TCP states, UDP, UDPLite,\n"
    "      ICMP, ICMPv6, SCTP, GRE, DCCP, unknown L4, zones 0/1/7, marks, labels,\n"
    "      SNAT/DNAT) plus --exp (default 20) FTP expectations whose master flows\n"
    "      (helper ftp, port 21) and, for every other one, a related data flow\n"
    "      (CTA_TUPLE_MASTER) are part of COUNT. Every message is ACKed.\n"
    "      Output: mixed: N flows, E expectations created\n"
    "\n"
    "  update-marks [--mark N] [--limit K]\n"
    "      Dump the flows and set the mark (default 1) of up to K of them.\n"
    "      Output: update-marks: updated N of M flows, E errors\n";

void usage(FILE *f)
{
	fputs(usage_text, f);
}

double now_mono(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int set_buf(int fd, int force_opt, int opt, int bytes, const char *name)
{
	int got = 0;
	socklen_t len = sizeof(got);

	if (setsockopt(fd, SOL_SOCKET, force_opt, &bytes, sizeof(bytes)) < 0 &&
	    setsockopt(fd, SOL_SOCKET, opt, &bytes, sizeof(bytes)) < 0) {
		fprintf(stderr, "cttool: warning: cannot set %s to %d: %s\n", name, bytes,
		        strerror(errno));
		return -1;
	}
	if (getsockopt(fd, SOL_SOCKET, opt, &got, &len) == 0 && got < bytes)
		fprintf(stderr, "cttool: warning: %s is %d, wanted %d\n", name, got, bytes);
	return 0;
}

int set_rcvbuf(int fd, int bytes)
{
	return set_buf(fd, SO_RCVBUFFORCE, SO_RCVBUF, bytes, "SO_RCVBUF");
}

int set_sndbuf(int fd, int bytes)
{
	return set_buf(fd, SO_SNDBUFFORCE, SO_SNDBUF, bytes, "SO_SNDBUF");
}

int ctnl_open(struct ctnl *c, int rcvbuf)
{
	int one = 1, fd;
	struct timeval tv = {.tv_sec = CT_RECV_TIMEOUT};

	memset(c, 0, sizeof(*c));
	c->nl = mnl_socket_open(NETLINK_NETFILTER);
	if (!c->nl) {
		fprintf(stderr, "cttool: cannot open NETLINK_NETFILTER socket: %s\n",
		        strerror(errno));
		return -1;
	}
	if (mnl_socket_bind(c->nl, 0, MNL_SOCKET_AUTOPID) < 0) {
		fprintf(stderr, "cttool: cannot bind netlink socket: %s\n", strerror(errno));
		mnl_socket_close(c->nl);
		c->nl = NULL;
		return -1;
	}
	c->portid = mnl_socket_get_portid(c->nl);
	c->seq = (uint32_t)time(NULL);
	fd = mnl_socket_get_fd(c->nl);
	if (rcvbuf > 0)
		set_rcvbuf(fd, rcvbuf);
	/* Best effort: textual error messages, and errors without request echo. */
	setsockopt(fd, SOL_NETLINK, NETLINK_EXT_ACK, &one, sizeof(one));
	setsockopt(fd, SOL_NETLINK, NETLINK_CAP_ACK, &one, sizeof(one));
	if (setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)) < 0) {
		fprintf(stderr, "cttool: cannot set SO_RCVTIMEO: %s\n", strerror(errno));
		ctnl_close(c);
		return -1;
	}
	return 0;
}

void ctnl_close(struct ctnl *c)
{
	if (c->nl)
		mnl_socket_close(c->nl);
	c->nl = NULL;
}

struct nlmsghdr *ct_msg_put_header(void *buf, uint16_t subsys, uint8_t msg, uint16_t flags,
                                   uint8_t family, uint32_t seq)
{
	struct nlmsghdr *nlh = mnl_nlmsg_put_header(buf);
	struct nfgenmsg *nfh;

	nlh->nlmsg_type = (uint16_t)((subsys << 8) | msg);
	nlh->nlmsg_flags = flags;
	nlh->nlmsg_seq = seq;
	nfh = mnl_nlmsg_put_extra_header(nlh, sizeof(*nfh));
	nfh->nfgen_family = family;
	nfh->version = NFNETLINK_V0;
	nfh->res_id = 0;
	return nlh;
}

/* Extended ACK message string of an NLMSG_ERROR, or NULL. */
const char *nl_extack_msg(const struct nlmsghdr *nlh)
{
	const struct nlmsgerr *e;
	const struct nlattr *attr;
	const void *tlvs;
	size_t plen, off;

	if (nlh->nlmsg_type != NLMSG_ERROR || !(nlh->nlmsg_flags & NLM_F_ACK_TLVS))
		return NULL;
	plen = mnl_nlmsg_get_payload_len(nlh);
	if (plen < sizeof(*e))
		return NULL;
	e = mnl_nlmsg_get_payload(nlh);
	off = sizeof(*e);
	if (!(nlh->nlmsg_flags & NLM_F_CAPPED)) {
		if (e->msg.nlmsg_len < sizeof(struct nlmsghdr))
			return NULL;
		off += MNL_ALIGN(e->msg.nlmsg_len - sizeof(struct nlmsghdr));
	}
	if (off >= plen)
		return NULL;
	tlvs = (const char *)e + off;
	mnl_attr_for_each_payload(tlvs, plen - off)
	{
		if (mnl_attr_get_type(attr) == NLMSGERR_ATTR_MSG &&
		    mnl_attr_validate(attr, MNL_TYPE_NUL_STRING) == 0)
			return mnl_attr_get_str(attr);
	}
	return NULL;
}

int parse_uint(const char *s, uint64_t min, uint64_t max, uint64_t *out, const char *what)
{
	unsigned long long v;
	char *end;

	if (!s || !*s || *s == '-' || *s == ' ')
		goto bad;
	errno = 0;
	v = strtoull(s, &end, 0);
	if (errno || *end)
		goto bad;
	if (v < min || v > max) {
		fprintf(stderr, "cttool: %s must be in [%llu, %llu], got %s\n", what,
		        (unsigned long long)min, (unsigned long long)max, s);
		return -1;
	}
	*out = v;
	return 0;
bad:
	fprintf(stderr, "cttool: invalid %s '%s'\n", what, s ? s : "");
	return -1;
}

/* ---- dumps ---- */

int ctnl_dump(struct ctnl *c, bool exp, uint8_t family, mnl_cb_t cb, void *data)
{
	char *buf = malloc(CT_DUMP_BUFSZ);
	struct nlmsghdr *nlh;
	uint32_t seq = ++c->seq;
	unsigned int iter;
	int ret = -1;

	if (!buf) {
		fprintf(stderr, "cttool: out of memory\n");
		return -1;
	}
	nlh = ct_msg_put_header(buf, exp ? NFNL_SUBSYS_CTNETLINK_EXP : NFNL_SUBSYS_CTNETLINK,
	                        exp ? IPCTNL_MSG_EXP_GET : IPCTNL_MSG_CT_GET,
	                        NLM_F_REQUEST | NLM_F_DUMP, family, seq);
	if (mnl_socket_sendto(c->nl, nlh, nlh->nlmsg_len) < 0) {
		fprintf(stderr, "cttool: cannot send dump request: %s\n", strerror(errno));
		goto out;
	}
	for (iter = 0; iter < CT_MAX_RECV; iter++) {
		ssize_t n = mnl_socket_recvfrom(c->nl, buf, CT_DUMP_BUFSZ);
		int r;

		if (n < 0) {
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN || errno == EWOULDBLOCK)
				fprintf(stderr, "cttool: dump: no data from kernel for %d s\n",
				        CT_RECV_TIMEOUT);
			else
				fprintf(stderr, "cttool: dump: recv failed: %s\n", strerror(errno));
			goto out;
		}
		errno = 0;
		r = mnl_cb_run(buf, (size_t)n, seq, c->portid, cb, data);
		if (r == MNL_CB_STOP) {
			ret = 0;
			goto out;
		}
		if (r < 0) {
			if (errno)
				fprintf(stderr, "cttool: dump failed: %s\n", strerror(errno));
			goto out;
		}
	}
	fprintf(stderr, "cttool: dump: giving up after %u receive calls\n", iter);
out:
	free(buf);
	return ret;
}

/* ---- batched sender ---- */

int sender_init(struct sender *s, struct ctnl *c, unsigned int max_msgs, bool want_ack, ack_cb_t cb,
                void *ctx)
{
	memset(s, 0, sizeof(*s));
	s->c = c;
	s->max_msgs = max_msgs ? max_msgs : 1;
	s->want_ack = want_ack;
	s->cb = cb;
	s->ctx = ctx;
	s->limit = (size_t)s->max_msgs * CT_MSG_MAX;
	if (s->limit < (size_t)MNL_SOCKET_BUFFER_SIZE)
		s->limit = (size_t)MNL_SOCKET_BUFFER_SIZE;
	/* mnl_nlmsg_batch needs a buffer twice the limit */
	s->buf = calloc(2, s->limit);
	s->rbuf_len = 256 * 1024;
	s->rbuf = malloc(s->rbuf_len);
	if (!s->buf || !s->rbuf) {
		fprintf(stderr, "cttool: out of memory\n");
		sender_free(s);
		return -1;
	}
	s->b = mnl_nlmsg_batch_start(s->buf, s->limit);
	if (!s->b) {
		fprintf(stderr, "cttool: cannot start batch\n");
		sender_free(s);
		return -1;
	}
	set_sndbuf(mnl_socket_get_fd(c->nl), (int)(s->limit + 65536));
	return 0;
}

void sender_free(struct sender *s)
{
	if (s->b)
		mnl_nlmsg_batch_stop(s->b);
	free(s->buf);
	free(s->rbuf);
	s->b = NULL;
	s->buf = s->rbuf = NULL;
}

struct nlmsghdr *sender_cur(struct sender *s)
{
	return mnl_nlmsg_batch_current(s->b);
}

static bool seq_in_batch(const struct sender *s, uint32_t seq)
{
	return (uint32_t)(seq - s->seq_lo) <= (uint32_t)(s->seq_hi - s->seq_lo);
}

static void handle_replies(struct sender *s, const void *buf, size_t len, uint64_t *got)
{
	const struct nlmsghdr *nlh = buf;
	int rem = (int)len;

	while (mnl_nlmsg_ok(nlh, rem)) {
		if (nlh->nlmsg_type == NLMSG_ERROR &&
		    nlh->nlmsg_len >= mnl_nlmsg_size(sizeof(struct nlmsgerr))) {
			const struct nlmsgerr *e = mnl_nlmsg_get_payload(nlh);
			int err = -e->error;

			if (seq_in_batch(s, nlh->nlmsg_seq))
				(*got)++;
			if (err)
				s->errors++;
			else
				s->acks++;
			if (s->cb)
				s->cb(s->ctx, nlh->nlmsg_seq, err, err ? nl_extack_msg(nlh) : NULL);
		}
		nlh = mnl_nlmsg_next(nlh, &rem);
	}
}

/* Read error replies that are already queued, without blocking. */
static int drain_errors(struct sender *s, unsigned int max_iter)
{
	int fd = mnl_socket_get_fd(s->c->nl);
	uint64_t got = 0;
	unsigned int i;

	for (i = 0; i < max_iter; i++) {
		ssize_t r = recv(fd, s->rbuf, s->rbuf_len, MSG_DONTWAIT);

		if (r < 0) {
			if (errno == EAGAIN || errno == EWOULDBLOCK)
				return 0;
			if (errno == EINTR)
				continue;
			if (errno == ENOBUFS) {
				s->overruns++;
				continue;
			}
			fprintf(stderr, "cttool: recv failed: %s\n", strerror(errno));
			return -1;
		}
		if (r == 0)
			return 0;
		handle_replies(s, s->rbuf, (size_t)r, &got);
	}
	return 0;
}

static int wait_acks(struct sender *s, uint64_t n)
{
	int fd = mnl_socket_get_fd(s->c->nl);
	uint64_t got = 0, iter, max_iter = n * 2 + 64;

	for (iter = 0; got < n; iter++) {
		ssize_t r;

		if (iter >= max_iter) {
			fprintf(stderr, "cttool: got only %llu of %llu ACKs\n",
			        (unsigned long long)got, (unsigned long long)n);
			s->errors += n - got;
			return -1;
		}
		r = recv(fd, s->rbuf, s->rbuf_len, 0);
		if (r < 0) {
			if (errno == EINTR)
				continue;
			if (errno == ENOBUFS) {
				s->overruns++;
				fprintf(stderr, "cttool: receive buffer overrun, ACKs lost\n");
			} else if (errno == EAGAIN || errno == EWOULDBLOCK) {
				fprintf(stderr, "cttool: timeout waiting for %llu ACKs\n",
				        (unsigned long long)(n - got));
			} else {
				fprintf(stderr, "cttool: recv failed: %s\n", strerror(errno));
			}
			s->errors += n - got;
			return -1;
		}
		handle_replies(s, s->rbuf, (size_t)r, &got);
	}
	return 0;
}

/* Send what is in the batch (excluding an overflowed trailing message). */
static int sender_send(struct sender *s)
{
	const struct nlmsghdr *nlh = mnl_nlmsg_batch_head(s->b);
	size_t len = mnl_nlmsg_batch_size(s->b);
	int rem = (int)len;
	unsigned int n = 0;
	int ret = 0;

	if (len == 0)
		return 0;
	s->seq_lo = nlh->nlmsg_seq;
	while (mnl_nlmsg_ok(nlh, rem)) {
		s->seq_hi = nlh->nlmsg_seq;
		n++;
		nlh = mnl_nlmsg_next(nlh, &rem);
	}
	if (mnl_socket_sendto(s->c->nl, mnl_nlmsg_batch_head(s->b), len) < 0) {
		fprintf(stderr, "cttool: sendmsg of %u messages (%zu bytes) failed: %s\n", n, len,
		        strerror(errno));
		return -1;
	}
	s->sent += n;
	/* netlink requests to the kernel are processed synchronously in
	 * sendmsg(), so all replies for this batch are queued by now. */
	if (s->want_ack)
		ret = wait_acks(s, n);
	else
		ret = drain_errors(s, n + 64);
	mnl_nlmsg_batch_reset(s->b);
	return ret;
}

int sender_commit(struct sender *s)
{
	if (!mnl_nlmsg_batch_next(s->b)) {
		/* did not fit: send the others, reset moves it to the front */
		if (sender_send(s) < 0)
			return -1;
		s->nmsg = 1;
		return 0;
	}
	if (++s->nmsg >= s->max_msgs) {
		s->nmsg = 0;
		return sender_send(s);
	}
	return 0;
}

int sender_flush(struct sender *s)
{
	int ret = sender_send(s);

	s->nmsg = 0;
	if (ret == 0 && !s->want_ack)
		ret = drain_errors(s, 1024);
	return ret;
}

/* ---- main ---- */

static const struct {
	const char *name;
	int (*fn)(int, char **);
} commands[] = {
    {"dump", cmd_dump},   {"compare", cmd_compare},
    {"gen", cmd_gen},     {"count-events", cmd_count_events},
    {"mixed", cmd_mixed}, {"update-marks", cmd_update_marks},
};

int main(int argc, char **argv)
{
	size_t i;

	if (argc < 2) {
		usage(stderr);
		return EXIT_USAGE;
	}
	if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") || !strcmp(argv[1], "help")) {
		usage(stdout);
		return EXIT_OK;
	}
	for (i = 0; i < NELEM(commands); i++) {
		if (strcmp(argv[1], commands[i].name) == 0) {
			/* argv[1] becomes argv[0] of the subcommand */
			optind = 0;
			return commands[i].fn(argc - 1, argv + 1);
		}
	}
	fprintf(stderr, "hafw-cttool: unknown command '%s' (try --help)\n", argv[1]);
	return EXIT_USAGE;
}
