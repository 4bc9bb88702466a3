/* syncd/filter.c: which flows are never replicated. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "filter.h"
#include "samples.h"

#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>

static struct hafw_filter flt;

static int setup(void **state)
{
	(void)state;
	filter_init(&flt);
	return 0;
}

/* Is a TCP flow src -> dst ignored? */
static bool ign(const char *src, const char *dst)
{
	struct hafw_tuple t;
	struct hafw_flow f;

	ts_tuple(&t, IPPROTO_TCP, src, dst, 1000, 80);
	ts_flow_plain(&f, &t);
	return filter_ignores_flow(&flt, &f);
}

static void test_empty(void **state)
{
	(void)state;
	assert_false(ign("10.0.0.1", "10.0.0.2"));
	assert_false(ign("::1", "::2"));
}

static void test_v4_prefixes(void **state)
{
	(void)state;
	assert_int_equal(filter_add_cidr(&flt, "10.1.2.0/23"), 0);
	/* 10.1.2.0 - 10.1.3.255 */
	assert_true(ign("10.1.2.0", "8.8.8.8"));
	assert_true(ign("10.1.3.255", "8.8.8.8"));
	assert_true(ign("8.8.8.8", "10.1.3.7")); /* either address */
	assert_false(ign("10.1.1.255", "8.8.8.8"));
	assert_false(ign("10.1.4.0", "8.8.8.8"));
	/* host bits in the CIDR are ignored */
	filter_init(&flt);
	assert_int_equal(filter_add_cidr(&flt, "10.1.3.77/23"), 0);
	assert_true(ign("10.1.2.1", "8.8.8.8"));
	assert_false(ign("10.1.4.1", "8.8.8.8"));
	/* /32 and a bare address */
	filter_init(&flt);
	assert_int_equal(filter_add_cidr(&flt, "192.0.2.1/32"), 0);
	assert_int_equal(filter_add_cidr(&flt, "192.0.2.9"), 0);
	assert_true(ign("192.0.2.1", "8.8.8.8"));
	assert_true(ign("192.0.2.9", "8.8.8.8"));
	assert_false(ign("192.0.2.0", "8.8.8.8"));
	assert_false(ign("192.0.2.2", "8.8.8.8"));
	assert_false(ign("192.0.2.8", "8.8.8.8"));
	/* every prefix length at its boundary */
	for (int p = 1; p <= 32; p++) {
		char cidr[32], in[32], out[32];
		uint32_t net = 0xc6336400u; /* 198.51.100.0 */
		uint32_t mask = p == 32 ? 0xffffffffu : ~(0xffffffffu >> p);
		uint32_t last = (net & mask) | ~mask, past = ((net & mask) - 1);

		filter_init(&flt);
		snprintf(cidr, sizeof(cidr), "198.51.100.0/%d", p);
		assert_int_equal(filter_add_cidr(&flt, cidr), 0);
		snprintf(in, sizeof(in), "%u.%u.%u.%u", last >> 24, (last >> 16) & 255,
		         (last >> 8) & 255, last & 255);
		snprintf(out, sizeof(out), "%u.%u.%u.%u", past >> 24, (past >> 16) & 255,
		         (past >> 8) & 255, past & 255);
		if (!ign(in, "1.1.1.1"))
			fail_msg("%s should hold %s", cidr, in);
		if (ign(out, "1.1.1.1"))
			fail_msg("%s should not hold %s", cidr, out);
	}
	/* /0 holds every IPv4 address and no IPv6 one */
	filter_init(&flt);
	assert_int_equal(filter_add_cidr(&flt, "0.0.0.0/0"), 0);
	assert_true(ign("1.2.3.4", "5.6.7.8"));
	assert_true(ign("255.255.255.255", "0.0.0.0"));
	assert_false(ign("2001:db8::1", "2001:db8::2"));
}

static void test_v6_prefixes(void **state)
{
	(void)state;
	assert_int_equal(filter_add_cidr(&flt, "2001:db8:0:fe::/63"), 0);
	assert_true(ign("2001:db8:0:fe::1", "2001:db8:1::1"));
	assert_true(ign("2001:db8:0:ff:ffff:ffff:ffff:ffff", "2001:db8:1::1"));
	assert_false(ign("2001:db8:0:fd:ffff:ffff:ffff:ffff", "2001:db8:1::1"));
	assert_false(ign("2001:db8:0:100::", "2001:db8:1::1"));
	/* the same bytes as an IPv4 address do not match */
	assert_false(ign("32.1.13.184", "1.1.1.1"));

	filter_init(&flt);
	assert_int_equal(filter_add_cidr(&flt, "fd00::1/128"), 0);
	assert_int_equal(filter_add_cidr(&flt, "fd00::9"), 0);
	assert_true(ign("fd00::1", "2001:db8::1"));
	assert_true(ign("2001:db8::1", "fd00::9"));
	assert_false(ign("fd00::", "2001:db8::1"));
	assert_false(ign("fd00::2", "2001:db8::1"));
	assert_false(ign("fd00::1:0:0:1", "2001:db8::1"));

	filter_init(&flt);
	assert_int_equal(filter_add_cidr(&flt, "::/0"), 0);
	assert_true(ign("2001:db8::1", "2001:db8::2"));
	assert_false(ign("10.0.0.1", "10.0.0.2"));

	/* odd lengths inside a byte */
	for (int p = 1; p <= 128; p++) {
		char cidr[64];
		struct hafw_tuple t;
		struct hafw_flow f;
		int bit = p - 1; /* the last prefix bit */

		filter_init(&flt);
		snprintf(cidr, sizeof(cidr), "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff/%d", p);
		assert_int_equal(filter_add_cidr(&flt, cidr), 0);
		ts_tuple(&t, IPPROTO_UDP, "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", "::1", 1, 2);
		/* clear a host bit: still inside */
		if (p < 128)
			t.src[p / 8] &= (uint8_t) ~(0x80 >> (p % 8));
		ts_flow_plain(&f, &t);
		assert_true(filter_ignores_flow(&flt, &f));
		/* clear the last prefix bit: outside */
		t.src[bit / 8] &= (uint8_t) ~(0x80 >> (bit % 8));
		ts_flow_plain(&f, &t);
		assert_false(filter_ignores_flow(&flt, &f));
	}
}

static void test_invalid_cidr(void **state)
{
	static const char *const bad[] = {
	    "",
	    "/",
	    "/8",
	    "10.0.0.0/",
	    "10.0.0.0/33",
	    "10.0.0.0/-1",
	    "10.0.0.0/8x",
	    "10.0.0.0/8/8",
	    "10.0.0.0/0x8",
	    "10.0.0.256",
	    "10.0.0",
	    "10.0.0.0.0",
	    " 10.0.0.1",
	    "10.0.0.1 ",
	    "abc",
	    "fd00::/129",
	    "fd00::/1000000000000000000000",
	    "fd00:::1/64",
	    "fd00::g/64",
	    "10.0.0.1/99999999999999999999",
	    "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff/128",
	    "ffff:ffff:ffff:ffff:ffff:ffff:255.255.255.255.255/128",
	};

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		if (filter_add_cidr(&flt, bad[i]) != -EINVAL)
			fail_msg("'%s' accepted as a CIDR", bad[i]);
		if (filter_add_keep(&flt, bad[i]) != -EINVAL)
			fail_msg("'%s' accepted as a keep CIDR", bad[i]);
	}
	assert_int_equal(flt.nnets, 0);
	assert_int_equal(flt.nkeep, 0);
	/* a very long string is refused, not copied */
	{
		char longs[300];

		memset(longs, '1', sizeof(longs) - 1);
		longs[sizeof(longs) - 1] = '\0';
		assert_int_equal(filter_add_cidr(&flt, longs), -EINVAL);
	}
	/* a mapped IPv4 address in IPv6 form is an IPv6 network */
	assert_int_equal(filter_add_cidr(&flt, "::ffff:10.0.0.0/104"), 0);
	assert_true(ign("::ffff:10.1.2.3", "2001:db8::1"));
	assert_false(ign("10.1.2.3", "1.1.1.1"));
}

static void test_add_net(void **state)
{
	uint8_t a[16] = {10, 0, 0, 0};

	(void)state;
	assert_int_equal(filter_add_net(&flt, AF_INET, a, 33), -EINVAL);
	assert_int_equal(filter_add_net(&flt, AF_INET6, a, 129), -EINVAL);
	assert_int_equal(filter_add_net(&flt, AF_UNSPEC, a, 8), -EINVAL);
	assert_int_equal(filter_add_net(&flt, AF_INET, a, 8), 0);
	assert_true(ign("10.200.0.1", "1.1.1.1"));
	/* the table is bounded */
	filter_init(&flt);
	for (int i = 0; i < FILTER_MAX_NETS; i++) {
		a[1] = (uint8_t)i;
		assert_int_equal(filter_add_net(&flt, AF_INET, a, 16), 0);
	}
	assert_int_equal(filter_add_net(&flt, AF_INET, a, 16), -ENOSPC);
	assert_int_equal(filter_add_cidr(&flt, "1.1.1.1"), -ENOSPC);
	assert_true(ign("10.255.1.1", "1.1.1.1"));
	filter_init(&flt);
	for (size_t i = 0; i < sizeof(flt.keep) / sizeof(flt.keep[0]); i++)
		assert_int_equal(filter_add_keep(&flt, "10.0.0.1"), 0);
	assert_int_equal(filter_add_keep(&flt, "10.0.0.1"), -ENOSPC);
}

static bool ign_l4(uint8_t l4)
{
	struct hafw_tuple t;
	struct hafw_flow f;

	ts_tuple(&t, l4, "10.0.0.1", "10.0.0.2", 1, 2);
	ts_flow_plain(&f, &t);
	return filter_ignores_flow(&flt, &f);
}

static void test_protocols(void **state)
{
	static const struct {
		const char *name;
		uint8_t num;
	} names[] = {{"tcp", 6},     {"udp", 17},   {"udplite", 136}, {"icmp", 1}, {"gre", 47},
	             {"icmpv6", 58}, {"sctp", 132}, {"dccp", 33},     {"TCP", 6},  {"Gre", 47}};

	(void)state;
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		filter_init(&flt);
		assert_int_equal(filter_add_l4(&flt, names[i].name), 0);
		assert_true(ign_l4(names[i].num));
		assert_false(ign_l4((uint8_t)(names[i].num + 1)));
		assert_false(ign_l4((uint8_t)(names[i].num - 1)));
	}
	filter_init(&flt);
	assert_int_equal(filter_add_l4(&flt, "0"), 0);
	assert_int_equal(filter_add_l4(&flt, "99"), 0);
	assert_int_equal(filter_add_l4(&flt, "255"), 0);
	assert_true(ign_l4(0));
	assert_true(ign_l4(99));
	assert_true(ign_l4(255));
	assert_false(ign_l4(98));
	assert_false(ign_l4(254));
	assert_false(ign_l4(IPPROTO_TCP));
	assert_int_equal(filter_add_l4(&flt, "256"), -EINVAL);
	assert_int_equal(filter_add_l4(&flt, "-1"), -EINVAL);
	assert_int_equal(filter_add_l4(&flt, "99999999999999999999"), -EINVAL);
	assert_int_equal(filter_add_l4(&flt, ""), -EINVAL);
	assert_int_equal(filter_add_l4(&flt, "6x"), -EINVAL);
	assert_int_equal(filter_add_l4(&flt, "nosuchproto"), -EINVAL);
	assert_false(ign_l4(IPPROTO_TCP));
	/* the protocol comes from the orig tuple */
	{
		struct hafw_tuple t;
		struct hafw_flow f;

		filter_init(&flt);
		assert_int_equal(filter_add_l4(&flt, "udp"), 0);
		ts_tuple(&t, IPPROTO_TCP, "10.0.0.1", "10.0.0.2", 1, 2);
		ts_flow_plain(&f, &t);
		f.reply.l4 = IPPROTO_UDP;
		assert_false(filter_ignores_flow(&flt, &f));
	}
}

static void test_keep_overrides(void **state)
{
	(void)state;
	assert_int_equal(filter_add_cidr(&flt, "192.0.2.0/24"), 0);
	assert_int_equal(filter_add_keep(&flt, "192.0.2.100"), 0);
	assert_int_equal(filter_add_cidr(&flt, "2001:db8::/32"), 0);
	assert_int_equal(filter_add_keep(&flt, "2001:db8:1::/48"), 0);
	assert_true(ign("192.0.2.1", "8.8.8.8"));
	assert_false(ign("192.0.2.100", "8.8.8.8"));       /* the VIP is kept */
	assert_false(ign("8.8.8.8", "192.0.2.100"));       /* as destination too */
	assert_true(ign("192.0.2.100", "192.0.2.1"));      /* but the other end is local */
	assert_true(ign("2001:db8:2::1", "2001:dead::1")); /* outside the keep */
	assert_false(ign("2001:db8:1::1", "2001:dead::1"));
	/* a keep entry alone ignores nothing */
	filter_init(&flt);
	assert_int_equal(filter_add_keep(&flt, "0.0.0.0/0"), 0);
	assert_false(ign("10.0.0.1", "10.0.0.2"));
	/* the protocol list is not overridden by keep */
	assert_int_equal(filter_add_l4(&flt, "tcp"), 0);
	assert_true(ign("10.0.0.1", "10.0.0.2"));
}

/* Only the orig tuple counts: a flow SNATed to the firewall's address has
 * that address in its reply tuple and must still be replicated. */
static void test_orig_tuple_only(void **state)
{
	struct hafw_tuple t;
	struct hafw_flow f;

	(void)state;
	assert_int_equal(filter_add_cidr(&flt, "203.0.113.1"), 0);
	assert_int_equal(filter_add_cidr(&flt, "fd00:ffff::1"), 0);
	ts_tuple(&t, IPPROTO_TCP, "10.0.0.5", "198.51.100.7", 40000, 443);
	ts_flow_full(&f, &t, true); /* reply.dst = 203.0.113.1 */
	assert_false(filter_ignores_flow(&flt, &f));
	ts_addr(f.reply.src, "203.0.113.1");
	assert_false(filter_ignores_flow(&flt, &f));
	ts_addr(f.master.src, "203.0.113.1");
	assert_false(filter_ignores_flow(&flt, &f));
	ts_addr(f.orig.dst, "203.0.113.1");
	assert_true(filter_ignores_flow(&flt, &f));

	ts_tuple(&t, IPPROTO_UDP, "2001:db8::5", "2001:db8::7", 1, 2);
	ts_flow_plain(&f, &t);
	ts_addr(f.reply.dst, "fd00:ffff::1");
	assert_false(filter_ignores_flow(&flt, &f));
}

static void test_expectations(void **state)
{
	struct hafw_exp e;

	(void)state;
	ts_exp_full(&e, false); /* master 10.0.0.1 -> 198.51.100.7 tcp */
	assert_false(filter_ignores_exp(&flt, &e));
	assert_int_equal(filter_add_cidr(&flt, "198.51.100.7"), 0);
	assert_true(filter_ignores_exp(&flt, &e));
	filter_init(&flt);
	/* the expected tuple's addresses do not count, its protocol does */
	assert_int_equal(filter_add_cidr(&flt, "192.168.1.10"), 0);
	assert_false(filter_ignores_exp(&flt, &e));
	assert_int_equal(filter_add_l4(&flt, "tcp"), 0);
	assert_true(filter_ignores_exp(&flt, &e));
	filter_init(&flt);
	assert_int_equal(filter_add_l4(&flt, "udp"), 0);
	e.tuple.l4 = IPPROTO_UDP;
	assert_true(filter_ignores_exp(&flt, &e));
}

static struct filter_net net(const char *cidr)
{
	struct hafw_filter tmp;

	filter_init(&tmp);
	assert_int_equal(filter_add_cidr(&tmp, cidr), 0);
	return tmp.nets[0];
}

/* The local set is replaced as a whole: what it held before no longer
 * counts, and the configured lists are untouched. */
static void test_set_local_replaces(void **state)
{
	struct filter_net a[] = {net("192.0.2.1"), net("2001:db8::1"), net("10.9.0.0/16")};
	struct filter_net b[] = {net("192.0.2.2")};

	(void)state;
	assert_int_equal(filter_add_cidr(&flt, "198.51.100.0/24"), 0);
	assert_int_equal(filter_set_local(&flt, a, 3), 0);
	assert_true(ign("192.0.2.1", "8.8.8.8"));
	assert_true(ign("8.8.8.8", "192.0.2.1"));
	assert_true(ign("2001:db8::1", "2001:dead::1"));
	assert_true(ign("10.9.200.1", "8.8.8.8"));
	assert_false(ign("192.0.2.2", "8.8.8.8"));
	assert_false(ign("10.10.0.1", "8.8.8.8"));
	assert_true(ign("198.51.100.9", "8.8.8.8"));

	assert_int_equal(filter_set_local(&flt, b, 1), 0);
	assert_false(ign("192.0.2.1", "8.8.8.8"));
	assert_false(ign("2001:db8::1", "2001:dead::1"));
	assert_false(ign("10.9.200.1", "8.8.8.8"));
	assert_true(ign("192.0.2.2", "8.8.8.8"));
	assert_true(ign("198.51.100.9", "8.8.8.8")); /* configured, not local */

	/* the filter holds a copy, not the caller's array */
	b[0] = net("192.0.2.3");
	assert_true(ign("192.0.2.2", "8.8.8.8"));
	assert_false(ign("192.0.2.3", "8.8.8.8"));

	assert_int_equal(filter_set_local(&flt, NULL, 0), 0);
	assert_false(ign("192.0.2.2", "8.8.8.8"));
	assert_true(ign("198.51.100.9", "8.8.8.8"));
}

static void test_set_local_keep_wins(void **state)
{
	struct filter_net l[] = {net("192.0.2.1"), net("192.0.2.100"), net("2001:db8:1::/48")};

	(void)state;
	assert_int_equal(filter_add_keep(&flt, "192.0.2.100"), 0);
	assert_int_equal(filter_add_keep(&flt, "2001:db8:1:2::/64"), 0);
	assert_int_equal(filter_set_local(&flt, l, 3), 0);
	assert_false(ign("192.0.2.100", "8.8.8.8")); /* a VIP held by this node */
	assert_false(ign("8.8.8.8", "192.0.2.100"));
	assert_true(ign("192.0.2.100", "192.0.2.1")); /* the other end is local */
	assert_false(ign("2001:db8:1:2::5", "2001:dead::1"));
	assert_true(ign("2001:db8:1:3::5", "2001:dead::1"));
	/* keep entries set before or after: the same */
	filter_init(&flt);
	assert_int_equal(filter_set_local(&flt, l, 3), 0);
	assert_true(ign("192.0.2.100", "8.8.8.8"));
	assert_int_equal(filter_add_keep(&flt, "192.0.2.100"), 0);
	assert_false(ign("192.0.2.100", "8.8.8.8"));
}

/* Only the orig tuple, for flows and for an expectation's master, and the
 * protocol list is independent of the local set. */
static void test_set_local_orig_only(void **state)
{
	struct filter_net l[] = {net("203.0.113.1"), net("198.51.100.7")};
	struct hafw_tuple t;
	struct hafw_flow f;
	struct hafw_exp e;

	(void)state;
	assert_int_equal(filter_set_local(&flt, l, 1), 0);
	ts_tuple(&t, IPPROTO_TCP, "10.0.0.5", "198.51.100.7", 40000, 443);
	ts_flow_full(&f, &t, true); /* SNAT: reply.dst = 203.0.113.1 */
	assert_false(filter_ignores_flow(&flt, &f));
	ts_addr(f.orig.src, "203.0.113.1");
	assert_true(filter_ignores_flow(&flt, &f));

	ts_exp_full(&e, false); /* master 10.0.0.1 -> 198.51.100.7 */
	assert_false(filter_ignores_exp(&flt, &e));
	assert_int_equal(filter_set_local(&flt, l, 2), 0);
	assert_true(filter_ignores_exp(&flt, &e));
	assert_int_equal(filter_set_local(&flt, NULL, 0), 0);
	assert_false(filter_ignores_exp(&flt, &e));
}

static void test_set_local_limits(void **state)
{
	static struct filter_net many[FILTER_MAX_LOCAL + 1];
	struct filter_net one[] = {net("192.0.2.1")};
	struct filter_net bad[] = {net("192.0.2.7"), net("192.0.2.8")};
	uint8_t a[16] = {10, 0, 0, 0};

	(void)state;
	for (unsigned i = 0; i <= FILTER_MAX_LOCAL; i++) {
		memset(&many[i], 0, sizeof(many[i]));
		many[i].af = AF_INET;
		many[i].prefix = 32;
		many[i].addr[0] = 10;
		many[i].addr[2] = (uint8_t)(i >> 8);
		many[i].addr[3] = (uint8_t)i;
	}
	assert_int_equal(filter_set_local(&flt, one, 1), 0);
	/* too many: refused, the previous set stays */
	assert_int_equal(filter_set_local(&flt, many, FILTER_MAX_LOCAL + 1), -ENOSPC);
	assert_true(ign("192.0.2.1", "8.8.8.8"));
	assert_false(ign("10.0.0.5", "8.8.8.8"));
	/* exactly the maximum fits, the last one counts */
	assert_int_equal(filter_set_local(&flt, many, FILTER_MAX_LOCAL), 0);
	assert_false(ign("192.0.2.1", "8.8.8.8"));
	assert_true(ign("10.0.0.0", "8.8.8.8"));
	assert_true(ign("10.0.3.255", "8.8.8.8"));
	assert_false(ign("10.0.4.0", "8.8.8.8"));
	/* the local set does not take room from the configured list */
	for (int i = 0; i < FILTER_MAX_NETS; i++) {
		a[1] = (uint8_t)i;
		assert_int_equal(filter_add_net(&flt, AF_INET, a, 16), 0);
	}
	assert_int_equal(filter_set_local(&flt, one, 1), 0);
	assert_true(ign("192.0.2.1", "8.8.8.8"));

	/* an invalid entry anywhere: refused whole, the previous set stays */
	bad[1].prefix = 33;
	assert_int_equal(filter_set_local(&flt, bad, 2), -EINVAL);
	bad[1].prefix = 32;
	bad[1].af = AF_UNSPEC;
	assert_int_equal(filter_set_local(&flt, bad, 2), -EINVAL);
	bad[1] = net("fd00::8");
	bad[1].prefix = 129;
	assert_int_equal(filter_set_local(&flt, bad, 2), -EINVAL);
	assert_true(ign("192.0.2.1", "8.8.8.8"));
	assert_false(ign("192.0.2.7", "8.8.8.8"));
	assert_int_equal(filter_set_local(&flt, NULL, 1), -EINVAL);
	assert_true(ign("192.0.2.1", "8.8.8.8"));

	/* host bits are cleared, as for configured networks */
	bad[0] = net("192.0.2.7");
	bad[0].prefix = 24;
	assert_int_equal(filter_set_local(&flt, bad, 1), 0);
	assert_true(ign("192.0.2.200", "8.8.8.8"));
	assert_false(ign("192.0.3.1", "8.8.8.8"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup(test_empty, setup),
	    cmocka_unit_test_setup(test_v4_prefixes, setup),
	    cmocka_unit_test_setup(test_v6_prefixes, setup),
	    cmocka_unit_test_setup(test_invalid_cidr, setup),
	    cmocka_unit_test_setup(test_add_net, setup),
	    cmocka_unit_test_setup(test_protocols, setup),
	    cmocka_unit_test_setup(test_keep_overrides, setup),
	    cmocka_unit_test_setup(test_orig_tuple_only, setup),
	    cmocka_unit_test_setup(test_expectations, setup),
	    cmocka_unit_test_setup(test_set_local_replaces, setup),
	    cmocka_unit_test_setup(test_set_local_keep_wins, setup),
	    cmocka_unit_test_setup(test_set_local_orig_only, setup),
	    cmocka_unit_test_setup(test_set_local_limits, setup),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
