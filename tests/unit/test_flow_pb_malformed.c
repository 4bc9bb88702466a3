/* Unit tests of flow_pb.c on untrusted input: truncations, crafted and
 * random messages, the one canonical form of a tuple. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "flow_pb.h"
#include "samples.h"

#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>

static int pb_field_ends(const uint8_t *p, size_t len, size_t *ends, unsigned *fields, int max,
                         size_t *orig_end)
{
	size_t off = 0;
	int n = 0;

	while (off < len && n < max) {
		uint64_t key = 0, v = 0;
		int shift = 0;

		do {
			key |= (uint64_t)(p[off] & 0x7f) << shift;
			shift += 7;
		} while (p[off++] & 0x80);
		switch (key & 7) {
		case 0:
			while (p[off++] & 0x80)
				;
			break;
		case 2:
			shift = 0;
			do {
				v |= (uint64_t)(p[off] & 0x7f) << shift;
				shift += 7;
			} while (p[off++] & 0x80);
			off += v;
			break;
		default:
			return -1;
		}
		if ((key >> 3) == 1 && orig_end)
			*orig_end = off;
		fields[n] = (unsigned)(key >> 3);
		ends[n++] = off;
	}
	return off == len ? n : -1;
}

/* Every cut of a full flow's encoding: a valid, shorter message at field
 * boundaries past orig, -EINVAL elsewhere. */
static void truncate_flow(const struct hafw_flow *f)
{
	struct hafw_flow g;
	uint8_t buf[HAFW_FLOW_MAX_ENCODED];
	size_t ends[64], orig_end = 0;
	unsigned fields[64];
	int n, nf, valid = 0;

	n = hafw_flow_encode(f, buf, sizeof(buf));
	assert_true(n > 0);
	nf = pb_field_ends(buf, (size_t)n, ends, fields, 64, &orig_end);
	assert_true(nf > 20);
	assert_true(orig_end > 0);
	for (int cut = 0; cut < n; cut++) {
		bool boundary = false;
		int ret = hafw_flow_decode(buf, (size_t)cut, &g);

		/* a cut between the two halves of a pair (wscale 11/12,
		 * flags 13/14, vtag 16/17) is as bad as a cut in a field */
		for (int i = 0; i < nf; i++)
			boundary |= ends[i] == (size_t)cut && fields[i] != 11 && fields[i] != 13 &&
			            fields[i] != 16;
		if (!boundary || (size_t)cut < orig_end) {
			assert_int_equal(ret, -EINVAL);
		} else {
			assert_int_equal(ret, 0); /* a shorter, valid message */
			valid++;
		}
	}
	assert_true(valid > 15);
	assert_int_equal(hafw_flow_decode(buf, 0, &g), -EINVAL);
}

static void test_truncated(void **state)
{
	struct hafw_tuple t;
	struct hafw_flow f;
	struct hafw_exp e, x;
	uint8_t buf[HAFW_FLOW_MAX_ENCODED];
	size_t ends[64];
	unsigned fields[64];
	int n, nf;

	(void)state;
	/* TCP has the wscale and flags pairs, SCTP the vtag pair */
	ts_tuple(&t, IPPROTO_TCP, "2001:db8::1", "2001:db8::2", 1, 2);
	ts_flow_full(&f, &t, true);
	truncate_flow(&f);
	ts_tuple(&t, IPPROTO_SCTP, "2001:db8::1", "2001:db8::2", 1, 2);
	ts_flow_full(&f, &t, true);
	truncate_flow(&f);
	ts_tuple(&t, IPPROTO_DCCP, "10.0.0.1", "10.0.0.2", 1, 2);
	ts_flow_full(&f, &t, true);
	truncate_flow(&f);

	ts_exp_full(&e, true);
	n = hafw_exp_encode(&e, buf, sizeof(buf));
	assert_true(n > 0);
	nf = pb_field_ends(buf, (size_t)n, ends, fields, 64, NULL);
	assert_true(nf > 5);
	for (int cut = 0; cut < n; cut++) {
		bool boundary = false;
		int ret = hafw_exp_decode(buf, (size_t)cut, &x);

		for (int i = 0; i < nf; i++)
			boundary |= ends[i] == (size_t)cut;
		/* master, tuple and mask (the first three) are required */
		if (!boundary || cut < (int)ends[2])
			assert_int_equal(ret, -EINVAL);
		else
			assert_int_equal(ret, 0);
	}
}

/* A protobuf Flow built field by field, to send what our encoder never
 * would. */
struct crafted {
	Hafw__Flow m;
	Hafw__Tuple orig, reply, master;
	Hafw__SeqAdj sa;
	uint8_t src[17], dst[17];
};

static void crafted_init(struct crafted *c)
{
	memset(c, 0, sizeof(*c));
	hafw__flow__init(&c->m);
	hafw__tuple__init(&c->orig);
	memcpy(c->src, "\x0a\x00\x00\x01", 4);
	memcpy(c->dst, "\x0a\x00\x00\x02", 4);
	c->orig.has_src = c->orig.has_dst = c->orig.has_l4proto = 1;
	c->orig.src.data = c->src;
	c->orig.src.len = 4;
	c->orig.dst.data = c->dst;
	c->orig.dst.len = 4;
	c->orig.l4proto = IPPROTO_TCP;
	c->orig.has_sport = c->orig.has_dport = 1;
	c->orig.sport = 1234;
	c->orig.dport = 80;
	c->reply = c->master = c->orig;
	c->m.orig = &c->orig;
	hafw__seq_adj__init(&c->sa);
}

static int crafted_decode(const struct crafted *c, struct hafw_flow *f)
{
	uint8_t buf[1024];
	size_t n = hafw__flow__get_packed_size(&c->m);

	assert_true(n <= sizeof(buf));
	hafw__flow__pack(&c->m, buf);
	return hafw_flow_decode(buf, n, f);
}

#define EXPECT_FLOW(ret, stmt)                                                                     \
	do {                                                                                       \
		struct crafted c_;                                                                 \
		struct hafw_flow f_;                                                               \
		crafted_init(&c_);                                                                 \
		{                                                                                  \
			struct crafted *c = &c_;                                                   \
			stmt;                                                                      \
		}                                                                                  \
		if (crafted_decode(&c_, &f_) != (ret))                                             \
			fail_msg("'%s' should decode to %d", #stmt, ret);                          \
	} while (0)

static void test_malformed_crafted(void **state)
{
	(void)state;
	EXPECT_FLOW(0, (void)c);
	/* addresses */
	EXPECT_FLOW(-EINVAL, c->orig.src.len = c->orig.dst.len = 5);
	EXPECT_FLOW(-EINVAL, c->orig.src.len = c->orig.dst.len = 0);
	EXPECT_FLOW(-EINVAL, c->orig.src.len = c->orig.dst.len = 17);
	EXPECT_FLOW(-EINVAL, c->orig.dst.len = 16);
	EXPECT_FLOW(-EINVAL, c->orig.has_src = 0);
	EXPECT_FLOW(-EINVAL, c->orig.has_dst = 0);
	EXPECT_FLOW(0, c->orig.src.len = c->orig.dst.len = 16);
	/* ranges */
	EXPECT_FLOW(-EINVAL, c->orig.sport = 65536);
	EXPECT_FLOW(-EINVAL, c->orig.dport = 0xffffffff);
	EXPECT_FLOW(0, c->orig.dport = 65535);
	EXPECT_FLOW(-EINVAL, c->orig.l4proto = 256);
	EXPECT_FLOW(-EINVAL, c->orig.has_l4proto = 0);
	EXPECT_FLOW(0, (c->orig.l4proto = IPPROTO_ICMP, c->orig.has_dport = 0,
	                c->orig.has_icmp_type = c->orig.has_icmp_code = 1, c->orig.icmp_type = 255,
	                c->orig.icmp_code = 255));
	EXPECT_FLOW(-EINVAL, (c->orig.l4proto = IPPROTO_ICMP, c->orig.has_dport = 0,
	                      c->orig.has_icmp_type = 1, c->orig.icmp_type = 256));
	EXPECT_FLOW(-EINVAL, (c->orig.l4proto = IPPROTO_ICMP, c->orig.has_dport = 0,
	                      c->orig.has_icmp_code = 1, c->orig.icmp_code = 1000));
	/* one form per tuple: no ICMP type/code on a tuple with ports, no
	 * destination port on an ICMP tuple (present, even if zero) */
	EXPECT_FLOW(-EINVAL, (c->orig.has_icmp_type = 1, c->orig.icmp_type = 5));
	EXPECT_FLOW(-EINVAL, (c->orig.has_icmp_code = 1, c->orig.icmp_code = 0));
	EXPECT_FLOW(-EINVAL, (c->orig.l4proto = IPPROTO_UDP, c->orig.has_icmp_type = 1,
	                      c->orig.has_icmp_code = 1));
	EXPECT_FLOW(-EINVAL, (c->orig.l4proto = IPPROTO_ICMP, c->orig.dport = 0));
	EXPECT_FLOW(-EINVAL, (c->orig.l4proto = IPPROTO_ICMPV6, c->orig.has_icmp_type = 1,
	                      c->orig.icmp_type = 128));
	EXPECT_FLOW(0, (c->orig.l4proto = IPPROTO_ICMPV6, c->orig.has_dport = 0,
	                c->orig.has_icmp_type = 1, c->orig.icmp_type = 128));
	EXPECT_FLOW(-EINVAL, (c->master.has_icmp_type = 1, c->m.master = &c->master));
	EXPECT_FLOW(-EINVAL, (c->reply.l4proto = IPPROTO_ICMP, c->m.reply = &c->reply));
	EXPECT_FLOW(-EINVAL, (c->m.has_zone = 1, c->m.zone = 65536));
	EXPECT_FLOW(-EINVAL, (c->m.has_orig_zone = 1, c->m.orig_zone = 70000));
	EXPECT_FLOW(-EINVAL, (c->m.has_reply_zone = 1, c->m.reply_zone = 65536));
	EXPECT_FLOW(-EINVAL, (c->m.has_tcp_state = 1, c->m.tcp_state = 256));
	EXPECT_FLOW(-EINVAL, (c->m.has_tcp_wscale_orig = c->m.has_tcp_wscale_reply = 1,
	                      c->m.tcp_wscale_reply = 256));
	EXPECT_FLOW(-EINVAL, (c->m.has_tcp_flags_orig = c->m.has_tcp_flags_reply = 1,
	                      c->m.tcp_flags_orig = 256));
	EXPECT_FLOW(
	    0, (c->orig.l4proto = IPPROTO_SCTP, c->m.has_sctp_state = 1, c->m.sctp_state = 255));
	EXPECT_FLOW(-EINVAL, (c->orig.l4proto = IPPROTO_SCTP, c->m.has_sctp_state = 1,
	                      c->m.sctp_state = 256));
	EXPECT_FLOW(0, (c->orig.l4proto = IPPROTO_DCCP, c->m.has_dccp_state = 1,
	                c->m.dccp_state = 255, c->m.has_dccp_role = 1, c->m.dccp_role = 255));
	EXPECT_FLOW(-EINVAL, (c->orig.l4proto = IPPROTO_DCCP, c->m.has_dccp_state = 1,
	                      c->m.dccp_state = 256));
	EXPECT_FLOW(-EINVAL,
	            (c->orig.l4proto = IPPROTO_DCCP, c->m.has_dccp_role = 1, c->m.dccp_role = 256));
	/* attributes that only come in pairs */
	EXPECT_FLOW(-EINVAL, c->m.has_tcp_wscale_orig = 1);
	EXPECT_FLOW(-EINVAL, c->m.has_tcp_flags_reply = 1);
	EXPECT_FLOW(0, (c->orig.l4proto = IPPROTO_SCTP,
	                c->m.has_sctp_vtag_orig = c->m.has_sctp_vtag_reply = 1));
	EXPECT_FLOW(-EINVAL, (c->orig.l4proto = IPPROTO_SCTP, c->m.has_sctp_vtag_orig = 1));
	EXPECT_FLOW(-EINVAL, (c->orig.l4proto = IPPROTO_SCTP, c->m.has_sctp_vtag_reply = 1));
	/* state of another protocol than orig's: the kernel keeps TCP, SCTP
	 * and DCCP state in one union, it would overwrite the flow's own */
	EXPECT_FLOW(0, (c->m.has_tcp_state = 1, c->m.tcp_state = 3));
	EXPECT_FLOW(-EINVAL, (c->m.has_sctp_state = 1, c->m.sctp_state = 7));
	EXPECT_FLOW(-EINVAL, (c->m.has_sctp_vtag_orig = c->m.has_sctp_vtag_reply = 1));
	EXPECT_FLOW(-EINVAL, (c->m.has_dccp_state = 1));
	EXPECT_FLOW(-EINVAL, (c->m.has_dccp_role = 1));
	EXPECT_FLOW(-EINVAL, (c->m.has_dccp_handshake_seq = 1));
	EXPECT_FLOW(-EINVAL, (c->orig.l4proto = IPPROTO_SCTP, c->m.has_tcp_state = 1));
	EXPECT_FLOW(-EINVAL, (c->orig.l4proto = IPPROTO_SCTP,
	                      c->m.has_tcp_wscale_orig = c->m.has_tcp_wscale_reply = 1));
	EXPECT_FLOW(-EINVAL, (c->orig.l4proto = IPPROTO_SCTP,
	                      c->m.has_tcp_flags_orig = c->m.has_tcp_flags_reply = 1));
	EXPECT_FLOW(-EINVAL, (c->orig.l4proto = IPPROTO_SCTP, c->m.has_dccp_state = 1));
	EXPECT_FLOW(-EINVAL, (c->orig.l4proto = IPPROTO_DCCP, c->m.has_tcp_state = 1));
	EXPECT_FLOW(-EINVAL, (c->orig.l4proto = IPPROTO_DCCP, c->m.has_sctp_state = 1));
	EXPECT_FLOW(-EINVAL, (c->orig.l4proto = IPPROTO_UDP, c->m.has_tcp_state = 1));
	EXPECT_FLOW(-EINVAL, (c->orig.l4proto = IPPROTO_GRE, c->m.has_sctp_state = 1));
	EXPECT_FLOW(-EINVAL, (c->orig.l4proto = 99, c->m.has_dccp_role = 1));
	EXPECT_FLOW(-EINVAL, (c->orig.l4proto = IPPROTO_ICMP, c->orig.has_dport = 0,
	                      c->m.has_tcp_flags_orig = c->m.has_tcp_flags_reply = 1));
	/* the protocol is orig's: a reply or master of another changes nothing */
	EXPECT_FLOW(-EINVAL, (c->reply.l4proto = IPPROTO_SCTP, c->m.reply = &c->reply,
	                      c->m.has_sctp_state = 1));
	EXPECT_FLOW(0, (c->master.l4proto = IPPROTO_SCTP, c->m.master = &c->master,
	                c->m.has_tcp_state = 1));
	/* labels: at most 128 bits */
	EXPECT_FLOW(-EINVAL,
	            (c->m.has_labels = 1, c->m.labels.len = 17, c->m.labels.data = c->src));
	/* the reply and master tuples are checked like orig */
	EXPECT_FLOW(-EINVAL, (c->reply.src.len = c->reply.dst.len = 16, c->m.reply = &c->reply));
	EXPECT_FLOW(-EINVAL, (c->reply.dport = 70000, c->m.reply = &c->reply));
	EXPECT_FLOW(-EINVAL, (c->master.src.len = 5, c->m.master = &c->master));
	EXPECT_FLOW(-EINVAL, (c->master.l4proto = 300, c->m.master = &c->master));
	EXPECT_FLOW(0, (c->m.reply = &c->reply, c->m.master = &c->master));
	/* of the flow's family, like the reply (the kernel reads the master
	 * with the message's family) */
	EXPECT_FLOW(-EINVAL,
	            (c->master.src.len = c->master.dst.len = 16, c->m.master = &c->master));
	EXPECT_FLOW(0, (c->orig.src.len = c->orig.dst.len = 16,
	                c->master.src.len = c->master.dst.len = 16, c->m.master = &c->master));
	EXPECT_FLOW(-EINVAL, (c->orig.src.len = c->orig.dst.len = 16, c->m.master = &c->master));
	/* helper names */
	EXPECT_FLOW(0, c->m.helper = "ftp");
	EXPECT_FLOW(0, c->m.helper = "abcdefghijklmno");
	EXPECT_FLOW(-EINVAL, c->m.helper = "abcdefghijklmnop");
	EXPECT_FLOW(-EINVAL, c->m.helper = "");
	EXPECT_FLOW(-EINVAL, c->m.helper = "ft\np");
	EXPECT_FLOW(-EINVAL, c->m.helper = "\x01");
	EXPECT_FLOW(-EINVAL, c->m.helper = "ftp ");
	EXPECT_FLOW(-EINVAL, c->m.helper = "ftp\x7f");
	EXPECT_FLOW(-EINVAL, c->m.helper = "ft\xc3\xa9");
	EXPECT_FLOW(-EINVAL, c->m.helper = "\x1b[31m");
}

static void test_malformed_misc(void **state)
{
	struct crafted c;
	struct hafw_flow f;
	uint8_t buf[256];
	size_t n;

	(void)state;
	/* no orig at all */
	crafted_init(&c);
	c.m.orig = NULL;
	assert_int_equal(hafw_flow_from_pb(&c.m, &f), -EINVAL);
	/* short labels are zero-padded */
	crafted_init(&c);
	c.m.has_labels = 1;
	c.m.labels.data = (uint8_t *)"\x81";
	c.m.labels.len = 1;
	assert_int_equal(crafted_decode(&c, &f), 0);
	assert_true(f.present & HAFW_FA_LABELS);
	assert_int_equal(f.labels[0], 0x81);
	for (int i = 1; i < HAFW_LABELS_LEN; i++)
		assert_int_equal(f.labels[i], 0);
	/* an empty SeqAdj is present with zeros */
	crafted_init(&c);
	c.m.seqadj_reply = &c.sa;
	assert_int_equal(crafted_decode(&c, &f), 0);
	assert_true(f.present & HAFW_FA_SEQADJ_REPLY);
	assert_false(f.present & HAFW_FA_SEQADJ_ORIG);
	/* unknown fields from a newer peer are skipped */
	crafted_init(&c);
	n = hafw__flow__pack(&c.m, buf);
	memcpy(buf + n, "\xa2\x06\x03xyz", 6); /* field 100, bytes "xyz" */
	assert_int_equal(hafw_flow_decode(buf, n + 6, &f), 0);
	assert_int_equal(f.orig.sport, 1234);
	/* the wrong wire type for a known field is refused */
	crafted_init(&c);
	n = hafw__flow__pack(&c.m, buf);
	memcpy(buf + n, "\x42\x01\x00", 3); /* field 8 (mark) as bytes */
	assert_int_equal(hafw_flow_decode(buf, n + 3, &f), -EINVAL);
	/* an Expectation is not a Flow (required field 1 has another shape) */
	{
		struct hafw_exp e;
		int len;

		ts_exp_full(&e, false);
		len = hafw_exp_encode(&e, buf, sizeof(buf));
		assert_true(len > 0);
		/* decodes or not, but never crashes */
		(void)hafw_flow_decode(buf, (size_t)len, &f);
	}
}

/* Random bytes and random mutations of valid encodings (flows and
 * expectations): the decoder returns 0 or -EINVAL, and whatever it accepts
 * can be encoded again, into the same flow or expectation. */
static void test_random_input(void **state)
{
	uint64_t rng = 0x1234567887654321ull;
	uint8_t seed[HAFW_FLOW_MAX_ENCODED], buf[HAFW_FLOW_MAX_ENCODED], out[HAFW_FLOW_MAX_ENCODED];
	struct ts_variant v[32];
	size_t nv = ts_variants(v, 32);
	unsigned accepted = 0, exp_accepted = 0;
	const char *d;

	(void)state;
	for (int iter = 0; iter < 40000; iter++) {
		struct hafw_flow f, g;
		struct hafw_exp e;
		size_t len;
		int ret;

		if (iter % 2) {
			len = ts_rand(&rng) % 200;
			for (size_t i = 0; i < len; i++)
				buf[i] = (uint8_t)ts_rand(&rng);
		} else {
			if (iter % 4 == 0) {
				ts_flow_full(&f, &v[ts_rand(&rng) % nv].orig, ts_rand(&rng) & 1);
				ret = hafw_flow_encode(&f, seed, sizeof(seed));
			} else {
				ts_exp_full(&e, ts_rand(&rng) & 1);
				if (ts_rand(&rng) & 1) {
					/* an ICMP expectation: no dport in the mask */
					ts_icmp(&e.tuple, "10.0.0.2", "10.0.0.1", 8, 0, 77);
					ts_icmp(&e.mask, "255.255.255.255", "255.255.255.255", 0xff,
					        0xff, 0xffff);
				}
				ret = hafw_exp_encode(&e, seed, sizeof(seed));
			}
			assert_true(ret > 0);
			len = (size_t)ret;
			memcpy(buf, seed, len);
			for (int k = 1 + ts_rand(&rng) % 4; k > 0; k--)
				buf[ts_rand(&rng) % len] ^= (uint8_t)(1u << (ts_rand(&rng) % 8));
		}
		ret = hafw_flow_decode(buf, len, &g);
		assert_true(ret == 0 || ret == -EINVAL);
		if (ret == 0) {
			accepted++;
			ret = hafw_flow_encode(&g, out, sizeof(out));
			assert_true(ret > 0);
			assert_int_equal(hafw_flow_decode(out, (size_t)ret, &f), 0);
			/* and is the same flow: one form per flow */
			d = hafw_flow_diff(&g, &f, 0);
			if (d)
				fail_msg("iteration %d: accepted flow re-encodes differently in %s",
				         iter, d);
		}
		ret = hafw_exp_decode(buf, len, &e);
		assert_true(ret == 0 || ret == -EINVAL);
		if (ret == 0) {
			struct hafw_exp x;

			exp_accepted++;
			ret = hafw_exp_encode(&e, out, sizeof(out));
			assert_true(ret > 0);
			assert_int_equal(hafw_exp_decode(out, (size_t)ret, &x), 0);
			d = hafw_exp_diff(&e, &x, 0);
			if (d)
				fail_msg("iteration %d: accepted expectation re-encodes "
				         "differently in %s",
				         iter, d);
		}
	}
	/* The mutations did reach the checks. With this seed about 45% of the
	 * 10000 mutated flows and 40% of the 10000 mutated expectations are
	 * accepted (a flipped bit mostly lands in a value); far fewer would
	 * mean the decoder refuses what it should take. */
	assert_true(accepted > 1000);
	assert_true(exp_accepted > 1000);
}

struct crafted_exp {
	Hafw__Expectation m;
	Hafw__Tuple t[4];
	uint8_t a[4];
};

static void crafted_exp_init(struct crafted_exp *c)
{
	hafw__expectation__init(&c->m);
	memcpy(c->a, "\x0a\x00\x00\x01", 4);
	for (int i = 0; i < 4; i++) {
		hafw__tuple__init(&c->t[i]);
		c->t[i].has_src = c->t[i].has_dst = c->t[i].has_l4proto = 1;
		c->t[i].src.data = c->t[i].dst.data = c->a;
		c->t[i].src.len = c->t[i].dst.len = 4;
		c->t[i].l4proto = IPPROTO_TCP;
	}
	c->m.master = &c->t[0];
	c->m.tuple = &c->t[1];
	c->m.mask = &c->t[2];
}

static int crafted_exp_decode(struct crafted_exp *c)
{
	uint8_t buf[1024];
	struct hafw_exp e;
	size_t n = hafw__expectation__get_packed_size(&c->m);

	assert_true(n <= sizeof(buf));
	hafw__expectation__pack(&c->m, buf);
	return hafw_exp_decode(buf, n, &e);
}

static void exp_tuple_v6(Hafw__Tuple *t)
{
	static uint8_t a6[16] = {0x20, 0x01, 0x0d, 0xb8, [15] = 0x02};

	t->src.data = t->dst.data = a6;
	t->src.len = t->dst.len = 16;
}

#define EXPECT_EXP(ret, stmt)                                                                      \
	do {                                                                                       \
		struct crafted_exp c_;                                                             \
		crafted_exp_init(&c_);                                                             \
		{                                                                                  \
			struct crafted_exp *c = &c_;                                               \
			stmt;                                                                      \
		}                                                                                  \
		if (crafted_exp_decode(&c_) != (ret))                                              \
			fail_msg("'%s' should decode to %d", #stmt, ret);                          \
	} while (0)

static void test_exp_malformed(void **state)
{
	struct hafw_exp e;

	(void)state;
	EXPECT_EXP(0, (void)c);
	EXPECT_EXP(-EINVAL, c->t[0].src.len = 5);
	EXPECT_EXP(-EINVAL, (c->t[1].has_dport = 1, c->t[1].dport = 65536));
	EXPECT_EXP(-EINVAL, c->t[2].src.len = c->t[2].dst.len = 3);
	EXPECT_EXP(0, c->m.helper = "sip");
	EXPECT_EXP(-EINVAL, c->m.helper = "s\tp");
	EXPECT_EXP(-EINVAL, c->m.helper = "abcdefghijklmnop");
	EXPECT_EXP(0, c->m.fn = "abcdefghijklmnopqrstuvwxyz01234");
	EXPECT_EXP(-EINVAL, c->m.fn = "abcdefghijklmnopqrstuvwxyz012345");
	EXPECT_EXP(-EINVAL, c->m.fn = "nat\r\n");
	EXPECT_EXP(-EINVAL, c->m.fn = "");
	EXPECT_EXP(0, (c->m.nat_tuple = &c->t[3], c->m.has_nat_dir = 1, c->m.nat_dir = 1));
	EXPECT_EXP(-EINVAL, (c->m.nat_tuple = &c->t[3], c->m.has_nat_dir = 1, c->m.nat_dir = 2));
	EXPECT_EXP(-EINVAL,
	           (c->t[3].has_sport = 1, c->t[3].sport = 1u << 20, c->m.nat_tuple = &c->t[3]));
	EXPECT_EXP(-EINVAL, (c->m.has_zone = 1, c->m.zone = 65536));
	/* one family for all tuples: the kernel reads them all with the
	 * message's family (ctnetlink_parse_tuple() of each with
	 * nfgen_family), so a mixed expectation cannot be committed as it
	 * is; a mask of another address length is another family too */
	EXPECT_EXP(0, for (int i = 0; i < 4; i++) exp_tuple_v6(&c->t[i]));
	EXPECT_EXP(0, (exp_tuple_v6(&c->t[0]), exp_tuple_v6(&c->t[1]), exp_tuple_v6(&c->t[2])));
	EXPECT_EXP(-EINVAL, exp_tuple_v6(&c->t[0]));
	EXPECT_EXP(-EINVAL, exp_tuple_v6(&c->t[1]));
	EXPECT_EXP(-EINVAL, exp_tuple_v6(&c->t[2]));
	EXPECT_EXP(-EINVAL, (exp_tuple_v6(&c->t[0]), exp_tuple_v6(&c->t[1])));
	EXPECT_EXP(-EINVAL, (exp_tuple_v6(&c->t[1]), exp_tuple_v6(&c->t[2])));
	EXPECT_EXP(-EINVAL,
	           (exp_tuple_v6(&c->t[3]), c->m.nat_tuple = &c->t[3], c->m.has_nat_dir = 1));
	EXPECT_EXP(-EINVAL, (exp_tuple_v6(&c->t[0]), exp_tuple_v6(&c->t[1]), exp_tuple_v6(&c->t[2]),
	                     c->m.nat_tuple = &c->t[3], c->m.has_nat_dir = 1));
	{
		struct crafted_exp c;

		crafted_exp_init(&c);
		c.m.mask = NULL;
		assert_int_equal(hafw_exp_from_pb(&c.m, &e), -EINVAL);
		crafted_exp_init(&c);
		c.m.master = NULL;
		assert_int_equal(hafw_exp_from_pb(&c.m, &e), -EINVAL);
		crafted_exp_init(&c);
		c.m.tuple = NULL;
		assert_int_equal(hafw_exp_from_pb(&c.m, &e), -EINVAL);
	}
	assert_int_equal(hafw_exp_decode((const uint8_t *)"\xff\xff\xff", 3, &e), -EINVAL);
	assert_int_equal(hafw_exp_decode((const uint8_t *)"", 0, &e), -EINVAL);
}

/* Regression: tuple_from_pb() kept icmp_type/icmp_code sent on a non-ICMP
 * tuple (and a dport on an ICMP one), which tuple_to_pb() drops. One flow
 * then had two cache keys (hash and equality include icmp_type), and a
 * DESTROY re-encoded by us no longer matched what a peer stored. Each
 * tuple now has one form on the wire, the one our encoder writes. */
static void test_tuple_one_form(void **state)
{
	struct crafted cf;
	struct hafw_flow f, g;
	struct hafw_exp e;
	uint8_t buf[HAFW_FLOW_MAX_ENCODED];
	int n;

	(void)state;
	crafted_init(&cf);
	cf.orig.has_icmp_type = 1;
	cf.orig.icmp_type = 5;
	assert_int_equal(crafted_decode(&cf, &f), -EINVAL);
	/* the same flow without it: one key, whatever the way round */
	cf.orig.has_icmp_type = 0;
	assert_int_equal(crafted_decode(&cf, &f), 0);
	n = hafw_flow_encode(&f, buf, sizeof(buf));
	assert_int_equal(hafw_flow_decode(buf, (size_t)n, &g), 0);
	assert_null(hafw_flow_diff(&f, &g, 0));
	assert_true(hafw_tuple_hash(&f.orig, 0, 1) == hafw_tuple_hash(&g.orig, 0, 1));
	assert_int_equal(f.orig.icmp_type, 0);

	/* what our encoder writes for every protocol is that one form */
	{
		struct ts_variant v[32];
		size_t nv = ts_variants(v, 32);

		for (size_t i = 0; i < nv; i++) {
			Hafw__Flow *m;

			ts_flow_plain(&f, &v[i].orig);
			n = hafw_flow_encode(&f, buf, sizeof(buf));
			m = hafw__flow__unpack(NULL, (size_t)n, buf);
			assert_non_null(m);
			if (hafw_tuple_is_icmp(&f.orig)) {
				assert_false(m->orig->has_dport);
				assert_true(m->orig->has_icmp_type && m->orig->has_icmp_code);
			} else {
				assert_false(m->orig->has_icmp_type || m->orig->has_icmp_code);
			}
			hafw__flow__free_unpacked(m, NULL);
		}
	}

	/* an ICMP expectation's mask carries no dport, whatever the model
	 * holds there; a TCP one carries it, zero or not */
	ts_exp_full(&e, false);
	ts_icmp(&e.tuple, "10.0.0.2", "10.0.0.1", 8, 0, 77);
	ts_icmp(&e.mask, "255.255.255.255", "255.255.255.255", 0xff, 0xff, 0xffff);
	e.mask.dport = 0xffff;
	n = hafw_exp_encode(&e, buf, sizeof(buf));
	assert_true(n > 0);
	{
		Hafw__Expectation *m = hafw__expectation__unpack(NULL, (size_t)n, buf);

		assert_non_null(m);
		assert_false(m->mask->has_dport);
		assert_true(m->mask->has_sport);
		hafw__expectation__free_unpacked(m, NULL);
	}
	assert_int_equal(hafw_exp_decode(buf, (size_t)n, &e), 0);
	assert_int_equal(e.mask.dport, 0);
	assert_int_equal(e.mask.icmp_type, 0xff);
	ts_exp_full(&e, false);
	e.mask.dport = 0;
	n = hafw_exp_encode(&e, buf, sizeof(buf));
	{
		Hafw__Expectation *m = hafw__expectation__unpack(NULL, (size_t)n, buf);

		assert_non_null(m);
		assert_true(m->mask->has_dport);
		hafw__expectation__free_unpacked(m, NULL);
	}
	/* the canonical form is also required of expectation tuples */
	EXPECT_EXP(-EINVAL, (c->t[1].has_icmp_type = 1, c->t[1].icmp_type = 3));
	EXPECT_EXP(-EINVAL, (c->t[2].has_icmp_code = 1));
	EXPECT_EXP(-EINVAL, (c->t[0].l4proto = IPPROTO_ICMP, c->t[0].has_dport = 1));
	EXPECT_EXP(-EINVAL, (c->t[2].l4proto = IPPROTO_ICMPV6, c->t[2].has_dport = 1));
	EXPECT_EXP(0, (c->t[1].l4proto = c->t[2].l4proto = IPPROTO_ICMP,
	               c->t[1].has_icmp_type = c->t[2].has_icmp_type = 1));
}

/* Regression: a present but empty labels field reached
 * memcpy(f->labels, NULL, 0) in hafw_flow_from_pb() (protobuf-c gives
 * data == NULL for empty bytes): undefined behaviour, which aborts a
 * sanitizer build (-fno-sanitize-recover). Found by fuzz_flow_decode; the
 * same input in a datagram is tests/fuzz/corpus/fuzz_datagram/
 * regress_empty_labels. */
static void test_empty_labels(void **state)
{
	static const uint8_t msg[] = {0x4a, 0x00, 0x0a, 0x0e, 0x0a, 0x04, 0x0a, 0x00, 0x00,
	                              0x01, 0x12, 0x04, 0xc6, 0x33, 0x64, 0x07, 0x18, 0x01};
	struct hafw_flow f;
	struct crafted c;

	(void)state;
	memset(&f, 0xa5, sizeof(f));
	assert_int_equal(hafw_flow_decode(msg, sizeof(msg), &f), 0);
	assert_true(f.present & HAFW_FA_LABELS);
	for (int i = 0; i < HAFW_LABELS_LEN; i++)
		assert_int_equal(f.labels[i], 0);
	/* the same from an unpacked message, where data is NULL */
	crafted_init(&c);
	c.m.has_labels = 1;
	c.m.labels.len = 0;
	c.m.labels.data = NULL;
	memset(&f, 0xa5, sizeof(f));
	assert_int_equal(hafw_flow_from_pb(&c.m, &f), 0);
	assert_true(f.present & HAFW_FA_LABELS);
	for (int i = 0; i < HAFW_LABELS_LEN; i++)
		assert_int_equal(f.labels[i], 0);
}

/* Regression: hafw_exp_from_pb() never set HAFW_EA_ZONE, while
 * nfct_conv_exp_from() does; the presence bit did not survive protobuf. A
 * zone travels when it is not 0 (0 is "no zone"), and comes back with its
 * bit. */
static void test_exp_zone_presence(void **state)
{
	struct hafw_exp e, x;
	uint8_t buf[HAFW_FLOW_MAX_ENCODED];
	int n;

	(void)state;
	ts_exp_full(&e, false);
	n = hafw_exp_encode(&e, buf, sizeof(buf));
	assert_int_equal(hafw_exp_decode(buf, (size_t)n, &x), 0);
	assert_int_equal(x.present, e.present);
	assert_int_equal(x.zone, 7);
	/* only the zone */
	e.present = HAFW_EA_ZONE;
	n = hafw_exp_encode(&e, buf, sizeof(buf));
	assert_int_equal(hafw_exp_decode(buf, (size_t)n, &x), 0);
	assert_int_equal(x.present, HAFW_EA_ZONE);
	/* no zone */
	ts_exp_full(&e, true);
	e.zone = 0;
	n = hafw_exp_encode(&e, buf, sizeof(buf));
	assert_int_equal(hafw_exp_decode(buf, (size_t)n, &x), 0);
	assert_int_equal(x.present, e.present & ~HAFW_EA_ZONE);
	assert_int_equal(x.zone, 0);
	/* a crafted zone, even 0, is present */
	EXPECT_EXP(0, (c->m.has_zone = 1, c->m.zone = 0xffff));
	{
		struct crafted_exp c;

		crafted_exp_init(&c);
		c.m.has_zone = 1;
		c.m.zone = 0;
		assert_int_equal(hafw_exp_from_pb(&c.m, &x), 0);
		assert_int_equal(x.present, HAFW_EA_ZONE);
		crafted_exp_init(&c);
		assert_int_equal(hafw_exp_from_pb(&c.m, &x), 0);
		assert_int_equal(x.present, 0);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_truncated),      cmocka_unit_test(test_malformed_crafted),
	    cmocka_unit_test(test_malformed_misc), cmocka_unit_test(test_random_input),
	    cmocka_unit_test(test_exp_malformed),  cmocka_unit_test(test_tuple_one_form),
	    cmocka_unit_test(test_empty_labels),   cmocka_unit_test(test_exp_zone_presence),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
