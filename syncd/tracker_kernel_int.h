/* Inside the kernel tracker: the state its three files share (events,
 * sysctls and the ops table in tracker_kernel.c, dumps and single-flow
 * reads in tracker_kernel_dump.c, the sink in tracker_kernel_sink.c).
 * Nothing outside the kernel tracker includes this but its unit test, for
 * the test hooks at the end. */
#ifndef HAFW_TRACKER_KERNEL_INT_H
#define HAFW_TRACKER_KERNEL_INT_H

#include "tracker.h"

#include <libmnl/libmnl.h>
#include <stdbool.h>
#include <stdint.h>
#include <time.h>

#define KT_RXBUF (MNL_SOCKET_BUFFER_SIZE * 4)

/* A dump that makes no progress for this long is aborted. */
#define KT_DUMP_TIMEOUT_MS 5000

/* At most this many get_flow() requests wait for their answer. */
#define KT_GET_MAX 256

enum kt_sink_err {
	KT_ERR_EEXIST,
	KT_ERR_ENOENT,
	KT_ERR_EINVAL,
	KT_ERR_EBUSY,
	KT_ERR_ENOMEM,
	KT_ERR_EOPNOTSUPP,
	KT_ERR_ENOSPC,
	KT_ERR_OTHER,
	KT_ERR_N
};

enum kt_dump_phase { KT_DUMP_IDLE, KT_DUMP_DRAIN, KT_DUMP_FLOWS, KT_DUMP_EXPS };

enum kt_timeout {
	KT_TO_TCP_SYN_SENT,
	KT_TO_TCP_SYN_RECV,
	KT_TO_TCP_ESTABLISHED,
	KT_TO_TCP_FIN_WAIT,
	KT_TO_TCP_CLOSE_WAIT,
	KT_TO_TCP_LAST_ACK,
	KT_TO_TCP_TIME_WAIT,
	KT_TO_TCP_CLOSE,
	KT_TO_UDP,
	KT_TO_UDP_STREAM,
	KT_TO_ICMP,
	KT_TO_ICMPV6,
	KT_TO_SCTP_CLOSED,
	KT_TO_SCTP_COOKIE_WAIT,
	KT_TO_SCTP_COOKIE_ECHOED,
	KT_TO_SCTP_ESTABLISHED,
	KT_TO_SCTP_SHUTDOWN_SENT,
	KT_TO_SCTP_SHUTDOWN_RECD,
	KT_TO_SCTP_SHUTDOWN_ACK_SENT,
	KT_TO_SCTP_HEARTBEAT_SENT,
	KT_TO_SCTP_HEARTBEAT_ACKED,
	KT_TO_GRE,
	KT_TO_GRE_STREAM,
	KT_TO_DCCP_REQUEST,
	KT_TO_DCCP_RESPOND,
	KT_TO_DCCP_PARTOPEN,
	KT_TO_DCCP_OPEN,
	KT_TO_DCCP_CLOSEREQ,
	KT_TO_DCCP_CLOSING,
	KT_TO_DCCP_TIMEWAIT,
	KT_TO_GENERIC,
	KT_TO_N
};

enum kt_pend_kind { KT_P_FLOW, KT_P_EXP };

struct kt_pending {
	enum kt_pend_kind kind;
	bool retried;
	union {
		struct hafw_flow flow;
		struct hafw_exp exp;
	} u;
};

struct kt_get {
	bool busy;
	uint32_t seq;
	struct hafw_flow key;
};

struct kt_stats {
	uint64_t ev_new, ev_update, ev_destroy, ev_exp_new, ev_exp_destroy, ev_own, ev_bad;
	uint64_t overruns, rcvbuf_now, mutes, events_sysctl_set;
	uint64_t dumps, dumps_aborted, dump_flows, dump_exps, dump_stale, ev_superseded,
	    drain_overruns, drain_gave_up;
	uint64_t get_requests, get_answers, get_enoent, get_errors, get_busy, get_stale, get_lost;
	uint64_t sink_ok, sink_retries, sink_err[KT_ERR_N], sink_reports_lost;
};

struct tracker {
	struct event_base *base;
	const struct tracker_events *ev;
	void *arg;
	char *rxbuf;

	/* events */
	struct mnl_socket *ev_nl;
	struct event *ev_read;
	int rcvbuf, rcvbuf_max;

	/* dumps: the phase machine runs from dump_kick (a zero timer: the
	 * next turn of the loop), dump_read and dump_timer */
	struct mnl_socket *dump_nl;
	unsigned dump_portid;
	struct event *dump_read, *dump_kick, *dump_timer;
	enum kt_dump_phase phase;
	uint32_t dump_seq, dump_seq_next;
	struct timespec drain_start;
	bool drain_gave_up;
	uint64_t dump_entries;

	/* single-flow reads */
	struct mnl_socket *get_nl;
	unsigned get_portid;
	struct event *get_read;
	struct kt_get gets[KT_GET_MAX];
	unsigned get_n;
	uint32_t get_seq;

	/* sink batch */
	struct mnl_socket *sink_nl;
	unsigned sink_portid;
	/* its own: put_* may run inside a callback that walks rxbuf */
	char *sink_rxbuf;
	char *batch_buf;
	struct mnl_nlmsg_batch *batch;
	struct kt_pending *pend, *again;
	int *retry_list;
	unsigned npend, max_pend;
	uint32_t seq_base, seq;
	struct event *sink_ev;
	unsigned sink_failed, sink_flushes;

	/* the namespace's timeout sysctls, read at most every sysctl_max_age_ms */
	uint32_t timeouts[KT_TO_N];
	struct timespec timeouts_read;
	size_t max_entries;

	/* test hooks (tracker_kernel_test_*) */
	unsigned dump_timeout_ms, drain_max_ms;
	uint64_t dump_stall_after;
	unsigned sysctl_max_age_ms;
	bool test_no_reopen;

	struct kt_stats st;
};

/* tracker_kernel.c */
int kt_set_rcvbuf(struct mnl_socket *nl, int size);
struct mnl_socket *kt_open_nl(unsigned groups, unsigned *portid);
void kt_events_resume(struct tracker *t);
void kt_events_pause(struct tracker *t);
void kt_note_overrun(struct tracker *t);
int kt_parse_flow(struct tracker *t, const struct nlmsghdr *nlh, struct hafw_flow *f,
                  bool snapshot);
int kt_parse_exp(struct tracker *t, const struct nlmsghdr *nlh, struct hafw_exp *e);
uint64_t kt_elapsed_ms(const struct timespec *since);

/* tracker_kernel_dump.c */
int kt_dump_init(struct tracker *t);
void kt_dump_fini(struct tracker *t);
int kt_dump_start(struct tracker *t);
int kt_get_init(struct tracker *t);
void kt_get_fini(struct tracker *t);
int kt_get_flow(struct tracker *t, const struct hafw_flow *key);

/* tracker_kernel_sink.c */
int kt_sink_init(struct tracker *t, unsigned max_pend);
void kt_sink_fini(struct tracker *t);
int kt_put_flow(struct tracker *t, const struct hafw_flow *f);
int kt_put_exp(struct tracker *t, const struct hafw_exp *e);
int kt_sink_flush(struct tracker *t);
extern const char *const kt_sink_err_names[KT_ERR_N];

/* Test hooks. A dump makes no progress for timeout_ms (default 5000)
 * before it is aborted; with stall_after > 0 a dump stops reading its
 * socket after that many entries, as a kernel that stops answering would
 * look; drain_max_ms (default 5000) bounds the draining of the event
 * socket before a dump; max_age_ms is how old the cached timeout sysctls may get (default
 * 5000, 0: read on every call); no_reopen keeps the dump socket of an
 * aborted dump (the behaviour before issue 8, to show what it did). */
void tracker_kernel_test_dump(struct tracker *t, unsigned timeout_ms, uint64_t stall_after);
void tracker_kernel_test_drain_max(struct tracker *t, unsigned drain_max_ms);
void tracker_kernel_test_sysctl_age(struct tracker *t, unsigned max_age_ms);
void tracker_kernel_test_no_reopen(struct tracker *t, bool no_reopen);

#endif
