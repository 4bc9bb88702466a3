/* syncd/wire.c: the fixed 20-byte datagram header. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "wire.h"

#include <stdlib.h>
#include <string.h>

static uint8_t dgram[HAFW_WIRE_HDR_LEN + 256];

/* A good header with `payload` bytes after it. */
static size_t make(uint8_t type, uint16_t payload)
{
	struct hafw_wire_hdr h = {
	    .type = type, .len = payload, .sender = 0x01020304, .epoch = 0xa0b0c0d0, .seq = 7};

	memset(dgram, 0xcc, sizeof(dgram));
	hafw_wire_hdr_write(&h, dgram);
	return HAFW_WIRE_HDR_LEN + payload;
}

static void test_roundtrip(void **state)
{
	struct hafw_wire_hdr in = {.type = HAFW_MSG_DATA,
	                           .len = 200,
	                           .sender = 0xfffffffe,
	                           .epoch = 0x80000001,
	                           .seq = 0xdeadbeef},
	                     out;

	(void)state;
	for (uint8_t type = 1; type <= HAFW_MSG_MAX; type++) {
		in.type = type;
		memset(&out, 0, sizeof(out));
		hafw_wire_hdr_write(&in, dgram);
		assert_int_equal(hafw_wire_hdr_parse(dgram, HAFW_WIRE_HDR_LEN + in.len, &out),
		                 HAFW_WIRE_OK);
		assert_int_equal(out.magic, HAFW_WIRE_MAGIC);
		assert_int_equal(out.version, HAFW_WIRE_VERSION);
		assert_int_equal(out.type, type);
		assert_int_equal(out.len, 200);
		assert_int_equal(out.sender, 0xfffffffe);
		assert_int_equal(out.epoch, 0x80000001);
		assert_int_equal(out.seq, 0xdeadbeef);
	}
	/* an empty payload is fine */
	assert_int_equal(hafw_wire_hdr_parse(dgram, make(HAFW_MSG_HEARTBEAT, 0), &out),
	                 HAFW_WIRE_OK);
	assert_int_equal(out.len, 0);
}

/* Network byte order, byte by byte, and the writer ignores what the caller
 * put in magic and version. */
static void test_layout(void **state)
{
	static const uint8_t want[HAFW_WIRE_HDR_LEN] = {'H',  'A',  'F',  'W',  2,    3,    0x01,
	                                                0x02, 0x11, 0x22, 0x33, 0x44, 0x55, 0x66,
	                                                0x77, 0x88, 0x99, 0xaa, 0xbb, 0xcc};
	struct hafw_wire_hdr h = {.magic = 1,
	                          .version = 9,
	                          .type = HAFW_MSG_NACK,
	                          .len = 0x0102,
	                          .sender = 0x11223344,
	                          .epoch = 0x55667788,
	                          .seq = 0x99aabbcc};
	uint8_t buf[HAFW_WIRE_HDR_LEN + 1];

	(void)state;
	buf[HAFW_WIRE_HDR_LEN] = 0x5a;
	hafw_wire_hdr_write(&h, buf);
	assert_memory_equal(buf, want, HAFW_WIRE_HDR_LEN);
	assert_int_equal(buf[HAFW_WIRE_HDR_LEN], 0x5a); /* no write past the header */
}

static void test_errors(void **state)
{
	struct hafw_wire_hdr h;
	size_t n;

	(void)state;
	/* short */
	n = make(HAFW_MSG_DATA, 0);
	for (size_t len = 0; len < HAFW_WIRE_HDR_LEN; len++)
		assert_int_equal(hafw_wire_hdr_parse(dgram, len, &h), HAFW_WIRE_ESHORT);
	assert_int_equal(hafw_wire_hdr_parse(dgram, n, &h), HAFW_WIRE_OK);

	/* magic: every byte matters */
	for (int i = 0; i < 4; i++) {
		n = make(HAFW_MSG_DATA, 10);
		dgram[i] ^= 0x20;
		assert_int_equal(hafw_wire_hdr_parse(dgram, n, &h), HAFW_WIRE_EMAGIC);
	}
	/* version */
	n = make(HAFW_MSG_DATA, 10);
	dgram[4] = 0;
	assert_int_equal(hafw_wire_hdr_parse(dgram, n, &h), HAFW_WIRE_EVERSION);
	dgram[4] = HAFW_WIRE_VERSION + 1;
	assert_int_equal(hafw_wire_hdr_parse(dgram, n, &h), HAFW_WIRE_EVERSION);
	dgram[4] = 0xff;
	assert_int_equal(hafw_wire_hdr_parse(dgram, n, &h), HAFW_WIRE_EVERSION);
	/* type 0 is invalid; a type above the largest is a later minor
	 * version's: it passes, the receiver counts and skips it */
	n = make(0, 10);
	assert_int_equal(hafw_wire_hdr_parse(dgram, n, &h), HAFW_WIRE_ETYPE);
	n = make(HAFW_MSG_MAX + 1, 10);
	assert_int_equal(hafw_wire_hdr_parse(dgram, n, &h), HAFW_WIRE_OK);
	assert_int_equal(h.type, HAFW_MSG_MAX + 1);
	n = make(0xff, 10);
	assert_int_equal(hafw_wire_hdr_parse(dgram, n, &h), HAFW_WIRE_OK);
	/* truncated: the length says more than arrived */
	n = make(HAFW_MSG_DATA, 100);
	assert_int_equal(hafw_wire_hdr_parse(dgram, n - 1, &h), HAFW_WIRE_ETRUNC);
	assert_int_equal(hafw_wire_hdr_parse(dgram, HAFW_WIRE_HDR_LEN, &h), HAFW_WIRE_ETRUNC);
	/* trailing bytes after the payload */
	assert_int_equal(hafw_wire_hdr_parse(dgram, n + 1, &h), HAFW_WIRE_ELONG);
	n = make(HAFW_MSG_DATA, 0);
	assert_int_equal(hafw_wire_hdr_parse(dgram, n + 50, &h), HAFW_WIRE_ELONG);
	/* sender 0 is reserved */
	n = make(HAFW_MSG_HEARTBEAT, 4);
	memset(dgram + 8, 0, 4);
	assert_int_equal(hafw_wire_hdr_parse(dgram, n, &h), HAFW_WIRE_ESENDER);
	/* an epoch or sequence number of 0 is fine */
	n = make(HAFW_MSG_HEARTBEAT, 4);
	memset(dgram + 12, 0, 8);
	assert_int_equal(hafw_wire_hdr_parse(dgram, n, &h), HAFW_WIRE_OK);
	assert_int_equal(h.epoch, 0);
	assert_int_equal(h.seq, 0);
}

/* The largest length field: truncated unless all of it arrived; the parser
 * never reads past len. */
static void test_oversized_length(void **state)
{
	size_t total = HAFW_WIRE_HDR_LEN + 0xffff;
	uint8_t *big = malloc(total);
	struct hafw_wire_hdr h;
	uint8_t *copy;

	(void)state;
	assert_non_null(big);
	memset(big, 0, total);
	hafw_wire_hdr_write(
	    &(struct hafw_wire_hdr){.type = HAFW_MSG_DATA, .len = 0xffff, .sender = 1}, big);
	assert_int_equal(hafw_wire_hdr_parse(big, HAFW_WIRE_HDR_LEN, &h), HAFW_WIRE_ETRUNC);
	assert_int_equal(hafw_wire_hdr_parse(big, HAFW_WIRE_MAX_DGRAM, &h), HAFW_WIRE_ETRUNC);
	assert_int_equal(hafw_wire_hdr_parse(big, total - 1, &h), HAFW_WIRE_ETRUNC);
	assert_int_equal(hafw_wire_hdr_parse(big, total, &h), HAFW_WIRE_OK);
	assert_int_equal(h.len, 0xffff);
	/* a header-only copy on the heap: ASan checks nothing beyond is read */
	copy = malloc(HAFW_WIRE_HDR_LEN);
	assert_non_null(copy);
	memcpy(copy, big, HAFW_WIRE_HDR_LEN);
	assert_int_equal(hafw_wire_hdr_parse(copy, HAFW_WIRE_HDR_LEN, &h), HAFW_WIRE_ETRUNC);
	free(copy);
	free(big);
}

/* Each cause has its own, distinct name, and the checks come in order: a
 * datagram with several faults is refused for the first. */
static void test_names_and_order(void **state)
{
	struct hafw_wire_hdr h;
	size_t n;

	(void)state;
	for (int i = 0; i < HAFW_WIRE_NERR; i++) {
		assert_non_null(hafw_wire_err_name(i));
		assert_string_not_equal(hafw_wire_err_name(i), "?");
		for (int j = 0; j < i; j++)
			assert_string_not_equal(hafw_wire_err_name(i), hafw_wire_err_name(j));
	}
	assert_string_equal(hafw_wire_err_name(HAFW_WIRE_OK), "ok");
	assert_string_equal(hafw_wire_err_name(HAFW_WIRE_NERR), "?");
	assert_string_equal(hafw_wire_err_name((enum hafw_wire_err) - 1), "?");
	assert_string_equal(hafw_wire_err_name((enum hafw_wire_err)1000), "?");

	n = make(0, 10);
	dgram[4] = 1; /* the foundation's version: its header had no epoch */
	memset(dgram + 8, 0, 4);
	assert_int_equal(hafw_wire_hdr_parse(dgram, n, &h), HAFW_WIRE_EVERSION);
	n = make(0, 10);
	memset(dgram + 8, 0, 4);
	assert_int_equal(hafw_wire_hdr_parse(dgram, n + 3, &h), HAFW_WIRE_ETYPE);
	n = make(HAFW_MSG_DATA, 10);
	memset(dgram + 8, 0, 4);
	assert_int_equal(hafw_wire_hdr_parse(dgram, n + 3, &h), HAFW_WIRE_ELONG);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_roundtrip),       cmocka_unit_test(test_layout),
	    cmocka_unit_test(test_errors),          cmocka_unit_test(test_oversized_length),
	    cmocka_unit_test(test_names_and_order),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
