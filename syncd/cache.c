/* Chained hash table; doubles its bucket array when the load passes 1.
 * Entries are single allocations (header + blob). */
#include "cache.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

struct cache {
	struct cache_entry **buckets;
	size_t nbuckets; /* power of two */
	size_t count;
	size_t bytes;
	uint64_t seed;
	uint16_t gen;
};

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
	c->bytes = 0;
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

int cache_put(struct cache *c, const struct hafw_tuple *key, uint16_t zone, const uint8_t *blob,
              size_t len, uint32_t stamp)
{
	uint32_t h = key_hash(c, key, zone);
	struct cache_entry **pp = slot_of(c, key, zone, h);
	struct cache_entry *old = *pp, *e;

	if (len > UINT16_MAX)
		return -EMSGSIZE;
	if (old && old->len == len) {
		memcpy(old->blob, blob, len);
		old->stamp = stamp;
		old->gen = c->gen;
		return 0;
	}
	e = malloc(sizeof(*e) + len);
	if (!e)
		return -ENOMEM;
	e->hash = h;
	e->stamp = stamp;
	e->key = *key;
	e->zone = zone;
	e->len = len;
	e->gen = c->gen;
	memcpy(e->blob, blob, len);
	if (old) {
		e->next = old->next;
		c->bytes -= sizeof(*old) + old->len;
		free(old);
	} else {
		e->next = NULL;
		c->count++;
	}
	*pp = e;
	c->bytes += sizeof(*e) + len;
	if (c->count > c->nbuckets)
		grow(c);
	return 0;
}

struct cache_entry *cache_find(const struct cache *c, const struct hafw_tuple *key, uint16_t zone)
{
	return *slot_of(c, key, zone, key_hash(c, key, zone));
}

bool cache_del(struct cache *c, const struct hafw_tuple *key, uint16_t zone)
{
	struct cache_entry **pp = slot_of(c, key, zone, key_hash(c, key, zone));
	struct cache_entry *e = *pp;

	if (!e)
		return false;
	*pp = e->next;
	c->count--;
	c->bytes -= sizeof(*e) + e->len;
	free(e);
	return true;
}

size_t cache_count(const struct cache *c)
{
	return c->count;
}

size_t cache_bytes(const struct cache *c)
{
	return c->bytes + c->nbuckets * sizeof(*c->buckets);
}

int cache_walk(struct cache *c, cache_walk_fn fn, void *arg)
{
	for (size_t i = 0; i < c->nbuckets; i++)
		for (struct cache_entry *e = c->buckets[i]; e; e = e->next) {
			int r = fn(e, arg);
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
			fn(e, arg);
	return *cursor >= c->nbuckets;
}

void cache_gen_begin(struct cache *c)
{
	c->gen++;
}

void cache_touch(struct cache *c, struct cache_entry *e)
{
	e->gen = c->gen;
}

size_t cache_gen_sweep(struct cache *c, void (*fn)(struct cache_entry *e, void *arg), void *arg)
{
	size_t n = 0;

	for (size_t i = 0; i < c->nbuckets; i++) {
		struct cache_entry **pp = &c->buckets[i];

		while (*pp) {
			struct cache_entry *e = *pp;
			if (e->gen == c->gen) {
				pp = &e->next;
				continue;
			}
			*pp = e->next;
			if (fn)
				fn(e, arg);
			c->count--;
			c->bytes -= sizeof(*e) + e->len;
			free(e);
			n++;
		}
	}
	return n;
}
