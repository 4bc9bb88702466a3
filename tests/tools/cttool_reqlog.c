/* Per-request bookkeeping for hafw-cttool (see cttool_reqlog.h). */
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

const char *const kind_names[K_ALL] = {
    "tcp4-established",
    "tcp4-syn_sent",
    "tcp4-fin_wait",
    "tcp4-time_wait",
    "tcp4-close_wait",
    "tcp6-established",
    "tcp6-syn_sent",
    "udp4",
    "udp6",
    "udplite4",
    "udplite6",
    "icmp4-echo",
    "icmp6-echo",
    "sctp4",
    "sctp6",
    "gre4",
    "dccp4",
    "proto253-v4",
    "proto253-v6",
    "ftp-master",
    "ftp-data-related",
    "expectation",
    "request",
};

int reqlog_init(struct req_log *l, const char *cmd, unsigned int ring_len)
{
	memset(l, 0, sizeof(*l));
	l->cmd = cmd;
	if (ring_len) {
		l->ring = calloc(ring_len, sizeof(*l->ring));
		if (!l->ring) {
			fprintf(stderr, "%s: out of memory\n", cmd);
			return -1;
		}
		l->ring_len = ring_len;
	}
	return 0;
}

void reqlog_free(struct req_log *l)
{
	free(l->ring);
	l->ring = NULL;
}

void reqlog_req(struct req_log *l, uint32_t seq, enum kind k, const char *fmt, ...)
{
	struct req_slot *s;
	va_list ap;

	if (!l->ring)
		return;
	s = &l->ring[seq % l->ring_len];
	s->seq = seq;
	s->kind = k;
	va_start(ap, fmt);
	vsnprintf(s->desc, sizeof(s->desc), fmt, ap);
	va_end(ap);
}

void reqlog_cb(void *ctx, uint32_t seq, int err, const char *extack)
{
	struct req_log *l = ctx;
	const struct req_slot *s = NULL;
	enum kind k = K_GENERIC;

	if (l->ring && l->ring[seq % l->ring_len].seq == seq) {
		s = &l->ring[seq % l->ring_len];
		k = s->kind;
	}
	if (!err) {
		l->ok[k]++;
		return;
	}
	if (l->fail[k]++ == 0) {
		l->first_err[k] = err;
		snprintf(l->first_extack[k], sizeof(l->first_extack[k]), "%s",
		         extack ? extack : "");
	}
	if (l->printed++ >= ERR_PRINT_MAX) {
		if (l->printed == ERR_PRINT_MAX + 1)
			fprintf(stderr, "%s: (further errors not shown)\n", l->cmd);
		return;
	}
	if (s)
		fprintf(stderr, "%s: %s rejected: %s%s%s\n", l->cmd, s->desc, strerror(err),
		        extack ? " - " : "", extack ? extack : "");
	else
		fprintf(stderr, "%s: request #%u rejected: %s%s%s\n", l->cmd, seq - l->seq_base,
		        strerror(err), extack ? " - " : "", extack ? extack : "");
}

/* Queue one flow create/update, remembering what it was. */
int send_ct(struct sender *s, struct req_log *log, struct nf_conntrack *ct, uint16_t flags,
            enum kind k, uint32_t idx)
{
	uint32_t seq = ++s->c->seq;
	struct nlmsghdr *nlh =
	    ct_msg_put_header(sender_cur(s), NFNL_SUBSYS_CTNETLINK, IPCTNL_MSG_CT_NEW, flags,
	                      nfct_get_attr_u8(ct, ATTR_ORIG_L3PROTO), seq);

	if (nfct_nlmsg_build(nlh, ct) < 0) {
		fprintf(stderr, "%s: cannot build message for %s #%u\n", log->cmd, kind_names[k],
		        idx);
		return -1;
	}
	reqlog_req(log, seq, k, "%s #%u", kind_names[k], idx);
	return sender_commit(s);
}
