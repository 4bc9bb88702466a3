/* Kernel connection tracker through ctnetlink.
 *
 * Three netlink sockets: one subscribed to conntrack and expectation
 * events, one for dumps, one for the sink. Keeping the dump and sink apart
 * from the event socket means a commit or dump never eats events, and
 * events caused by our own sink (same portid) are recognised and skipped:
 * a commit does not pay for its own events. */
#include "config.h"
#include "log.h"
#include "nfct_conv.h"
#include "tracker.h"

#include <errno.h>
#include <event2/event.h>
#include <libmnl/libmnl.h>
#include <arpa/inet.h>
#include <libnetfilter_conntrack/libnetfilter_conntrack.h>
#include <linux/netfilter/nfnetlink.h>
#include <linux/netfilter/nfnetlink_conntrack.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define BATCH_LIMIT       (128 * 1024)
#define BATCH_BUF         (BATCH_LIMIT + MNL_SOCKET_BUFFER_SIZE)
#define EV_READS_PER_TURN 64

enum {
	ERR_EEXIST,
	ERR_ENOENT,
	ERR_EINVAL,
	ERR_EBUSY,
	ERR_ENOMEM,
	ERR_EOPNOTSUPP,
	ERR_ENOSPC,
	ERR_OTHER,
	ERR_N
};
static const char *const err_names[ERR_N] = {
    "sink_err_eexist", "sink_err_enoent",     "sink_err_einval", "sink_err_ebusy",
    "sink_err_enomem", "sink_err_eopnotsupp", "sink_err_enospc", "sink_err_other"};

enum pend_kind { P_FLOW, P_FLOW_DEL, P_EXP };

struct pending {
	enum pend_kind kind;
	bool retried;
	union {
		struct hafw_flow flow;
		struct hafw_exp exp;
	} u;
};

struct tracker {
	struct mnl_socket *ev_nl, *dump_nl, *sink_nl;
	unsigned sink_portid, dump_portid;
	struct event *ev_read;
	const struct tracker_events *ev;
	void *arg;
	int rcvbuf, rcvbuf_max;

	/* sink batch */
	char *batch_buf;
	struct mnl_nlmsg_batch *batch;
	struct pending *pend;
	int *retry_list;
	unsigned npend, max_pend;
	uint32_t seq_base, seq;

	char *rxbuf;
	uint64_t ev_new, ev_update, ev_destroy, ev_exp_new, ev_exp_destroy, ev_own, ev_bad,
	    overruns, dumps, dump_flows, dump_exps, mutes, ev_superseded, sink_ok, sink_retries,
	    sink_err[ERR_N], rcvbuf_now;
};

static struct hafw_ratelimit rl_sink = HAFW_RATELIMIT_INIT(5, 5);
static struct hafw_ratelimit rl_parse = HAFW_RATELIMIT_INIT(5, 5);

static int err_index(int e)
{
	switch (e) {
	case EEXIST:
		return ERR_EEXIST;
	case ENOENT:
		return ERR_ENOENT;
	case EINVAL:
		return ERR_EINVAL;
	case EBUSY:
		return ERR_EBUSY;
	case ENOMEM:
		return ERR_ENOMEM;
	case EOPNOTSUPP:
		return ERR_EOPNOTSUPP;
	case ENOSPC:
		return ERR_ENOSPC;
	default:
		return ERR_OTHER;
	}
}

static int set_rcvbuf(struct mnl_socket *nl, int size)
{
	int fd = mnl_socket_get_fd(nl);

	/* FORCE bypasses rmem_max; we run as root (CAP_NET_ADMIN) */
	if (setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &size, sizeof(size)) < 0 &&
	    setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &size, sizeof(size)) < 0)
		return -errno;
	return 0;
}

static struct mnl_socket *open_nl(unsigned groups, unsigned *portid)
{
	struct mnl_socket *nl = mnl_socket_open2(NETLINK_NETFILTER, SOCK_CLOEXEC | SOCK_NONBLOCK);

	if (!nl)
		return NULL;
	if (mnl_socket_bind(nl, groups, MNL_SOCKET_AUTOPID) < 0) {
		mnl_socket_close(nl);
		return NULL;
	}
	if (portid)
		*portid = mnl_socket_get_portid(nl);
	return nl;
}

/* ---- source: events and dumps ---- */

static void deliver_flow(struct tracker *t, const struct nlmsghdr *nlh, enum hafw_event_type type)
{
	struct nf_conntrack *ct = nfct_new();
	struct hafw_flow f;

	if (!ct)
		return;
	if (nfct_nlmsg_parse(nlh, ct) < 0 || nfct_conv_flow_from(ct, &f) < 0) {
		t->ev_bad++;
		hafw_log_rl(&rl_parse, LOG_WARNING, "kernel: unparsable conntrack message");
	} else {
		t->ev->flow(t->arg, type, &f);
	}
	nfct_destroy(ct);
}

static void deliver_exp(struct tracker *t, const struct nlmsghdr *nlh, enum hafw_event_type type)
{
	struct nf_expect *exp = nfexp_new();
	struct hafw_exp e;

	if (!exp)
		return;
	if (nfexp_nlmsg_parse(nlh, exp) < 0 || nfct_conv_exp_from(exp, &e) < 0) {
		t->ev_bad++;
		hafw_log_rl(&rl_parse, LOG_WARNING, "kernel: unparsable expectation message");
	} else {
		t->ev->exp(t->arg, type, &e);
	}
	nfexp_destroy(exp);
}

static enum hafw_event_type msg_event_type(const struct nlmsghdr *nlh, bool del)
{
	if (del)
		return HAFW_EV_DESTROY;
	return (nlh->nlmsg_flags & (NLM_F_CREATE | NLM_F_EXCL)) ? HAFW_EV_NEW : HAFW_EV_UPDATE;
}

static int event_cb(const struct nlmsghdr *nlh, void *data)
{
	struct tracker *t = data;
	unsigned subsys = NFNL_SUBSYS_ID(nlh->nlmsg_type);
	unsigned type = NFNL_MSG_TYPE(nlh->nlmsg_type);
	enum hafw_event_type et;

	/* our own commit: the core already knows */
	if (nlh->nlmsg_pid && nlh->nlmsg_pid == t->sink_portid) {
		t->ev_own++;
		return MNL_CB_OK;
	}
	if (subsys == NFNL_SUBSYS_CTNETLINK &&
	    (type == IPCTNL_MSG_CT_NEW || type == IPCTNL_MSG_CT_DELETE)) {
		et = msg_event_type(nlh, type == IPCTNL_MSG_CT_DELETE);
		if (et == HAFW_EV_NEW)
			t->ev_new++;
		else if (et == HAFW_EV_UPDATE)
			t->ev_update++;
		else
			t->ev_destroy++;
		deliver_flow(t, nlh, et);
	} else if (subsys == NFNL_SUBSYS_CTNETLINK_EXP &&
	           (type == IPCTNL_MSG_EXP_NEW || type == IPCTNL_MSG_EXP_DELETE)) {
		et = type == IPCTNL_MSG_EXP_DELETE ? HAFW_EV_DESTROY : HAFW_EV_NEW;
		if (et == HAFW_EV_DESTROY)
			t->ev_exp_destroy++;
		else
			t->ev_exp_new++;
		deliver_exp(t, nlh, et);
	} else {
		t->ev_bad++;
	}
	return MNL_CB_OK;
}

static void on_overrun(struct tracker *t)
{
	t->overruns++;
	if (t->rcvbuf < t->rcvbuf_max) {
		t->rcvbuf = t->rcvbuf * 2 > t->rcvbuf_max ? t->rcvbuf_max : t->rcvbuf * 2;
		set_rcvbuf(t->ev_nl, t->rcvbuf);
		t->rcvbuf_now = t->rcvbuf;
	}
	hafw_log(LOG_WARNING,
	         "kernel: event socket overrun (events lost), buffer now %d bytes; "
	         "reconciling with a dump",
	         t->rcvbuf);
	t->ev->overrun(t->arg);
}

static void ev_readable(evutil_socket_t fd, short what, void *arg)
{
	struct tracker *t = arg;

	(void)fd;
	(void)what;
	for (int i = 0; i < EV_READS_PER_TURN; i++) {
		ssize_t n = mnl_socket_recvfrom(t->ev_nl, t->rxbuf, MNL_SOCKET_BUFFER_SIZE * 4);

		if (n < 0) {
			if (errno == ENOBUFS) {
				on_overrun(t);
				continue;
			}
			break; /* EAGAIN: drained */
		}
		mnl_cb_run(t->rxbuf, n, 0, 0, event_cb, t);
	}
}

static int dump_cb(const struct nlmsghdr *nlh, void *data)
{
	struct tracker *t = data;

	if (NFNL_SUBSYS_ID(nlh->nlmsg_type) == NFNL_SUBSYS_CTNETLINK) {
		t->dump_flows++;
		deliver_flow(t, nlh, HAFW_EV_NEW);
	} else {
		t->dump_exps++;
		deliver_exp(t, nlh, HAFW_EV_NEW);
	}
	return MNL_CB_OK;
}

static int wait_readable(struct mnl_socket *nl, int timeout_ms)
{
	struct timeval tv = {timeout_ms / 1000, (timeout_ms % 1000) * 1000};
	fd_set rfds;
	int fd = mnl_socket_get_fd(nl);

	FD_ZERO(&rfds);
	FD_SET(fd, &rfds);
	return select(fd + 1, &rfds, NULL, NULL, &tv);
}

static int dump_one(struct tracker *t, unsigned subsys, unsigned msg)
{
	char req[MNL_SOCKET_BUFFER_SIZE];
	struct nlmsghdr *nlh = mnl_nlmsg_put_header(req);
	struct nfgenmsg *nfh;
	uint32_t seq = (uint32_t)time(NULL);
	int ret;

	nlh->nlmsg_type = (subsys << 8) | msg;
	nlh->nlmsg_flags = NLM_F_REQUEST | NLM_F_DUMP;
	nlh->nlmsg_seq = seq;
	nfh = mnl_nlmsg_put_extra_header(nlh, sizeof(*nfh));
	nfh->nfgen_family = AF_UNSPEC;
	nfh->version = NFNETLINK_V0;
	if (mnl_socket_sendto(t->dump_nl, nlh, nlh->nlmsg_len) < 0)
		return -errno;
	/* A dump of millions of entries is finite; the time bound only guards
	 * against a kernel that stops answering. */
	for (;;) {
		ssize_t n = mnl_socket_recvfrom(t->dump_nl, t->rxbuf, MNL_SOCKET_BUFFER_SIZE * 4);

		if (n < 0 && errno == EAGAIN) {
			if (wait_readable(t->dump_nl, 5000) <= 0)
				return -ETIMEDOUT;
			continue;
		}
		if (n < 0)
			return -errno;
		ret = mnl_cb_run(t->rxbuf, n, seq, t->dump_portid, dump_cb, t);
		if (ret < 0)
			return -errno;
		if (ret == MNL_CB_STOP)
			return 0;
	}
}

/* Empty the event queue before a dump. The kernel reports ENOBUFS only
 * once per congestion episode and ends the episode only when the queue is
 * empty: dumping with events still queued would let drops during the dump
 * pass unreported. The queued events are older than the dump, which
 * supersedes them. */
static void drain_events(struct tracker *t)
{
	int fd = mnl_socket_get_fd(t->ev_nl);

	for (int i = 0; i < 10000000; i++) {
		ssize_t n = recv(fd, t->rxbuf, MNL_SOCKET_BUFFER_SIZE * 4, MSG_DONTWAIT);

		if (n < 0 && errno == ENOBUFS)
			continue;
		if (n <= 0)
			return;
		t->ev_superseded++;
	}
}

static int kernel_dump(struct tracker *t)
{
	int ret;

	drain_events(t);
	t->dumps++;
	ret = dump_one(t, NFNL_SUBSYS_CTNETLINK, IPCTNL_MSG_CT_GET);
	if (ret == 0)
		ret = dump_one(t, NFNL_SUBSYS_CTNETLINK_EXP, IPCTNL_MSG_EXP_GET);
	return ret;
}

/* ---- sink: batched writes ---- */

static void batch_reset(struct tracker *t)
{
	t->npend = 0;
	t->seq_base = t->seq;
}

static struct nlmsghdr *put_msg(struct tracker *t, unsigned subsys, unsigned msg, uint16_t flags,
                                uint8_t family)
{
	struct nlmsghdr *nlh = mnl_nlmsg_put_header(mnl_nlmsg_batch_current(t->batch));
	struct nfgenmsg *nfh;

	nlh->nlmsg_type = (subsys << 8) | msg;
	nlh->nlmsg_flags = NLM_F_REQUEST | flags;
	nlh->nlmsg_seq = t->seq++;
	nfh = mnl_nlmsg_put_extra_header(nlh, sizeof(*nfh));
	nfh->nfgen_family = family;
	nfh->version = NFNETLINK_V0;
	nfh->res_id = 0;
	return nlh;
}

/* NAT, master and helper can only be set when a flow is created; an update
 * of an existing flow that carries them is refused, so the retry drops
 * them and updates the rest. */
static int build_flow(struct tracker *t, const struct hafw_flow *f, bool update_only)
{
	struct nf_conntrack *ct = nfct_new();
	struct nlmsghdr *nlh;
	struct hafw_flow g;

	if (!ct)
		return -ENOMEM;
	if (update_only) {
		g = *f;
		g.present &= ~(HAFW_FA_MASTER | HAFW_FA_HELPER);
		f = &g;
	}
	nfct_conv_flow_to(f, ct);
	/* An existing flow is confirmed: the kernel refuses a status that
	 * would clear CONFIRMED or EXPECTED, and NAT bits are ignored. */
	if (update_only) {
		static const int nat_attrs[] = {ATTR_SNAT_IPV4, ATTR_SNAT_IPV6, ATTR_SNAT_PORT,
		                                ATTR_DNAT_IPV4, ATTR_DNAT_IPV6, ATTR_DNAT_PORT};
		for (size_t i = 0; i < sizeof(nat_attrs) / sizeof(nat_attrs[0]); i++)
			nfct_attr_unset(ct, nat_attrs[i]);
	}
	if (update_only && (f->present & HAFW_FA_STATUS))
		nfct_set_attr_u32(ct, ATTR_STATUS,
		                  (f->status | HAFW_IPS_CONFIRMED) &
		                      ~(HAFW_IPS_DYING | HAFW_IPS_TEMPLATE | HAFW_IPS_UNTRACKED |
		                        HAFW_IPS_OFFLOAD | HAFW_IPS_HW_OFFLOAD));
	nlh = put_msg(t, NFNL_SUBSYS_CTNETLINK, IPCTNL_MSG_CT_NEW, update_only ? 0 : NLM_F_CREATE,
	              f->orig.l3);
	nfct_nlmsg_build(nlh, ct);
	nfct_destroy(ct);
	return 0;
}

static int build_flow_del(struct tracker *t, const struct hafw_flow *f)
{
	struct nf_conntrack *ct = nfct_new();
	struct nlmsghdr *nlh;

	if (!ct)
		return -ENOMEM;
	nfct_conv_flow_key_to(f, ct);
	nlh = put_msg(t, NFNL_SUBSYS_CTNETLINK, IPCTNL_MSG_CT_DELETE, 0, f->orig.l3);
	nfct_nlmsg_build(nlh, ct);
	nfct_destroy(ct);
	return 0;
}

static void put_raw_tuple(struct nlmsghdr *nlh, int type, const struct hafw_tuple *tp)
{
	struct nlattr *outer = mnl_attr_nest_start(nlh, type), *in;
	int alen = hafw_tuple_addr_len(tp);

	in = mnl_attr_nest_start(nlh, CTA_TUPLE_IP);
	mnl_attr_put(nlh, alen == 4 ? CTA_IP_V4_SRC : CTA_IP_V6_SRC, alen, tp->src);
	mnl_attr_put(nlh, alen == 4 ? CTA_IP_V4_DST : CTA_IP_V6_DST, alen, tp->dst);
	mnl_attr_nest_end(nlh, in);
	in = mnl_attr_nest_start(nlh, CTA_TUPLE_PROTO);
	mnl_attr_put_u8(nlh, CTA_PROTO_NUM, tp->l4);
	mnl_attr_put_u16(nlh, CTA_PROTO_SRC_PORT, htons(tp->sport));
	mnl_attr_put_u16(nlh, CTA_PROTO_DST_PORT, htons(tp->dport));
	mnl_attr_nest_end(nlh, in);
	mnl_attr_nest_end(nlh, outer);
}

/* libnetfilter_conntrack 1.0.9 leaves class, expectfn and the NAT part of
 * an expectation out of the messages it builds; the kernel takes them. */
static void put_exp_extras(struct nlmsghdr *nlh, const struct hafw_exp *e)
{
	if (e->present & HAFW_EA_CLASS)
		mnl_attr_put_u32(nlh, CTA_EXPECT_CLASS, htonl(e->class_));
	if (e->present & HAFW_EA_FN)
		mnl_attr_put_strz(nlh, CTA_EXPECT_FN, e->fn);
	if (e->present & HAFW_EA_NAT) {
		struct nlattr *nest = mnl_attr_nest_start(nlh, CTA_EXPECT_NAT);

		mnl_attr_put_u32(nlh, CTA_EXPECT_NAT_DIR, htonl(e->nat_dir));
		put_raw_tuple(nlh, CTA_EXPECT_NAT_TUPLE, &e->nat_tuple);
		mnl_attr_nest_end(nlh, nest);
	}
}

static int build_exp(struct tracker *t, const struct hafw_exp *e)
{
	struct nf_expect *exp = nfexp_new();
	struct nlmsghdr *nlh;
	int ret;

	if (!exp)
		return -ENOMEM;
	ret = nfct_conv_exp_to(e, exp);
	if (ret == 0) {
		nlh = put_msg(t, NFNL_SUBSYS_CTNETLINK_EXP, IPCTNL_MSG_EXP_NEW, NLM_F_CREATE,
		              e->tuple.l3);
		nfexp_nlmsg_build(nlh, exp);
		put_exp_extras(nlh, e);
	}
	nfexp_destroy(exp);
	return ret;
}

static int build_pending(struct tracker *t, const struct pending *p, bool update_only)
{
	switch (p->kind) {
	case P_FLOW:
		return build_flow(t, &p->u.flow, update_only);
	case P_FLOW_DEL:
		return build_flow_del(t, &p->u.flow);
	case P_EXP:
		return build_exp(t, &p->u.exp);
	}
	return -EINVAL;
}

static int sink_send(struct tracker *t);

/* Queue one operation. The batch is sent first when it could not take
 * another message of the largest size, so a batch never overflows. */
#define MAX_MSG 4096

static int queue(struct tracker *t, const struct pending *p)
{
	int ret, fails = 0;

	if (t->npend >= t->max_pend || mnl_nlmsg_batch_size(t->batch) + MAX_MSG > BATCH_LIMIT) {
		fails = sink_send(t);
		if (fails < 0)
			return fails;
	}
	t->pend[t->npend] = *p;
	t->pend[t->npend].retried = false;
	ret = build_pending(t, p, false);
	if (ret)
		return ret;
	t->npend++;
	mnl_nlmsg_batch_next(t->batch);
	return fails;
}

static int handle_error(struct tracker *t, const struct nlmsghdr *nlh, int *retry_list, int *nretry)
{
	const struct nlmsgerr *err = mnl_nlmsg_get_payload(nlh);
	uint32_t idx;
	int e;

	if (nlh->nlmsg_len < mnl_nlmsg_size(sizeof(*err)))
		return 0;
	e = -err->error;
	if (e == 0)
		return 0;
	idx = err->msg.nlmsg_seq - t->seq_base;
	if (idx < t->npend && t->pend[idx].kind == P_FLOW && !t->pend[idx].retried &&
	    (e == EOPNOTSUPP || e == EBUSY || e == EEXIST)) {
		t->pend[idx].retried = true;
		retry_list[(*nretry)++] = (int)idx;
		return 0;
	}
	t->sink_err[err_index(e)]++;
	if (idx < t->npend && hafw_ratelimit_ok(&rl_sink)) {
		const struct pending *p = &t->pend[idx];
		char tuple[160];

		hafw_tuple_format(p->kind == P_EXP ? &p->u.exp.tuple : &p->u.flow.orig, tuple,
		                  sizeof(tuple));
		hafw_log(LOG_WARNING, "kernel: %s %s refused: %s",
		         p->kind == P_EXP ? "expectation" : "flow",
		         p->kind == P_FLOW_DEL ? "delete of" : tuple, strerror(e));
	}
	return 1;
}

static int drain_errors(struct tracker *t, int *retry_list, int *nretry)
{
	int fails = 0;

	for (int i = 0; i < 100000; i++) {
		ssize_t n = recv(mnl_socket_get_fd(t->sink_nl), t->rxbuf,
		                 MNL_SOCKET_BUFFER_SIZE * 4, MSG_DONTWAIT);
		const struct nlmsghdr *nlh;
		int len;

		if (n <= 0)
			break;
		len = (int)n;
		for (nlh = (const struct nlmsghdr *)t->rxbuf; mnl_nlmsg_ok(nlh, len);
		     nlh = mnl_nlmsg_next(nlh, &len))
			if (nlh->nlmsg_type == NLMSG_ERROR)
				fails += handle_error(t, nlh, retry_list, nretry);
	}
	return fails;
}

/* Send the batch; the kernel handles the messages inside sendmsg(), so
 * every error reply is queued on our socket when it returns. */
static int sink_send(struct tracker *t)
{
	size_t len = mnl_nlmsg_batch_size(t->batch);
	int fails = 0, nretry = 0;
	int *retry_list = t->retry_list;
	unsigned sent = t->npend;

	if (len > 0) {
		if (mnl_socket_sendto(t->sink_nl, mnl_nlmsg_batch_head(t->batch), len) < 0) {
			int e = errno;
			t->sink_err[err_index(e)] += t->npend;
			hafw_log_rl(&rl_sink, LOG_ERR, "kernel: batch send failed: %s",
			            strerror(e));
			mnl_nlmsg_batch_reset(t->batch);
			batch_reset(t);
			return (int)sent;
		}
		fails = drain_errors(t, retry_list, &nretry);
	}
	mnl_nlmsg_batch_reset(t->batch);
	if (nretry) {
		/* resend the refused creates as updates, one small batch */
		struct pending *again = malloc(sizeof(*again) * nretry);

		if (!again)
			return fails + nretry;
		for (int i = 0; i < nretry; i++)
			again[i] = t->pend[retry_list[i]];
		batch_reset(t);
		for (int i = 0; i < nretry; i++) {
			t->pend[t->npend++] = again[i];
			build_pending(t, &again[i], true);
			mnl_nlmsg_batch_next(t->batch);
		}
		free(again);
		t->sink_retries += nretry;
		len = mnl_nlmsg_batch_size(t->batch);
		if (mnl_socket_sendto(t->sink_nl, mnl_nlmsg_batch_head(t->batch), len) >= 0)
			fails += drain_errors(t, retry_list, &nretry);
		else
			fails += nretry;
		mnl_nlmsg_batch_reset(t->batch);
	}
	t->sink_ok += sent - (unsigned)fails;
	batch_reset(t);
	return fails;
}

static int kernel_put_flow(struct tracker *t, const struct hafw_flow *f)
{
	struct pending p = {.kind = P_FLOW};

	p.u.flow = *f;
	return queue(t, &p);
}

static int kernel_del_flow(struct tracker *t, const struct hafw_flow *f)
{
	struct pending p = {.kind = P_FLOW_DEL};

	p.u.flow = *f;
	return queue(t, &p);
}

static int kernel_put_exp(struct tracker *t, const struct hafw_exp *e)
{
	struct pending p = {.kind = P_EXP};

	p.u.exp = *e;
	return queue(t, &p);
}

static int kernel_sink_flush(struct tracker *t)
{
	return sink_send(t);
}

static const unsigned ev_groups[] = {
    NFNLGRP_CONNTRACK_NEW,     NFNLGRP_CONNTRACK_UPDATE,      NFNLGRP_CONNTRACK_DESTROY,
    NFNLGRP_CONNTRACK_EXP_NEW, NFNLGRP_CONNTRACK_EXP_DESTROY,
};

static int kernel_mute_events(struct tracker *t, bool mute)
{
	int fd = mnl_socket_get_fd(t->ev_nl);

	for (size_t i = 0; i < sizeof(ev_groups) / sizeof(ev_groups[0]); i++) {
		unsigned g = ev_groups[i];

		if (setsockopt(fd, SOL_NETLINK,
		               mute ? NETLINK_DROP_MEMBERSHIP : NETLINK_ADD_MEMBERSHIP, &g,
		               sizeof(g)) < 0)
			return -errno;
	}
	if (mute)
		t->mutes++;
	return 0;
}

static int kernel_stats(struct tracker *t, struct tracker_stat *out, int max)
{
	struct tracker_stat all[] = {
	    {"events_new", t->ev_new},
	    {"events_update", t->ev_update},
	    {"events_destroy", t->ev_destroy},
	    {"events_exp_new", t->ev_exp_new},
	    {"events_exp_destroy", t->ev_exp_destroy},
	    {"events_own_skipped", t->ev_own},
	    {"events_unparsable", t->ev_bad},
	    {"netlink_overruns", t->overruns},
	    {"netlink_rcvbuf", t->rcvbuf_now},
	    {"dumps", t->dumps},
	    {"event_mutes", t->mutes},
	    {"event_reads_superseded_by_dump", t->ev_superseded},
	    {"dump_flows", t->dump_flows},
	    {"dump_expectations", t->dump_exps},
	    {"sink_ok", t->sink_ok},
	    {"sink_retried_as_update", t->sink_retries},
	};
	int n = 0;

	for (size_t i = 0; i < sizeof(all) / sizeof(all[0]) && n < max; i++)
		out[n++] = all[i];
	for (int i = 0; i < ERR_N && n < max; i++)
		out[n++] = (struct tracker_stat){err_names[i], t->sink_err[i]};
	return n;
}

static void kernel_close(struct tracker *t)
{
	if (!t)
		return;
	if (t->ev_read)
		event_free(t->ev_read);
	if (t->ev_nl)
		mnl_socket_close(t->ev_nl);
	if (t->dump_nl)
		mnl_socket_close(t->dump_nl);
	if (t->sink_nl)
		mnl_socket_close(t->sink_nl);
	if (t->batch)
		mnl_nlmsg_batch_stop(t->batch);
	free(t->batch_buf);
	free(t->pend);
	free(t->retry_list);
	free(t->rxbuf);
	free(t);
}

static int kernel_open(struct tracker **out, const struct hafw_config *cfg, struct event_base *base,
                       const struct tracker_events *ev, void *arg)
{
	struct tracker *t = calloc(1, sizeof(*t));
	unsigned groups = NF_NETLINK_CONNTRACK_NEW | NF_NETLINK_CONNTRACK_UPDATE |
	                  NF_NETLINK_CONNTRACK_DESTROY | NF_NETLINK_CONNTRACK_EXP_NEW |
	                  NF_NETLINK_CONNTRACK_EXP_DESTROY;
	int ret = -ENOMEM, one = 1;

	if (!t)
		return -ENOMEM;
	t->ev = ev;
	t->arg = arg;
	t->rcvbuf = cfg->nl_rcvbuf;
	t->rcvbuf_max = cfg->nl_rcvbuf_max;
	t->rcvbuf_now = t->rcvbuf;
	t->seq = (uint32_t)time(NULL);
	t->batch_buf = malloc(BATCH_BUF);
	/* messages per sendmsg: tracker.commit_batch, within BATCH_LIMIT bytes */
	t->max_pend = (unsigned)cfg->commit_batch;
	t->pend = malloc(sizeof(*t->pend) * t->max_pend);
	t->retry_list = malloc(sizeof(*t->retry_list) * t->max_pend);
	t->rxbuf = malloc(MNL_SOCKET_BUFFER_SIZE * 4);
	if (!t->batch_buf || !t->pend || !t->retry_list || !t->rxbuf)
		goto err;
	t->batch = mnl_nlmsg_batch_start(t->batch_buf, BATCH_LIMIT);
	batch_reset(t);
	ret = -errno;
	t->ev_nl = open_nl(groups, NULL);
	t->dump_nl = open_nl(0, &t->dump_portid);
	t->sink_nl = open_nl(0, &t->sink_portid);
	if (!t->ev_nl || !t->dump_nl || !t->sink_nl) {
		ret = -errno;
		goto err;
	}
	ret = set_rcvbuf(t->ev_nl, t->rcvbuf);
	if (ret)
		goto err;
	set_rcvbuf(t->dump_nl, 8 << 20);
	set_rcvbuf(t->sink_nl, 8 << 20);
	/* refusals of the sink come with the kernel's reason (extended ACK) */
	setsockopt(mnl_socket_get_fd(t->sink_nl), SOL_NETLINK, NETLINK_EXT_ACK, &one, sizeof(one));
	t->ev_read =
	    event_new(base, mnl_socket_get_fd(t->ev_nl), EV_READ | EV_PERSIST, ev_readable, t);
	if (!t->ev_read || event_add(t->ev_read, NULL) < 0) {
		ret = -ENOMEM;
		goto err;
	}
	*out = t;
	return 0;
err:
	kernel_close(t);
	return ret;
}

const struct tracker_ops tracker_kernel_ops = {
    .name = "kernel",
    .open = kernel_open,
    .close = kernel_close,
    .dump = kernel_dump,
    .put_flow = kernel_put_flow,
    .del_flow = kernel_del_flow,
    .put_exp = kernel_put_exp,
    .sink_flush = kernel_sink_flush,
    .mute_events = kernel_mute_events,
    .stats = kernel_stats,
};
