/* Kernel connection tracker through ctnetlink.
 *
 * Four netlink sockets: one subscribed to conntrack and expectation events,
 * one for dumps, one for single-flow reads and one for the sink. Keeping
 * dumps, reads and the sink apart from the event socket means none of them
 * eats events or another's answers, and events caused by our own sink
 * (same portid) are recognised and skipped: a commit does not pay for its
 * own events.
 *
 * This file: events, the timeout sysctls, open/close and the ops table.
 * Dumps and reads are in tracker_kernel_dump.c, the sink in
 * tracker_kernel_sink.c. */
#include "config.h"
#include "log.h"
#include "nfct_conv.h"
#include "tracker_kernel_int.h"

#include <errno.h>
#include <event2/event.h>
#include <fcntl.h>
#include <libnetfilter_conntrack/libnetfilter_conntrack.h>
#include <linux/netfilter/nfnetlink.h>
#include <linux/netfilter/nfnetlink_conntrack.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define EV_READS_PER_TURN 64
#define SYSCTL_MAX_AGE_MS 5000
#define SYSCTL_DIR        "/proc/sys/net/netfilter/"
#define ARRAY_SIZE(a)     (sizeof(a) / sizeof((a)[0]))

static struct hafw_ratelimit rl_parse = HAFW_RATELIMIT_INIT(5, 5);
static struct hafw_ratelimit rl_overrun = HAFW_RATELIMIT_INIT(10, 1);

uint64_t kt_elapsed_ms(const struct timespec *since)
{
	struct timespec now;
	int64_t ms;

	clock_gettime(CLOCK_MONOTONIC, &now);
	ms =
	    (int64_t)(now.tv_sec - since->tv_sec) * 1000 + (now.tv_nsec - since->tv_nsec) / 1000000;
	return ms < 0 ? 0 : (uint64_t)ms;
}

int kt_set_rcvbuf(struct mnl_socket *nl, int size)
{
	int fd = mnl_socket_get_fd(nl);

	/* FORCE bypasses rmem_max; we run as root (CAP_NET_ADMIN) */
	if (setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &size, sizeof(size)) < 0 &&
	    setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &size, sizeof(size)) < 0)
		return -errno;
	return 0;
}

struct mnl_socket *kt_open_nl(unsigned groups, unsigned *portid)
{
	struct mnl_socket *nl = mnl_socket_open2(NETLINK_NETFILTER, SOCK_CLOEXEC | SOCK_NONBLOCK);

	if (!nl)
		return NULL;
	if (mnl_socket_bind(nl, groups, MNL_SOCKET_AUTOPID) < 0) {
		int e = errno;

		mnl_socket_close(nl);
		errno = e;
		return NULL;
	}
	if (portid)
		*portid = mnl_socket_get_portid(nl);
	return nl;
}

/* ---- events ---- */

/* An event tells only what changed; a dump entry or a GET answer is the
 * whole flow (what it lacks, it does not have): nfct_conv marks absent
 * labels and helper accordingly. */
int kt_parse_flow(struct tracker *t, const struct nlmsghdr *nlh, struct hafw_flow *f, bool snapshot)
{
	int ret = nfct_conv_flow_parse(nlh, snapshot ? NFCT_CONV_SNAPSHOT : NFCT_CONV_EVENT, f);

	if (ret < 0) {
		t->st.ev_bad++;
		hafw_log_rl(&rl_parse, LOG_WARNING, "kernel: unparsable conntrack message");
		return -EINVAL;
	}
	return 0;
}

int kt_parse_exp(struct tracker *t, const struct nlmsghdr *nlh, struct hafw_exp *e)
{
	struct nf_expect *exp = nfexp_new();
	int ret = 0;

	if (!exp)
		return -ENOMEM;
	if (nfexp_nlmsg_parse(nlh, exp) < 0 || nfct_conv_exp_from(exp, e) < 0) {
		t->st.ev_bad++;
		hafw_log_rl(&rl_parse, LOG_WARNING, "kernel: unparsable expectation message");
		ret = -EINVAL;
	}
	nfexp_destroy(exp);
	return ret;
}

static enum hafw_event_type msg_event_type(const struct nlmsghdr *nlh, bool del)
{
	if (del)
		return HAFW_EV_DESTROY;
	return (nlh->nlmsg_flags & (NLM_F_CREATE | NLM_F_EXCL)) ? HAFW_EV_NEW : HAFW_EV_UPDATE;
}

static void event_msg(struct tracker *t, const struct nlmsghdr *nlh)
{
	unsigned subsys = NFNL_SUBSYS_ID(nlh->nlmsg_type);
	unsigned type = NFNL_MSG_TYPE(nlh->nlmsg_type);
	enum hafw_event_type et;

	/* our own commit: the core already knows */
	if (nlh->nlmsg_pid && nlh->nlmsg_pid == t->sink_portid) {
		t->st.ev_own++;
		return;
	}
	if (subsys == NFNL_SUBSYS_CTNETLINK &&
	    (type == IPCTNL_MSG_CT_NEW || type == IPCTNL_MSG_CT_DELETE)) {
		struct hafw_flow f;

		et = msg_event_type(nlh, type == IPCTNL_MSG_CT_DELETE);
		if (et == HAFW_EV_NEW)
			t->st.ev_new++;
		else if (et == HAFW_EV_UPDATE)
			t->st.ev_update++;
		else
			t->st.ev_destroy++;
		if (kt_parse_flow(t, nlh, &f, false) == 0)
			t->ev->flow(t->arg, et, &f);
	} else if (subsys == NFNL_SUBSYS_CTNETLINK_EXP &&
	           (type == IPCTNL_MSG_EXP_NEW || type == IPCTNL_MSG_EXP_DELETE)) {
		struct hafw_exp e;

		et = type == IPCTNL_MSG_EXP_DELETE ? HAFW_EV_DESTROY : HAFW_EV_NEW;
		if (et == HAFW_EV_DESTROY)
			t->st.ev_exp_destroy++;
		else
			t->st.ev_exp_new++;
		if (kt_parse_exp(t, nlh, &e) == 0)
			t->ev->exp(t->arg, et, &e);
	} else {
		t->st.ev_bad++;
	}
}

/* Counted and the buffer grown on every overrun; the warning is
 * rate-limited because an event storm overruns again and again. */
void kt_note_overrun(struct tracker *t)
{
	t->st.overruns++;
	if (t->rcvbuf < t->rcvbuf_max) {
		t->rcvbuf = t->rcvbuf > t->rcvbuf_max / 2 ? t->rcvbuf_max : t->rcvbuf * 2;
		kt_set_rcvbuf(t->ev_nl, t->rcvbuf);
		t->st.rcvbuf_now = (uint64_t)t->rcvbuf;
	}
	hafw_log_rl(&rl_overrun, LOG_WARNING,
	            "kernel: event socket overrun (events lost), buffer now %d bytes; "
	            "reconciling with a dump",
	            t->rcvbuf);
}

static void ev_readable(evutil_socket_t fd, short what, void *arg)
{
	struct tracker *t = arg;

	(void)what;
	/* A callback may start a dump: from then on the events still queued
	 * belong after its dump_done, so reading stops at once. */
	for (int i = 0; i < EV_READS_PER_TURN && t->phase == KT_DUMP_IDLE; i++) {
		ssize_t n = recv(fd, t->rxbuf, KT_RXBUF, MSG_DONTWAIT);
		const struct nlmsghdr *nlh;
		int len;

		if (n < 0) {
			if (errno == EINTR)
				continue;
			if (errno == ENOBUFS) {
				kt_note_overrun(t);
				t->ev->overrun(t->arg);
				continue;
			}
			break; /* EAGAIN: drained */
		}
		len = (int)n;
		for (nlh = (const struct nlmsghdr *)t->rxbuf; mnl_nlmsg_ok(nlh, len);
		     nlh = mnl_nlmsg_next(nlh, &len)) {
			/* older than the dump just started, which has them */
			if (t->phase != KT_DUMP_IDLE) {
				t->st.ev_superseded++;
				continue;
			}
			event_msg(t, nlh);
		}
	}
}

void kt_events_pause(struct tracker *t)
{
	event_del(t->ev_read);
}

void kt_events_resume(struct tracker *t)
{
	event_add(t->ev_read, NULL);
}

static const unsigned ev_groups[] = {
    NFNLGRP_CONNTRACK_NEW,     NFNLGRP_CONNTRACK_UPDATE,      NFNLGRP_CONNTRACK_DESTROY,
    NFNLGRP_CONNTRACK_EXP_NEW, NFNLGRP_CONNTRACK_EXP_DESTROY,
};

static int kernel_mute_events(struct tracker *t, bool mute)
{
	int fd = mnl_socket_get_fd(t->ev_nl);

	for (size_t i = 0; i < ARRAY_SIZE(ev_groups); i++) {
		unsigned g = ev_groups[i];

		if (setsockopt(fd, SOL_NETLINK,
		               mute ? NETLINK_DROP_MEMBERSHIP : NETLINK_ADD_MEMBERSHIP, &g,
		               sizeof(g)) < 0)
			return -errno;
	}
	if (mute)
		t->st.mutes++;
	return 0;
}

/* ---- the namespace's timeouts ---- */

static const char *const timeout_files[KT_TO_N] = {
    [KT_TO_TCP_SYN_SENT] = "nf_conntrack_tcp_timeout_syn_sent",
    [KT_TO_TCP_SYN_RECV] = "nf_conntrack_tcp_timeout_syn_recv",
    [KT_TO_TCP_ESTABLISHED] = "nf_conntrack_tcp_timeout_established",
    [KT_TO_TCP_FIN_WAIT] = "nf_conntrack_tcp_timeout_fin_wait",
    [KT_TO_TCP_CLOSE_WAIT] = "nf_conntrack_tcp_timeout_close_wait",
    [KT_TO_TCP_LAST_ACK] = "nf_conntrack_tcp_timeout_last_ack",
    [KT_TO_TCP_TIME_WAIT] = "nf_conntrack_tcp_timeout_time_wait",
    [KT_TO_TCP_CLOSE] = "nf_conntrack_tcp_timeout_close",
    [KT_TO_UDP] = "nf_conntrack_udp_timeout",
    [KT_TO_UDP_STREAM] = "nf_conntrack_udp_timeout_stream",
    [KT_TO_ICMP] = "nf_conntrack_icmp_timeout",
    [KT_TO_ICMPV6] = "nf_conntrack_icmpv6_timeout",
    [KT_TO_SCTP_CLOSED] = "nf_conntrack_sctp_timeout_closed",
    [KT_TO_SCTP_COOKIE_WAIT] = "nf_conntrack_sctp_timeout_cookie_wait",
    [KT_TO_SCTP_COOKIE_ECHOED] = "nf_conntrack_sctp_timeout_cookie_echoed",
    [KT_TO_SCTP_ESTABLISHED] = "nf_conntrack_sctp_timeout_established",
    [KT_TO_SCTP_SHUTDOWN_SENT] = "nf_conntrack_sctp_timeout_shutdown_sent",
    [KT_TO_SCTP_SHUTDOWN_RECD] = "nf_conntrack_sctp_timeout_shutdown_recd",
    [KT_TO_SCTP_SHUTDOWN_ACK_SENT] = "nf_conntrack_sctp_timeout_shutdown_ack_sent",
    [KT_TO_SCTP_HEARTBEAT_SENT] = "nf_conntrack_sctp_timeout_heartbeat_sent",
    [KT_TO_SCTP_HEARTBEAT_ACKED] = "nf_conntrack_sctp_timeout_heartbeat_acked",
    [KT_TO_GRE] = "nf_conntrack_gre_timeout",
    [KT_TO_GRE_STREAM] = "nf_conntrack_gre_timeout_stream",
    [KT_TO_DCCP_REQUEST] = "nf_conntrack_dccp_timeout_request",
    [KT_TO_DCCP_RESPOND] = "nf_conntrack_dccp_timeout_respond",
    [KT_TO_DCCP_PARTOPEN] = "nf_conntrack_dccp_timeout_partopen",
    [KT_TO_DCCP_OPEN] = "nf_conntrack_dccp_timeout_open",
    [KT_TO_DCCP_CLOSEREQ] = "nf_conntrack_dccp_timeout_closereq",
    [KT_TO_DCCP_CLOSING] = "nf_conntrack_dccp_timeout_closing",
    [KT_TO_DCCP_TIMEWAIT] = "nf_conntrack_dccp_timeout_timewait",
    [KT_TO_GENERIC] = "nf_conntrack_generic_timeout",
};

/* Kernel state numbers (enum tcp_conntrack, sctp_conntrack,
 * ct_dccp_states) to their sysctl; -1: the state has no timeout of its
 * own. TCP's SYN_SENT2 shares SYN_SENT's. */
static const int8_t tcp_state_to[] = {
    -1,
    KT_TO_TCP_SYN_SENT,
    KT_TO_TCP_SYN_RECV,
    KT_TO_TCP_ESTABLISHED,
    KT_TO_TCP_FIN_WAIT,
    KT_TO_TCP_CLOSE_WAIT,
    KT_TO_TCP_LAST_ACK,
    KT_TO_TCP_TIME_WAIT,
    KT_TO_TCP_CLOSE,
    KT_TO_TCP_SYN_SENT,
};
static const int8_t sctp_state_to[] = {
    -1,
    KT_TO_SCTP_CLOSED,
    KT_TO_SCTP_COOKIE_WAIT,
    KT_TO_SCTP_COOKIE_ECHOED,
    KT_TO_SCTP_ESTABLISHED,
    KT_TO_SCTP_SHUTDOWN_SENT,
    KT_TO_SCTP_SHUTDOWN_RECD,
    KT_TO_SCTP_SHUTDOWN_ACK_SENT,
    KT_TO_SCTP_HEARTBEAT_SENT,
    KT_TO_SCTP_HEARTBEAT_ACKED,
};
static const int8_t dccp_state_to[] = {
    -1,
    KT_TO_DCCP_REQUEST,
    KT_TO_DCCP_RESPOND,
    KT_TO_DCCP_PARTOPEN,
    KT_TO_DCCP_OPEN,
    KT_TO_DCCP_CLOSEREQ,
    KT_TO_DCCP_CLOSING,
    KT_TO_DCCP_TIMEWAIT,
};

static uint64_t read_sysctl(const char *name)
{
	char path[128], buf[32];
	ssize_t n;
	int fd;

	snprintf(path, sizeof(path), SYSCTL_DIR "%s", name);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return 0;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return 0;
	buf[n] = '\0';
	return strtoull(buf, NULL, 10);
}

/* With nf_conntrack_events = 2 (the kernel's default) a flow gets its
 * event extension only if some ctnetlink listener exists in the namespace
 * when it is created; without it the flow never reports an update or its
 * destroy. A commit drops our subscription, so the flows it writes (and
 * any created meanwhile) would stay silent for good: measured here. 1 gives
 * every flow the extension. */
static void require_events(struct tracker *t)
{
	char path[] = SYSCTL_DIR "nf_conntrack_events";
	uint64_t v = read_sysctl("nf_conntrack_events");
	int fd;

	if (v == 1)
		return;
	fd = open(path, O_WRONLY | O_CLOEXEC);
	if (fd < 0 || write(fd, "1", 1) != 1) {
		hafw_log(LOG_WARNING,
		         "kernel: net.netfilter.nf_conntrack_events is %llu and cannot be set to 1 "
		         "(%s): flows created during a commit will not report their changes",
		         (unsigned long long)v, strerror(errno));
	} else {
		t->st.events_sysctl_set = 1;
		hafw_log(
		    LOG_NOTICE,
		    "kernel: net.netfilter.nf_conntrack_events was %llu, set to 1 so every flow "
		    "reports its changes",
		    (unsigned long long)v);
	}
	if (fd >= 0)
		close(fd);
}

static void read_timeouts(struct tracker *t)
{
	for (int i = 0; i < KT_TO_N; i++) {
		uint64_t v = read_sysctl(timeout_files[i]);

		t->timeouts[i] = v > UINT32_MAX ? UINT32_MAX : (uint32_t)v;
	}
	/* kernels since 6.4 fold HEARTBEAT_ACKED into ESTABLISHED */
	if (!t->timeouts[KT_TO_SCTP_HEARTBEAT_ACKED])
		t->timeouts[KT_TO_SCTP_HEARTBEAT_ACKED] = t->timeouts[KT_TO_SCTP_ESTABLISHED];
	clock_gettime(CLOCK_MONOTONIC, &t->timeouts_read);
}

static int state_timeout(const int8_t *map, size_t n, uint8_t state)
{
	return state < n ? map[state] : -1;
}

static uint32_t kernel_refresh_timeout(struct tracker *t, const struct hafw_flow *f)
{
	bool has_status = f->present & HAFW_FA_STATUS;
	bool replied = has_status && (f->status & (HAFW_IPS_SEEN_REPLY | HAFW_IPS_ASSURED));
	int which;

	if (kt_elapsed_ms(&t->timeouts_read) >= t->sysctl_max_age_ms)
		read_timeouts(t);
	switch (f->orig.l4) {
	case IPPROTO_TCP:
		if (!(f->present & HAFW_FA_TCP_STATE))
			return 0;
		which = state_timeout(tcp_state_to, ARRAY_SIZE(tcp_state_to), f->tcp_state);
		break;
	case IPPROTO_UDP:
	case IPPROTO_UDPLITE:
		which = replied ? KT_TO_UDP_STREAM : KT_TO_UDP;
		break;
	case IPPROTO_ICMP:
		which = KT_TO_ICMP;
		break;
	case IPPROTO_ICMPV6:
		which = KT_TO_ICMPV6;
		break;
	case IPPROTO_SCTP:
		if (!(f->present & HAFW_FA_SCTP))
			return 0;
		which = state_timeout(sctp_state_to, ARRAY_SIZE(sctp_state_to), f->sctp_state);
		break;
	case IPPROTO_GRE:
		which =
		    has_status && (f->status & HAFW_IPS_SEEN_REPLY) ? KT_TO_GRE_STREAM : KT_TO_GRE;
		break;
	case IPPROTO_DCCP:
		if (!(f->present & HAFW_FA_DCCP))
			return 0;
		which = state_timeout(dccp_state_to, ARRAY_SIZE(dccp_state_to), f->dccp_state);
		break;
	default:
		which = KT_TO_GENERIC;
		break;
	}
	return which < 0 ? 0 : t->timeouts[which];
}

static size_t kernel_max_entries(struct tracker *t)
{
	return t->max_entries;
}

void tracker_kernel_test_sysctl_age(struct tracker *t, unsigned max_age_ms)
{
	t->sysctl_max_age_ms = max_age_ms;
}

/* ---- stats, open, close ---- */

static int kernel_stats(struct tracker *t, struct tracker_stat *out, int max)
{
	const struct kt_stats *s = &t->st;
	struct tracker_stat all[] = {
	    {"events_new", s->ev_new},
	    {"events_sysctl_set", s->events_sysctl_set},
	    {"events_update", s->ev_update},
	    {"events_destroy", s->ev_destroy},
	    {"events_exp_new", s->ev_exp_new},
	    {"events_exp_destroy", s->ev_exp_destroy},
	    {"events_own_skipped", s->ev_own},
	    {"events_unparsable", s->ev_bad},
	    {"netlink_overruns", s->overruns},
	    {"netlink_rcvbuf", s->rcvbuf_now},
	    {"dumps", s->dumps},
	    {"dumps_aborted", s->dumps_aborted},
	    {"dump_stale_msgs", s->dump_stale},
	    {"event_mutes", s->mutes},
	    {"event_reads_superseded_by_dump", s->ev_superseded},
	    {"dump_drain_overruns", s->drain_overruns},
	    {"dump_drain_gave_up", s->drain_gave_up},
	    {"dump_flows", s->dump_flows},
	    {"dump_expectations", s->dump_exps},
	    {"get_requests", s->get_requests},
	    {"get_answers", s->get_answers},
	    {"get_enoent", s->get_enoent},
	    {"get_errors", s->get_errors},
	    {"get_busy", s->get_busy},
	    {"get_stale", s->get_stale},
	    {"get_lost", s->get_lost},
	    {"sink_ok", s->sink_ok},
	    {"sink_retried_as_update", s->sink_retries},
	    {"sink_reports_lost", s->sink_reports_lost},
	};
	int n = 0;

	for (size_t i = 0; i < ARRAY_SIZE(all) && n < max; i++)
		out[n++] = all[i];
	for (int i = 0; i < KT_ERR_N && n < max; i++)
		out[n++] = (struct tracker_stat){kt_sink_err_names[i], s->sink_err[i]};
	return n;
}

static void kernel_close(struct tracker *t)
{
	if (!t)
		return;
	kt_dump_fini(t);
	kt_get_fini(t);
	kt_sink_fini(t);
	if (t->ev_read)
		event_free(t->ev_read);
	if (t->ev_nl)
		mnl_socket_close(t->ev_nl);
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
	int ret = -ENOMEM;

	if (!t)
		return -ENOMEM;
	t->base = base;
	t->ev = ev;
	t->arg = arg;
	t->rcvbuf = cfg->nl_rcvbuf;
	t->rcvbuf_max = cfg->nl_rcvbuf_max;
	t->st.rcvbuf_now = (uint64_t)t->rcvbuf;
	t->dump_timeout_ms = KT_DUMP_TIMEOUT_MS;
	t->drain_max_ms = KT_DUMP_TIMEOUT_MS;
	t->sysctl_max_age_ms = SYSCTL_MAX_AGE_MS;
	t->rxbuf = malloc(KT_RXBUF);
	if (!t->rxbuf)
		goto err;
	t->ev_nl = kt_open_nl(groups, NULL);
	if (!t->ev_nl) {
		ret = -errno;
		goto err;
	}
	ret = kt_set_rcvbuf(t->ev_nl, t->rcvbuf);
	if (ret)
		goto err;
	t->ev_read =
	    event_new(base, mnl_socket_get_fd(t->ev_nl), EV_READ | EV_PERSIST, ev_readable, t);
	if (!t->ev_read || event_add(t->ev_read, NULL) < 0) {
		ret = -ENOMEM;
		goto err;
	}
	ret = kt_sink_init(t, (unsigned)cfg->commit_batch);
	if (ret == 0)
		ret = kt_dump_init(t);
	if (ret == 0)
		ret = kt_get_init(t);
	if (ret)
		goto err;
	require_events(t);
	read_timeouts(t);
	t->max_entries = (size_t)read_sysctl("nf_conntrack_max");
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
    .dump_start = kt_dump_start,
    .get_flow = kt_get_flow,
    .put_flow = kt_put_flow,
    .put_exp = kt_put_exp,
    .sink_flush = kt_sink_flush,
    .mute_events = kernel_mute_events,
    .refresh_timeout = kernel_refresh_timeout,
    .max_entries = kernel_max_entries,
    .stats = kernel_stats,
};
