/* Hash table of tracked objects keyed by (tuple, zone).
 *
 * An entry stores its key and the object's protobuf encoding, not the C
 * model: about 100 bytes per IPv4 flow instead of ~300, and a bulk resync
 * copies stored bytes straight into frames. */
#ifndef HAFW_CACHE_H
#define HAFW_CACHE_H

#include "flow.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct cache_entry {
	struct cache_entry *next;
	uint32_t hash;
	uint32_t stamp; /* monotonic seconds when last written */
	struct hafw_tuple key;
	uint16_t zone;
	uint16_t len;
	uint16_t gen; /* reconciliation generation */
	uint8_t blob[];
};

struct cache;

struct cache *cache_new(size_t buckets_hint, uint64_t seed);
void cache_free(struct cache *c);

/* Insert or replace. Returns 0, or -ENOMEM (the old entry is kept then). */
int cache_put(struct cache *c, const struct hafw_tuple *key, uint16_t zone, const uint8_t *blob,
              size_t len, uint32_t stamp);
struct cache_entry *cache_find(const struct cache *c, const struct hafw_tuple *key, uint16_t zone);
/* Returns true when an entry was removed. */
bool cache_del(struct cache *c, const struct hafw_tuple *key, uint16_t zone);
size_t cache_count(const struct cache *c);
size_t cache_bytes(const struct cache *c); /* memory held, for stats */
void cache_flush(struct cache *c);

/* Walk every entry; the callback may not modify the cache. A non-zero
 * return stops the walk and is returned. */
typedef int (*cache_walk_fn)(struct cache_entry *e, void *arg);
int cache_walk(struct cache *c, cache_walk_fn fn, void *arg);

/* Resumable walk: visits up to max entries from bucket *cursor on and
 * advances it. Returns true once the whole table has been visited. Entries
 * added meanwhile may or may not be visited; a growth in between may visit
 * some twice, never skip one. */
bool cache_walk_some(struct cache *c, size_t *cursor, size_t max, cache_walk_fn fn, void *arg);

/* Reconciliation: start a generation, touch what is still there, then sweep
 * the rest (the callback sees each entry before it is freed). */
void cache_gen_begin(struct cache *c);
void cache_touch(struct cache *c, struct cache_entry *e);
size_t cache_gen_sweep(struct cache *c, void (*fn)(struct cache_entry *e, void *arg), void *arg);

#endif
