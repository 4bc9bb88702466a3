#include "seqwin.h"

#include <string.h>

void seqwin_reset(struct seqwin *w)
{
	memset(w, 0, sizeof(*w));
}

static bool bit_get(const struct seqwin *w, unsigned i)
{
	return w->seen[i / 64] >> (i % 64) & 1;
}

static void bit_set(struct seqwin *w, unsigned i)
{
	w->seen[i / 64] |= 1ull << (i % 64);
}

static void log_lost(struct seqwin *w, uint32_t from, uint32_t to)
{
	uint32_t *slot = w->lost_log[w->lost_next];

	if (w->nlost_log == SEQWIN_LOST_LOG) {
		if (!w->lost_overflow || seq_after(slot[1], w->forgot_hi))
			w->forgot_hi = slot[1];
		w->lost_overflow = true;
	} else {
		w->nlost_log++;
	}
	slot[0] = from;
	slot[1] = to;
	w->lost_next = (w->lost_next + 1) % SEQWIN_LOST_LOG;
}

static void declare_lost(struct seqwin *w, uint32_t seq, uint64_t *lost)
{
	(*lost)++;
	log_lost(w, seq, seq);
}

/* Move hi forward by d: bits that fall off the end unseen are lost, and so
 * are numbers jumped over that never entered the window. */
static void advance(struct seqwin *w, uint32_t d, uint64_t *lost)
{
	uint64_t shifted[SEQWIN_WORDS] = {0};

	for (unsigned i = 0; i < SEQWIN_BITS; i++) {
		if (i + d >= SEQWIN_BITS) {
			if (!bit_get(w, i))
				declare_lost(w, w->hi - i, lost);
			continue;
		}
		if (bit_get(w, i))
			shifted[(i + d) / 64] |= 1ull << ((i + d) % 64);
	}
	if (d > SEQWIN_BITS) {
		/* hi+1 .. hi+d-SEQWIN_BITS were never inside the window */
		*lost += d - SEQWIN_BITS;
		log_lost(w, w->hi + 1, w->hi + d - SEQWIN_BITS);
	}
	memcpy(w->seen, shifted, sizeof(shifted));
	w->hi += d;
}

enum seqwin_verdict seqwin_check(struct seqwin *w, uint32_t seq, uint64_t *lost)
{
	int32_t d;

	*lost = 0;
	if (!w->valid) {
		seqwin_reset(w);
		w->valid = true;
		w->first = w->hi = seq;
		/* numbers before the first are not ours to miss */
		memset(w->seen, 0xff, sizeof(w->seen));
		return SEQWIN_NEW;
	}
	d = seq_diff(seq, w->hi);
	if (d > 0) {
		advance(w, (uint32_t)d, lost);
		bit_set(w, 0);
		return SEQWIN_NEW;
	}
	if ((uint32_t)-d >= SEQWIN_BITS || seq_after(w->first, seq))
		return SEQWIN_STALE;
	if (bit_get(w, (unsigned)-d))
		return SEQWIN_DUP;
	bit_set(w, (unsigned)-d);
	return SEQWIN_LATE;
}

uint64_t seqwin_give_up(struct seqwin *w, uint32_t before)
{
	uint64_t n = 0;

	if (!w->valid)
		return 0;
	for (unsigned i = 1; i < SEQWIN_BITS; i++) {
		uint32_t s = w->hi - i;

		if (seq_after(w->first, s))
			break;
		if (!seq_after(before, s) || bit_get(w, i))
			continue;
		declare_lost(w, s, &n);
		bit_set(w, i);
	}
	return n;
}

unsigned seqwin_missing(const struct seqwin *w)
{
	unsigned n = 0;

	if (!w->valid)
		return 0;
	for (unsigned i = 1; i < SEQWIN_BITS; i++) {
		if (seq_after(w->first, w->hi - i))
			break;
		n += !bit_get(w, i);
	}
	return n;
}

bool seqwin_has_all(const struct seqwin *w, uint32_t from, uint32_t to)
{
	if (!w->valid || seq_after(from, to) || seq_after(w->first, from) || seq_after(to, w->hi))
		return false;
	if (w->lost_overflow && !seq_after(from, w->forgot_hi))
		return false;
	for (unsigned i = 0; i < w->nlost_log; i++)
		if (!seq_after(w->lost_log[i][0], to) && !seq_after(from, w->lost_log[i][1]))
			return false;
	/* the part still inside the window must be there; older numbers
	 * that left it were either seen or are in the lost log above */
	for (uint32_t s = to;; s--) {
		uint32_t off = w->hi - s;

		if (off >= SEQWIN_BITS)
			break;
		if (!bit_get(w, off))
			return false;
		if (s == from)
			break;
	}
	return true;
}
