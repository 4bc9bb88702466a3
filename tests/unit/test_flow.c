/* proto/flow.c: tuple invert/equal/hash/format, merge and diff. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "flow.h"
#include "samples.h"

#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>

static void test_invert_ports(void **state)
{
	struct hafw_tuple t, r, rr;

	(void)state;
	ts_tuple(&t, IPPROTO_TCP, "10.0.0.1", "10.0.0.2", 1234, 80);
	hafw_tuple_invert(&t, &r);
	assert_memory_equal(r.src, t.dst, 4);
	assert_memory_equal(r.dst, t.src, 4);
	assert_int_equal(r.sport, 80);
	assert_int_equal(r.dport, 1234);
	assert_int_equal(r.l3, AF_INET);
	assert_int_equal(r.l4, IPPROTO_TCP);
	hafw_tuple_invert(&r, &rr);
	assert_true(hafw_tuple_equal(&t, &rr));

	ts_tuple(&t, IPPROTO_GRE, "2001:db8::1", "2001:db8::2", 0x1111, 0x2222);
	hafw_tuple_invert(&t, &r);
	assert_memory_equal(r.src, t.dst, 16);
	assert_int_equal(r.sport, 0x2222);
	assert_int_equal(r.dport, 0x1111);

	/* in place */
	r = t;
	hafw_tuple_invert(&r, &r);
	assert_memory_equal(r.src, t.dst, 16);
	assert_memory_equal(r.dst, t.src, 16);
}

static void check_icmp_inverse(const char *src, uint8_t type, uint8_t want)
{
	struct hafw_tuple t, r;

	ts_icmp(&t, src, strchr(src, ':') ? "2001:db8::9" : "10.9.9.9", type, 3, 0x4242);
	hafw_tuple_invert(&t, &r);
	assert_int_equal(r.icmp_type, want);
	assert_int_equal(r.icmp_code, 3);
	assert_int_equal(r.sport, 0x4242); /* the id is not swapped */
	assert_int_equal(r.dport, 0);
	assert_memory_equal(r.src, t.dst, hafw_tuple_addr_len(&t));
}

static void test_invert_icmp(void **state)
{
	(void)state;
	check_icmp_inverse("10.0.0.1", 8, 0);
	check_icmp_inverse("10.0.0.1", 0, 8);
	check_icmp_inverse("10.0.0.1", 13, 14);
	check_icmp_inverse("10.0.0.1", 14, 13);
	check_icmp_inverse("10.0.0.1", 15, 16);
	check_icmp_inverse("10.0.0.1", 16, 15);
	check_icmp_inverse("10.0.0.1", 17, 18);
	check_icmp_inverse("10.0.0.1", 18, 17);
	/* no inverse: unchanged, and no out-of-table read */
	check_icmp_inverse("10.0.0.1", 3, 3);
	check_icmp_inverse("10.0.0.1", 19, 19);
	check_icmp_inverse("10.0.0.1", 255, 255);
	check_icmp_inverse("2001:db8::1", 128, 129);
	check_icmp_inverse("2001:db8::1", 129, 128);
	check_icmp_inverse("2001:db8::1", 139, 140);
	check_icmp_inverse("2001:db8::1", 140, 139);
	check_icmp_inverse("2001:db8::1", 1, 1);
	check_icmp_inverse("2001:db8::1", 8, 8); /* v4 numbers mean nothing in v6 */
}

static void test_tuple_equal(void **state)
{
	struct hafw_tuple a, b;

	(void)state;
	ts_tuple(&a, IPPROTO_UDP, "10.0.0.1", "10.0.0.2", 1, 2);
	b = a;
	assert_true(hafw_tuple_equal(&a, &b));
	/* bytes past an IPv4 address are not part of the key */
	memset(b.src + 4, 0xaa, 12);
	memset(b.dst + 4, 0x55, 12);
	assert_true(hafw_tuple_equal(&a, &b));
	assert_true(hafw_tuple_hash(&a, 0, 1) == hafw_tuple_hash(&b, 0, 1));

	b = a;
	b.sport++;
	assert_false(hafw_tuple_equal(&a, &b));
	b = a;
	b.dport++;
	assert_false(hafw_tuple_equal(&a, &b));
	b = a;
	b.l4 = IPPROTO_TCP;
	assert_false(hafw_tuple_equal(&a, &b));
	b = a;
	b.l3 = AF_INET6;
	assert_false(hafw_tuple_equal(&a, &b));
	b = a;
	b.src[3] ^= 1;
	assert_false(hafw_tuple_equal(&a, &b));
	b = a;
	b.dst[0] ^= 0x80;
	assert_false(hafw_tuple_equal(&a, &b));

	ts_icmp(&a, "10.0.0.1", "10.0.0.2", 8, 0, 7);
	b = a;
	b.icmp_type = 0;
	assert_false(hafw_tuple_equal(&a, &b));
	b = a;
	b.icmp_code = 1;
	assert_false(hafw_tuple_equal(&a, &b));

	ts_tuple(&a, IPPROTO_TCP, "2001:db8::1", "2001:db8::2", 1, 2);
	b = a;
	b.src[15] ^= 1;
	assert_false(hafw_tuple_equal(&a, &b));
	b = a;
	b.dst[8] ^= 1;
	assert_false(hafw_tuple_equal(&a, &b));
}

static void test_tuple_hash(void **state)
{
	struct hafw_tuple a, b;
	uint64_t h;

	(void)state;
	ts_tuple(&a, IPPROTO_TCP, "2001:db8::1", "2001:db8::2", 1000, 22);
	h = hafw_tuple_hash(&a, 0, 42);
	assert_true(h == hafw_tuple_hash(&a, 0, 42));
	assert_true(h != hafw_tuple_hash(&a, 1, 42));
	assert_true(h != hafw_tuple_hash(&a, 0, 43));
	/* every part of the key moves the hash */
	b = a;
	b.src[15] ^= 1;
	assert_true(h != hafw_tuple_hash(&b, 0, 42));
	b = a;
	b.dst[12] ^= 1;
	assert_true(h != hafw_tuple_hash(&b, 0, 42));
	b = a;
	b.src[2] ^= 1;
	assert_true(h != hafw_tuple_hash(&b, 0, 42));
	b = a;
	b.sport ^= 1;
	assert_true(h != hafw_tuple_hash(&b, 0, 42));
	b = a;
	b.dport ^= 1;
	assert_true(h != hafw_tuple_hash(&b, 0, 42));
	b = a;
	b.l4 = IPPROTO_UDP;
	assert_true(h != hafw_tuple_hash(&b, 0, 42));
	/* a tuple and its inverse are different keys */
	hafw_tuple_invert(&a, &b);
	assert_true(h != hafw_tuple_hash(&b, 0, 42));

	ts_icmp(&a, "10.0.0.1", "10.0.0.2", 8, 0, 7);
	b = a;
	b.icmp_type = 13;
	assert_true(hafw_tuple_hash(&a, 0, 1) != hafw_tuple_hash(&b, 0, 1));
	b = a;
	b.icmp_code = 1;
	assert_true(hafw_tuple_hash(&a, 0, 1) != hafw_tuple_hash(&b, 0, 1));
}

static void test_tuple_format(void **state)
{
	struct hafw_tuple t;
	char buf[128];

	(void)state;
	ts_tuple(&t, IPPROTO_TCP, "10.0.0.1", "10.0.0.2", 1234, 80);
	hafw_tuple_format(&t, buf, sizeof(buf));
	assert_string_equal(buf, "10.0.0.1:1234 -> 10.0.0.2:80 tcp");
	ts_tuple(&t, IPPROTO_UDP, "2001:db8::1", "2001:db8::2", 53, 5353);
	hafw_tuple_format(&t, buf, sizeof(buf));
	assert_string_equal(buf, "[2001:db8::1]:53 -> [2001:db8::2]:5353 udp");
	ts_icmp(&t, "10.0.0.1", "10.0.0.2", 8, 0, 99);
	hafw_tuple_format(&t, buf, sizeof(buf));
	assert_string_equal(buf, "10.0.0.1 -> 10.0.0.2 icmp type=8 code=0 id=99");
	ts_tuple(&t, 99, "10.0.0.1", "10.0.0.2", 0, 0);
	hafw_tuple_format(&t, buf, sizeof(buf));
	assert_string_equal(buf, "10.0.0.1:0 -> 10.0.0.2:0 99");
	/* truncation keeps the snprintf contract */
	ts_tuple(&t, IPPROTO_TCP, "10.0.0.1", "10.0.0.2", 1234, 80);
	assert_int_equal(hafw_tuple_format(&t, buf, 8),
	                 (int)strlen("10.0.0.1:1234 -> 10.0.0.2:80 tcp"));
	assert_string_equal(buf, "10.0.0.");
}

static void test_names(void **state)
{
	(void)state;
	assert_string_equal(hafw_l4_name(IPPROTO_TCP), "tcp");
	assert_string_equal(hafw_l4_name(IPPROTO_UDP), "udp");
	assert_string_equal(hafw_l4_name(IPPROTO_UDPLITE), "udplite");
	assert_string_equal(hafw_l4_name(IPPROTO_ICMP), "icmp");
	assert_string_equal(hafw_l4_name(IPPROTO_ICMPV6), "icmpv6");
	assert_string_equal(hafw_l4_name(IPPROTO_SCTP), "sctp");
	assert_string_equal(hafw_l4_name(IPPROTO_GRE), "gre");
	assert_string_equal(hafw_l4_name(IPPROTO_DCCP), "dccp");
	assert_null(hafw_l4_name(99));
	assert_string_equal(hafw_tcp_state_name(0), "NONE");
	assert_string_equal(hafw_tcp_state_name(3), "ESTABLISHED");
	assert_string_equal(hafw_tcp_state_name(9), "SYN_SENT2");
	assert_string_equal(hafw_tcp_state_name(10), "?");
	assert_string_equal(hafw_tcp_state_name(255), "?");
	assert_true(hafw_tuple_is_icmp(&(struct hafw_tuple){.l4 = IPPROTO_ICMP}));
	assert_true(hafw_tuple_is_icmp(&(struct hafw_tuple){.l4 = IPPROTO_ICMPV6}));
	assert_false(hafw_tuple_is_icmp(&(struct hafw_tuple){.l4 = IPPROTO_TCP}));
}

/* A TCP flow with every presence bit, SCTP's and DCCP's too: the model
 * holds them all and merge/diff treat each on its own (only the protobuf
 * decoder refuses another protocol's state). */
static void sample_full(struct hafw_flow *f)
{
	struct hafw_tuple t;

	ts_tuple(&t, IPPROTO_TCP, "10.0.0.1", "198.51.100.7", 40000, 80);
	ts_flow_full(f, &t, true);
	ts_flow_all_state(f);
	assert_int_equal(f->present, TS_ALL_FLOW_BITS);
}

static void test_diff_equal(void **state)
{
	struct hafw_flow a, b;

	(void)state;
	sample_full(&a);
	b = a;
	assert_null(hafw_flow_diff(&a, &b, 0));
	/* bytes after the helper's NUL do not matter */
	memset(b.helper + 4, 'x', sizeof(b.helper) - 4);
	assert_null(hafw_flow_diff(&a, &b, 0));
	/* absent attributes are not compared */
	b = a;
	a.present = b.present = HAFW_FA_REPLY;
	b.mark++;
	b.labels[3] ^= 1;
	b.tcp_wscale[1]++;
	assert_null(hafw_flow_diff(&a, &b, 0));
}

/* Every attribute: changing it makes diff name it; dropping its bit makes
 * diff report a presence difference. */
static void test_diff_each_attribute(void **state)
{
	static const struct {
		uint32_t bit;
		const char *name;
	} attrs[] = {
	    {HAFW_FA_REPLY, "reply"},
	    {HAFW_FA_ORIG_ZONE, "orig_zone"},
	    {HAFW_FA_REPLY_ZONE, "reply_zone"},
	    {HAFW_FA_STATUS, "status"},
	    {HAFW_FA_TIMEOUT, "timeout"},
	    {HAFW_FA_MARK, "mark"},
	    {HAFW_FA_SECMARK, "secmark"},
	    {HAFW_FA_LABELS, "labels"},
	    {HAFW_FA_TCP_STATE, "tcp_state"},
	    {HAFW_FA_TCP_WSCALE, "tcp_wscale"},
	    {HAFW_FA_TCP_FLAGS, "tcp_flags"},
	    {HAFW_FA_SCTP, "sctp_state"},
	    {HAFW_FA_SCTP_VTAG, "sctp_vtag"},
	    {HAFW_FA_DCCP, "dccp"},
	    {HAFW_FA_HELPER, "helper"},
	    {HAFW_FA_MASTER, "master"},
	    {HAFW_FA_SEQADJ_ORIG, "seqadj_orig"},
	    {HAFW_FA_SEQADJ_REPLY, "seqadj_reply"},
	    {HAFW_FA_SYNPROXY, "synproxy"},
	    {HAFW_FA_START, "start"},
	};
	struct hafw_flow a, b;
	char presence[64];

	(void)state;
	sample_full(&a);
	for (size_t i = 0; i < sizeof(attrs) / sizeof(attrs[0]); i++) {
		b = a;
		switch (attrs[i].bit) {
		case HAFW_FA_REPLY:
			b.reply.dport++;
			break;
		case HAFW_FA_ORIG_ZONE:
			b.orig_zone++;
			break;
		case HAFW_FA_REPLY_ZONE:
			b.reply_zone++;
			break;
		case HAFW_FA_STATUS:
			b.status ^= HAFW_IPS_ASSURED;
			break;
		case HAFW_FA_TIMEOUT:
			b.timeout++;
			break;
		case HAFW_FA_MARK:
			b.mark++;
			break;
		case HAFW_FA_SECMARK:
			b.secmark++;
			break;
		case HAFW_FA_LABELS:
			b.labels[15] ^= 0x80;
			break;
		case HAFW_FA_TCP_STATE:
			b.tcp_state++;
			break;
		case HAFW_FA_TCP_WSCALE:
			b.tcp_wscale[1]++;
			break;
		case HAFW_FA_TCP_FLAGS:
			b.tcp_flags[0] ^= 2;
			break;
		case HAFW_FA_SCTP:
			b.sctp_state++;
			break;
		case HAFW_FA_SCTP_VTAG:
			b.sctp_vtag[1]++;
			break;
		case HAFW_FA_DCCP:
			b.dccp_handshake_seq++;
			break;
		case HAFW_FA_HELPER:
			strcpy(b.helper, "sip");
			break;
		case HAFW_FA_MASTER:
			b.master.sport++;
			break;
		case HAFW_FA_SEQADJ_ORIG:
			b.seqadj[0].offset_after++;
			break;
		case HAFW_FA_SEQADJ_REPLY:
			b.seqadj[1].correction_pos++;
			break;
		case HAFW_FA_SYNPROXY:
			b.synproxy_tsoff++;
			break;
		case HAFW_FA_START:
			b.start_ns++;
			break;
		}
		assert_non_null(hafw_flow_diff(&a, &b, 0));
		assert_string_equal(hafw_flow_diff(&a, &b, 0), attrs[i].name);
		b = a;
		b.present &= ~attrs[i].bit;
		snprintf(presence, sizeof(presence), "%s (presence)", attrs[i].name);
		assert_string_equal(hafw_flow_diff(&a, &b, 0), presence);
	}
	/* DCCP is compared field by field */
	b = a;
	b.dccp_role ^= 1;
	assert_string_equal(hafw_flow_diff(&a, &b, 0), "dccp");
	b = a;
	b.synproxy_isn++;
	assert_string_equal(hafw_flow_diff(&a, &b, 0), "synproxy");
	/* the key */
	b = a;
	b.orig.sport++;
	assert_string_equal(hafw_flow_diff(&a, &b, 0), "orig");
	b = a;
	b.zone++;
	assert_string_equal(hafw_flow_diff(&a, &b, 0), "zone");
}

static void test_diff_timeout_slack(void **state)
{
	struct hafw_flow a, b;

	(void)state;
	sample_full(&a);
	b = a;
	b.timeout = a.timeout - 3;
	assert_null(hafw_flow_diff(&a, &b, 3));
	assert_null(hafw_flow_diff(&b, &a, 3));
	assert_string_equal(hafw_flow_diff(&a, &b, 2), "timeout");
	b.timeout = a.timeout + 4;
	assert_string_equal(hafw_flow_diff(&a, &b, 3), "timeout");
	/* no wrap-around: 0 and UINT32_MAX are far apart */
	a.timeout = 0;
	b.timeout = UINT32_MAX;
	assert_string_equal(hafw_flow_diff(&a, &b, 10), "timeout");
}

static void test_merge(void **state)
{
	struct hafw_flow full, dst, upd;

	(void)state;
	sample_full(&full);

	/* merging everything into a bare key reproduces the full flow */
	memset(&dst, 0, sizeof(dst));
	dst.orig = full.orig;
	dst.zone = full.zone;
	hafw_flow_merge(&dst, &full);
	assert_null(hafw_flow_diff(&dst, &full, 0));

	/* an update carries only what changed */
	memset(&upd, 0, sizeof(upd));
	ts_tuple(&upd.orig, IPPROTO_UDP, "1.1.1.1", "2.2.2.2", 1, 2); /* key: ignored */
	upd.zone = 99;
	upd.present = HAFW_FA_TCP_STATE | HAFW_FA_TIMEOUT | HAFW_FA_SEQADJ_REPLY;
	upd.tcp_state = 7;
	upd.timeout = 120;
	upd.seqadj[1].offset_after = 1000;
	upd.mark = 1; /* not present: ignored */
	dst = full;
	hafw_flow_merge(&dst, &upd);
	assert_true(hafw_tuple_equal(&dst.orig, &full.orig));
	assert_int_equal(dst.zone, full.zone);
	assert_int_equal(dst.tcp_state, 7);
	assert_int_equal(dst.timeout, 120);
	assert_int_equal(dst.seqadj[1].offset_after, 1000);
	assert_int_equal(dst.seqadj[0].offset_after, full.seqadj[0].offset_after);
	assert_int_equal(dst.mark, full.mark);
	assert_int_equal(dst.present, full.present);

	/* presence bits accumulate */
	memset(&dst, 0, sizeof(dst));
	dst.orig = full.orig;
	dst.present = HAFW_FA_MARK;
	dst.mark = 5;
	memset(&upd, 0, sizeof(upd));
	upd.present = HAFW_FA_DCCP | HAFW_FA_SYNPROXY | HAFW_FA_SEQADJ_ORIG;
	upd.dccp_state = 1;
	upd.dccp_role = 2;
	upd.dccp_handshake_seq = 3;
	upd.synproxy_isn = 4;
	upd.synproxy_its = 5;
	upd.synproxy_tsoff = 6;
	upd.seqadj[0].correction_pos = 7;
	hafw_flow_merge(&dst, &upd);
	assert_int_equal(dst.present,
	                 HAFW_FA_MARK | HAFW_FA_DCCP | HAFW_FA_SYNPROXY | HAFW_FA_SEQADJ_ORIG);
	assert_int_equal(dst.mark, 5);
	assert_int_equal(dst.dccp_role, 2);
	assert_int_equal(dst.dccp_handshake_seq, 3);
	assert_int_equal(dst.synproxy_tsoff, 6);
	assert_int_equal(dst.seqadj[0].correction_pos, 7);
}

/* An attribute removed in the kernel never left the cached copy: an update
 * without labels looks the same whether they are unchanged or were all
 * cleared (the kernel leaves CTA_LABELS out when no bit is set). A reader
 * that knows says so in src->gone, and merge applies it. */
static void test_merge_gone(void **state)
{
	struct hafw_flow full, dst, upd;
	static const uint8_t zero[HAFW_LABELS_LEN];

	(void)state;
	sample_full(&full);
	memset(&upd, 0, sizeof(upd));
	upd.present = HAFW_FA_STATUS | HAFW_FA_TIMEOUT;
	upd.status = full.status;
	upd.timeout = 100;

	/* labels cleared: all-zero labels, still present, so the peers and
	 * their kernels are told (a commit with zero labels clears them) */
	dst = full;
	upd.gone = HAFW_FA_LABELS;
	hafw_flow_merge(&dst, &upd);
	assert_true(dst.present & HAFW_FA_LABELS);
	assert_memory_equal(dst.labels, zero, sizeof(zero));
	assert_int_equal(dst.timeout, 100);
	assert_int_equal(dst.present, full.present);
	assert_int_equal(dst.gone, 0); /* a merged flow holds state, not news */
	/* a flow that never had labels stays without: nothing to tell */
	dst = full;
	dst.present &= ~HAFW_FA_LABELS;
	memset(dst.labels, 0, sizeof(dst.labels));
	hafw_flow_merge(&dst, &upd);
	assert_false(dst.present & HAFW_FA_LABELS);
	/* what src carries wins over what it says is gone */
	dst = full;
	upd.present |= HAFW_FA_LABELS;
	memset(upd.labels, 0, sizeof(upd.labels));
	upd.labels[3] = 0x10;
	hafw_flow_merge(&dst, &upd);
	assert_int_equal(dst.labels[3], 0x10);
	assert_int_equal(dst.labels[0], 0);
	upd.present &= ~HAFW_FA_LABELS;

	/* helper removed: the model has no value for "no helper" (the wire
	 * refuses an empty name), the attribute goes */
	dst = full;
	upd.gone = HAFW_FA_HELPER;
	hafw_flow_merge(&dst, &upd);
	assert_false(dst.present & HAFW_FA_HELPER);
	assert_int_equal(dst.helper[0], 0);
	assert_int_equal(dst.present, full.present & ~HAFW_FA_HELPER);
	assert_memory_equal(dst.labels, full.labels, sizeof(full.labels));

	/* nothing gone, nothing changes (the old behaviour) */
	dst = full;
	upd.gone = 0;
	hafw_flow_merge(&dst, &upd);
	assert_int_equal(dst.present, full.present);
	assert_memory_equal(dst.labels, full.labels, sizeof(full.labels));
	assert_string_equal(dst.helper, full.helper);
}

/* A packet-driven update without labels cannot say whether labels were
 * cleared: the core re-reads the flow when it holds labels that could be
 * stale, and only then. */
static void test_needs_reread(void **state)
{
	struct hafw_flow full, dst, upd;

	(void)state;
	sample_full(&full);
	memset(&upd, 0, sizeof(upd));
	upd.present = HAFW_FA_STATUS;
	assert_false(hafw_flow_needs_reread(&full, &upd));
	upd.unsure = HAFW_FA_LABELS;
	assert_true(hafw_flow_needs_reread(&full, &upd));
	/* no labels held, or all-zero ones: nothing can be stale */
	dst = full;
	dst.present &= ~HAFW_FA_LABELS;
	assert_false(hafw_flow_needs_reread(&dst, &upd));
	dst = full;
	memset(dst.labels, 0, sizeof(dst.labels));
	assert_false(hafw_flow_needs_reread(&dst, &upd));
	dst.labels[HAFW_LABELS_LEN - 1] = 0x80;
	assert_true(hafw_flow_needs_reread(&dst, &upd));
	/* the update carries labels: it says what they are */
	upd.present |= HAFW_FA_LABELS;
	assert_false(hafw_flow_needs_reread(&full, &upd));
	/* another attribute held and unsure (none is today but labels) */
	upd.present = HAFW_FA_STATUS;
	upd.unsure = HAFW_FA_MARK;
	assert_true(hafw_flow_needs_reread(&full, &upd));
	dst = full;
	dst.present &= ~HAFW_FA_MARK;
	assert_false(hafw_flow_needs_reread(&dst, &upd));
}

static void test_exp_diff_merge(void **state)
{
	struct hafw_exp a, b, upd;

	(void)state;
	ts_exp_full(&a, false);
	b = a;
	assert_null(hafw_exp_diff(&a, &b, 0));
	b.master.sport++;
	assert_string_equal(hafw_exp_diff(&a, &b, 0), "master");
	b = a;
	b.tuple.dport++;
	assert_string_equal(hafw_exp_diff(&a, &b, 0), "tuple");
	b = a;
	b.mask.dport = 0;
	assert_string_equal(hafw_exp_diff(&a, &b, 0), "mask");
	b = a;
	b.zone++;
	assert_string_equal(hafw_exp_diff(&a, &b, 0), "zone");
	b = a;
	b.timeout += 5;
	assert_string_equal(hafw_exp_diff(&a, &b, 0), "timeout");
	assert_null(hafw_exp_diff(&a, &b, 5));
	b = a;
	b.flags ^= 1;
	assert_string_equal(hafw_exp_diff(&a, &b, 0), "flags");
	b = a;
	b.class_++;
	assert_string_equal(hafw_exp_diff(&a, &b, 0), "class");
	b = a;
	strcpy(b.helper, "sip");
	assert_string_equal(hafw_exp_diff(&a, &b, 0), "helper");
	b = a;
	strcpy(b.fn, "other");
	assert_string_equal(hafw_exp_diff(&a, &b, 0), "fn");
	b = a;
	b.nat_dir ^= 1;
	assert_string_equal(hafw_exp_diff(&a, &b, 0), "nat");
	b = a;
	b.nat_tuple.sport++;
	assert_string_equal(hafw_exp_diff(&a, &b, 0), "nat");
	b = a;
	b.present &= ~HAFW_EA_NAT;
	assert_string_equal(hafw_exp_diff(&a, &b, 0), "nat (presence)");

	/* merge */
	memset(&b, 0, sizeof(b));
	b.master = a.master;
	b.tuple = a.tuple;
	b.mask = a.mask;
	b.zone = a.zone;
	hafw_exp_merge(&b, &a);
	assert_null(hafw_exp_diff(&a, &b, 0));
	memset(&upd, 0, sizeof(upd));
	upd.present = HAFW_EA_TIMEOUT;
	upd.timeout = 1;
	upd.flags = 77;
	hafw_exp_merge(&b, &upd);
	assert_int_equal(b.timeout, 1);
	assert_int_equal(b.flags, a.flags);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_invert_ports),       cmocka_unit_test(test_invert_icmp),
	    cmocka_unit_test(test_tuple_equal),        cmocka_unit_test(test_tuple_hash),
	    cmocka_unit_test(test_tuple_format),       cmocka_unit_test(test_names),
	    cmocka_unit_test(test_diff_equal),         cmocka_unit_test(test_diff_each_attribute),
	    cmocka_unit_test(test_diff_timeout_slack), cmocka_unit_test(test_merge),
	    cmocka_unit_test(test_merge_gone),         cmocka_unit_test(test_needs_reread),
	    cmocka_unit_test(test_exp_diff_merge),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
