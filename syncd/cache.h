/* Hash table of tracked objects keyed by (tuple, zone).
 *
 * An entry stores its key, the version of the change that last wrote it,
 * and the object's protobuf encoding, not the C model: about 100 bytes per
 * IPv4 flow instead of ~300, and an announce copies stored bytes straight
 * into frames.
 *
 * A tombstone is an entry without an object: the key and the version of
 * the destroy, kept for a while so that a late copy of the destroyed entry
 * cannot bring it back. Walks and counts see live entries only. */
#ifndef HAFW_CACHE_H
#define HAFW_CACHE_H

#include "flow.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum { CACHE_F_TOMB = 1 };

struct cache_entry {
	struct cache_entry *next;
	uint64_t version;
	uint32_t hash;
	uint32_t stamp; /* monotonic seconds when last written */
	struct hafw_tuple key;
	uint16_t zone;
	uint16_t len;
	uint16_t gen; /* reconciliation / restart generation */
	uint8_t flags;
	uint8_t blob[];
};

struct cache;

struct cache *cache_new(size_t buckets_hint, uint64_t seed);
void cache_free(struct cache *c);

/* Insert or replace (a tombstone too). Returns 0, or -ENOMEM (the old entry
 * is kept then). */
int cache_put(struct cache *c, const struct hafw_tuple *key, uint16_t zone, const uint8_t *blob,
              size_t len, uint32_t stamp, uint64_t version);
/* Replace the entry by a tombstone (or add one). Returns 0 or -ENOMEM. */
int cache_put_tomb(struct cache *c, const struct hafw_tuple *key, uint16_t zone, uint32_t stamp,
                   uint64_t version);
/* The entry, live or tombstone (check e->flags). */
struct cache_entry *cache_lookup(const struct cache *c, const struct hafw_tuple *key,
                                 uint16_t zone);
/* The live entry only. */
struct cache_entry *cache_find(const struct cache *c, const struct hafw_tuple *key, uint16_t zone);
/* Removes a live entry or a tombstone. Returns true when it removed a live
 * entry. */
bool cache_del(struct cache *c, const struct hafw_tuple *key, uint16_t zone);
size_t cache_count(const struct cache *c); /* live entries */
size_t cache_tombs(const struct cache *c);
/* Order-independent digest of the live entries (keys and versions), the
 * same on any node that holds the same entries; kept as entries change. */
uint64_t cache_digest(const struct cache *c);
/* One entry's share of a digest. */
uint64_t cache_entry_digest(const struct hafw_tuple *key, uint16_t zone, uint64_t version);
size_t cache_bytes(const struct cache *c); /* memory held, for stats */
void cache_flush(struct cache *c);

/* Walk every live entry; the callback may not modify the cache. A non-zero
 * return stops the walk and is returned. */
typedef int (*cache_walk_fn)(struct cache_entry *e, void *arg);
int cache_walk(struct cache *c, cache_walk_fn fn, void *arg);

/* Resumable walk of live entries: visits up to about max entries from
 * bucket *cursor on and advances it. Returns true once the whole table has
 * been visited. Between calls the cache may change: entries added meanwhile
 * may or may not be visited; a growth in between may visit some twice,
 * never skip one. */
bool cache_walk_some(struct cache *c, size_t *cursor, size_t max, cache_walk_fn fn, void *arg);

/* Remove tombstones written before `older_than` (monotonic s), visiting up
 * to max buckets' worth of entries from *cursor; wraps around. Returns how
 * many were removed. */
size_t cache_expire_tombs(struct cache *c, size_t *cursor, size_t max, uint32_t older_than);

/* Reconciliation: start a generation (every entry is now "old"), writes
 * and touches make entries current, then sweep the old ones. */
void cache_gen_begin(struct cache *c);
uint16_t cache_gen(const struct cache *c);
void cache_touch(struct cache *c, struct cache_entry *e);
static inline bool cache_is_current(const struct cache *c, const struct cache_entry *e)
{
	return e->gen == cache_gen(c);
}
/* Sweep old entries from *cursor on, up to about max entries visited; the
 * callback sees each old live entry before it is freed (tombstones go
 * silently). Returns true when the table has been swept to its end; *n
 * counts the live entries removed. */
bool cache_gen_sweep_some(struct cache *c, size_t *cursor, size_t max,
                          void (*fn)(struct cache_entry *e, void *arg), void *arg, size_t *n);
/* The whole sweep in one call (tests, small tables). */
size_t cache_gen_sweep(struct cache *c, void (*fn)(struct cache_entry *e, void *arg), void *arg);

#endif
