/* syncd/nfct_conv.c: expectations <-> libnetfilter_conntrack objects, through
 * the object and the netlink legs (flows: test_nfct_conv.c). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "flow_pb.h"
#include "nfct_conv.h"
#include "nlmsg.h"
#include "samples.h"

#include <arpa/inet.h>
#include <endian.h>
#include <errno.h>
#include <libmnl/libmnl.h>
#include <stdio.h>
#include <string.h>

/* ---- expectations ---- */

static void exp_obj_leg(const struct hafw_exp *e, struct hafw_exp *out)
{
	struct nf_expect *exp = nfexp_new();

	assert_non_null(exp);
	assert_int_equal(nfct_conv_exp_to(e, exp), 0);
	memset(out, 0x5a, sizeof(*out));
	assert_int_equal(nfct_conv_exp_from(exp, out), 0);
	nfexp_destroy(exp);
}

/* What nfct_conv_exp_to() leaves out (the kernel tracker adds class, fn and
 * NAT as raw attributes). The helper name is in the object: see
 * test_exp_helper. */
#define EXP_NOT_IN_OBJECT (HAFW_EA_CLASS | HAFW_EA_FN | HAFW_EA_NAT)

static void exp_without(const struct hafw_exp *e, uint32_t bits, struct hafw_exp *w)
{
	*w = *e;
	w->present &= ~bits;
	if (bits & HAFW_EA_CLASS)
		w->class_ = 0;
	if (bits & HAFW_EA_NAT) {
		w->nat_dir = 0;
		memset(&w->nat_tuple, 0, sizeof(w->nat_tuple));
	}
	if (bits & HAFW_EA_FN)
		memset(w->fn, 0, sizeof(w->fn));
	if (bits & HAFW_EA_HELPER)
		memset(w->helper, 0, sizeof(w->helper));
}

static void test_exp_object_leg(void **state)
{
	struct hafw_exp e, w, x;
	const char *d;

	(void)state;
	for (int v6 = 0; v6 < 2; v6++) {
		ts_exp_full(&e, v6);
		exp_without(&e, EXP_NOT_IN_OBJECT, &w);
		exp_obj_leg(&e, &x);
		d = hafw_exp_diff(&w, &x, 0);
		if (d)
			fail_msg("expectation differs in %s", d);
		assert_int_equal(x.present, w.present);
		x.flags ^= 1;
		assert_string_equal(hafw_exp_diff(&w, &x, 0), "flags");
		/* each attribute alone */
		for (uint32_t bit = 1; bit <= HAFW_EA_ZONE; bit <<= 1) {
			struct hafw_exp one = e;

			one.present = bit;
			if (bit != HAFW_EA_ZONE)
				one.zone = 0;
			exp_without(&one, EXP_NOT_IN_OBJECT, &w);
			exp_obj_leg(&one, &x);
			assert_null(hafw_exp_diff(&w, &x, 0));
			assert_int_equal(x.present, w.present);
		}
	}
	/* ICMP expectation tuple and mask */
	ts_exp_full(&e, false);
	ts_icmp(&e.tuple, "198.51.100.7", "10.0.0.1", 13, 0, 99);
	e.mask.l4 = IPPROTO_ICMP;
	e.mask.icmp_type = e.mask.icmp_code = 0xff;
	e.mask.sport = 0xffff;
	e.mask.dport = 0;
	exp_without(&e, EXP_NOT_IN_OBJECT, &w);
	exp_obj_leg(&e, &x);
	assert_null(hafw_exp_diff(&w, &x, 0));
	/* zone 0 is "no zone" */
	ts_exp_full(&e, true);
	e.zone = 0;
	exp_obj_leg(&e, &x);
	assert_false(x.present & HAFW_EA_ZONE);
	assert_int_equal(x.zone, 0);
}

static void test_exp_from_incomplete(void **state)
{
	struct nf_expect *exp = nfexp_new();
	struct nf_conntrack *ct = nfct_new();
	struct hafw_exp x;
	uint32_t a = htonl(0x0a000001);

	(void)state;
	nfct_set_attr_u8(ct, ATTR_ORIG_L3PROTO, AF_INET);
	nfct_set_attr_u8(ct, ATTR_ORIG_L4PROTO, IPPROTO_TCP);
	nfct_set_attr_u32(ct, ATTR_ORIG_IPV4_SRC, a);
	nfct_set_attr_u32(ct, ATTR_ORIG_IPV4_DST, a);
	nfexp_set_attr(exp, ATTR_EXP_EXPECTED, ct);
	nfexp_set_attr(exp, ATTR_EXP_MASK, ct);
	assert_int_equal(nfct_conv_exp_from(exp, &x), -EINVAL); /* no master */
	nfexp_set_attr(exp, ATTR_EXP_MASTER, ct);
	assert_int_equal(nfct_conv_exp_from(exp, &x), 0);
	nfexp_destroy(exp);
	nfct_destroy(ct);
}

static struct nlmsghdr *put_exp_msg(char *buf, uint8_t family)
{
	struct nlmsghdr *nlh = put_ct_msg(buf, family);

	nlh->nlmsg_type = (NFNL_SUBSYS_CTNETLINK_EXP << 8) | IPCTNL_MSG_EXP_NEW;
	return nlh;
}

static void put_tuple(struct nlmsghdr *nlh, int type, const struct hafw_tuple *t)
{
	struct nlattr *outer = mnl_attr_nest_start(nlh, type), *n;

	n = mnl_attr_nest_start(nlh, CTA_TUPLE_IP);
	if (t->l3 == AF_INET) {
		mnl_attr_put(nlh, CTA_IP_V4_SRC, 4, t->src);
		mnl_attr_put(nlh, CTA_IP_V4_DST, 4, t->dst);
	} else {
		mnl_attr_put(nlh, CTA_IP_V6_SRC, 16, t->src);
		mnl_attr_put(nlh, CTA_IP_V6_DST, 16, t->dst);
	}
	mnl_attr_nest_end(nlh, n);
	n = mnl_attr_nest_start(nlh, CTA_TUPLE_PROTO);
	mnl_attr_put_u8(nlh, CTA_PROTO_NUM, t->l4);
	mnl_attr_put_u16(nlh, CTA_PROTO_SRC_PORT, htons(t->sport));
	mnl_attr_put_u16(nlh, CTA_PROTO_DST_PORT, htons(t->dport));
	mnl_attr_nest_end(nlh, n);
	mnl_attr_nest_end(nlh, outer);
}

/* What the kernel reports beside what nfexp_nlmsg_build() produces from our
 * object (which has the helper name): class, NAT and expectfn. */
static void put_exp_extras(struct nlmsghdr *nlh, const struct hafw_exp *e)
{
	struct nlattr *nest;

	mnl_attr_put_u32(nlh, CTA_EXPECT_CLASS, htonl(e->class_));
	nest = mnl_attr_nest_start(nlh, CTA_EXPECT_NAT);
	mnl_attr_put_u32(nlh, CTA_EXPECT_NAT_DIR, htonl(e->nat_dir));
	put_tuple(nlh, CTA_EXPECT_NAT_TUPLE, &e->nat_tuple);
	mnl_attr_nest_end(nlh, nest);
	mnl_attr_put_strz(nlh, CTA_EXPECT_FN, e->fn);
}

static void exp_netlink_leg(const struct hafw_exp *e, struct hafw_exp *out, bool kernel_extras)
{
	static char buf[16384];
	struct nf_expect *exp = nfexp_new();
	struct nlmsghdr *nlh = put_exp_msg(buf, e->tuple.l3);

	assert_non_null(exp);
	assert_int_equal(nfct_conv_exp_to(e, exp), 0);
	assert_int_equal(nfexp_nlmsg_build(nlh, exp), 0);
	nfexp_destroy(exp);
	if (kernel_extras)
		put_exp_extras(nlh, e);
	exp = nfexp_new();
	assert_int_equal(nfexp_nlmsg_parse(nlh, exp), 0);
	memset(out, 0x5a, sizeof(*out));
	assert_int_equal(nfct_conv_exp_from(exp, out), 0);
	nfexp_destroy(exp);
}

static void test_exp_netlink_leg(void **state)
{
	struct hafw_exp e, x, w;
	const char *d;

	(void)state;
	for (int v6 = 0; v6 < 2; v6++) {
		ts_exp_full(&e, v6);
		/* as the kernel reports it: every attribute is read */
		exp_netlink_leg(&e, &x, true);
		d = hafw_exp_diff(&e, &x, 0);
		if (d)
			fail_msg("kernel-shaped expectation differs in %s", d);
		assert_int_equal(x.present, e.present);
		x.nat_tuple.sport ^= 1;
		assert_string_equal(hafw_exp_diff(&e, &x, 0), "nat");
		/* as we build it */
		exp_netlink_leg(&e, &x, false);
		exp_without(&e, EXP_NOT_IN_OBJECT, &w);
		d = hafw_exp_diff(&w, &x, 0);
		if (d)
			fail_msg("expectation differs in %s", d);
		assert_int_equal(x.present, w.present);
	}
}

/* Regression: nfct_conv_exp_to() did not set ATTR_EXP_HELPER_NAME (dropped
 * with class/fn/NAT in efec71f), and neither the header nor the kernel
 * tracker's raw extras accounted for it. Kernels before the change that
 * takes the helper from the master ignore CTA_EXPECT_CLASS without a helper
 * name (ctnetlink_alloc_expect: "if (cda[CTA_EXPECT_CLASS] && helper)"). */
static void test_exp_helper(void **state)
{
	struct hafw_exp e, x;
	struct nf_expect *exp;

	(void)state;
	ts_exp_full(&e, false);
	exp = nfexp_new();
	assert_non_null(exp);
	assert_int_equal(nfct_conv_exp_to(&e, exp), 0);
	assert_true(nfexp_attr_is_set(exp, ATTR_EXP_HELPER_NAME));
	assert_string_equal(nfexp_get_attr(exp, ATTR_EXP_HELPER_NAME), "ftp");
	nfexp_destroy(exp);
	exp_obj_leg(&e, &x);
	assert_true(x.present & HAFW_EA_HELPER);
	assert_string_equal(x.helper, "ftp");
	/* in the message we build, without the kernel's extras */
	ts_exp_full(&e, true);
	strcpy(e.helper, "sip");
	exp_netlink_leg(&e, &x, false);
	assert_true(x.present & HAFW_EA_HELPER);
	assert_string_equal(x.helper, "sip");
	/* none when absent */
	e.present &= ~HAFW_EA_HELPER;
	exp = nfexp_new();
	assert_non_null(exp);
	assert_int_equal(nfct_conv_exp_to(&e, exp), 0);
	assert_false(nfexp_attr_is_set(exp, ATTR_EXP_HELPER_NAME));
	nfexp_destroy(exp);
	exp_netlink_leg(&e, &x, false);
	assert_false(x.present & HAFW_EA_HELPER);
}

/* An expectation whose tuples are of different families cannot be held:
 * the kernel reads every tuple of a message with its family. */
static void set_tuple_obj(struct nf_expect *exp, int attr, const struct hafw_tuple *t)
{
	struct nf_conntrack *ct = nfct_new();

	assert_non_null(ct);
	nfct_set_attr_u8(ct, ATTR_ORIG_L3PROTO, t->l3);
	nfct_set_attr_u8(ct, ATTR_ORIG_L4PROTO, t->l4);
	nfct_set_attr(ct, t->l3 == AF_INET ? ATTR_ORIG_IPV4_SRC : ATTR_ORIG_IPV6_SRC, t->src);
	nfct_set_attr(ct, t->l3 == AF_INET ? ATTR_ORIG_IPV4_DST : ATTR_ORIG_IPV6_DST, t->dst);
	nfct_set_attr_u16(ct, ATTR_ORIG_PORT_SRC, htons(t->sport));
	nfct_set_attr_u16(ct, ATTR_ORIG_PORT_DST, htons(t->dport));
	nfexp_set_attr(exp, attr, ct);
	nfct_destroy(ct);
}

static int exp_from_mixed(const struct hafw_exp *e, int attr, const struct hafw_tuple *t)
{
	struct nf_expect *exp = nfexp_new();
	struct hafw_exp x;
	int ret;

	assert_non_null(exp);
	assert_int_equal(nfct_conv_exp_to(e, exp), 0);
	set_tuple_obj(exp, attr, t);
	if (attr == ATTR_EXP_NAT_TUPLE)
		nfexp_set_attr_u32(exp, ATTR_EXP_NAT_DIR, 1);
	ret = nfct_conv_exp_from(exp, &x);
	nfexp_destroy(exp);
	return ret;
}

static void test_exp_family_mismatch(void **state)
{
	static const int attrs[] = {ATTR_EXP_MASTER, ATTR_EXP_EXPECTED, ATTR_EXP_MASK,
	                            ATTR_EXP_NAT_TUPLE};
	static char buf[16384];
	struct hafw_exp e4, e6, x;
	struct nf_expect *exp;
	struct nlmsghdr *nlh;
	struct nlattr *nest;

	(void)state;
	ts_exp_full(&e4, false);
	ts_exp_full(&e6, true);
	for (size_t i = 0; i < sizeof(attrs) / sizeof(attrs[0]); i++) {
		/* the same family is fine, another is not */
		assert_int_equal(exp_from_mixed(&e4, attrs[i], &e4.master), 0);
		assert_int_equal(exp_from_mixed(&e4, attrs[i], &e6.master), -EINVAL);
		assert_int_equal(exp_from_mixed(&e6, attrs[i], &e6.tuple), 0);
		assert_int_equal(exp_from_mixed(&e6, attrs[i], &e4.tuple), -EINVAL);
	}

	/* from the kernel: libnetfilter_conntrack gives every tuple the
	 * message's family, so a tuple of another is one without addresses */
	nlh = put_exp_msg(buf, AF_INET6);
	put_tuple(nlh, CTA_EXPECT_MASTER, &e6.master);
	put_tuple(nlh, CTA_EXPECT_TUPLE, &e4.tuple);
	put_tuple(nlh, CTA_EXPECT_MASK, &e6.mask);
	exp = nfexp_new();
	assert_int_equal(nfexp_nlmsg_parse(nlh, exp), 0);
	assert_int_equal(nfct_conv_exp_from(exp, &x), -EINVAL);
	nfexp_destroy(exp);
	/* a NAT tuple of another family made the NAT part vanish; it is
	 * refused like the others */
	nlh = put_exp_msg(buf, AF_INET);
	put_tuple(nlh, CTA_EXPECT_MASTER, &e4.master);
	put_tuple(nlh, CTA_EXPECT_TUPLE, &e4.tuple);
	put_tuple(nlh, CTA_EXPECT_MASK, &e4.mask);
	nest = mnl_attr_nest_start(nlh, CTA_EXPECT_NAT);
	mnl_attr_put_u32(nlh, CTA_EXPECT_NAT_DIR, htonl(1));
	put_tuple(nlh, CTA_EXPECT_NAT_TUPLE, &e6.nat_tuple);
	mnl_attr_nest_end(nlh, nest);
	exp = nfexp_new();
	assert_int_equal(nfexp_nlmsg_parse(nlh, exp), 0);
	assert_int_equal(nfct_conv_exp_from(exp, &x), -EINVAL);
	nfexp_destroy(exp);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_exp_object_leg),      cmocka_unit_test(test_exp_from_incomplete),
	    cmocka_unit_test(test_exp_netlink_leg),     cmocka_unit_test(test_exp_helper),
	    cmocka_unit_test(test_exp_family_mismatch),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
