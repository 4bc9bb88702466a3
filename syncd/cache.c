/* Chained hash table; doubles its bucket array when the load passes 1.
 * Entries are single allocations (header + blob). */
#include "cache.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

struct cache {
	struct cache_entry **buckets;
	size_t nbuckets; /* power of two */
	size_t count;    /* live entries */
	size_t ntomb;
	size_t bytes;
	uint64_t seed;
	uint64_t digest; /* sum of entry_digest() over live entries */
	uint16_t gen;
};

/* Fixed, not the table's random seed: two nodes holding the same entries
 * must compute the same digest. */
#define DIGEST_SEED 0x6861667764696731ull

static uint64_t mix(uint64_t x)
{
	x += 0x9e3779b97f4a7c15ull;
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
	x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
	return x ^ (x >> 31);
}

/* An entry as the digest sees it: its key and the version of the change
 * that wrote it (the version stands for the content). */
uint64_t cache_entry_digest(const struct hafw_tuple *key, uint16_t zone, uint64_t version)
{
	return mix(hafw_tuple_hash(key, zone, DIGEST_SEED) ^ mix(version));
}

static uint64_t entry_digest(const struct cache_entry *e)
{
	return cache_entry_digest(&e->key, e->zone, e->version);
}

static size_t pow2_at_least(size_t n)
{
	size_t p = 64;

	while (p < n && p < ((size_t)1 << 30))
		p <<= 1;
	return p;
}

struct cache *cache_new(size_t buckets_hint, uint64_t seed)
{
	struct cache *c = calloc(1, sizeof(*c));

	if (!c)
		return NULL;
	c->nbuckets = pow2_at_least(buckets_hint);
	c->buckets = calloc(c->nbuckets, sizeof(*c->buckets));
	if (!c->buckets) {
		free(c);
		return NULL;
	}
	c->seed = seed;
	return c;
}

void cache_flush(struct cache *c)
{
	for (size_t i = 0; i < c->nbuckets; i++) {
		struct cache_entry *e = c->buckets[i];

		while (e) {
			struct cache_entry *n = e->next;
			free(e);
			e = n;
		}
		c->buckets[i] = NULL;
	}
	c->count = 0;
	c->ntomb = 0;
	c->bytes = 0;
	c->digest = 0;
}

void cache_free(struct cache *c)
{
	if (!c)
		return;
	cache_flush(c);
	free(c->buckets);
	free(c);
}

static uint32_t key_hash(const struct cache *c, const struct hafw_tuple *key, uint16_t zone)
{
	return (uint32_t)hafw_tuple_hash(key, zone, c->seed);
}

static struct cache_entry **slot_of(const struct cache *c, const struct hafw_tuple *key,
                                    uint16_t zone, uint32_t h)
{
	struct cache_entry **pp = &c->buckets[h & (c->nbuckets - 1)];

	for (; *pp; pp = &(*pp)->next) {
		struct cache_entry *e = *pp;
		if (e->hash == h && e->zone == zone && hafw_tuple_equal(&e->key, key))
			return pp;
	}
	return pp;
}

static void grow(struct cache *c)
{
	size_t n = c->nbuckets * 2;
	struct cache_entry **nb = calloc(n, sizeof(*nb));

	if (!nb)
		return; /* keep working with longer chains */
	for (size_t i = 0; i < c->nbuckets; i++) {
		struct cache_entry *e = c->buckets[i];

		while (e) {
			struct cache_entry *next = e->next;
			size_t b = e->hash & (n - 1);
			e->next = nb[b];
			nb[b] = e;
			e = next;
		}
	}
	free(c->buckets);
	c->buckets = nb;
	c->nbuckets = n;
}

static void account(struct cache *c, const struct cache_entry *e, int sign)
{
	size_t sz = sizeof(*e) + e->len;

	if (sign > 0) {
		c->bytes += sz;
		if (e->flags & CACHE_F_TOMB) {
			c->ntomb++;
		} else {
			c->count++;
			c->digest += entry_digest(e);
		}
	} else {
		c->bytes -= sz;
		if (e->flags & CACHE_F_TOMB) {
			c->ntomb--;
		} else {
			c->count--;
			c->digest -= entry_digest(e);
		}
	}
}

static int put(struct cache *c, const struct hafw_tuple *key, uint16_t zone, const uint8_t *blob,
               size_t len, uint32_t stamp, uint64_t version, uint8_t flags)
{
	uint32_t h = key_hash(c, key, zone);
	struct cache_entry **pp = slot_of(c, key, zone, h);
	struct cache_entry *old = *pp, *e;

	if (len > UINT16_MAX)
		return -EMSGSIZE;
	if (old && old->len == len) {
		account(c, old, -1);
		if (len) /* a tombstone has no blob */
			memcpy(old->blob, blob, len);
		old->stamp = stamp;
		old->gen = c->gen;
		old->version = version;
		old->flags = flags;
		account(c, old, 1);
		return 0;
	}
	e = malloc(sizeof(*e) + len);
	if (!e)
		return -ENOMEM;
	e->hash = h;
	e->stamp = stamp;
	e->key = *key;
	e->zone = zone;
	e->len = (uint16_t)len;
	e->gen = c->gen;
	e->version = version;
	e->flags = flags;
	if (len)
		memcpy(e->blob, blob, len);
	if (old) {
		e->next = old->next;
		account(c, old, -1);
		free(old);
	} else {
		e->next = NULL;
	}
	*pp = e;
	account(c, e, 1);
	if (c->count + c->ntomb > c->nbuckets)
		grow(c);
	return 0;
}

int cache_put(struct cache *c, const struct hafw_tuple *key, uint16_t zone, const uint8_t *blob,
              size_t len, uint32_t stamp, uint64_t version)
{
	return put(c, key, zone, blob, len, stamp, version, 0);
}

int cache_put_tomb(struct cache *c, const struct hafw_tuple *key, uint16_t zone, uint32_t stamp,
                   uint64_t version)
{
	return put(c, key, zone, NULL, 0, stamp, version, CACHE_F_TOMB);
}

struct cache_entry *cache_lookup(const struct cache *c, const struct hafw_tuple *key, uint16_t zone)
{
	return *slot_of(c, key, zone, key_hash(c, key, zone));
}

struct cache_entry *cache_find(const struct cache *c, const struct hafw_tuple *key, uint16_t zone)
{
	struct cache_entry *e = cache_lookup(c, key, zone);

	return e && !(e->flags & CACHE_F_TOMB) ? e : NULL;
}

static void unlink_free(struct cache *c, struct cache_entry **pp)
{
	struct cache_entry *e = *pp;

	*pp = e->next;
	account(c, e, -1);
	free(e);
}

bool cache_del(struct cache *c, const struct hafw_tuple *key, uint16_t zone)
{
	struct cache_entry **pp = slot_of(c, key, zone, key_hash(c, key, zone));
	bool live;

	if (!*pp)
		return false;
	live = !((*pp)->flags & CACHE_F_TOMB);
	unlink_free(c, pp);
	return live;
}

size_t cache_count(const struct cache *c)
{
	return c->count;
}

uint64_t cache_digest(const struct cache *c)
{
	return c->digest;
}

size_t cache_tombs(const struct cache *c)
{
	return c->ntomb;
}

size_t cache_bytes(const struct cache *c)
{
	return c->bytes + c->nbuckets * sizeof(*c->buckets);
}

int cache_walk(struct cache *c, cache_walk_fn fn, void *arg)
{
	for (size_t i = 0; i < c->nbuckets; i++)
		for (struct cache_entry *e = c->buckets[i]; e; e = e->next) {
			int r;

			if (e->flags & CACHE_F_TOMB)
				continue;
			r = fn(e, arg);
			if (r)
				return r;
		}
	return 0;
}

bool cache_walk_some(struct cache *c, size_t *cursor, size_t max, cache_walk_fn fn, void *arg)
{
	size_t seen = 0;

	/* a bucket is finished whole, so a long chain can overshoot max */
	for (; *cursor < c->nbuckets && seen < max; (*cursor)++)
		for (struct cache_entry *e = c->buckets[*cursor]; e; e = e->next, seen++)
			if (!(e->flags & CACHE_F_TOMB))
				fn(e, arg);
	return *cursor >= c->nbuckets;
}

size_t cache_expire_tombs(struct cache *c, size_t *cursor, size_t max, uint32_t older_than)
{
	size_t seen = 0, n = 0;

	if (!c->ntomb)
		return 0;
	for (size_t b = 0; b < c->nbuckets && seen < max; b++) {
		struct cache_entry **pp;

		if (*cursor >= c->nbuckets)
			*cursor = 0;
		pp = &c->buckets[(*cursor)++];
		while (*pp) {
			struct cache_entry *e = *pp;

			seen++;
			if ((e->flags & CACHE_F_TOMB) && (int32_t)(e->stamp - older_than) < 0) {
				unlink_free(c, pp);
				n++;
				continue;
			}
			pp = &e->next;
		}
	}
	return n;
}

void cache_gen_begin(struct cache *c)
{
	c->gen++;
}

uint16_t cache_gen(const struct cache *c)
{
	return c->gen;
}

void cache_touch(struct cache *c, struct cache_entry *e)
{
	e->gen = c->gen;
}

bool cache_gen_sweep_some(struct cache *c, size_t *cursor, size_t max,
                          void (*fn)(struct cache_entry *e, void *arg), void *arg, size_t *n)
{
	size_t seen = 0;

	for (; *cursor < c->nbuckets && seen < max; (*cursor)++) {
		struct cache_entry **pp = &c->buckets[*cursor];

		while (*pp) {
			struct cache_entry *e = *pp;

			seen++;
			if (e->gen == c->gen) {
				pp = &e->next;
				continue;
			}
			if (!(e->flags & CACHE_F_TOMB)) {
				if (fn)
					fn(e, arg);
				(*n)++;
			}
			unlink_free(c, pp);
		}
	}
	return *cursor >= c->nbuckets;
}

size_t cache_gen_sweep(struct cache *c, void (*fn)(struct cache_entry *e, void *arg), void *arg)
{
	size_t cursor = 0, n = 0;

	cache_gen_sweep_some(c, &cursor, SIZE_MAX, fn, arg, &n);
	return n;
}
