#include "rtxring.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

struct slot {
	uint8_t *buf;
	uint32_t seq;
	uint16_t len;
	bool used;
};

struct rtxring {
	struct slot *slots;
	size_t n, max_dgram, bytes;
};

struct rtxring *rtxring_new(size_t slots, size_t max_dgram)
{
	struct rtxring *r = calloc(1, sizeof(*r));

	if (!r)
		return NULL;
	r->n = slots;
	r->max_dgram = max_dgram;
	if (slots && !(r->slots = calloc(slots, sizeof(*r->slots)))) {
		free(r);
		return NULL;
	}
	r->bytes = sizeof(*r) + slots * sizeof(*r->slots);
	return r;
}

void rtxring_free(struct rtxring *r)
{
	if (!r)
		return;
	for (size_t i = 0; i < r->n; i++)
		free(r->slots[i].buf);
	free(r->slots);
	free(r);
}

void rtxring_put(struct rtxring *r, uint32_t seq, const uint8_t *buf, size_t len)
{
	struct slot *s;

	if (!r->n || len > r->max_dgram || len > UINT16_MAX)
		return;
	s = &r->slots[seq % r->n];
	if (!s->buf) {
		s->buf = malloc(r->max_dgram);
		if (!s->buf) {
			s->used = false; /* this number cannot be resent */
			return;
		}
		r->bytes += r->max_dgram;
	}
	memcpy(s->buf, buf, len);
	s->len = (uint16_t)len;
	s->seq = seq;
	s->used = true;
}

const uint8_t *rtxring_get(const struct rtxring *r, uint32_t seq, size_t *len)
{
	const struct slot *s;

	if (!r->n)
		return NULL;
	s = &r->slots[seq % r->n];
	if (!s->used || s->seq != seq)
		return NULL;
	*len = s->len;
	return s->buf;
}

size_t rtxring_slots(const struct rtxring *r)
{
	return r->n;
}

size_t rtxring_bytes(const struct rtxring *r)
{
	return r->bytes;
}
