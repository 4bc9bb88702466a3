/* proto/flow_pb.c: model <-> protobuf round trips and sizes (hostile input:
 * test_flow_pb_malformed.c). */
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

/* encode -> decode must give back the same flow, byte-identical on the
 * second encode; the encoding fits exactly its own length. */
static void flow_roundtrip(const struct hafw_flow *f, const char *what)
{
	uint8_t buf[HAFW_FLOW_MAX_ENCODED], buf2[HAFW_FLOW_MAX_ENCODED],
	    small[HAFW_FLOW_MAX_ENCODED];
	struct hafw_flow g;
	const char *d;
	uint32_t want;
	int n, n2;

	n = hafw_flow_encode(f, buf, sizeof(buf));
	assert_true(n > 0);
	memset(&g, 0xa5, sizeof(g));
	assert_int_equal(hafw_flow_decode(buf, (size_t)n, &g), 0);
	d = hafw_flow_diff(f, &g, 0);
	if (d)
		fail_msg("%s: round trip differs in %s", what, d);
	/* every presence bit comes back; the reply is always known after a
	 * decode, and the zone bit follows a non-zero zone */
	want = f->present | HAFW_FA_REPLY;
	want = f->zone ? want | HAFW_FA_ZONE : want & ~HAFW_FA_ZONE;
	assert_int_equal(g.present, want);
	n2 = hafw_flow_encode(&g, buf2, sizeof(buf2));
	assert_int_equal(n2, n);
	assert_memory_equal(buf, buf2, (size_t)n);
	/* exact fit, and one byte short writes nothing */
	assert_int_equal(hafw_flow_encode(f, small, (size_t)n), n);
	memset(small, 0xee, sizeof(small));
	assert_int_equal(hafw_flow_encode(f, small, (size_t)n - 1), -ENOSPC);
	for (size_t i = 0; i < sizeof(small); i++)
		assert_int_equal(small[i], 0xee);
}

static void test_roundtrip_every_attribute(void **state)
{
	struct ts_variant v[32];
	size_t nv = ts_variants(v, 32);
	struct hafw_flow f;
	char what[64];

	(void)state;
	for (size_t i = 0; i < nv; i++) {
		for (int nat = 0; nat < 2; nat++) {
			ts_flow_full(&f, &v[i].orig, nat);
			snprintf(what, sizeof(what), "%s%s", v[i].name, nat ? "+nat" : "");
			flow_roundtrip(&f, what);
			/* the minimal flow too */
			ts_flow_plain(&f, &v[i].orig);
			flow_roundtrip(&f, v[i].name);
		}
	}
}

/* It encodes, but the decoder refuses it. */
static void flow_refused(const struct hafw_flow *f, const char *what)
{
	uint8_t buf[HAFW_FLOW_MAX_ENCODED];
	struct hafw_flow g;
	int n;

	n = hafw_flow_encode(f, buf, sizeof(buf));
	assert_true(n > 0);
	if (hafw_flow_decode(buf, (size_t)n, &g) != -EINVAL)
		fail_msg("%s: decoded, should be refused", what);
}

/* The protocols with state of their own, and one without. */
static const uint8_t state_protos[] = {IPPROTO_TCP, IPPROTO_SCTP, IPPROTO_DCCP, IPPROTO_UDP};

/* Each attribute alone, so that one cannot hide behind another; the state
 * of another protocol than the flow's is refused, alone too. */
static void test_roundtrip_single_attributes(void **state)
{
	struct hafw_tuple t;
	struct hafw_flow full, f;
	char what[64];

	(void)state;
	for (size_t p = 0; p < sizeof(state_protos); p++) {
		uint8_t l4 = state_protos[p];
		uint32_t foreign = TS_PROTO_STATE_BITS & ~ts_proto_state_bits(l4);

		ts_tuple(&t, l4, "2001:db8::1", "2001:db8::2", 1, 2);
		ts_flow_full(&full, &t, true);
		assert_int_equal(full.present, TS_ALL_FLOW_BITS & ~foreign);
		ts_flow_all_state(&full);
		for (uint32_t bit = 1; bit <= HAFW_FA_SECMARK; bit <<= 1) {
			f = full;
			f.present = HAFW_FA_REPLY | bit;
			snprintf(what, sizeof(what), "%s single 0x%x", hafw_l4_name(l4), bit);
			if (bit & foreign)
				flow_refused(&f, what);
			else
				flow_roundtrip(&f, what);
		}
		/* zero values are values, not absence */
		memset(&f, 0, sizeof(f));
		f.orig = t;
		hafw_tuple_invert(&t, &f.reply);
		f.master.l3 = t.l3; /* a master is of the flow's family */
		/* an empty helper name is not a name (see copy_name) */
		f.present = TS_ALL_FLOW_BITS & ~(HAFW_FA_ZONE | HAFW_FA_HELPER | foreign);
		snprintf(what, sizeof(what), "%s zeros", hafw_l4_name(l4));
		flow_roundtrip(&f, what);
		/* extreme values */
		ts_flow_full(&f, &t, true);
		f.status = f.timeout = f.mark = f.secmark = UINT32_MAX;
		f.seqadj[0].offset_before = INT32_MIN;
		f.seqadj[0].offset_after = INT32_MAX;
		f.seqadj[1].correction_pos = UINT32_MAX;
		f.sctp_vtag[0] = f.sctp_vtag[1] = UINT32_MAX;
		f.dccp_handshake_seq = UINT64_MAX;
		f.start_ns = UINT64_MAX;
		f.zone = f.orig_zone = f.reply_zone = 0xffff;
		f.tcp_wscale[0] = f.tcp_flags[1] = f.tcp_state = f.sctp_state = 255;
		f.dccp_state = f.dccp_role = 255;
		memset(f.labels, 0xff, sizeof(f.labels));
		strcpy(f.helper, "abcdefghijklmno"); /* 15: the longest that fits */
		snprintf(what, sizeof(what), "%s extremes", hafw_l4_name(l4));
		flow_roundtrip(&f, what);
	}
}

static void test_diff_catches_changes(void **state)
{
	struct hafw_tuple t;
	struct hafw_flow f, g;
	uint8_t buf[HAFW_FLOW_MAX_ENCODED];
	int n;

	(void)state;
	ts_tuple(&t, IPPROTO_TCP, "10.0.0.1", "198.51.100.7", 40000, 80);
	ts_flow_full(&f, &t, true);
	n = hafw_flow_encode(&f, buf, sizeof(buf));
	assert_true(n > 0);
	assert_int_equal(hafw_flow_decode(buf, (size_t)n, &g), 0);
	assert_null(hafw_flow_diff(&f, &g, 0));
	g.mark ^= 1;
	assert_string_equal(hafw_flow_diff(&f, &g, 0), "mark");
	g.mark ^= 1;
	g.tcp_wscale[1] ^= 1;
	assert_string_equal(hafw_flow_diff(&f, &g, 0), "tcp_wscale");
	g.tcp_wscale[1] ^= 1;
	g.labels[0] ^= 1;
	assert_string_equal(hafw_flow_diff(&f, &g, 0), "labels");
}

/* Walk the top-level fields of a protobuf message: offsets where a field
 * ends. Returns the count, or -1 if the bytes are not well formed. */
static void test_encoding_size(void **state)
{
	struct hafw_tuple t;
	struct hafw_flow f;
	uint8_t buf[HAFW_FLOW_MAX_ENCODED];
	Hafw__Flow *m;
	int plain, nat;

	(void)state;
	ts_tuple(&t, IPPROTO_TCP, "10.1.2.3", "192.0.2.80", 51514, 443);
	ts_flow_plain(&f, &t);
	f.present |= HAFW_FA_STATUS | HAFW_FA_TIMEOUT | HAFW_FA_TCP_STATE | HAFW_FA_TCP_WSCALE |
	             HAFW_FA_TCP_FLAGS | HAFW_FA_MARK;
	f.status = HAFW_IPS_SEEN_REPLY | HAFW_IPS_ASSURED | HAFW_IPS_CONFIRMED;
	f.timeout = 431999;
	f.tcp_state = 3;
	f.tcp_wscale[0] = f.tcp_wscale[1] = 7;
	f.tcp_flags[0] = f.tcp_flags[1] = 0x23;
	f.mark = 0x100;
	plain = hafw_flow_encode(&f, buf, sizeof(buf));
	assert_true(plain > 0);
	assert_true(plain < 60);
	m = hafw__flow__unpack(NULL, (size_t)plain, buf);
	assert_non_null(m);
	assert_null(m->reply); /* the inverse is implied */
	hafw__flow__free_unpacked(m, NULL);

	/* NAT: the reply tuple must travel */
	ts_addr(f.reply.dst, "203.0.113.1");
	f.reply.dport = 40000;
	f.status |= HAFW_IPS_SRC_NAT;
	nat = hafw_flow_encode(&f, buf, sizeof(buf));
	assert_true(nat > plain);
	m = hafw__flow__unpack(NULL, (size_t)nat, buf);
	assert_non_null(m);
	assert_non_null(m->reply);
	assert_int_equal(m->reply->dport, 40000);
	hafw__flow__free_unpacked(m, NULL);

	/* a reply that differs only in an ICMP type is not the inverse */
	ts_icmp(&t, "10.0.0.1", "10.0.0.2", 8, 0, 5);
	ts_flow_plain(&f, &t);
	f.reply.icmp_type = 3;
	nat = hafw_flow_encode(&f, buf, sizeof(buf));
	m = hafw__flow__unpack(NULL, (size_t)nat, buf);
	assert_non_null(m);
	assert_non_null(m->reply);
	hafw__flow__free_unpacked(m, NULL);
}

/* The largest flow and expectation fit HAFW_FLOW_MAX_ENCODED. */
static void test_max_encoded(void **state)
{
	struct hafw_flow f;
	struct hafw_exp e;
	struct hafw_tuple t;
	uint8_t buf[2048];
	int n;

	(void)state;
	ts_icmp(&t, "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff",
	        "ffff:ffff:ffff:ffff:ffff:ffff:ffff:fffe", 255, 255, 65535);
	t.dport = 65535;
	ts_flow_full(&f, &t, true);
	/* what the encoder can be given, not only what the decoder accepts:
	 * every protocol's state, and a dport on ICMP tuples */
	f.present = TS_ALL_FLOW_BITS;
	f.reply = t;
	f.reply.icmp_type = 254;
	f.master = t;
	f.zone = f.orig_zone = f.reply_zone = 0xffff;
	f.status = f.timeout = f.mark = f.secmark = UINT32_MAX;
	f.sctp_vtag[0] = f.sctp_vtag[1] = UINT32_MAX;
	f.seqadj[0] = f.seqadj[1] = (struct hafw_seqadj){UINT32_MAX, INT32_MIN, INT32_MIN};
	f.synproxy_isn = f.synproxy_its = f.synproxy_tsoff = UINT32_MAX;
	f.dccp_handshake_seq = f.start_ns = UINT64_MAX;
	f.tcp_state = f.sctp_state = f.dccp_state = f.dccp_role = 255;
	memset(f.tcp_wscale, 255, 2);
	memset(f.tcp_flags, 255, 2);
	strcpy(f.helper, "abcdefghijklmno");
	n = hafw_flow_encode(&f, buf, sizeof(buf));
	assert_true(n > 0);
	assert_true(n <= HAFW_FLOW_MAX_ENCODED);

	ts_exp_full(&e, true);
	e.master = e.tuple = e.mask = e.nat_tuple = t;
	e.timeout = e.flags = e.class_ = e.nat_dir = UINT32_MAX;
	e.zone = 0xffff;
	strcpy(e.helper, "abcdefghijklmno");
	memset(e.fn, 'f', sizeof(e.fn) - 1);
	n = hafw_exp_encode(&e, buf, sizeof(buf));
	assert_true(n > 0);
	assert_true(n <= HAFW_FLOW_MAX_ENCODED);
}

static void exp_roundtrip(const struct hafw_exp *e)
{
	uint8_t buf[HAFW_FLOW_MAX_ENCODED], buf2[HAFW_FLOW_MAX_ENCODED];
	struct hafw_exp x;
	const char *d;
	int n;

	n = hafw_exp_encode(e, buf, sizeof(buf));
	assert_true(n > 0);
	assert_int_equal(hafw_exp_decode(buf, (size_t)n, &x), 0);
	d = hafw_exp_diff(e, &x, 0);
	if (d)
		fail_msg("expectation round trip differs in %s", d);
	/* every presence bit comes back; the zone's follows a non-zero zone
	 * (0 is "no zone" and does not travel) */
	assert_int_equal(x.present,
	                 e->zone ? e->present | HAFW_EA_ZONE : e->present & ~HAFW_EA_ZONE);
	assert_int_equal(hafw_exp_encode(&x, buf2, sizeof(buf2)), n);
	assert_memory_equal(buf, buf2, (size_t)n);
	assert_int_equal(hafw_exp_encode(e, buf2, (size_t)n - 1), -ENOSPC);
}

static void test_exp_roundtrip(void **state)
{
	struct hafw_exp e, x;
	uint8_t buf[HAFW_FLOW_MAX_ENCODED];
	int n;

	(void)state;
	for (int v6 = 0; v6 < 2; v6++) {
		ts_exp_full(&e, v6);
		exp_roundtrip(&e);
		for (uint32_t bit = 1; bit <= HAFW_EA_ZONE; bit <<= 1) {
			x = e;
			x.present = bit;
			if (bit != HAFW_EA_ZONE)
				x.zone = 0;
			exp_roundtrip(&x);
		}
	}
	/* ICMP expectation with a wildcard mask */
	ts_exp_full(&e, false);
	ts_icmp(&e.tuple, "10.0.0.2", "10.0.0.1", 8, 0, 77);
	memset(&e.mask, 0, sizeof(e.mask));
	e.mask.l3 = AF_INET;
	e.mask.l4 = IPPROTO_ICMP;
	exp_roundtrip(&e);
	/* a zero mask port survives (it is "any", not "absent") */
	ts_exp_full(&e, false);
	e.mask.dport = 0;
	exp_roundtrip(&e);
	/* the changes a diff must see */
	ts_exp_full(&e, false);
	n = hafw_exp_encode(&e, buf, sizeof(buf));
	assert_int_equal(hafw_exp_decode(buf, (size_t)n, &x), 0);
	x.nat_tuple.sport++;
	assert_string_equal(hafw_exp_diff(&e, &x, 0), "nat");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_roundtrip_every_attribute),
	    cmocka_unit_test(test_roundtrip_single_attributes),
	    cmocka_unit_test(test_diff_catches_changes),
	    cmocka_unit_test(test_encoding_size),
	    cmocka_unit_test(test_max_encoded),
	    cmocka_unit_test(test_exp_roundtrip),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
