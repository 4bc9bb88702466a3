/* syncd/chan_mcast.c: the multicast channel on a real link.
 *
 * Needs root. The test moves itself into a network namespace of its own
 * (unshare) that serves as a switch: a bridge with one veth port per node.
 * Each node (a, b, c) is another anonymous namespace holding the other end
 * of its veth, named sync0. All channels live in one process and one event
 * loop; a channel's socket belongs to the namespace it was opened in. The
 * namespaces have no names and no other links: they vanish with the
 * process, and no datagram can leave them. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "chan.h"
#include "config.h"
#include "log.h"

#include <arpa/inet.h>
#include <errno.h>
#include <event2/event.h>
#include <fcntl.h>
#include <net/if.h>
#include <netinet/in.h>
#include <sched.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define PORT    3780
#define GROUP4  "239.192.77.1"
#define OTHER4  "239.192.77.2"
#define GROUP6  "ff12::4841:4657"
#define OTHER6  "ff12::4841:4658"
#define BCAST4  "10.77.0.255"
#define MAX_RX  512
#define WAIT_MS 5000
#define NODES   3

enum { A, B, C };

struct node {
	const char *ip4;
	const char *ll6;
	int ns;
};

static struct node nodes[NODES] = {
    {"10.77.0.1", "fe80::77:1", -1},
    {"10.77.0.2", "fe80::77:2", -1},
    {"10.77.0.3", "fe80::77:3", -1},
};
static int hub_ns = -1;
static const char *skip_reason;

static struct event_base *base;
static struct event *tick;

struct dgram {
	uint8_t buf[2048];
	size_t len;
	struct chan_addr from;
};

struct rx {
	struct dgram *d;
	int n;
};

static struct rx rx[NODES];

static void on_recv(void *arg, const uint8_t *buf, size_t len, const struct chan_addr *from)
{
	struct rx *r = arg;
	struct dgram *d;

	if (r->n >= MAX_RX)
		return;
	d = &r->d[r->n++];
	d->len = len;
	memcpy(d->buf, buf, len < sizeof(d->buf) ? len : sizeof(d->buf));
	d->from = *from;
}

/* Multicast never reports peers coming and going. */
static const struct chan_events events = {.recv = on_recv};

static int sh(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int sh(const char *fmt, ...)
{
	char cmd[1024];
	va_list ap;
	int st;

	va_start(ap, fmt);
	vsnprintf(cmd, sizeof(cmd), fmt, ap);
	va_end(ap);
	st = system(cmd);
	return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static void enter(int ns)
{
	assert_int_equal(setns(ns, CLONE_NEWNET), 0);
}

/* A new empty namespace, returned as an fd; the caller stays in the hub. */
static int new_ns(void)
{
	int fd;

	if (unshare(CLONE_NEWNET) < 0)
		return -1;
	fd = open("/proc/self/ns/net", O_RDONLY | O_CLOEXEC);
	if (setns(hub_ns, CLONE_NEWNET) < 0)
		return -1;
	return fd;
}

#define PROBE_PORT (PORT + 7)

/* A bridge port forwards only once the kernel has handled its carrier
 * change, which it does asynchronously (linkwatch), later still while
 * other namespaces are being torn down: with 8 runs at once, about 1 in
 * 5 lost a test's first datagram at C's port. Rather than poll kernel
 * state, probe the path itself: wait until every node has heard every
 * other node's group datagram, probing every 5 ms for at most 10 s. */
static const char *wait_ready(void)
{
	struct ip_mreqn mr = {.imr_ifindex = 0};
	int fd[NODES], heard[NODES] = {0}, all = 0, tries;
	struct sockaddr_in grp = {.sin_family = AF_INET, .sin_port = htons(PROBE_PORT)};
	struct sockaddr_in any = {.sin_family = AF_INET, .sin_port = htons(PROBE_PORT)};
	const char *ret = NULL;

	inet_pton(AF_INET, GROUP4, &grp.sin_addr);
	mr.imr_multiaddr = grp.sin_addr;
	for (int i = 0; i < NODES; i++) {
		if (setns(nodes[i].ns, CLONE_NEWNET) < 0)
			return "cannot enter a node namespace";
		mr.imr_ifindex = (int)if_nametoindex("sync0");
		fd[i] = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
		if (fd[i] < 0 || bind(fd[i], (struct sockaddr *)&any, sizeof(any)) < 0 ||
		    setsockopt(fd[i], IPPROTO_IP, IP_ADD_MEMBERSHIP, &mr, sizeof(mr)) < 0 ||
		    setsockopt(fd[i], IPPROTO_IP, IP_MULTICAST_IF, &mr, sizeof(mr)) < 0)
			return "cannot open a probe socket";
	}
	if (setns(hub_ns, CLONE_NEWNET) < 0)
		return "cannot return to the hub namespace";
	for (tries = 0; all != NODES && tries < 2000; tries++) {
		for (int i = 0; i < NODES; i++) {
			uint8_t id = (uint8_t)i;

			sendto(fd[i], &id, 1, 0, (struct sockaddr *)&grp, sizeof(grp));
		}
		usleep(5000);
		all = 0;
		for (int i = 0; i < NODES; i++) {
			uint8_t id;

			while (recv(fd[i], &id, 1, MSG_DONTWAIT) == 1)
				if (id < NODES)
					heard[i] |= 1 << id;
			if ((heard[i] | 1 << i) == (1 << NODES) - 1)
				all++;
		}
	}
	if (all != NODES)
		ret = "the namespaces' link never passed a datagram";
	else if (tries > 1)
		fprintf(stderr, "test_chan_mcast: link ready after %d probes\n", tries);
	for (int i = 0; i < NODES; i++)
		close(fd[i]);
	return ret;
}

static const char *build_topology(void)
{
	if (geteuid() != 0)
		return "needs root (network namespaces)";
	if (sh("command -v ip >/dev/null && command -v tc >/dev/null"))
		return "needs ip and tc (iproute2)";
	if (unshare(CLONE_NEWNET) < 0)
		return "unshare(CLONE_NEWNET) failed";
	hub_ns = open("/proc/self/ns/net", O_RDONLY | O_CLOEXEC);
	if (hub_ns < 0)
		return "cannot open own network namespace";
	if (sh("ip link add br0 type bridge mcast_snooping 0 && ip link set br0 up"))
		return "cannot create a bridge";
	for (int i = 0; i < NODES; i++) {
		nodes[i].ns = new_ns();
		if (nodes[i].ns < 0)
			return "cannot create a node namespace";
		if (sh("ip link add h%d type veth peer name sync0 netns /proc/%d/fd/%d && "
		       "ip link set h%d master br0 up",
		       i, (int)getpid(), nodes[i].ns, i))
			return "cannot create a veth pair";
		if (setns(nodes[i].ns, CLONE_NEWNET) < 0)
			return "cannot enter a node namespace";
		/* nodad: addresses usable at once; no autoconfigured
		 * link-local address beside ours */
		if (sh("ip link set lo up && ip link set sync0 addrgenmode none && "
		       "ip addr add %s/24 dev sync0 && ip addr add %s/64 dev sync0 nodad && "
		       "ip link set sync0 up",
		       nodes[i].ip4, nodes[i].ll6))
			return "cannot configure sync0";
		if (setns(hub_ns, CLONE_NEWNET) < 0)
			return "cannot return to the hub namespace";
	}
	return wait_ready();
}

#define REQUIRE_NETNS()                                                                            \
	do {                                                                                       \
		if (skip_reason) {                                                                 \
			print_message("skipped: %s\n", skip_reason);                               \
			skip();                                                                    \
		}                                                                                  \
	} while (0)

static void cfg_init(struct hafw_config *cfg, const char *group)
{
	config_defaults(cfg);
	snprintf(cfg->sync_if, sizeof(cfg->sync_if), "sync0");
	snprintf(cfg->sync_group, sizeof(cfg->sync_group), "%s", group);
	cfg->sync_port = PORT;
}

/* Channels and sockets a test opened, so a failed test does not leave them bound to
 * the sync port for the next one. */
static struct chan *opened[8];

static struct chan *open_on(int node, const struct hafw_config *cfg)
{
	struct chan *c = NULL;
	int ret;

	enter(nodes[node].ns);
	ret = chan_mcast_ops.open(&c, cfg, 0, base, &events, &rx[node]);
	enter(hub_ns);
	assert_int_equal(ret, 0);
	assert_non_null(c);
	for (size_t i = 0; i < sizeof(opened) / sizeof(opened[0]); i++) {
		if (!opened[i]) {
			opened[i] = c;
			return c;
		}
	}
	fail_msg("too many channels open");
	return NULL;
}

static void close_ch(struct chan *c)
{
	for (size_t i = 0; i < sizeof(opened) / sizeof(opened[0]); i++)
		if (opened[i] == c)
			opened[i] = NULL;
	chan_mcast_ops.close(c);
}

static uint64_t stat_of(struct chan *c, const char *name)
{
	struct chan_stat st[64];
	int n = chan_mcast_ops.stats(c, st, 64);

	for (int i = 0; i < n; i++)
		if (!strcmp(st[i].name, name))
			return st[i].value;
	fail_msg("no counter %s", name);
	return 0;
}

static double now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static void on_tick(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	(void)arg;
}

/* Run the loop in bounded turns until done() or ms have passed. */
static bool run_until(bool (*done)(void *), void *arg, int ms)
{
	double end = now_ms() + ms;
	struct timeval tv = {0, 10000};

	while (!done(arg)) {
		if (now_ms() > end)
			return false;
		/* the tick bounds each turn when no socket is ready */
		event_add(tick, &tv);
		event_base_loop(base, EVLOOP_ONCE);
	}
	return true;
}

struct want {
	int node;
	int n;
};

static bool got_n(void *arg)
{
	const struct want *w = arg;

	return rx[w->node].n >= w->n;
}

static void wait_rx(int node, int n)
{
	struct want w = {node, n};

	assert_true(run_until(got_n, &w, WAIT_MS));
}

static bool queue_empty(void *arg)
{
	return chan_mcast_ops.backlog(arg) == 0;
}

static void addr_of(struct chan_addr *a, const char *ip, uint16_t port)
{
	memset(a, 0, sizeof(*a));
	if (inet_pton(AF_INET, ip, a->ip) == 1) {
		a->len = 4;
	} else {
		assert_int_equal(inet_pton(AF_INET6, ip, a->ip), 1);
		a->len = 16;
	}
	a->port = port;
}

static void assert_from(const struct dgram *d, const char *ip, uint16_t port)
{
	struct chan_addr want;

	addr_of(&want, ip, port);
	assert_int_equal(d->from.len, want.len);
	assert_memory_equal(d->from.ip, want.ip, want.len);
	assert_int_equal(d->from.port, want.port);
}

static void assert_payload(const struct dgram *d, const char *text)
{
	assert_int_equal(d->len, strlen(text));
	assert_memory_equal(d->buf, text, strlen(text));
}

static int send_str(struct chan *c, const char *text)
{
	return chan_mcast_ops.send(c, (const uint8_t *)text, strlen(text));
}

static int send_str_to(struct chan *c, const struct chan_addr *to, const char *text)
{
	return chan_mcast_ops.send_to(c, to, (const uint8_t *)text, strlen(text));
}

/* A plain UDP socket in a node's namespace: to send what a channel would
 * not, to join a group as another program on the node would, or to listen
 * where no channel is. */
static int plain_fds[8];
static int n_plain;

static int plain_socket(int node, int af, const char *bind_ip, uint16_t port)
{
	int fd, one = 1;
	unsigned ifindex;

	enter(nodes[node].ns);
	ifindex = if_nametoindex("sync0");
	fd = socket(af, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	assert_true(fd >= 0);
	assert_int_equal(setsockopt(fd, SOL_SOCKET, SO_BINDTODEVICE, "sync0", 5), 0);
	if (af == AF_INET) {
		struct sockaddr_in sin = {.sin_family = AF_INET, .sin_port = htons(port)};
		struct ip_mreqn mr = {.imr_ifindex = (int)ifindex};

		if (bind_ip)
			assert_int_equal(inet_pton(AF_INET, bind_ip, &sin.sin_addr), 1);
		assert_int_equal(bind(fd, (struct sockaddr *)&sin, sizeof(sin)), 0);
		assert_int_equal(setsockopt(fd, IPPROTO_IP, IP_MULTICAST_IF, &mr, sizeof(mr)), 0);
	} else {
		struct sockaddr_in6 sin6 = {.sin6_family = AF_INET6, .sin6_port = htons(port)};

		assert_int_equal(setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one)), 0);
		if (bind_ip)
			assert_int_equal(inet_pton(AF_INET6, bind_ip, &sin6.sin6_addr), 1);
		assert_int_equal(bind(fd, (struct sockaddr *)&sin6, sizeof(sin6)), 0);
		assert_int_equal(
		    setsockopt(fd, IPPROTO_IPV6, IPV6_MULTICAST_IF, &ifindex, sizeof(ifindex)), 0);
	}
	enter(hub_ns);
	assert_true(n_plain < (int)(sizeof(plain_fds) / sizeof(plain_fds[0])));
	plain_fds[n_plain++] = fd;
	return fd;
}

static void plain_join(int fd, int node, const char *group)
{
	unsigned ifindex;

	enter(nodes[node].ns);
	ifindex = if_nametoindex("sync0");
	enter(hub_ns);
	if (strchr(group, ':')) {
		struct ipv6_mreq mr = {.ipv6mr_interface = ifindex};

		assert_int_equal(inet_pton(AF_INET6, group, &mr.ipv6mr_multiaddr), 1);
		assert_int_equal(setsockopt(fd, IPPROTO_IPV6, IPV6_JOIN_GROUP, &mr, sizeof(mr)), 0);
	} else {
		struct ip_mreqn mr = {.imr_ifindex = (int)ifindex};

		assert_int_equal(inet_pton(AF_INET, group, &mr.imr_multiaddr), 1);
		assert_int_equal(setsockopt(fd, IPPROTO_IP, IP_ADD_MEMBERSHIP, &mr, sizeof(mr)), 0);
	}
}

static void plain_send(int fd, const char *ip, uint16_t port, const char *text)
{
	struct sockaddr_storage ss;
	socklen_t sl;

	memset(&ss, 0, sizeof(ss));
	if (strchr(ip, ':')) {
		struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&ss;

		sin6->sin6_family = AF_INET6;
		sin6->sin6_port = htons(port);
		assert_int_equal(inet_pton(AF_INET6, ip, &sin6->sin6_addr), 1);
		sl = sizeof(*sin6);
	} else {
		struct sockaddr_in *sin = (struct sockaddr_in *)&ss;

		sin->sin_family = AF_INET;
		sin->sin_port = htons(port);
		assert_int_equal(inet_pton(AF_INET, ip, &sin->sin_addr), 1);
		sl = sizeof(*sin);
	}
	assert_int_equal(sendto(fd, text, strlen(text), 0, (struct sockaddr *)&ss, sl),
	                 (ssize_t)strlen(text));
}

struct plain_want {
	int fd;
	char buf[256];
	ssize_t n;
};

static bool plain_got(void *arg)
{
	struct plain_want *w = arg;

	w->n = recv(w->fd, w->buf, sizeof(w->buf), MSG_DONTWAIT);
	return w->n >= 0;
}

/* Every test starts in the hub with empty receive logs. */
static int reset(void **state)
{
	(void)state;
	if (hub_ns >= 0 && setns(hub_ns, CLONE_NEWNET) < 0)
		return -1;
	for (int i = 0; i < NODES; i++)
		rx[i].n = 0;
	return 0;
}

/* What a failed test left behind: channels, sockets, a qdisc on a's link. */
static int cleanup(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(opened) / sizeof(opened[0]); i++) {
		if (opened[i])
			chan_mcast_ops.close(opened[i]);
		opened[i] = NULL;
	}
	while (n_plain > 0)
		close(plain_fds[--n_plain]);
	if (hub_ns < 0)
		return 0;
	if (setns(nodes[A].ns, CLONE_NEWNET) == 0)
		sh("tc qdisc del dev sync0 root 2>/dev/null");
	return setns(hub_ns, CLONE_NEWNET) < 0 ? -1 : 0;
}

/* A group datagram reaches every other node, with its sender's address
 * and port; the sender does not hear itself. */
static void test_multicast_v4(void **state)
{
	struct hafw_config cfg;
	struct chan *ch[NODES];

	(void)state;
	REQUIRE_NETNS();
	cfg_init(&cfg, GROUP4);
	for (int i = 0; i < NODES; i++)
		ch[i] = open_on(i, &cfg);
	assert_int_equal(chan_mcast_ops.max_dgram(ch[A]), 1500 - 28);

	assert_int_equal(send_str(ch[A], "from a"), 0);
	wait_rx(B, 1);
	wait_rx(C, 1);
	assert_payload(&rx[B].d[0], "from a");
	assert_from(&rx[B].d[0], nodes[A].ip4, PORT);
	assert_payload(&rx[C].d[0], "from a");
	assert_from(&rx[C].d[0], nodes[A].ip4, PORT);

	assert_int_equal(send_str(ch[B], "from b"), 0);
	wait_rx(A, 1);
	wait_rx(C, 2);
	assert_payload(&rx[A].d[0], "from b");
	assert_from(&rx[A].d[0], nodes[B].ip4, PORT);
	assert_payload(&rx[C].d[1], "from b");
	assert_from(&rx[C].d[1], nodes[B].ip4, PORT);
	/* A's own datagram did not come back to it */
	assert_int_equal(rx[A].n, 1);
	assert_int_equal(rx[B].n, 1);

	assert_int_equal(stat_of(ch[A], "dgrams_sent"), 1);
	assert_int_equal(stat_of(ch[A], "bytes_sent"), 6);
	assert_int_equal(stat_of(ch[A], "dgrams_received"), 1);
	assert_int_equal(stat_of(ch[A], "bytes_received"), 6);
	assert_int_equal(stat_of(ch[C], "dgrams_received"), 2);
	assert_int_equal(stat_of(ch[A], "send_errors"), 0);
	assert_int_equal(stat_of(ch[A], "receive_errors"), 0);
	assert_int_equal(chan_mcast_ops.backlog(ch[A]), 0);

	for (int i = 0; i < NODES; i++)
		close_ch(ch[i]);
}

/* send_to reaches the addressed peer and nobody else; port 0 means the
 * sync port, another port is honoured. */
static void test_unicast_v4(void **state)
{
	struct hafw_config cfg;
	struct chan *ch[NODES];
	struct chan_addr to;
	struct plain_want w;

	(void)state;
	REQUIRE_NETNS();
	cfg_init(&cfg, GROUP4);
	for (int i = 0; i < NODES; i++)
		ch[i] = open_on(i, &cfg);

	addr_of(&to, nodes[B].ip4, 0);
	assert_int_equal(send_str_to(ch[A], &to, "a to b"), 0);
	/* a group datagram after it: once C has that, it would have had
	 * the unicast one too */
	assert_int_equal(send_str(ch[A], "marker"), 0);
	wait_rx(B, 2);
	wait_rx(C, 1);
	assert_payload(&rx[B].d[0], "a to b");
	assert_from(&rx[B].d[0], nodes[A].ip4, PORT);
	assert_payload(&rx[B].d[1], "marker");
	assert_int_equal(rx[C].n, 1);
	assert_payload(&rx[C].d[0], "marker");

	/* and back, to the address B saw */
	assert_int_equal(send_str_to(ch[B], &rx[B].d[0].from, "b to a"), 0);
	wait_rx(A, 1);
	assert_payload(&rx[A].d[0], "b to a");
	assert_from(&rx[A].d[0], nodes[B].ip4, PORT);

	close_ch(ch[C]);
	w.fd = plain_socket(C, AF_INET, NULL, PORT + 1);
	addr_of(&to, nodes[C].ip4, PORT + 1);
	assert_int_equal(send_str_to(ch[A], &to, "other port"), 0);
	assert_true(run_until(plain_got, &w, WAIT_MS));
	assert_int_equal(w.n, 10);
	assert_memory_equal(w.buf, "other port", 10);

	assert_int_equal(stat_of(ch[A], "dgrams_sent"), 3);
	close_ch(ch[A]);
	close_ch(ch[B]);
}

/* Another program on B joins another group; a datagram to that group on
 * the sync port must not reach B's channel. The control is a listener on
 * C, which shows the datagram was on the link. */
static void other_group(const char *group, const char *other, int af, const char *other4)
{
	struct hafw_config cfg;
	struct chan *a, *b;
	struct plain_want w;

	cfg_init(&cfg, group);
	a = open_on(A, &cfg);
	b = open_on(B, &cfg);
	plain_join(plain_socket(B, af, NULL, 0), B, other);
	w.fd = plain_socket(C, af, NULL, PORT);
	plain_join(w.fd, C, other);
	plain_send(plain_socket(A, af, NULL, 0), other, PORT, "other group");
	if (other4) {
		/* an IPv6 channel's socket also takes IPv4 unicast, so it
		 * must not take IPv4 multicast of other groups either */
		plain_join(plain_socket(B, AF_INET, NULL, 0), B, other4);
		plain_send(plain_socket(A, AF_INET, NULL, 0), other4, PORT, "other group 4");
	}
	assert_int_equal(send_str(a, "ours"), 0);
	assert_true(run_until(plain_got, &w, WAIT_MS));
	assert_int_equal(w.n, 11);
	wait_rx(B, 1);
	assert_int_equal(rx[B].n, 1);
	assert_payload(&rx[B].d[0], "ours");
	assert_int_equal(stat_of(b, "dgrams_received"), 1);

	close_ch(a);
	close_ch(b);
}

static void test_other_group_v4(void **state)
{
	(void)state;
	REQUIRE_NETNS();
	other_group(GROUP4, OTHER4, AF_INET, NULL);
}

static void test_other_group_v6(void **state)
{
	(void)state;
	REQUIRE_NETNS();
#ifndef IPV6_MULTICAST_ALL
	print_message("skipped: kernel headers lack IPV6_MULTICAST_ALL\n");
	skip();
#endif
	other_group(GROUP6, OTHER6, AF_INET6, OTHER4);
}

/* IPv6: group datagrams carry the link-local sender; send_to a link-local
 * peer works (the scope is the sync link); an IPv4 peer is reached and
 * reported as IPv4, not as an IPv4-mapped IPv6 address. */
static void test_ipv6(void **state)
{
	struct hafw_config cfg;
	struct chan *a, *b;
	struct chan_addr to;

	(void)state;
	REQUIRE_NETNS();
	cfg_init(&cfg, GROUP6);
	a = open_on(A, &cfg);
	b = open_on(B, &cfg);
	assert_int_equal(chan_mcast_ops.max_dgram(a), 1500 - 48);

	assert_int_equal(send_str(a, "six"), 0);
	wait_rx(B, 1);
	assert_payload(&rx[B].d[0], "six");
	assert_from(&rx[B].d[0], nodes[A].ll6, PORT);

	assert_int_equal(send_str_to(b, &rx[B].d[0].from, "back"), 0);
	wait_rx(A, 1);
	assert_payload(&rx[A].d[0], "back");
	assert_from(&rx[A].d[0], nodes[B].ll6, PORT);

	addr_of(&to, nodes[A].ip4, 0);
	assert_int_equal(send_str_to(b, &to, "four"), 0);
	wait_rx(A, 2);
	assert_payload(&rx[A].d[1], "four");
	assert_from(&rx[A].d[1], nodes[B].ip4, PORT);

	/* and the same given as ::ffff:a.b.c.d */
	memset(&to, 0, sizeof(to));
	to.len = 16;
	to.ip[10] = to.ip[11] = 0xff;
	assert_int_equal(inet_pton(AF_INET, nodes[A].ip4, &to.ip[12]), 1);
	assert_int_equal(send_str_to(b, &to, "mapped"), 0);
	wait_rx(A, 3);
	assert_payload(&rx[A].d[2], "mapped");
	assert_from(&rx[A].d[2], nodes[B].ip4, PORT);

	close_ch(a);
	close_ch(b);
}

/* Errors come back as the kernel's errno, are counted, and the log line
 * names the same cause. */
static void test_send_errors(void **state)
{
	struct hafw_config cfg;
	struct chan *a;
	struct chan_addr to;
	uint8_t big[4000];
	char log[4096];
	int saved, tmp, ret[5];
	ssize_t n;

	(void)state;
	REQUIRE_NETNS();
	memset(big, 0x5a, sizeof(big));
	cfg_init(&cfg, GROUP4);
	/* larger than the link's: the kernel refuses what does not fit */
	cfg.sync_mtu = 9000;
	a = open_on(A, &cfg);
	assert_int_equal(chan_mcast_ops.max_dgram(a), 9000 - 28);

	tmp = fileno(tmpfile());
	assert_true(tmp >= 0);
	fflush(stderr);
	saved = dup(2);
	dup2(tmp, 2);

	/* no assertion until stderr is back: cmocka reports there */
	ret[0] = chan_mcast_ops.send(a, big, 2000);
	/* a broadcast without SO_BROADCAST */
	addr_of(&to, BCAST4, 0);
	ret[1] = send_str_to(a, &to, "bcast");
	/* not an address */
	to.len = 5;
	ret[2] = send_str_to(a, &to, "x");
	/* an IPv6 peer on an IPv4 channel */
	addr_of(&to, nodes[B].ll6, 0);
	ret[3] = send_str_to(a, &to, "x");
	/* larger than the channel said it takes */
	ret[4] = chan_mcast_ops.send(a, big, 9000 - 28 + 1);

	fflush(stderr);
	dup2(saved, 2);
	close(saved);
	assert_int_equal(ret[0], -EMSGSIZE);
	assert_int_equal(ret[1], -EACCES);
	assert_int_equal(ret[2], -EINVAL);
	assert_int_equal(ret[3], -EAFNOSUPPORT);
	assert_int_equal(ret[4], -EMSGSIZE);
	n = pread(tmp, log, sizeof(log) - 1, 0);
	assert_true(n > 0);
	log[n] = 0;
	close(tmp);
	assert_non_null(strstr(log, strerror(EMSGSIZE)));
	assert_non_null(strstr(log, strerror(EACCES)));

	assert_int_equal(stat_of(a, "send_errors"), 5);
	assert_int_equal(stat_of(a, "dgrams_sent"), 0);
	assert_int_equal(stat_of(a, "send_queued"), 0);
	assert_int_equal(chan_mcast_ops.backlog(a), 0);
	close_ch(a);
}

#define BURST     200
#define QUEUE     32
#define DGRAM_LEN 1000

/* A tiny socket buffer behind a slow qdisc: sends never wait; what the
 * socket does not take queues, in order, unicast and multicast alike;
 * a full queue refuses with -ENOBUFS and counts; the loop drains it. */
static void test_queue_burst(void **state)
{
	struct hafw_config cfg;
	struct chan *a, *b;
	struct chan_addr to_b, bcast;
	uint8_t dg[DGRAM_LEN];
	int ret[BURST], accepted = 0, refused = 0, first_queued = -1, bad = -1;
	double t0, took;
	int next;

	(void)state;
	REQUIRE_NETNS();
	cfg_init(&cfg, GROUP4);
	cfg.sync_sndbuf = 4096;
	cfg.sync_send_queue = QUEUE;
	a = open_on(A, &cfg);
	b = open_on(B, &cfg);
	addr_of(&to_b, nodes[B].ip4, 0);
	addr_of(&bcast, BCAST4, 0);
	/* resolve B's address first, so no datagram waits for ARP */
	assert_int_equal(send_str_to(a, &to_b, "hello"), 0);
	wait_rx(B, 1);
	rx[B].n = 0;

	enter(nodes[A].ns);
	/* the qdisc holds datagrams, and the socket buffer with them */
	assert_int_equal(sh("tc qdisc replace dev sync0 root tbf rate 2mbit burst 3000 "
	                    "limit 1000000"),
	                 0);
	enter(hub_ns);

	memset(dg, 0xab, sizeof(dg));
	t0 = now_ms();
	for (int i = 0; i < BURST; i++) {
		memcpy(dg, &i, sizeof(i));
		if (first_queued >= 0 && bad < 0) {
			/* queued, it fails only when its turn comes */
			bad = i;
			ret[i] = chan_mcast_ops.send_to(a, &bcast, dg, sizeof(dg));
		} else if (i % 7 == 3) {
			ret[i] = chan_mcast_ops.send_to(a, &to_b, dg, sizeof(dg));
		} else {
			ret[i] = chan_mcast_ops.send(a, dg, sizeof(dg));
		}
		if (ret[i] == 0)
			accepted++;
		else
			refused++;
		if (first_queued < 0 && chan_mcast_ops.backlog(a) > 0)
			first_queued = i;
	}
	took = now_ms() - t0;
	/* generous: the old code slept ~10 ms on each refused send */
	assert_true(took < 1000);
	assert_true(first_queued >= 0);
	assert_true(bad > first_queued);
	assert_int_equal(ret[bad], 0);
	assert_int_equal(chan_mcast_ops.backlog(a), QUEUE);
	assert_int_equal(accepted, first_queued + QUEUE);
	for (int i = 0; i < BURST; i++)
		assert_int_equal(ret[i], i < accepted ? 0 : -ENOBUFS);
	assert_int_equal(refused, BURST - accepted);
	assert_int_equal(stat_of(a, "send_queued"), QUEUE);
	assert_int_equal(stat_of(a, "send_queue_max"), QUEUE);
	assert_int_equal(stat_of(a, "send_queue_dropped"), refused);
	assert_int_equal(stat_of(a, "send_errors"), 0);

	assert_true(run_until(queue_empty, a, WAIT_MS));
	wait_rx(B, accepted - 1);
	assert_int_equal(stat_of(a, "send_errors"), 1);
	assert_int_equal(stat_of(a, "dgrams_sent"), 1 + accepted - 1);
	assert_int_equal(stat_of(a, "send_queue_max"), QUEUE);

	/* everything but the broadcast, in the order it was sent */
	next = 0;
	for (int j = 0; j < rx[B].n; j++, next++) {
		int idx;

		if (next == bad)
			next++;
		assert_int_equal(rx[B].d[j].len, DGRAM_LEN);
		memcpy(&idx, rx[B].d[j].buf, sizeof(idx));
		assert_int_equal(idx, next);
	}
	assert_int_equal(rx[B].n, accepted - 1);

	/* an empty queue takes datagrams again */
	assert_int_equal(send_str(a, "after"), 0);
	enter(nodes[A].ns);
	assert_int_equal(sh("tc qdisc del dev sync0 root"), 0);
	enter(hub_ns);
	wait_rx(B, accepted);
	assert_payload(&rx[B].d[accepted - 1], "after");

	close_ch(a);
	close_ch(b);
}

/* Closing with datagrams still queued frees them (the ASan build checks). */
static void test_close_with_backlog(void **state)
{
	struct hafw_config cfg;
	struct chan *a;
	uint8_t dg[DGRAM_LEN] = {0};

	(void)state;
	REQUIRE_NETNS();
	cfg_init(&cfg, GROUP4);
	cfg.sync_sndbuf = 4096;
	cfg.sync_send_queue = QUEUE;
	a = open_on(A, &cfg);
	enter(nodes[A].ns);
	assert_int_equal(sh("tc qdisc replace dev sync0 root tbf rate 1mbit burst 3000 "
	                    "limit 1000000"),
	                 0);
	enter(hub_ns);
	for (int i = 0; i < 64; i++)
		chan_mcast_ops.send(a, dg, sizeof(dg));
	assert_int_equal(chan_mcast_ops.backlog(a), QUEUE);
	close_ch(a);
	enter(nodes[A].ns);
	assert_int_equal(sh("tc qdisc del dev sync0 root"), 0);
	enter(hub_ns);
}

/* Open refuses what it cannot serve, and leaks nothing doing so. */
static void test_open_errors(void **state)
{
	struct hafw_config cfg;
	struct chan *c = NULL;
	struct chan_events no_recv = {0};

	(void)state;
	REQUIRE_NETNS();
	cfg_init(&cfg, GROUP4);
	snprintf(cfg.sync_if, sizeof(cfg.sync_if), "nosuch0");
	enter(nodes[A].ns);
	assert_int_equal(chan_mcast_ops.open(&c, &cfg, 0, base, &events, NULL), -ENODEV);
	cfg_init(&cfg, GROUP4);
	assert_int_equal(chan_mcast_ops.open(&c, &cfg, 0, base, &no_recv, NULL), -EINVAL);
	enter(hub_ns);
	assert_null(c);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_multicast_v4, reset, cleanup),
	    cmocka_unit_test_setup_teardown(test_unicast_v4, reset, cleanup),
	    cmocka_unit_test_setup_teardown(test_other_group_v4, reset, cleanup),
	    cmocka_unit_test_setup_teardown(test_other_group_v6, reset, cleanup),
	    cmocka_unit_test_setup_teardown(test_ipv6, reset, cleanup),
	    cmocka_unit_test_setup_teardown(test_send_errors, reset, cleanup),
	    cmocka_unit_test_setup_teardown(test_queue_burst, reset, cleanup),
	    cmocka_unit_test_setup_teardown(test_close_with_backlog, reset, cleanup),
	    cmocka_unit_test_setup_teardown(test_open_errors, reset, cleanup),
	};
	int ret;

	hafw_log_init("test_chan_mcast", false, LOG_DEBUG);
	skip_reason = build_topology();
	if (skip_reason)
		fprintf(stderr, "test_chan_mcast: skipping every test: %s\n", skip_reason);
	for (int i = 0; i < NODES; i++) {
		rx[i].d = calloc(MAX_RX, sizeof(*rx[i].d));
		assert_non_null(rx[i].d);
	}
	base = event_base_new();
	tick = evtimer_new(base, on_tick, NULL);
	ret = cmocka_run_group_tests(tests, NULL, NULL);
	event_free(tick);
	event_base_free(base);
	for (int i = 0; i < NODES; i++) {
		free(rx[i].d);
		if (nodes[i].ns >= 0)
			close(nodes[i].ns);
	}
	if (hub_ns >= 0)
		close(hub_ns);
	return ret;
}
