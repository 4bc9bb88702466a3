/* The retransmit ring: the last datagrams a node sent, by sequence number,
 * so a peer's NACK can be answered with the very same bytes. Memory is
 * bounded by slots x largest datagram, allocated as slots are first used. */
#ifndef HAFW_RTXRING_H
#define HAFW_RTXRING_H

#include <stddef.h>
#include <stdint.h>

struct rtxring;

/* slots 0: a ring that keeps nothing. NULL when out of memory. */
struct rtxring *rtxring_new(size_t slots, size_t max_dgram);
void rtxring_free(struct rtxring *r);
/* Keep a copy of datagram seq (len <= max_dgram), over the oldest one. */
void rtxring_put(struct rtxring *r, uint32_t seq, const uint8_t *buf, size_t len);
/* The datagram seq, or NULL when it was never kept or was overwritten. */
const uint8_t *rtxring_get(const struct rtxring *r, uint32_t seq, size_t *len);
size_t rtxring_slots(const struct rtxring *r);
size_t rtxring_bytes(const struct rtxring *r); /* memory held */

#endif
