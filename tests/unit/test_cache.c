/* syncd/cache.c: hash table of blobs keyed by (tuple, zone). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "cache.h"
#include "samples.h"

#include <errno.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

static void key_n(struct hafw_tuple *t, uint32_t n, bool v6)
{
	memset(t, 0, sizeof(*t));
	t->l3 = v6 ? AF_INET6 : AF_INET;
	t->l4 = IPPROTO_TCP;
	t->src[0] = 10;
	t->src[1] = (uint8_t)(n >> 16);
	t->src[2] = (uint8_t)(n >> 8);
	t->src[3] = (uint8_t)n;
	if (v6) {
		t->src[0] = 0x20;
		t->src[15] = (uint8_t)n;
		t->src[14] = (uint8_t)(n >> 8);
		t->src[13] = (uint8_t)(n >> 16);
	}
	t->dst[0] = 192;
	t->sport = (uint16_t)(1024 + n % 50000);
	t->dport = 443;
}

static void blob_n(uint8_t *b, size_t len, uint32_t n)
{
	for (size_t i = 0; i < len; i++)
		b[i] = (uint8_t)(n * 31 + i);
}

static void test_put_find_del(void **state)
{
	struct cache *c = cache_new(0, 1);
	struct hafw_tuple k, other;
	struct cache_entry *e;
	uint8_t b[64], b2[100];
	size_t base;

	(void)state;
	assert_non_null(c);
	base = cache_bytes(c);
	assert_int_equal(cache_count(c), 0);
	key_n(&k, 1, false);
	assert_null(cache_find(c, &k, 0));
	assert_false(cache_del(c, &k, 0));

	blob_n(b, sizeof(b), 1);
	assert_int_equal(cache_put(c, &k, 0, b, sizeof(b), 100, 0), 0);
	assert_int_equal(cache_count(c), 1);
	assert_int_equal(cache_bytes(c), base + sizeof(struct cache_entry) + sizeof(b));
	e = cache_find(c, &k, 0);
	assert_non_null(e);
	assert_int_equal(e->len, sizeof(b));
	assert_int_equal(e->stamp, 100);
	assert_int_equal(e->zone, 0);
	assert_true(hafw_tuple_equal(&e->key, &k));
	assert_memory_equal(e->blob, b, sizeof(b));

	/* replace with the same length: in place */
	blob_n(b, sizeof(b), 2);
	assert_int_equal(cache_put(c, &k, 0, b, sizeof(b), 200, 0), 0);
	assert_int_equal(cache_count(c), 1);
	e = cache_find(c, &k, 0);
	assert_memory_equal(e->blob, b, sizeof(b));
	assert_int_equal(e->stamp, 200);
	assert_int_equal(cache_bytes(c), base + sizeof(struct cache_entry) + sizeof(b));

	/* replace with another length */
	blob_n(b2, sizeof(b2), 3);
	assert_int_equal(cache_put(c, &k, 0, b2, sizeof(b2), 300, 0), 0);
	assert_int_equal(cache_count(c), 1);
	e = cache_find(c, &k, 0);
	assert_int_equal(e->len, sizeof(b2));
	assert_memory_equal(e->blob, b2, sizeof(b2));
	assert_int_equal(cache_bytes(c), base + sizeof(struct cache_entry) + sizeof(b2));
	assert_int_equal(cache_put(c, &k, 0, b, 1, 301, 0), 0);
	assert_int_equal(cache_find(c, &k, 0)->len, 1);

	/* an empty blob is a blob */
	key_n(&other, 2, false);
	assert_int_equal(cache_put(c, &other, 0, b, 0, 1, 0), 0);
	assert_non_null(cache_find(c, &other, 0));
	assert_int_equal(cache_find(c, &other, 0)->len, 0);
	assert_int_equal(cache_count(c), 2);

	assert_true(cache_del(c, &k, 0));
	assert_false(cache_del(c, &k, 0));
	assert_null(cache_find(c, &k, 0));
	assert_non_null(cache_find(c, &other, 0));
	assert_true(cache_del(c, &other, 0));
	assert_int_equal(cache_count(c), 0);
	assert_int_equal(cache_bytes(c), base);

	/* too large for the 16-bit length */
	{
		uint8_t *big = calloc(1, 70000);

		assert_int_equal(cache_put(c, &k, 0, big, 65536, 1, 0), -EMSGSIZE);
		assert_int_equal(cache_count(c), 0);
		assert_int_equal(cache_put(c, &k, 0, big, 65535, 1, 0), 0);
		assert_int_equal(cache_find(c, &k, 0)->len, 65535);
		/* a refused replace keeps the old entry */
		assert_int_equal(cache_put(c, &k, 0, big, 65536, 2, 0), -EMSGSIZE);
		assert_int_equal(cache_find(c, &k, 0)->stamp, 1);
		free(big);
	}
	cache_free(c);
	cache_free(NULL);
}

static void test_keys(void **state)
{
	struct cache *c = cache_new(16, 0xfeedface);
	struct hafw_tuple a, b;
	uint8_t v = 1;

	(void)state;
	/* zone is part of the key */
	key_n(&a, 5, false);
	assert_int_equal(cache_put(c, &a, 0, &v, 1, 0, 0), 0);
	v = 2;
	assert_int_equal(cache_put(c, &a, 1, &v, 1, 0, 0), 0);
	v = 3;
	assert_int_equal(cache_put(c, &a, 0xffff, &v, 1, 0, 0), 0);
	assert_int_equal(cache_count(c), 3);
	assert_int_equal(cache_find(c, &a, 0)->blob[0], 1);
	assert_int_equal(cache_find(c, &a, 1)->blob[0], 2);
	assert_int_equal(cache_find(c, &a, 0xffff)->blob[0], 3);
	assert_int_equal(cache_find(c, &a, 1)->zone, 1);
	assert_null(cache_find(c, &a, 2));
	assert_true(cache_del(c, &a, 1));
	assert_non_null(cache_find(c, &a, 0));
	assert_non_null(cache_find(c, &a, 0xffff));

	/* IPv6 keys that differ in the last byte only */
	key_n(&a, 7, true);
	b = a;
	b.src[15] ^= 1;
	v = 4;
	assert_int_equal(cache_put(c, &a, 0, &v, 1, 0, 0), 0);
	assert_null(cache_find(c, &b, 0));
	v = 5;
	assert_int_equal(cache_put(c, &b, 0, &v, 1, 0, 0), 0);
	assert_int_equal(cache_find(c, &a, 0)->blob[0], 4);
	assert_int_equal(cache_find(c, &b, 0)->blob[0], 5);
	/* an IPv4 key with the same first bytes is another key */
	b = a;
	b.l3 = AF_INET;
	assert_null(cache_find(c, &b, 0));

	/* bytes past an IPv4 address are not part of the key */
	key_n(&a, 9, false);
	b = a;
	memset(b.src + 4, 0xab, 12);
	memset(b.dst + 4, 0xcd, 12);
	v = 6;
	assert_int_equal(cache_put(c, &a, 0, &v, 1, 0, 0), 0);
	assert_non_null(cache_find(c, &b, 0));
	assert_true(cache_del(c, &b, 0));
	assert_null(cache_find(c, &a, 0));

	/* ICMP: type and code are part of the key */
	ts_icmp(&a, "10.0.0.1", "10.0.0.2", 8, 0, 1);
	b = a;
	b.icmp_type = 13;
	assert_int_equal(cache_put(c, &a, 0, &v, 1, 0, 0), 0);
	assert_null(cache_find(c, &b, 0));
	/* a tuple and its inverse are different keys */
	hafw_tuple_invert(&a, &b);
	assert_null(cache_find(c, &b, 0));
	cache_free(c);
}

/* Growth: 100k entries, all findable after every doubling; deleting half
 * leaves the other half. */
static void test_many(void **state)
{
	const uint32_t n = 100000;
	struct cache *c = cache_new(0, 12345);
	struct hafw_tuple k;
	uint8_t b[48];
	size_t bytes_entries;

	(void)state;
	for (uint32_t i = 0; i < n; i++) {
		key_n(&k, i, i & 1);
		blob_n(b, 16 + i % 32, i);
		assert_int_equal(cache_put(c, &k, (uint16_t)(i % 3), b, 16 + i % 32, i, 0), 0);
	}
	assert_int_equal(cache_count(c), n);
	bytes_entries = 0;
	for (uint32_t i = 0; i < n; i++) {
		struct cache_entry *e;

		key_n(&k, i, i & 1);
		e = cache_find(c, &k, (uint16_t)(i % 3));
		if (!e)
			fail_msg("entry %u lost", i);
		assert_int_equal(e->len, 16 + i % 32);
		blob_n(b, 16 + i % 32, i);
		assert_memory_equal(e->blob, b, e->len);
		assert_int_equal(e->stamp, i);
		assert_null(cache_find(c, &k, (uint16_t)(i % 3 + 1)));
		bytes_entries += sizeof(struct cache_entry) + e->len;
	}
	/* the buckets grew (load at most 1) and are accounted for */
	assert_true(cache_bytes(c) >= bytes_entries + n * sizeof(void *));
	for (uint32_t i = 0; i < n; i += 2) {
		key_n(&k, i, false);
		assert_true(cache_del(c, &k, (uint16_t)(i % 3)));
	}
	assert_int_equal(cache_count(c), n / 2);
	for (uint32_t i = 0; i < n; i++) {
		key_n(&k, i, i & 1);
		if (i % 2)
			assert_non_null(cache_find(c, &k, (uint16_t)(i % 3)));
		else
			assert_null(cache_find(c, &k, (uint16_t)(i % 3)));
	}
	cache_flush(c);
	assert_int_equal(cache_count(c), 0);
	key_n(&k, 1, true);
	assert_null(cache_find(c, &k, 1));
	/* usable after a flush */
	assert_int_equal(cache_put(c, &k, 1, b, 4, 0, 0), 0);
	assert_non_null(cache_find(c, &k, 1));
	cache_free(c);
}

struct swept {
	unsigned calls;
	uint32_t seen[64];
};

static void on_sweep(struct cache_entry *e, void *arg)
{
	struct swept *s = arg;

	assert_true(s->calls < 64);
	s->seen[s->calls++] = e->stamp;
}

static int count_walk(struct cache_entry *e, void *arg)
{
	(void)e;
	(*(unsigned *)arg)++;
	return 0;
}

static int stop_walk(struct cache_entry *e, void *arg)
{
	(void)e;
	return ++(*(unsigned *)arg) == 3 ? 42 : 0;
}

static void test_generations(void **state)
{
	struct cache *c = cache_new(0, 7);
	struct hafw_tuple k;
	struct swept s = {0};
	uint8_t b[8] = {0};
	unsigned n = 0;

	(void)state;
	for (uint32_t i = 0; i < 20; i++) {
		key_n(&k, i, false);
		assert_int_equal(cache_put(c, &k, 0, b, sizeof(b), i, 0), 0);
	}
	/* a sweep right after puts removes nothing */
	assert_int_equal(cache_gen_sweep(c, on_sweep, &s), 0);
	assert_int_equal(s.calls, 0);

	cache_gen_begin(c);
	for (uint32_t i = 0; i < 20; i += 2) { /* touch the even ones */
		key_n(&k, i, false);
		cache_touch(c, cache_find(c, &k, 0));
	}
	key_n(&k, 21, false); /* a put during the generation counts as seen */
	assert_int_equal(cache_put(c, &k, 0, b, sizeof(b), 21, 0), 0);
	key_n(&k, 1, false); /* and so does a replace */
	assert_int_equal(cache_put(c, &k, 0, b, 4, 1, 0), 0);

	assert_int_equal(cache_gen_sweep(c, on_sweep, &s), 9);
	assert_int_equal(s.calls, 9);
	for (unsigned i = 0; i < s.calls; i++) {
		assert_true(s.seen[i] % 2 == 1);
		assert_int_not_equal(s.seen[i], 1);
	}
	assert_int_equal(cache_count(c), 12);
	for (uint32_t i = 0; i < 22; i++) {
		key_n(&k, i, false);
		if (i == 20)
			assert_null(cache_find(c, &k, 0));
		else if (i % 2 == 0 || i == 1 || i == 21)
			assert_non_null(cache_find(c, &k, 0));
		else
			assert_null(cache_find(c, &k, 0));
	}
	assert_int_equal(cache_walk(c, count_walk, &n), 0);
	assert_int_equal(n, 12);
	n = 0;
	assert_int_equal(cache_walk(c, stop_walk, &n), 42);
	assert_int_equal(n, 3);

	/* a generation with nothing touched empties the cache; no callback is
	 * fine */
	cache_gen_begin(c);
	assert_int_equal(cache_gen_sweep(c, NULL, NULL), 12);
	assert_int_equal(cache_count(c), 0);
	cache_free(c);
}

/* Tombstones hold a key and a version, no object: invisible to finds,
 * counts and walks, visible to lookups; expiry removes only old ones. */
static void test_tombstones(void **state)
{
	struct cache *c = cache_new(0, 3);
	struct hafw_tuple k;
	struct cache_entry *e;
	uint8_t b[12] = {1, 2, 3};
	size_t cursor = 0, bytes0 = cache_bytes(c);
	unsigned n = 0;

	(void)state;
	key_n(&k, 1, false);
	assert_int_equal(cache_put(c, &k, 0, b, sizeof(b), 10, 500), 0);
	e = cache_find(c, &k, 0);
	assert_non_null(e);
	assert_true(e->version == 500);
	assert_int_equal(cache_put_tomb(c, &k, 0, 11, 600), 0);
	assert_null(cache_find(c, &k, 0));
	e = cache_lookup(c, &k, 0);
	assert_non_null(e);
	assert_true(e->flags & CACHE_F_TOMB);
	assert_true(e->version == 600);
	assert_int_equal(e->len, 0);
	assert_int_equal(cache_count(c), 0);
	assert_int_equal(cache_tombs(c), 1);
	assert_int_equal(cache_walk(c, count_walk, &n), 0);
	assert_int_equal(n, 0);
	/* a live put over a tombstone revives it */
	assert_int_equal(cache_put(c, &k, 0, b, sizeof(b), 12, 700), 0);
	assert_non_null(cache_find(c, &k, 0));
	assert_int_equal(cache_tombs(c), 0);
	assert_int_equal(cache_count(c), 1);
	/* del of a tombstone is "nothing live removed" */
	assert_int_equal(cache_put_tomb(c, &k, 0, 13, 800), 0);
	assert_false(cache_del(c, &k, 0));
	assert_null(cache_lookup(c, &k, 0));
	assert_int_equal(cache_tombs(c), 0);

	/* expiry: 100 tombstones stamped 0..99, expire those before 50, in
	 * slices, wrapping around */
	for (uint32_t i = 0; i < 100; i++) {
		key_n(&k, 100 + i, false);
		assert_int_equal(cache_put_tomb(c, &k, 0, i, i), 0);
	}
	key_n(&k, 999, false);
	assert_int_equal(cache_put(c, &k, 0, b, sizeof(b), 0, 1), 0);
	size_t removed = 0;
	for (int round = 0; round < 1000 && cache_tombs(c) > 50; round++)
		removed += cache_expire_tombs(c, &cursor, 3, 50);
	assert_int_equal(removed, 50);
	assert_int_equal(cache_tombs(c), 50);
	assert_int_equal(cache_count(c), 1); /* live entries never expire */
	for (uint32_t i = 0; i < 100; i++) {
		key_n(&k, 100 + i, false);
		if (i < 50)
			assert_null(cache_lookup(c, &k, 0));
		else
			assert_non_null(cache_lookup(c, &k, 0));
	}
	cache_flush(c);
	assert_int_equal(cache_tombs(c), 0);
	assert_true(cache_bytes(c) < bytes0 + 4096 * sizeof(void *));
	cache_free(c);
}

/* The incremental sweep removes exactly the old generation, over many
 * small slices, while entries are added between slices. */
static void test_sweep_slices(void **state)
{
	struct cache *c = cache_new(0, 9);
	struct hafw_tuple k;
	uint8_t b[8] = {0};
	size_t cursor = 0, n = 0;
	int slices = 0;

	(void)state;
	for (uint32_t i = 0; i < 1000; i++) {
		key_n(&k, i, false);
		assert_int_equal(cache_put(c, &k, 0, b, sizeof(b), 0, 0), 0);
	}
	for (uint32_t i = 1000; i < 1010; i++) {
		key_n(&k, i, false);
		assert_int_equal(cache_put_tomb(c, &k, 0, 0, 0), 0);
	}
	cache_gen_begin(c);
	for (uint32_t i = 0; i < 1000; i += 10) {
		key_n(&k, i, false);
		cache_touch(c, cache_find(c, &k, 0));
	}
	while (!cache_gen_sweep_some(c, &cursor, 16, NULL, NULL, &n)) {
		/* new entries in the current generation survive */
		key_n(&k, 5000 + (uint32_t)slices, false);
		assert_int_equal(cache_put(c, &k, 0, b, sizeof(b), 0, 0), 0);
		assert_true(++slices < 10000);
	}
	assert_true(slices > 10);
	assert_int_equal(n, 900);
	assert_int_equal(cache_count(c), 100 + (size_t)slices);
	assert_int_equal(cache_tombs(c), 0); /* old tombstones go too */
	cache_free(c);
}

/* The digest depends on the live entries (keys and versions) only: not on
 * insertion order, the table's seed, tombstones or blobs; every change
 * moves it and undoing the change brings it back. */
static void test_digest(void **state)
{
	struct cache *a = cache_new(0, 1), *b = cache_new(0, 99);
	struct hafw_tuple k;
	uint8_t blob[16] = {1};
	uint64_t d;

	(void)state;
	assert_true(cache_digest(a) == 0);
	for (uint32_t i = 0; i < 500; i++) {
		key_n(&k, i, i % 2);
		assert_int_equal(
		    cache_put(a, &k, (uint16_t)(i % 3), blob, sizeof(blob), 0, 1000 + i), 0);
	}
	for (uint32_t i = 500; i-- > 0;) {
		key_n(&k, i, i % 2);
		blob[0] = (uint8_t)i; /* other bytes, same version: same digest */
		assert_int_equal(cache_put(b, &k, (uint16_t)(i % 3), blob, 8, 5, 1000 + i), 0);
	}
	assert_true(cache_digest(a) == cache_digest(b));
	d = cache_digest(a);
	key_n(&k, 7, true);
	assert_int_equal(cache_put(a, &k, 1, blob, sizeof(blob), 0, 5000), 0); /* new version */
	assert_true(cache_digest(a) != d);
	assert_int_equal(cache_put(a, &k, 1, blob, 4, 0, 1007), 0); /* back */
	assert_true(cache_digest(a) == d);
	assert_int_equal(cache_put_tomb(a, &k, 1, 0, 6000), 0); /* a destroy */
	assert_true(cache_digest(a) != d);
	key_n(&k, 7, true);
	assert_int_equal(cache_put_tomb(b, &k, 1, 0, 6000), 0);
	assert_true(cache_digest(a) == cache_digest(b)); /* tombstones do not count */
	assert_true(cache_del(b, &(struct hafw_tuple){0}, 0) == false);
	cache_flush(a);
	assert_true(cache_digest(a) == 0);
	cache_free(a);
	cache_free(b);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_put_find_del), cmocka_unit_test(test_keys),
	    cmocka_unit_test(test_many),         cmocka_unit_test(test_generations),
	    cmocka_unit_test(test_tombstones),   cmocka_unit_test(test_sweep_slices),
	    cmocka_unit_test(test_digest),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
