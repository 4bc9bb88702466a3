/* Kernel tracker: asynchronous dumps and single-flow reads.
 *
 * A dump is a small state machine driven by the event loop, each turn
 * doing a bounded slice of work:
 *   DRAIN  empty the event socket. The kernel reports an overrun only once
 *          per congestion episode and ends the episode only when the queue
 *          is empty: dumping with events still queued would let drops
 *          during the dump pass unreported. The queued events are older
 *          than the dump, which supersedes them.
 *   FLOWS  the conntrack dump, every entry through dump_flow
 *   EXPS   the expectation dump, every entry through dump_exp
 * then dump_done. The event socket is not read while a dump runs: events
 * that happen meanwhile wait in the kernel and are delivered after
 * dump_done, in order, so a dump entry never overwrites a later event.
 *
 * Each dump request carries a sequence number of its own; messages with
 * another one are leftovers and are skipped. A dump that stops making
 * progress, fails to read or is refused ends with a negative status and
 * its socket is replaced: the kernel keeps the rest of an unfinished dump
 * queued for the old socket and refuses a new dump on it while it does. */
#include "log.h"
#include "nfct_conv.h"
#include "tracker_kernel_int.h"

#include <errno.h>
#include <event2/event.h>
#include <libnetfilter_conntrack/libnetfilter_conntrack.h>
#include <linux/netfilter/nfnetlink.h>
#include <linux/netfilter/nfnetlink_conntrack.h>
#include <string.h>

/* Per turn of the loop. An event is one skb of a few hundred bytes; a dump
 * skb holds up to 32 KB, about a hundred entries. */
#define DRAIN_READS_PER_TURN 256
#define DUMP_READS_PER_TURN  2
#define GET_READS_PER_TURN   64
#define GET_RCVBUF           (4 << 20)

static struct hafw_ratelimit rl_dump = HAFW_RATELIMIT_INIT(10, 3);

static void arm_kick(struct tracker *t)
{
	static const struct timeval now = {0, 0};

	/* A zero timer, not event_active(): libevent runs events activated
	 * during a callback in the same pass, before polling any socket. */
	evtimer_add(t->dump_kick, &now);
}

static void arm_timeout(struct tracker *t)
{
	struct timeval tv = {(time_t)(t->dump_timeout_ms / 1000),
	                     (suseconds_t)(t->dump_timeout_ms % 1000) * 1000};

	evtimer_add(t->dump_timer, &tv);
}

static void dump_readable(evutil_socket_t fd, short what, void *arg);

static int dump_socket_open(struct tracker *t)
{
	t->dump_nl = kt_open_nl(0, &t->dump_portid);
	if (!t->dump_nl)
		return -errno;
	t->dump_read = event_new(t->base, mnl_socket_get_fd(t->dump_nl), EV_READ | EV_PERSIST,
	                         dump_readable, t);
	if (!t->dump_read) {
		mnl_socket_close(t->dump_nl);
		t->dump_nl = NULL;
		return -ENOMEM;
	}
	return 0;
}

static void dump_socket_close(struct tracker *t)
{
	if (t->dump_read)
		event_free(t->dump_read);
	if (t->dump_nl)
		mnl_socket_close(t->dump_nl);
	t->dump_read = NULL;
	t->dump_nl = NULL;
}

static void dump_finish(struct tracker *t, int status)
{
	if (t->dump_read)
		event_del(t->dump_read);
	event_del(t->dump_timer);
	event_del(t->dump_kick);
	if (status < 0) {
		t->st.dumps_aborted++;
		hafw_log_rl(&rl_dump, LOG_WARNING, "kernel: dump aborted: %s", strerror(-status));
		if (!t->test_no_reopen) {
			dump_socket_close(t);
			/* a failure here is retried by the next dump_start */
			dump_socket_open(t);
		}
	}
	/* Events could not be drained to the end (they came in faster than
	 * they were read): drops during the dump may have gone unreported, so
	 * the core hears of an overrun on the next turn and dumps again. */
	if (status == 0 && t->drain_gave_up)
		arm_kick(t);
	else
		t->drain_gave_up = false;
	t->phase = KT_DUMP_IDLE;
	kt_events_resume(t);
	t->ev->dump_done(t->arg, status);
}

static void dump_request(struct tracker *t, enum kt_dump_phase phase)
{
	_Alignas(struct nlmsghdr) char req[MNL_NLMSG_HDRLEN + MNL_ALIGN(sizeof(struct nfgenmsg))];
	struct nlmsghdr *nlh = mnl_nlmsg_put_header(req);
	struct nfgenmsg *nfh;

	if (phase == KT_DUMP_FLOWS)
		nlh->nlmsg_type = (NFNL_SUBSYS_CTNETLINK << 8) | IPCTNL_MSG_CT_GET;
	else
		nlh->nlmsg_type = (NFNL_SUBSYS_CTNETLINK_EXP << 8) | IPCTNL_MSG_EXP_GET;
	nlh->nlmsg_flags = NLM_F_REQUEST | NLM_F_DUMP;
	t->dump_seq = t->dump_seq_next++;
	if (t->dump_seq_next == 0)
		t->dump_seq_next = 1;
	nlh->nlmsg_seq = t->dump_seq;
	nfh = mnl_nlmsg_put_extra_header(nlh, sizeof(*nfh));
	nfh->nfgen_family = AF_UNSPEC;
	nfh->version = NFNETLINK_V0;
	nfh->res_id = 0;
	t->phase = phase;
	if (mnl_socket_sendto(t->dump_nl, nlh, nlh->nlmsg_len) < 0) {
		dump_finish(t, -errno);
		return;
	}
	event_add(t->dump_read, NULL);
	arm_timeout(t);
}

static void dump_drain(struct tracker *t)
{
	int fd = mnl_socket_get_fd(t->ev_nl);

	for (int i = 0; i < DRAIN_READS_PER_TURN; i++) {
		ssize_t n = recv(fd, t->rxbuf, KT_RXBUF, MSG_DONTWAIT);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == ENOBUFS) {
			/* lost before the dump request leaves: the dump has them */
			t->st.drain_overruns++;
			kt_note_overrun(t);
			continue;
		}
		if (n < 0) {
			dump_request(t, KT_DUMP_FLOWS);
			return;
		}
		t->st.ev_superseded++;
	}
	if (kt_elapsed_ms(&t->drain_start) >= t->drain_max_ms) {
		t->st.drain_gave_up++;
		t->drain_gave_up = true;
		hafw_log_rl(
		    &rl_dump, LOG_WARNING,
		    "kernel: events arrive faster than they can be drained; dumping anyway");
		dump_request(t, KT_DUMP_FLOWS);
		return;
	}
	arm_kick(t);
}

static void dump_kick(evutil_socket_t fd, short what, void *arg)
{
	struct tracker *t = arg;

	(void)fd;
	(void)what;
	if (t->phase == KT_DUMP_DRAIN) {
		dump_drain(t);
	} else if (t->phase == KT_DUMP_IDLE && t->drain_gave_up) {
		t->drain_gave_up = false;
		t->ev->overrun(t->arg);
	}
}

static void dump_timeout(evutil_socket_t fd, short what, void *arg)
{
	struct tracker *t = arg;

	(void)fd;
	(void)what;
	if (t->phase == KT_DUMP_FLOWS || t->phase == KT_DUMP_EXPS)
		dump_finish(t, -ETIMEDOUT);
}

/* Returns 0: more to come, 1: this part of the dump is complete, or a
 * negative errno. */
static int dump_msgs(struct tracker *t, int len)
{
	const struct nlmsghdr *nlh;

	for (nlh = (const struct nlmsghdr *)t->rxbuf; mnl_nlmsg_ok(nlh, len);
	     nlh = mnl_nlmsg_next(nlh, &len)) {
		unsigned subsys = NFNL_SUBSYS_ID(nlh->nlmsg_type);

		if (nlh->nlmsg_seq != t->dump_seq ||
		    (nlh->nlmsg_pid && nlh->nlmsg_pid != t->dump_portid)) {
			t->st.dump_stale++;
			continue;
		}
		if (nlh->nlmsg_type == NLMSG_DONE) {
			int e = 0;

			/* the dump's own result, negative when it failed */
			if (nlh->nlmsg_len >= mnl_nlmsg_size(sizeof(e)))
				memcpy(&e, mnl_nlmsg_get_payload(nlh), sizeof(e));
			return e < 0 ? e : 1;
		}
		if (nlh->nlmsg_type == NLMSG_ERROR) {
			const struct nlmsgerr *err = mnl_nlmsg_get_payload(nlh);

			if (nlh->nlmsg_len < mnl_nlmsg_size(sizeof(*err)))
				return -EPROTO;
			if (err->error == 0)
				continue;
			return err->error < 0 ? err->error : -EPROTO;
		}
		if (nlh->nlmsg_type < NLMSG_MIN_TYPE)
			continue;
		if (t->phase == KT_DUMP_FLOWS && subsys == NFNL_SUBSYS_CTNETLINK) {
			struct hafw_flow f;

			t->st.dump_flows++;
			t->dump_entries++;
			if (kt_parse_flow(t, nlh, &f, true) == 0)
				t->ev->dump_flow(t->arg, &f);
		} else if (t->phase == KT_DUMP_EXPS && subsys == NFNL_SUBSYS_CTNETLINK_EXP) {
			struct hafw_exp e;

			t->st.dump_exps++;
			t->dump_entries++;
			if (kt_parse_exp(t, nlh, &e) == 0)
				t->ev->dump_exp(t->arg, &e);
		} else {
			t->st.ev_bad++;
		}
	}
	return 0;
}

static void dump_readable(evutil_socket_t fd, short what, void *arg)
{
	struct tracker *t = arg;
	bool progress = false;

	(void)what;
	for (int i = 0; i < DUMP_READS_PER_TURN; i++) {
		ssize_t n = recv(fd, t->rxbuf, KT_RXBUF, MSG_DONTWAIT);
		int ret;

		if (n < 0) {
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN || errno == EWOULDBLOCK)
				break;
			dump_finish(t, -errno);
			return;
		}
		progress = true;
		ret = dump_msgs(t, (int)n);
		if (ret < 0) {
			dump_finish(t, ret);
			return;
		}
		if (ret > 0) {
			if (t->phase == KT_DUMP_FLOWS)
				dump_request(t, KT_DUMP_EXPS);
			else
				dump_finish(t, 0);
			return;
		}
		if (t->dump_stall_after && t->dump_entries >= t->dump_stall_after) {
			event_del(t->dump_read);
			return;
		}
	}
	if (progress)
		arm_timeout(t);
}

int kt_dump_start(struct tracker *t)
{
	int ret;

	if (t->phase != KT_DUMP_IDLE)
		return -EBUSY;
	if (!t->dump_nl) {
		ret = dump_socket_open(t);
		if (ret)
			return ret;
	}
	t->phase = KT_DUMP_DRAIN;
	t->drain_gave_up = false;
	t->dump_entries = 0;
	clock_gettime(CLOCK_MONOTONIC, &t->drain_start);
	t->st.dumps++;
	kt_events_pause(t);
	arm_kick(t);
	return 0;
}

int kt_dump_init(struct tracker *t)
{
	t->dump_seq_next = 1;
	t->dump_kick = evtimer_new(t->base, dump_kick, t);
	t->dump_timer = evtimer_new(t->base, dump_timeout, t);
	if (!t->dump_kick || !t->dump_timer)
		return -ENOMEM;
	return dump_socket_open(t);
}

void kt_dump_fini(struct tracker *t)
{
	dump_socket_close(t);
	if (t->dump_kick)
		event_free(t->dump_kick);
	if (t->dump_timer)
		event_free(t->dump_timer);
	t->dump_kick = t->dump_timer = NULL;
}

void tracker_kernel_test_dump(struct tracker *t, unsigned timeout_ms, uint64_t stall_after)
{
	t->dump_timeout_ms = timeout_ms ? timeout_ms : KT_DUMP_TIMEOUT_MS;
	t->dump_stall_after = stall_after;
}

void tracker_kernel_test_drain_max(struct tracker *t, unsigned drain_max_ms)
{
	t->drain_max_ms = drain_max_ms;
}

void tracker_kernel_test_no_reopen(struct tracker *t, bool no_reopen)
{
	t->test_no_reopen = no_reopen;
}

/* ---- single-flow reads ---- */

static int get_find(const struct tracker *t, uint32_t seq)
{
	for (int i = 0; i < KT_GET_MAX; i++)
		if (t->gets[i].busy && t->gets[i].seq == seq)
			return i;
	return -1;
}

static void get_complete(struct tracker *t, int i, const struct hafw_flow *f, int status)
{
	struct hafw_flow key = t->gets[i].key;

	/* freed first: the callback may ask again */
	t->gets[i].busy = false;
	t->get_n--;
	if (status == 0)
		t->st.get_answers++;
	else if (status == -ENOENT)
		t->st.get_enoent++;
	else
		t->st.get_errors++;
	t->ev->got_flow(t->arg, &key, status == 0 ? f : NULL, status);
}

static void get_answer(struct tracker *t, const struct nlmsghdr *nlh)
{
	int i = get_find(t, nlh->nlmsg_seq);
	struct hafw_flow f;
	int status;

	if (i < 0 || (nlh->nlmsg_pid && nlh->nlmsg_pid != t->get_portid)) {
		t->st.get_stale++;
		return;
	}
	if (nlh->nlmsg_type == NLMSG_ERROR) {
		const struct nlmsgerr *err = mnl_nlmsg_get_payload(nlh);

		if (nlh->nlmsg_len < mnl_nlmsg_size(sizeof(*err)))
			status = -EPROTO;
		else if (err->error == 0)
			return; /* an ACK: the flow message came or comes apart */
		else
			status = err->error < 0 ? err->error : -EPROTO;
	} else if (NFNL_SUBSYS_ID(nlh->nlmsg_type) == NFNL_SUBSYS_CTNETLINK &&
	           NFNL_MSG_TYPE(nlh->nlmsg_type) == IPCTNL_MSG_CT_NEW) {
		status = kt_parse_flow(t, nlh, &f, true);
	} else {
		t->st.get_stale++;
		return;
	}
	get_complete(t, i, &f, status);
}

/* The kernel answers inside sendmsg(); an overrun of the get socket means
 * answers to requests already sent were dropped, and which ones is not
 * known: every request sent so far fails, later answers to them are
 * skipped as stale. */
static void get_lost(struct tracker *t)
{
	uint32_t last = t->get_seq;

	t->st.get_lost++;
	for (int i = 0; i < KT_GET_MAX; i++)
		if (t->gets[i].busy && (int32_t)(t->gets[i].seq - last) <= 0)
			get_complete(t, i, NULL, -ENOBUFS);
}

static void get_readable(evutil_socket_t fd, short what, void *arg)
{
	struct tracker *t = arg;

	(void)what;
	for (int i = 0; i < GET_READS_PER_TURN; i++) {
		ssize_t n = recv(fd, t->rxbuf, KT_RXBUF, MSG_DONTWAIT);
		const struct nlmsghdr *nlh;
		int len;

		if (n < 0) {
			if (errno == EINTR)
				continue;
			if (errno == ENOBUFS) {
				get_lost(t);
				continue;
			}
			break;
		}
		len = (int)n;
		for (nlh = (const struct nlmsghdr *)t->rxbuf; mnl_nlmsg_ok(nlh, len);
		     nlh = mnl_nlmsg_next(nlh, &len))
			get_answer(t, nlh);
	}
}

int kt_get_flow(struct tracker *t, const struct hafw_flow *key)
{
	_Alignas(struct nlmsghdr) char req[MNL_SOCKET_BUFFER_SIZE];
	struct nlmsghdr *nlh = mnl_nlmsg_put_header(req);
	struct nf_conntrack *ct;
	struct nfgenmsg *nfh;
	int slot = -1;

	if (t->get_n >= KT_GET_MAX) {
		t->st.get_busy++;
		return -EBUSY;
	}
	for (int i = 0; i < KT_GET_MAX && slot < 0; i++)
		if (!t->gets[i].busy)
			slot = i;
	ct = nfct_new();
	if (!ct)
		return -ENOMEM;
	nlh->nlmsg_type = (NFNL_SUBSYS_CTNETLINK << 8) | IPCTNL_MSG_CT_GET;
	nlh->nlmsg_flags = NLM_F_REQUEST;
	nlh->nlmsg_seq = ++t->get_seq;
	nfh = mnl_nlmsg_put_extra_header(nlh, sizeof(*nfh));
	nfh->nfgen_family = key->orig.l3;
	nfh->version = NFNETLINK_V0;
	nfh->res_id = 0;
	nfct_conv_flow_key_to(key, ct);
	nfct_nlmsg_build(nlh, ct);
	nfct_destroy(ct);
	if (mnl_socket_sendto(t->get_nl, nlh, nlh->nlmsg_len) < 0) {
		t->st.get_errors++;
		return -errno;
	}
	t->gets[slot].busy = true;
	t->gets[slot].seq = nlh->nlmsg_seq;
	t->gets[slot].key = *key;
	t->get_n++;
	t->st.get_requests++;
	return 0;
}

int kt_get_init(struct tracker *t)
{
	int one = 1;

	t->get_nl = kt_open_nl(0, &t->get_portid);
	if (!t->get_nl)
		return -errno;
	kt_set_rcvbuf(t->get_nl, GET_RCVBUF);
	/* a refusal need not echo the request: the header names it */
	setsockopt(mnl_socket_get_fd(t->get_nl), SOL_NETLINK, NETLINK_CAP_ACK, &one, sizeof(one));
	t->get_read =
	    event_new(t->base, mnl_socket_get_fd(t->get_nl), EV_READ | EV_PERSIST, get_readable, t);
	if (!t->get_read || event_add(t->get_read, NULL) < 0)
		return -ENOMEM;
	return 0;
}

void kt_get_fini(struct tracker *t)
{
	if (t->get_read)
		event_free(t->get_read);
	if (t->get_nl)
		mnl_socket_close(t->get_nl);
	t->get_read = NULL;
	t->get_nl = NULL;
}
