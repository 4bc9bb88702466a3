/* Kernel tracker: the sink. Operations are queued into one netlink batch;
 * a full batch leaves inside put_*, the rest by sink_flush(). The kernel
 * handles a batch inside sendmsg(), so every refusal is already queued on
 * the socket when it returns and is read at once, a bounded number of
 * reads. Creates refused because the flow exists (or is busy, or carries
 * what only a create may) are sent again as updates, once. Refusals are
 * counted by cause and reported by sink_done on a later turn. */
#include "log.h"
#include "nfct_conv.h"
#include "tracker_kernel_int.h"

#include <arpa/inet.h>
#include <errno.h>
#include <event2/event.h>
#include <libnetfilter_conntrack/libnetfilter_conntrack.h>
#include <linux/netfilter/nfnetlink.h>
#include <linux/netfilter/nfnetlink_conntrack.h>
#include <stdlib.h>
#include <string.h>

#define BATCH_LIMIT (128 * 1024)
#define BATCH_BUF   (BATCH_LIMIT + MNL_SOCKET_BUFFER_SIZE)
/* The batch is sent first when it could not take another message of the
 * largest size, so it never overflows. */
#define MAX_MSG     4096
#define SINK_RCVBUF (8 << 20)
/* one refusal per read, without the request echoed (NETLINK_CAP_ACK) */
#define SINK_RXBUF MNL_SOCKET_BUFFER_SIZE

const char *const kt_sink_err_names[KT_ERR_N] = {
    "sink_err_eexist", "sink_err_enoent",     "sink_err_einval", "sink_err_ebusy",
    "sink_err_enomem", "sink_err_eopnotsupp", "sink_err_enospc", "sink_err_other"};

static struct hafw_ratelimit rl_sink = HAFW_RATELIMIT_INIT(5, 5);

static int err_index(int e)
{
	switch (e) {
	case EEXIST:
		return KT_ERR_EEXIST;
	case ENOENT:
		return KT_ERR_ENOENT;
	case EINVAL:
		return KT_ERR_EINVAL;
	case EBUSY:
		return KT_ERR_EBUSY;
	case ENOMEM:
		return KT_ERR_ENOMEM;
	case EOPNOTSUPP:
		return KT_ERR_EOPNOTSUPP;
	case ENOSPC:
		return KT_ERR_ENOSPC;
	default:
		return KT_ERR_OTHER;
	}
}

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

static int build_pending(struct tracker *t, const struct kt_pending *p, bool update_only)
{
	return p->kind == KT_P_EXP ? build_exp(t, &p->u.exp)
	                           : build_flow(t, &p->u.flow, update_only);
}

/* A refused create of a flow is queued for the retry; anything else is
 * counted. Returns 1 for a refusal that stands. */
static int handle_error(struct tracker *t, const struct nlmsghdr *nlh, int *nretry)
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
	if (idx < t->npend && t->pend[idx].kind == KT_P_FLOW && !t->pend[idx].retried &&
	    (e == EOPNOTSUPP || e == EBUSY || e == EEXIST)) {
		t->pend[idx].retried = true;
		t->retry_list[(*nretry)++] = (int)idx;
		return 0;
	}
	t->st.sink_err[err_index(e)]++;
	if (idx < t->npend && hafw_ratelimit_ok(&rl_sink)) {
		const struct kt_pending *p = &t->pend[idx];
		char tuple[160];

		hafw_tuple_format(p->kind == KT_P_EXP ? &p->u.exp.tuple : &p->u.flow.orig, tuple,
		                  sizeof(tuple));
		hafw_log(LOG_WARNING, "kernel: %s %s refused: %s",
		         p->kind == KT_P_EXP ? "expectation" : "flow", tuple, strerror(e));
	}
	return 1;
}

/* Every refusal of the batch just sent is queued already, one skb each:
 * at most npend reads (and a few for luck) empty the socket. */
static int drain_errors(struct tracker *t, int *nretry)
{
	int fd = mnl_socket_get_fd(t->sink_nl);
	int fails = 0;

	for (unsigned i = 0; i < t->npend + 8; i++) {
		ssize_t n = recv(fd, t->sink_rxbuf, SINK_RXBUF, MSG_DONTWAIT);
		const struct nlmsghdr *nlh;
		int len;

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == ENOBUFS) {
			/* refusals were dropped; how many is unknown */
			t->st.sink_reports_lost++;
			hafw_log_rl(&rl_sink, LOG_ERR,
			            "kernel: sink refusals lost (socket overrun)");
			continue;
		}
		if (n <= 0)
			break;
		len = (int)n;
		for (nlh = (const struct nlmsghdr *)t->sink_rxbuf; mnl_nlmsg_ok(nlh, len);
		     nlh = mnl_nlmsg_next(nlh, &len))
			if (nlh->nlmsg_type == NLMSG_ERROR)
				fails += handle_error(t, nlh, nretry);
	}
	return fails;
}

static int batch_send(struct tracker *t)
{
	size_t len = mnl_nlmsg_batch_size(t->batch);
	int ret = 0;

	if (len && mnl_socket_sendto(t->sink_nl, mnl_nlmsg_batch_head(t->batch), len) < 0) {
		ret = -errno;
		t->st.sink_err[err_index(errno)] += t->npend;
		hafw_log_rl(&rl_sink, LOG_ERR, "kernel: batch send failed: %s", strerror(-ret));
	}
	mnl_nlmsg_batch_reset(t->batch);
	return ret;
}

/* Send the queued batch and the retries it needs; returns the number of
 * operations refused. */
static unsigned sink_send(struct tracker *t)
{
	unsigned sent = t->npend, fails = 0;
	int nretry = 0;

	if (!sent)
		return 0;
	if (batch_send(t) < 0) {
		batch_reset(t);
		return sent;
	}
	fails = (unsigned)drain_errors(t, &nretry);
	if (nretry) {
		struct kt_pending *tmp;

		/* resend the refused creates as updates, one small batch */
		for (int i = 0; i < nretry; i++)
			t->again[i] = t->pend[t->retry_list[i]];
		tmp = t->pend;
		t->pend = t->again;
		t->again = tmp;
		batch_reset(t);
		for (int i = 0; i < nretry; i++) {
			build_pending(t, &t->pend[i], true);
			mnl_nlmsg_batch_next(t->batch);
		}
		t->npend = (unsigned)nretry;
		t->st.sink_retries += (unsigned)nretry;
		if (batch_send(t) < 0)
			fails += (unsigned)nretry;
		else
			fails += (unsigned)drain_errors(t, &nretry);
	}
	t->st.sink_ok += sent - fails;
	batch_reset(t);
	return fails;
}

static int queue(struct tracker *t, const struct kt_pending *p)
{
	int ret;

	if (t->npend >= t->max_pend || mnl_nlmsg_batch_size(t->batch) + MAX_MSG > BATCH_LIMIT)
		t->sink_failed += sink_send(t);
	t->pend[t->npend] = *p;
	t->pend[t->npend].retried = false;
	ret = build_pending(t, p, false);
	if (ret) {
		t->st.sink_err[err_index(-ret)]++;
		return ret;
	}
	t->npend++;
	mnl_nlmsg_batch_next(t->batch);
	return 0;
}

int kt_put_flow(struct tracker *t, const struct hafw_flow *f)
{
	struct kt_pending p = {.kind = KT_P_FLOW};

	p.u.flow = *f;
	return queue(t, &p);
}

int kt_put_exp(struct tracker *t, const struct hafw_exp *e)
{
	struct kt_pending p = {.kind = KT_P_EXP};

	p.u.exp = *e;
	return queue(t, &p);
}

int kt_sink_flush(struct tracker *t)
{
	static const struct timeval now = {0, 0};

	t->sink_failed += sink_send(t);
	t->sink_flushes++;
	evtimer_add(t->sink_ev, &now);
	return 0;
}

static void sink_done(evutil_socket_t fd, short what, void *arg)
{
	struct tracker *t = arg;
	unsigned failed = t->sink_failed;

	(void)fd;
	(void)what;
	if (!t->sink_flushes)
		return;
	t->sink_failed = 0;
	/* one answer per flush, one per turn */
	if (--t->sink_flushes) {
		static const struct timeval now = {0, 0};

		evtimer_add(t->sink_ev, &now);
	}
	t->ev->sink_done(t->arg, failed);
}

int kt_sink_init(struct tracker *t, unsigned max_pend)
{
	int one = 1;

	t->seq = 1;
	t->max_pend = max_pend ? max_pend : 1;
	t->batch_buf = malloc(BATCH_BUF);
	t->pend = malloc(sizeof(*t->pend) * t->max_pend);
	t->again = malloc(sizeof(*t->again) * t->max_pend);
	t->retry_list = malloc(sizeof(*t->retry_list) * t->max_pend);
	t->sink_rxbuf = malloc(SINK_RXBUF);
	if (!t->batch_buf || !t->pend || !t->again || !t->retry_list || !t->sink_rxbuf)
		return -ENOMEM;
	t->batch = mnl_nlmsg_batch_start(t->batch_buf, BATCH_LIMIT);
	if (!t->batch)
		return -ENOMEM;
	batch_reset(t);
	t->sink_nl = kt_open_nl(0, &t->sink_portid);
	if (!t->sink_nl)
		return -errno;
	kt_set_rcvbuf(t->sink_nl, SINK_RCVBUF);
	/* refusals come with the kernel's reason (extended ACK) but without
	 * an echo of the request: the header names it, and more fit the
	 * buffer */
	setsockopt(mnl_socket_get_fd(t->sink_nl), SOL_NETLINK, NETLINK_EXT_ACK, &one, sizeof(one));
	setsockopt(mnl_socket_get_fd(t->sink_nl), SOL_NETLINK, NETLINK_CAP_ACK, &one, sizeof(one));
	t->sink_ev = evtimer_new(t->base, sink_done, t);
	if (!t->sink_ev)
		return -ENOMEM;
	return 0;
}

void kt_sink_fini(struct tracker *t)
{
	if (t->sink_ev)
		event_free(t->sink_ev);
	if (t->sink_nl)
		mnl_socket_close(t->sink_nl);
	if (t->batch)
		mnl_nlmsg_batch_stop(t->batch);
	free(t->batch_buf);
	free(t->pend);
	free(t->again);
	free(t->retry_list);
	free(t->sink_rxbuf);
	t->sink_rxbuf = NULL;
	t->sink_ev = NULL;
	t->sink_nl = NULL;
	t->batch = NULL;
	t->batch_buf = NULL;
	t->pend = t->again = NULL;
	t->retry_list = NULL;
}
