/* syncd/frame.c: Frame bytes built by hand must be what protobuf-c reads. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "flow_pb.h"
#include "frame.h"
#include "samples.h"

#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>

struct blob {
	int type;
	enum frame_obj obj;
	uint8_t data[HAFW_FLOW_MAX_ENCODED];
	size_t len;
};

/* The i-th event of a mixed stream: flows of every kind, expectations. */
static void make_blob(unsigned i, struct blob *b)
{
	struct ts_variant v[32];
	size_t nv = ts_variants(v, 32);
	int n;

	b->type = HAFW_EV_NEW + (int)(i % 3);
	if (i % 7 == 3) {
		struct hafw_exp e;

		ts_exp_full(&e, i & 1);
		e.tuple.dport = (uint16_t)(1000 + i);
		b->obj = FRAME_EXP;
		n = hafw_exp_encode(&e, b->data, sizeof(b->data));
	} else {
		struct hafw_flow f;

		if (i % 2)
			ts_flow_full(&f, &v[i % nv].orig, i % 4 == 1);
		else
			ts_flow_plain(&f, &v[i % nv].orig);
		f.orig.sport = (uint16_t)i;
		hafw_tuple_invert(&f.orig, &f.reply);
		b->obj = FRAME_FLOW;
		n = hafw_flow_encode(&f, b->data, sizeof(b->data));
	}
	assert_true(n > 0);
	b->len = (size_t)n;
}

static void check_event(const Hafw__Event *ev, const struct blob *b)
{
	uint8_t re[HAFW_FLOW_MAX_ENCODED];
	int n;

	assert_int_equal(ev->type, b->type);
	if (b->obj == FRAME_FLOW) {
		struct hafw_flow f, g;

		assert_non_null(ev->flow);
		assert_null(ev->exp);
		assert_int_equal(hafw_flow_from_pb(ev->flow, &f), 0);
		assert_int_equal(hafw_flow_decode(b->data, b->len, &g), 0);
		assert_null(hafw_flow_diff(&f, &g, 0));
		n = hafw_flow_encode(&f, re, sizeof(re));
		assert_int_equal(n, (int)b->len);
		assert_memory_equal(re, b->data, b->len);
	} else {
		struct hafw_exp e, x;

		assert_non_null(ev->exp);
		assert_null(ev->flow);
		assert_int_equal(hafw_exp_from_pb(ev->exp, &e), 0);
		assert_int_equal(hafw_exp_decode(b->data, b->len, &x), 0);
		assert_null(hafw_exp_diff(&e, &x, 0));
	}
}

static void collect_version(const struct frame_event *ev, void *arg)
{
	struct {
		uint64_t v[8];
		int n;
	} *got = arg;

	got->v[got->n++] = ev->version;
}

/* Versions of every size class, and none at all (0 is not sent). */
static uint64_t ver_of(unsigned n)
{
	return n % 3 == 0 ? 0 : (uint64_t)n * 0x9e3779b97f4a7c15ull >> (n % 64);
}

/* Fill frames of several sizes until -ENOSPC; each unpacks to the same
 * events and versions, and each event took exactly what frame_event_size()
 * said before it was added. */
static void test_fill_and_unpack(void **state)
{
	static const size_t caps[] = {1200, 1472, 8952, 65000};
	static struct blob blobs[2000];
	static uint8_t buf[65000];

	(void)state;
	for (size_t c = 0; c < sizeof(caps) / sizeof(caps[0]); c++) {
		struct frame_builder fb;
		Hafw__Frame *fr;
		unsigned n = 0;
		int ret;

		frame_init(&fb, buf, caps[c]);
		assert_int_equal(fb.used, 0);
		assert_int_equal(fb.events, 0);
		for (;;) {
			size_t before = fb.used, want;

			assert_true(n < sizeof(blobs) / sizeof(blobs[0]));
			make_blob(n, &blobs[n]);
			want = frame_event_size(&fb, blobs[n].len, ver_of(n));
			ret = frame_add(&fb, blobs[n].type, blobs[n].obj, blobs[n].data,
			                blobs[n].len, ver_of(n));
			if (ret == -ENOSPC) {
				/* unchanged, and it really did not fit */
				assert_int_equal(fb.used, before);
				assert_int_equal(fb.events, n);
				assert_true(before + want > caps[c]);
				break;
			}
			assert_int_equal(ret, 0);
			assert_int_equal(fb.used - before, want);
			assert_true(fb.used <= caps[c]);
			n++;
			assert_int_equal(fb.events, n);
		}
		assert_true(n > 5);
		fr = hafw__frame__unpack(NULL, fb.used, buf);
		assert_non_null(fr);
		assert_int_equal(fr->n_events, n);
		for (unsigned i = 0; i < n; i++) {
			const Hafw__Event *ev = fr->events[i];
			uint64_t v = ev->has_version
			                 ? ev->version
			                 : (fr->has_base_version ? fr->base_version : 0) +
			                       (uint64_t)ev->version_delta;

			check_event(ev, &blobs[i]);
			assert_true(v == ver_of(i));
		}
		hafw__frame__free_unpacked(fr, NULL);
	}
}

/* A valid Flow of exactly `len` bytes: orig plus an unknown bytes field
 * (number 100) as padding; protobuf-c keeps unknown fields. */
static size_t padded_flow(uint8_t *buf, size_t len)
{
	struct hafw_tuple t;
	struct hafw_flow f;
	int n;
	size_t pad, hdr;

	ts_tuple(&t, IPPROTO_UDP, "10.0.0.1", "10.0.0.2", 1, 2);
	ts_flow_plain(&f, &t);
	n = hafw_flow_encode(&f, buf, 64);
	assert_true(n > 0);
	if (len < (size_t)n + 3)
		return (size_t)n;
	/* tag (2 bytes) + varint length + data; some lengths cannot be hit
	 * exactly with one field, the caller gets the nearest below */
	pad = len - (size_t)n - 2;
	for (hdr = 1; hdr < 3; hdr++)
		if ((pad - hdr < 128 ? 1u : pad - hdr < 16384 ? 2u : 3u) == hdr)
			break;
	pad -= hdr;
	buf[n] = 0xa2;
	buf[n + 1] = 0x06;
	{
		uint8_t *p = buf + n + 2;
		size_t v = pad;

		while (v >= 0x80) {
			*p++ = (uint8_t)(v | 0x80);
			v >>= 7;
		}
		*p++ = (uint8_t)v;
		memset(p, 'x', pad);
		return (size_t)(p - buf) + pad;
	}
}

/* Varint boundaries of the blob and event lengths. */
static void test_event_sizes(void **state)
{
	static const size_t lens[] = {40,  120,   123,   124,   125,   126,   127,   128,   129,
	                              200, 16370, 16375, 16379, 16380, 16381, 16383, 16384, 16390};
	static uint8_t blob[20000], buf[40000];

	(void)state;
	for (size_t i = 0; i < sizeof(lens) / sizeof(lens[0]); i++) {
		size_t len = padded_flow(blob, lens[i]);
		struct frame_builder fb;
		Hafw__Frame *fr;

		assert_true(len <= lens[i] && len + 2 >= lens[i]);
		frame_init(&fb, buf, sizeof(buf));
		assert_int_equal(frame_add(&fb, HAFW_EV_UPDATE, FRAME_FLOW, blob, len, 0), 0);
		assert_int_equal(frame_add(&fb, HAFW_EV_DESTROY, FRAME_FLOW, blob, len, 0), 0);
		assert_int_equal(fb.used, 2 * frame_event_size(&fb, len, 0));
		fr = hafw__frame__unpack(NULL, fb.used, buf);
		if (!fr)
			fail_msg("blob of %zu bytes: frame does not unpack", len);
		assert_int_equal(fr->n_events, 2);
		assert_int_equal(fr->events[0]->type, HAFW_EV_UPDATE);
		assert_int_equal(fr->events[1]->type, HAFW_EV_DESTROY);
		assert_non_null(fr->events[1]->flow);
		assert_int_equal(fr->events[1]->flow->orig->sport, 1);
		assert_int_equal(hafw__flow__get_packed_size(fr->events[0]->flow), len);
		hafw__frame__free_unpacked(fr, NULL);
	}
	/* the size is the protobuf size */
	struct frame_builder empty;

	frame_init(&empty, buf, sizeof(buf));
	for (size_t len = 0; len < 20000; len += 7) {
		size_t body = 2 + 1 + (len < 128 ? 1 : len < 16384 ? 2 : 3) + len;

		assert_int_equal(frame_event_size(&empty, len, 0), 1 +
		                                                       (body < 128     ? 1
		                                                        : body < 16384 ? 2
		                                                                       : 3) +
		                                                       body);
	}
}

/* Versions cost a base per frame and a small difference per event; a frame
 * decodes back to every event's exact version, older ones (an announce
 * sends stored versions) included. */
static void test_version_deltas(void **state)
{
	static const uint64_t v[] = {1800000000000000ull,
	                             1800000000000001ull,
	                             1800000000000900ull,
	                             1799999999000000ull,
	                             1800000000000001ull,
	                             0,
	                             ~0ull};
	uint8_t blob[HAFW_FLOW_MAX_ENCODED], buf[4096];
	struct frame_builder fb;
	size_t len = padded_flow(blob, 40), one_byte_delta;
	struct got {
		uint64_t v[8];
		int n;
	} got = {{0}, 0};

	(void)state;
	frame_init(&fb, buf, sizeof(buf));
	for (size_t i = 0; i < sizeof(v) / sizeof(v[0]); i++)
		assert_int_equal(frame_add(&fb, HAFW_EV_UPDATE, FRAME_FLOW, blob, len, v[i]), 0);
	one_byte_delta = frame_event_size(&fb, len, v[0] + 1);
	assert_int_equal(one_byte_delta, frame_event_size(&fb, len, v[0]) + 2);
	assert_true(frame_event_size(&fb, len, v[0] + 1000) <= one_byte_delta + 1);
	assert_int_equal(frame_read(buf, fb.used, collect_version, &got, &(unsigned){0}, NULL),
	                 (int)(sizeof(v) / sizeof(v[0])));
	for (size_t i = 0; i < sizeof(v) / sizeof(v[0]); i++)
		assert_true(got.v[i] == v[i]);
}

static void test_exact_fit_and_invalid(void **state)
{
	uint8_t blob[HAFW_FLOW_MAX_ENCODED], buf[1024];
	struct frame_builder fb;
	size_t len = padded_flow(blob, 60), sz;
	Hafw__Frame *fr;

	(void)state;
	frame_init(&fb, buf, sizeof(buf));
	sz = frame_event_size(&fb, len, 0);
	/* exactly fits; one byte less does not and leaves the buffer alone */
	frame_init(&fb, buf, sz);
	assert_int_equal(frame_add(&fb, HAFW_EV_NEW, FRAME_FLOW, blob, len, 0), 0);
	assert_int_equal(fb.used, sz);
	assert_int_equal(frame_add(&fb, HAFW_EV_NEW, FRAME_FLOW, blob, len, 0), -ENOSPC);
	memset(buf, 0xee, sizeof(buf));
	frame_init(&fb, buf, sz - 1);
	assert_int_equal(frame_add(&fb, HAFW_EV_NEW, FRAME_FLOW, blob, len, 0), -ENOSPC);
	for (size_t i = 0; i < sizeof(buf); i++)
		assert_int_equal(buf[i], 0xee);
	frame_init(&fb, buf, 0);
	assert_int_equal(frame_add(&fb, HAFW_EV_NEW, FRAME_FLOW, blob, len, 0), -ENOSPC);

	/* event types that do not fit the one-byte encoding */
	frame_init(&fb, buf, sizeof(buf));
	assert_int_equal(frame_add(&fb, 0, FRAME_FLOW, blob, len, 0), -EINVAL);
	assert_int_equal(frame_add(&fb, 128, FRAME_FLOW, blob, len, 0), -EINVAL);
	assert_int_equal(frame_add(&fb, -1, FRAME_FLOW, blob, len, 0), -EINVAL);
	assert_int_equal(fb.used, 0);
	assert_int_equal(fb.events, 0);

	/* an empty frame is an empty Frame */
	fr = hafw__frame__unpack(NULL, 0, buf);
	assert_non_null(fr);
	assert_int_equal(fr->n_events, 0);
	hafw__frame__free_unpacked(fr, NULL);

	/* a frame continues after a flush: init again, same buffer */
	frame_init(&fb, buf, sizeof(buf));
	assert_int_equal(frame_add(&fb, HAFW_EV_NEW, FRAME_FLOW, blob, len, 0), 0);
	frame_init(&fb, buf, sizeof(buf));
	assert_int_equal(fb.used, 0);
	assert_int_equal(frame_add(&fb, HAFW_EV_DESTROY, FRAME_FLOW, blob, len, 0), 0);
	fr = hafw__frame__unpack(NULL, fb.used, buf);
	assert_non_null(fr);
	assert_int_equal(fr->n_events, 1);
	assert_int_equal(fr->events[0]->type, HAFW_EV_DESTROY);
	hafw__frame__free_unpacked(fr, NULL);
}

/* The receive side must not trust event types: a type outside the enum
 * reaches the application (protobuf-c does not check enum values). */
static void test_unknown_event_type_is_visible(void **state)
{
	uint8_t blob[HAFW_FLOW_MAX_ENCODED], buf[256];
	struct frame_builder fb;
	size_t len = padded_flow(blob, 40);
	Hafw__Frame *fr;

	(void)state;
	frame_init(&fb, buf, sizeof(buf));
	assert_int_equal(frame_add(&fb, 99, FRAME_FLOW, blob, len, 0), 0);
	fr = hafw__frame__unpack(NULL, fb.used, buf);
	assert_non_null(fr);
	assert_int_equal(fr->n_events, 1);
	assert_int_equal(fr->events[0]->type, 99);
	hafw__frame__free_unpacked(fr, NULL);
	/* a flow blob sent as an expectation does not unpack (required
	 * fields missing) */
	frame_init(&fb, buf, sizeof(buf));
	assert_int_equal(frame_add(&fb, HAFW_EV_NEW, FRAME_EXP, blob, len, 0), 0);
	assert_null(hafw__frame__unpack(NULL, fb.used, buf));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_fill_and_unpack),
	    cmocka_unit_test(test_event_sizes),
	    cmocka_unit_test(test_version_deltas),
	    cmocka_unit_test(test_exact_fit_and_invalid),
	    cmocka_unit_test(test_unknown_event_type_is_visible),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
