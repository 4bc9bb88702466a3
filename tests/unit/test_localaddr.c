/* syncd/localaddr.c: the node's own addresses, read and followed live.
 *
 * The reader is compared with getifaddrs(3), which the filter used before.
 * The watcher tests need root: the process moves into a network namespace
 * of its own (unshare), where they add and remove addresses with ip(8) on a
 * veth pair; nothing outside that namespace is touched. Without root they
 * are skipped and say so. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "localaddr.h"

#include <arpa/inet.h>
#include <errno.h>
#include <event2/event.h>
#include <ifaddrs.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

/* The two ends of the veth pair in the private namespace: SYNC_IF plays
 * the sync link, OTHER_IF any other interface. */
#define SYNC_IF  "hafwla0"
#define OTHER_IF "hafwla1"

static bool in_netns;
static const char *netns_why = "not root";

static struct filter_net net(const char *cidr)
{
	struct hafw_filter tmp;

	filter_init(&tmp);
	assert_int_equal(filter_add_cidr(&tmp, cidr), 0);
	return tmp.nets[0];
}

static bool has(const struct filter_net *nets, unsigned n, const char *cidr)
{
	struct filter_net x = net(cidr);

	for (unsigned i = 0; i < n; i++)
		if (!memcmp(&nets[i], &x, sizeof(x)))
			return true;
	return false;
}

static int cmp_net(const void *a, const void *b)
{
	return memcmp(a, b, sizeof(struct filter_net));
}

static void add_expected(struct filter_net *out, unsigned *n, unsigned max, int af, const void *a,
                         unsigned prefix)
{
	struct hafw_filter tmp;

	filter_init(&tmp);
	assert_true(*n < max);
	assert_int_equal(filter_add_net(&tmp, af, a, prefix), 0);
	out[(*n)++] = tmp.nets[0];
}

/* What the filter took from getifaddrs(3) before the split, sorted and
 * without duplicates. */
static unsigned expected_set(const char *sync_ifname, struct filter_net *out, unsigned max)
{
	struct ifaddrs *ifa;
	unsigned n = 0, j = 0;

	assert_int_equal(getifaddrs(&ifa), 0);
	for (struct ifaddrs *i = ifa; i; i = i->ifa_next) {
		const uint8_t *a, *m;
		unsigned prefix = 0, bits;
		int af;

		if (!i->ifa_addr)
			continue;
		af = i->ifa_addr->sa_family;
		if (af == AF_INET) {
			a = (const uint8_t *)&((struct sockaddr_in *)i->ifa_addr)->sin_addr;
			bits = 32;
		} else if (af == AF_INET6) {
			a = (const uint8_t *)&((struct sockaddr_in6 *)i->ifa_addr)->sin6_addr;
			bits = 128;
		} else {
			continue;
		}
		add_expected(out, &n, max, af, a, bits);
		if (!sync_ifname || strcmp(i->ifa_name, sync_ifname) || !i->ifa_netmask)
			continue;
		m = af == AF_INET
		        ? (const uint8_t *)&((struct sockaddr_in *)i->ifa_netmask)->sin_addr
		        : (const uint8_t *)&((struct sockaddr_in6 *)i->ifa_netmask)->sin6_addr;
		for (unsigned b = 0; b < bits; b++)
			if (m[b / 8] & (0x80 >> (b % 8)))
				prefix++;
		add_expected(out, &n, max, af, a, prefix);
	}
	freeifaddrs(ifa);
	if (!n)
		return 0;
	qsort(out, n, sizeof(out[0]), cmp_net);
	for (unsigned i = 1; i < n; i++)
		if (cmp_net(&out[j], &out[i]))
			out[++j] = out[i];
	return j + 1;
}

static void assert_same_set(const struct filter_net *a, unsigned na, const struct filter_net *b,
                            unsigned nb)
{
	if (na != nb || memcmp(a, b, na * sizeof(a[0]))) {
		for (unsigned i = 0; i < na; i++)
			print_message("  got      af %u /%u %02x%02x%02x%02x..\n", a[i].af,
			              a[i].prefix, a[i].addr[0], a[i].addr[1], a[i].addr[2],
			              a[i].addr[3]);
		for (unsigned i = 0; i < nb; i++)
			print_message("  expected af %u /%u %02x%02x%02x%02x..\n", b[i].af,
			              b[i].prefix, b[i].addr[0], b[i].addr[1], b[i].addr[2],
			              b[i].addr[3]);
		fail_msg("sets differ (%u vs %u networks)", na, nb);
	}
}

static void sh(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void sh(const char *fmt, ...)
{
	char cmd[512];
	va_list ap;
	int rc;

	va_start(ap, fmt);
	vsnprintf(cmd, sizeof(cmd), fmt, ap);
	va_end(ap);
	rc = system(cmd);
	if (rc != 0)
		fail_msg("'%s' exited with %d", cmd, rc);
}

static void test_read_matches_getifaddrs(void **state)
{
	static struct filter_net got[FILTER_MAX_LOCAL], want[FILTER_MAX_LOCAL],
	    again[FILTER_MAX_LOCAL];
	static const char *const ifs[] = {NULL, "lo", SYNC_IF, "hafw-no-such-if"};
	unsigned n;

	(void)state;
	for (size_t k = 0; k < sizeof(ifs) / sizeof(ifs[0]); k++) {
		unsigned nwant, nagain;

		/* on a host, addresses may change under the test: compare
		 * with a set that held before and after the read */
		for (int tries = 0;; tries++) {
			nwant = expected_set(ifs[k], want, FILTER_MAX_LOCAL);
			assert_int_equal(localaddr_read(ifs[k], NULL, got, FILTER_MAX_LOCAL, &n),
			                 0);
			nagain = expected_set(ifs[k], again, FILTER_MAX_LOCAL);
			if (nwant == nagain && !memcmp(want, again, nwant * sizeof(want[0])))
				break;
			if (tries == 5)
				fail_msg("the addresses kept changing");
		}
		assert_same_set(got, n, want, nwant);
	}
	/* loopback is up in the private namespace and on any host */
	assert_int_equal(localaddr_read("lo", NULL, got, FILTER_MAX_LOCAL, &n), 0);
	assert_true(has(got, n, "127.0.0.1/32"));
	assert_true(has(got, n, "127.0.0.0/8")); /* the sync interface's subnet */
	assert_int_equal(localaddr_read(NULL, NULL, got, FILTER_MAX_LOCAL, &n), 0);
	assert_true(has(got, n, "127.0.0.1/32"));
	assert_false(has(got, n, "127.0.0.0/8"));
}

static void test_read_limits(void **state)
{
	struct filter_net got[FILTER_MAX_LOCAL];
	unsigned n = 77, all;

	(void)state;
	assert_int_equal(localaddr_read("lo", NULL, NULL, 0, NULL), -EINVAL);
	assert_int_equal(localaddr_read("lo", NULL, NULL, 5, &n), -EINVAL);
	assert_int_equal(localaddr_read("lo", NULL, got, FILTER_MAX_LOCAL, &all), 0);
	assert_true(all >= 2); /* 127.0.0.1/32 and 127.0.0.0/8 at least */
	/* no room for the set: refused, not cut short */
	assert_int_equal(localaddr_read("lo", NULL, NULL, 0, &n), -ENOSPC);
	assert_int_equal(n, 0);
	assert_int_equal(localaddr_read("lo", NULL, got, all - 1, &n), -ENOSPC);
	/* exactly enough room */
	assert_int_equal(localaddr_read("lo", NULL, got, all, &n), 0);
	assert_int_equal(n, all);
	/* sorted, no duplicates: sets compare with memcmp */
	for (unsigned i = 1; i < n; i++)
		assert_true(cmp_net(&got[i - 1], &got[i]) < 0);
	/* host bits cleared */
	for (unsigned i = 0; i < n; i++) {
		unsigned bits = got[i].af == AF_INET ? 32 : 128;

		assert_true(got[i].af == AF_INET || got[i].af == AF_INET6);
		for (unsigned b = got[i].prefix; b < bits; b++)
			assert_false(got[i].addr[b / 8] & (0x80 >> (b % 8)));
	}
}

static void need_netns(void);

/* Reads SYNC_IF's set with room for exactly its distinct networks, and
 * with less. */
static void read_exact_room(void)
{
	struct filter_net got[FILTER_MAX_LOCAL];
	unsigned all, n;

	assert_int_equal(localaddr_read(SYNC_IF, NULL, got, FILTER_MAX_LOCAL, &all), 0);
	for (unsigned max = all; max > 0 && max + 4 >= all; max--) {
		int ret = localaddr_read(SYNC_IF, NULL, got, max, &n);

		if (max == all) {
			assert_int_equal(ret, 0);
			assert_int_equal(n, all);
		} else {
			assert_int_equal(ret, -ENOSPC);
		}
	}
}

/* The same address on two interfaces, and the sync subnet twice, are one
 * network each: a set that fits once deduplicated is not refused. */
static void test_read_duplicates(void **state)
{
	struct filter_net got[FILTER_MAX_LOCAL];
	unsigned n;

	(void)state;
	need_netns();
	/* the last address of the dump (IPv6 after IPv4, SYNC_IF after lo)
	 * is a /128 on the sync link: its subnet repeats it when the room is
	 * already full */
	sh("ip addr add 2001:db8:55::1/128 dev " SYNC_IF " nodad");
	assert_int_equal(localaddr_read(SYNC_IF, NULL, got, FILTER_MAX_LOCAL, &n), 0);
	assert_true(has(got, n, "2001:db8:55::1/128"));
	read_exact_room();

	sh("ip addr add 10.55.0.1/32 dev " SYNC_IF " && ip addr add 10.55.0.1/32 dev " OTHER_IF
	   " && ip addr add 10.55.1.1/24 dev " SYNC_IF " && ip addr add 10.55.1.2/24 dev " SYNC_IF
	   " && ip addr add 10.55.1.1/24 dev " OTHER_IF);
	assert_int_equal(localaddr_read(SYNC_IF, NULL, got, FILTER_MAX_LOCAL, &n), 0);
	assert_true(has(got, n, "10.55.0.1/32"));
	assert_true(has(got, n, "10.55.1.0/24"));
	read_exact_room();
	/* a backup sync link's subnet is the sync network too */
	assert_false(has(got, n, "10.55.2.0/24"));
	sh("ip addr add 10.55.2.1/24 dev " OTHER_IF);
	assert_int_equal(localaddr_read(SYNC_IF, OTHER_IF, got, FILTER_MAX_LOCAL, &n), 0);
	assert_true(has(got, n, "10.55.2.0/24"));
	assert_true(has(got, n, "10.55.1.0/24"));
	assert_int_equal(localaddr_read(SYNC_IF, NULL, got, FILTER_MAX_LOCAL, &n), 0);
	assert_false(has(got, n, "10.55.2.0/24"));
	sh("ip addr flush dev " SYNC_IF " && ip addr flush dev " OTHER_IF);
}

/* The watcher under test, and what its callback saw. */
struct seen {
	struct event_base *base;
	struct localaddr_watch *w;
	struct filter_net nets[FILTER_MAX_LOCAL];
	unsigned n;
	unsigned calls;
	bool close_in_cb;
	/* run_until's condition, its argument and its deadline */
	bool (*pred)(struct seen *s);
	const char *arg;
	uint64_t target;
	struct timeval deadline;
};

static void on_changed(void *arg, const struct filter_net *nets, unsigned n)
{
	struct seen *s = arg;

	assert_true(n <= FILTER_MAX_LOCAL);
	memcpy(s->nets, nets, n * sizeof(nets[0]));
	s->n = n;
	s->calls++;
	if (s->close_in_cb && s->calls > 1) {
		localaddr_watch_close(s->w);
		s->w = NULL;
	}
}

static void poll_pred(evutil_socket_t fd, short what, void *arg)
{
	struct seen *s = arg;
	struct timeval now;

	(void)fd;
	(void)what;
	evutil_gettimeofday(&now, NULL);
	if (s->pred(s) || evutil_timercmp(&now, &s->deadline, >))
		event_base_loopbreak(s->base);
}

/* Runs the loop until pred holds, at most 5 s; returns whether it held. */
static bool run_until(struct seen *s, bool (*pred)(struct seen *), const char *arg)
{
	struct timeval tick = {0, 10000}, limit = {5, 0}, now;
	struct event *ev = event_new(s->base, -1, EV_PERSIST, poll_pred, s);

	assert_non_null(ev);
	s->pred = pred;
	s->arg = arg;
	evutil_gettimeofday(&now, NULL);
	evutil_timeradd(&now, &limit, &s->deadline);
	event_add(ev, &tick);
	event_base_dispatch(s->base);
	event_free(ev);
	return pred(s);
}

static bool seen_has(struct seen *s)
{
	return has(s->nets, s->n, s->arg);
}

static bool seen_lacks(struct seen *s)
{
	return !has(s->nets, s->n, s->arg);
}

static uint64_t stat_of(struct localaddr_watch *w, const char *name)
{
	struct localaddr_stat st[32];
	int n = localaddr_watch_stats(w, st, 32);

	for (int i = 0; i < n; i++)
		if (!strcmp(st[i].name, name))
			return st[i].value;
	fail_msg("no counter %s", name);
	return 0;
}

static bool rereads_reach(struct seen *s)
{
	return stat_of(s->w, "localaddr_rereads") >= s->target;
}

static struct seen *seen_open(const char *sync_if)
{
	struct seen *s = calloc(1, sizeof(*s));

	assert_non_null(s);
	s->base = event_base_new();
	assert_non_null(s->base);
	assert_int_equal(localaddr_watch_open(&s->w, s->base, sync_if, NULL, on_changed, s), 0);
	return s;
}

static void seen_close(struct seen *s)
{
	localaddr_watch_close(s->w);
	event_base_free(s->base);
	free(s);
}

static void need_netns(void)
{
	if (!in_netns) {
		print_message("skipped: needs a private network namespace (%s)\n", netns_why);
		skip();
	}
}

/* open() hands over the set it read before returning, equal to a read. */
static void test_watch_open(void **state)
{
	struct filter_net now[FILTER_MAX_LOCAL];
	struct localaddr_stat st[16];
	struct localaddr_watch *w = (void *)1;
	struct event_base *base = event_base_new();
	unsigned n;
	struct seen *s;

	(void)state;
	assert_int_equal(localaddr_watch_open(&w, base, "lo", NULL, NULL, NULL), -EINVAL);
	assert_null(w);
	assert_int_equal(
	    localaddr_watch_open(&w, base, "an-interface-name-too-long", NULL, on_changed, NULL),
	    -EINVAL);
	event_base_free(base);

	s = seen_open("lo");
	assert_int_equal(s->calls, 1);
	assert_int_equal(localaddr_read("lo", NULL, now, FILTER_MAX_LOCAL, &n), 0);
	assert_same_set(s->nets, s->n, now, n);
	assert_int_equal(stat_of(s->w, "localaddr_nets"), n);
	assert_int_equal(stat_of(s->w, "localaddr_changes"), 0);
	assert_int_equal(localaddr_watch_stats(s->w, st, 2), 2); /* bounded by max */
	assert_true(localaddr_watch_fd(s->w) >= 0);
	seen_close(s);
	localaddr_watch_close(NULL);
}

static void test_watch_add_remove(void **state)
{
	struct seen *s;
	unsigned calls;

	(void)state;
	need_netns();
	s = seen_open(SYNC_IF);
	assert_false(has(s->nets, s->n, "10.66.0.1/32"));

	sh("ip addr add 10.66.0.1/32 dev " OTHER_IF);
	if (!run_until(s, seen_has, "10.66.0.1/32"))
		fail_msg("10.66.0.1 added, not reported");
	assert_true(has(s->nets, s->n, "127.0.0.1/32"));
	assert_false(has(s->nets, s->n, "10.66.0.0/24"));

	sh("ip addr add 2001:db8:66::1/64 dev " OTHER_IF " nodad");
	if (!run_until(s, seen_has, "2001:db8:66::1/128"))
		fail_msg("2001:db8:66::1 added, not reported");
	assert_false(has(s->nets, s->n, "2001:db8:66::/64")); /* not the sync link */

	sh("ip addr del 10.66.0.1/32 dev " OTHER_IF);
	if (!run_until(s, seen_lacks, "10.66.0.1/32"))
		fail_msg("10.66.0.1 removed, still reported");
	assert_true(has(s->nets, s->n, "2001:db8:66::1/128"));
	sh("ip addr del 2001:db8:66::1/64 dev " OTHER_IF);
	if (!run_until(s, seen_lacks, "2001:db8:66::1/128"))
		fail_msg("2001:db8:66::1 removed, still reported");

	/* an address that came and went before the loop ran: events, one
	 * re-read, and no call since the set is the one already reported */
	calls = s->calls;
	sh("ip addr add 10.66.0.2/32 dev " OTHER_IF " && ip addr del 10.66.0.2/32 dev " OTHER_IF);
	s->target = stat_of(s->w, "localaddr_rereads") + 1;
	assert_true(run_until(s, rereads_reach, NULL));
	assert_int_equal(s->calls, calls);
	assert_true(stat_of(s->w, "localaddr_events") >= 6);
	assert_int_equal(stat_of(s->w, "localaddr_changes"), s->calls - 1);
	assert_int_equal(stat_of(s->w, "localaddr_read_errors"), 0);
	seen_close(s);
}

/* The sync interface's subnets are in the set, another interface's not. */
static void test_watch_sync_subnet(void **state)
{
	struct seen *s;

	(void)state;
	need_netns();
	s = seen_open(SYNC_IF);
	sh("ip addr add 10.77.0.1/24 dev " SYNC_IF);
	sh("ip addr add 10.88.0.1/24 dev " OTHER_IF);
	if (!run_until(s, seen_has, "10.88.0.1/32"))
		fail_msg("10.88.0.1 added, not reported");
	assert_true(has(s->nets, s->n, "10.77.0.1/32"));
	assert_true(has(s->nets, s->n, "10.77.0.0/24"));
	assert_false(has(s->nets, s->n, "10.88.0.0/24"));
	sh("ip addr del 10.77.0.1/24 dev " SYNC_IF);
	if (!run_until(s, seen_lacks, "10.77.0.0/24"))
		fail_msg("10.77.0.1/24 removed, subnet still reported");
	assert_false(has(s->nets, s->n, "10.77.0.1/32"));
	sh("ip addr del 10.88.0.1/24 dev " OTHER_IF);
	seen_close(s);
}

static void batch_addrs(const char *verb, unsigned count)
{
	char path[] = "/tmp/hafw-test-localaddr-XXXXXX";
	int fd = mkstemp(path);
	FILE *f;

	assert_true(fd >= 0);
	f = fdopen(fd, "w");
	assert_non_null(f);
	for (unsigned i = 0; i < count; i++)
		fprintf(f, "addr %s 10.99.%u.%u/32 dev %s\n", verb, i / 250, 1 + i % 250, OTHER_IF);
	fclose(f);
	sh("ip -batch %s", path);
	unlink(path);
}

/* A burst of events is read as one or a few re-reads, not one each. */
static void test_watch_coalesces(void **state)
{
	struct seen *s;
	uint64_t events, rereads;

	(void)state;
	need_netns();
	s = seen_open(SYNC_IF);
	batch_addrs("add", 300);
	if (!run_until(s, seen_has, "10.99.1.50/32"))
		fail_msg("a burst of 300 addresses not reported");
	for (unsigned i = 0; i < 300; i++) {
		char a[32];

		snprintf(a, sizeof(a), "10.99.%u.%u/32", i / 250, 1 + i % 250);
		if (!has(s->nets, s->n, a))
			fail_msg("%s missing after the burst", a);
	}
	events = stat_of(s->w, "localaddr_events");
	rereads = stat_of(s->w, "localaddr_rereads");
	print_message("300 additions: %llu events, %llu re-reads, %u calls, %llu overruns\n",
	              (unsigned long long)events, (unsigned long long)rereads, s->calls,
	              (unsigned long long)stat_of(s->w, "localaddr_overruns"));
	assert_true(rereads < 300 / 4);
	assert_true(s->calls <= rereads + 1);
	batch_addrs("del", 300);
	if (!run_until(s, seen_lacks, "10.99.1.50/32"))
		fail_msg("a burst of 300 removals not reported");
	seen_close(s);
}

/* Events lost to a full socket buffer (ENOBUFS) are not needed: the set
 * is read again whole. */
static void test_watch_overrun(void **state)
{
	struct seen *s;
	int small = 1;

	(void)state;
	need_netns();
	s = seen_open(SYNC_IF);
	/* the kernel's minimum: a few events fit, the rest overrun */
	assert_int_equal(
	    setsockopt(localaddr_watch_fd(s->w), SOL_SOCKET, SO_RCVBUF, &small, sizeof(small)), 0);
	batch_addrs("add", 200);
	if (!run_until(s, seen_has, "10.99.0.200/32"))
		fail_msg("200 addresses after an overrun not reported");
	assert_true(stat_of(s->w, "localaddr_overruns") >= 1);
	assert_true(stat_of(s->w, "localaddr_events") < 200); /* events were lost */
	for (unsigned i = 0; i < 200; i++) {
		char a[32];

		snprintf(a, sizeof(a), "10.99.%u.%u/32", i / 250, 1 + i % 250);
		if (!has(s->nets, s->n, a))
			fail_msg("%s missing after the overrun", a);
	}
	batch_addrs("del", 200);
	if (!run_until(s, seen_lacks, "10.99.0.200/32"))
		fail_msg("removals after an overrun not reported");
	seen_close(s);
}

/* The callback may close the watcher (the daemon shutting down). */
static void test_watch_close_in_callback(void **state)
{
	struct seen *s;

	(void)state;
	need_netns();
	s = seen_open(SYNC_IF);
	s->close_in_cb = true;
	sh("ip addr add 10.66.0.9/32 dev " OTHER_IF);
	if (!run_until(s, seen_has, "10.66.0.9/32"))
		fail_msg("10.66.0.9 added, not reported");
	assert_null(s->w);
	sh("ip addr del 10.66.0.9/32 dev " OTHER_IF);
	/* nothing is left in the loop to run */
	assert_int_equal(event_base_loop(s->base, EVLOOP_NONBLOCK), 1);
	seen_close(s);
}

/* Moves this process into a network namespace of its own, with loopback
 * up and a veth pair; only then do the watcher tests run. */
static void enter_netns(void)
{
	if (geteuid() != 0)
		return;
	if (unshare(CLONE_NEWNET) < 0) {
		netns_why = "unshare(CLONE_NEWNET) failed";
		perror("unshare(CLONE_NEWNET)");
		return;
	}
	/* no IPv6 link-local addresses: they would appear a moment after the
	 * links come up, in the middle of a test */
	if (system("ip link set lo up && ip link add " SYNC_IF " type veth peer name " OTHER_IF
	           " && ip link set " SYNC_IF " addrgenmode none && ip link set " OTHER_IF
	           " addrgenmode none && ip link set " SYNC_IF " up && ip link set " OTHER_IF
	           " up")) {
		netns_why = "setting up lo and a veth pair failed";
		return;
	}
	in_netns = true;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_read_matches_getifaddrs),
	    cmocka_unit_test(test_read_limits),
	    cmocka_unit_test(test_read_duplicates),
	    cmocka_unit_test(test_watch_open),
	    cmocka_unit_test(test_watch_add_remove),
	    cmocka_unit_test(test_watch_sync_subnet),
	    cmocka_unit_test(test_watch_coalesces),
	    cmocka_unit_test(test_watch_overrun),
	    cmocka_unit_test(test_watch_close_in_callback),
	};

	enter_netns();
	if (!in_netns)
		fprintf(stderr, "test_localaddr: watcher tests skipped: %s\n", netns_why);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
