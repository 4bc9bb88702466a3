#include "localaddr.h"

#include "log.h"

#include <errno.h>
#include <event2/event.h>
#include <libmnl/libmnl.h>
#include <limits.h>
#include <linux/if_addr.h>
#include <linux/rtnetlink.h>
#include <net/if.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

/* Larger than any dump datagram the kernel builds (it sizes them to the
 * reader's buffer, at most 32 KiB), so nothing is truncated. */
#define DUMP_BUF (64 * 1024)
/* Address events are a few hundred bytes each. */
#define EV_BUF (16 * 1024)
/* Datagrams read per readable callback; the rest wait for the next turn. */
#define EV_READS_PER_TURN 64
/* After a failed read the set is read again this much later. */
#define RETRY_MS 1000
/* A dump is retried this often when an address changed under it. */
#define DUMP_TRIES 3

struct reader {
	struct filter_net *out;
	unsigned max, n;
	unsigned sync_index[2]; /* the sync links; 0: none */
	unsigned msgs, max_msgs;
	int err;
};

static int net_cmp(const void *a, const void *b)
{
	return memcmp(a, b, sizeof(struct filter_net));
}

/* Sort and drop duplicates: the same address on two interfaces, or a
 * subnet listed once per address in it, is one network. */
static void compact(struct reader *rd)
{
	unsigned j = 0;

	if (!rd->n)
		return;
	qsort(rd->out, rd->n, sizeof(rd->out[0]), net_cmp);
	for (unsigned i = 1; i < rd->n; i++)
		if (net_cmp(&rd->out[j], &rd->out[i]))
			rd->out[++j] = rd->out[i];
	rd->n = j + 1;
}

static int add(struct reader *rd, int af, const uint8_t *addr, unsigned prefix)
{
	unsigned alen = af == AF_INET6 ? 16 : 4;
	struct filter_net x;

	memset(&x, 0, sizeof(x));
	x.af = af;
	x.prefix = prefix;
	memcpy(x.addr, addr, alen);
	for (unsigned b = prefix; b < alen * 8; b++)
		x.addr[b / 8] &= ~(0x80 >> (b % 8));
	if (rd->n == rd->max) {
		/* full of duplicates, or really full: only a new network
		 * beyond the room is an error */
		compact(rd);
		if (rd->n && bsearch(&x, rd->out, rd->n, sizeof(x), net_cmp))
			return 0;
		if (rd->n == rd->max)
			return -ENOSPC;
	}
	rd->out[rd->n++] = x;
	return 0;
}

static int attr_cb(const struct nlattr *a, void *data)
{
	const struct nlattr **tb = data;
	int type = mnl_attr_get_type(a);

	if (type == IFA_ADDRESS || type == IFA_LOCAL)
		tb[type] = a;
	return MNL_CB_OK;
}

static int addr_cb(const struct nlmsghdr *nlh, void *data)
{
	struct reader *rd = data;
	const struct nlattr *tb[IFA_MAX + 1] = {NULL};
	const struct ifaddrmsg *ifa;
	const struct nlattr *a;
	unsigned alen;
	int ret;

	/* a dump far larger than the room cannot fit: stop walking it */
	if (++rd->msgs > rd->max_msgs) {
		rd->err = -ENOSPC;
		return MNL_CB_ERROR;
	}
	if (nlh->nlmsg_type != RTM_NEWADDR || mnl_nlmsg_get_payload_len(nlh) < sizeof(*ifa))
		return MNL_CB_OK;
	ifa = mnl_nlmsg_get_payload(nlh);
	if (ifa->ifa_family == AF_INET)
		alen = 4;
	else if (ifa->ifa_family == AF_INET6)
		alen = 16;
	else
		return MNL_CB_OK;
	if (mnl_attr_parse(nlh, sizeof(*ifa), attr_cb, tb) != MNL_CB_OK) {
		rd->err = -EBADMSG;
		return MNL_CB_ERROR;
	}
	/* As getifaddrs(3): IFA_LOCAL is this end of a point-to-point link,
	 * where IFA_ADDRESS is the peer's; otherwise IFA_ADDRESS is ours. */
	a = tb[IFA_LOCAL] ? tb[IFA_LOCAL] : tb[IFA_ADDRESS];
	if (!a || mnl_attr_get_payload_len(a) != alen)
		return MNL_CB_OK;
	ret = add(rd, ifa->ifa_family, mnl_attr_get_payload(a), alen * 8);
	if (!ret && ifa->ifa_index &&
	    (ifa->ifa_index == rd->sync_index[0] || ifa->ifa_index == rd->sync_index[1]) &&
	    ifa->ifa_prefixlen <= alen * 8)
		ret = add(rd, ifa->ifa_family, mnl_attr_get_payload(a), ifa->ifa_prefixlen);
	if (ret) {
		rd->err = ret;
		return MNL_CB_ERROR;
	}
	return MNL_CB_OK;
}

/* One RTM_GETADDR dump on a socket of its own, closed after (which also
 * ends a dump left unread). The kernel builds each reply datagram inside
 * our own sendmsg/recvmsg, so the non-blocking reads never wait for
 * anyone; a reply that is not there is an error, not a wait. */
static int dump(struct reader *rd, uint8_t *buf, uint32_t seq)
{
	struct mnl_socket *nl;
	struct nlmsghdr *nlh;
	struct ifaddrmsg *ifa;
	unsigned portid;
	int ret = 0;

	nl = mnl_socket_open2(NETLINK_ROUTE, SOCK_CLOEXEC | SOCK_NONBLOCK);
	if (!nl)
		return -errno;
	if (mnl_socket_bind(nl, 0, MNL_SOCKET_AUTOPID) < 0) {
		ret = -errno;
		goto out;
	}
	portid = mnl_socket_get_portid(nl);
	nlh = mnl_nlmsg_put_header(buf);
	nlh->nlmsg_type = RTM_GETADDR;
	nlh->nlmsg_flags = NLM_F_REQUEST | NLM_F_DUMP;
	nlh->nlmsg_seq = seq;
	ifa = mnl_nlmsg_put_extra_header(nlh, sizeof(*ifa));
	ifa->ifa_family = AF_UNSPEC;
	if (mnl_socket_sendto(nl, nlh, nlh->nlmsg_len) < 0) {
		ret = -errno;
		goto out;
	}
	for (;;) {
		ssize_t n = mnl_socket_recvfrom(nl, buf, DUMP_BUF);

		if (n < 0) {
			ret = -errno;
			break;
		}
		rd->err = 0;
		ret = mnl_cb_run(buf, n, seq, portid, addr_cb, rd);
		if (ret == MNL_CB_STOP) {
			ret = 0;
			break;
		}
		if (ret < 0) {
			/* EINTR: an address changed during the dump */
			ret = rd->err ? rd->err : errno ? -errno : -EPROTO;
			break;
		}
	}
out:
	mnl_socket_close(nl);
	return ret;
}

int localaddr_read(const char *sync_ifname, const char *backup_ifname, struct filter_net *out,
                   unsigned max, unsigned *n)
{
	struct reader rd;
	uint8_t *buf;
	int ret = -EINTR;

	if (!n || (max && !out))
		return -EINVAL;
	*n = 0;
	buf = malloc(DUMP_BUF);
	if (!buf)
		return -ENOMEM;
	for (int i = 0; i < DUMP_TRIES && ret == -EINTR; i++) {
		rd = (struct reader){.out = out, .max = max};
		/* resolved each time: the sync interface may have been
		 * recreated with another index since the last read */
		if (sync_ifname && *sync_ifname)
			rd.sync_index[0] = if_nametoindex(sync_ifname);
		if (backup_ifname && *backup_ifname)
			rd.sync_index[1] = if_nametoindex(backup_ifname);
		/* bounded work: a dump four times the room is refused, not
		 * walked to its end (only one address repeated on many
		 * interfaces could still fit) */
		rd.max_msgs = max > (UINT_MAX - 256) / 4 ? UINT_MAX : max * 4 + 256;
		/* a fresh socket per dump: any sequence number will do */
		ret = dump(&rd, buf, (uint32_t)i + 1);
	}
	free(buf);
	if (ret < 0)
		return ret;
	compact(&rd);
	*n = rd.n;
	return 0;
}

struct localaddr_watch {
	struct mnl_socket *nl;
	struct event *ev_read, *ev_reread;
	bool armed;
	unsigned armed_ms;
	char ifname[IF_NAMESIZE], backup_ifname[IF_NAMESIZE];
	localaddr_changed_fn changed;
	void *arg;
	uint8_t rxbuf[EV_BUF];
	struct filter_net cur[FILTER_MAX_LOCAL], next[FILTER_MAX_LOCAL];
	unsigned ncur;
	uint64_t events, datagrams, foreign, overruns, sock_errors, rereads, changes, read_errors;
	struct hafw_ratelimit rl;
};

static void arm(struct localaddr_watch *w, unsigned ms)
{
	struct timeval tv = {ms / 1000, (ms % 1000) * 1000};

	/* a burst of events is one re-read on the next turn; an event while
	 * a retry waits brings it forward */
	if (w->armed && w->armed_ms <= ms)
		return;
	if (evtimer_add(w->ev_reread, &tv) == 0) {
		w->armed = true;
		w->armed_ms = ms;
	}
}

static void on_reread(evutil_socket_t fd, short what, void *arg)
{
	struct localaddr_watch *w = arg;
	unsigned n;
	int ret;

	(void)fd;
	(void)what;
	w->armed = false;
	w->rereads++;
	ret = localaddr_read(w->ifname, w->backup_ifname, w->next, FILTER_MAX_LOCAL, &n);
	if (ret < 0) {
		w->read_errors++;
		hafw_log_rl(&w->rl, LOG_ERR, "local addresses: reading them: %s%s", strerror(-ret),
		            ret == -ENOSPC ? " (more than the filter holds; keeping the last set)"
		                           : "");
		/* too many stays too many until an address goes, which is an
		 * event; anything else may pass */
		if (ret != -ENOSPC)
			arm(w, RETRY_MS);
		return;
	}
	if (n == w->ncur && !memcmp(w->next, w->cur, n * sizeof(w->cur[0])))
		return;
	memcpy(w->cur, w->next, n * sizeof(w->cur[0]));
	w->ncur = n;
	w->changes++;
	w->changed(w->arg, w->cur, w->ncur);
}

static void on_readable(evutil_socket_t fd, short what, void *arg)
{
	struct localaddr_watch *w = arg;

	(void)what;
	for (int i = 0; i < EV_READS_PER_TURN; i++) {
		struct sockaddr_nl sa;
		socklen_t salen = sizeof(sa);
		const struct nlmsghdr *nlh;
		ssize_t n;
		int len;

		n = recvfrom(fd, w->rxbuf, sizeof(w->rxbuf), 0, (struct sockaddr *)&sa, &salen);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			if (errno == ENOBUFS) {
				/* events were lost; which does not matter, the
				 * whole set is read again */
				w->overruns++;
				arm(w, 0);
				continue;
			}
			if (errno != EAGAIN && errno != EWOULDBLOCK) {
				/* the stream cannot be trusted: read the set */
				w->sock_errors++;
				hafw_log_rl(&w->rl, LOG_ERR, "local addresses: event socket: %s",
				            strerror(errno));
				arm(w, 0);
			}
			break;
		}
		/* only the kernel speaks for the kernel's addresses */
		if (salen < sizeof(sa) || sa.nl_family != AF_NETLINK || sa.nl_pid != 0) {
			w->foreign++;
			continue;
		}
		w->datagrams++;
		len = (int)n;
		for (nlh = (const struct nlmsghdr *)w->rxbuf; mnl_nlmsg_ok(nlh, len);
		     nlh = mnl_nlmsg_next(nlh, &len))
			if (nlh->nlmsg_type == RTM_NEWADDR || nlh->nlmsg_type == RTM_DELADDR)
				w->events++;
		/* the content is not trusted for anything: any word from the
		 * kernel on these groups means "read the set again" */
		arm(w, 0);
	}
}

int localaddr_watch_open(struct localaddr_watch **wp, struct event_base *base,
                         const char *sync_ifname, const char *backup_ifname,
                         localaddr_changed_fn changed, void *arg)
{
	struct localaddr_watch *w;
	int ret;

	*wp = NULL;
	if (!base || !changed || (sync_ifname && strlen(sync_ifname) >= IF_NAMESIZE) ||
	    (backup_ifname && strlen(backup_ifname) >= IF_NAMESIZE))
		return -EINVAL;
	w = calloc(1, sizeof(*w));
	if (!w)
		return -ENOMEM;
	if (sync_ifname)
		strcpy(w->ifname, sync_ifname);
	if (backup_ifname)
		strcpy(w->backup_ifname, backup_ifname);
	w->changed = changed;
	w->arg = arg;
	w->rl = (struct hafw_ratelimit)HAFW_RATELIMIT_INIT(10, 5);
	/* subscribed before the first read, so no change falls between */
	w->nl = mnl_socket_open2(NETLINK_ROUTE, SOCK_CLOEXEC | SOCK_NONBLOCK);
	if (!w->nl) {
		ret = -errno;
		goto err;
	}
	if (mnl_socket_bind(w->nl, RTMGRP_IPV4_IFADDR | RTMGRP_IPV6_IFADDR, MNL_SOCKET_AUTOPID) <
	    0) {
		ret = -errno;
		goto err;
	}
	w->ev_read =
	    event_new(base, mnl_socket_get_fd(w->nl), EV_READ | EV_PERSIST, on_readable, w);
	w->ev_reread = evtimer_new(base, on_reread, w);
	if (!w->ev_read || !w->ev_reread || event_add(w->ev_read, NULL) < 0) {
		ret = -ENOMEM;
		goto err;
	}
	ret = localaddr_read(w->ifname, w->backup_ifname, w->cur, FILTER_MAX_LOCAL, &w->ncur);
	if (ret < 0)
		goto err;
	*wp = w;
	changed(arg, w->cur, w->ncur);
	return 0;
err:
	localaddr_watch_close(w);
	return ret;
}

void localaddr_watch_close(struct localaddr_watch *w)
{
	if (!w)
		return;
	if (w->ev_read)
		event_free(w->ev_read);
	if (w->ev_reread)
		event_free(w->ev_reread);
	if (w->nl)
		mnl_socket_close(w->nl);
	free(w);
}

int localaddr_watch_stats(const struct localaddr_watch *w, struct localaddr_stat *out, int max)
{
	const struct localaddr_stat all[] = {
	    {"localaddr_events", w->events},
	    {"localaddr_datagrams", w->datagrams},
	    {"localaddr_foreign_dropped", w->foreign},
	    {"localaddr_overruns", w->overruns},
	    {"localaddr_socket_errors", w->sock_errors},
	    {"localaddr_rereads", w->rereads},
	    {"localaddr_changes", w->changes},
	    {"localaddr_read_errors", w->read_errors},
	    {"localaddr_nets", w->ncur},
	};
	int n = 0;

	for (size_t i = 0; i < sizeof(all) / sizeof(all[0]) && n < max; i++)
		out[n++] = all[i];
	return n;
}

int localaddr_watch_fd(const struct localaddr_watch *w)
{
	return mnl_socket_get_fd(w->nl);
}
