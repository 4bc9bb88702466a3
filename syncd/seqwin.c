#include "seqwin.h"

#include <string.h>

#define MASK (SEQWIN_BITS - 1)

void seqwin_reset(struct seqwin *w)
{
	memset(w, 0, sizeof(*w));
}

static bool bit_get(const struct seqwin *w, uint32_t s)
{
	uint32_t i = s & MASK;

	return w->seen[i / 64] >> (i % 64) & 1;
}

static void bit_put(struct seqwin *w, uint32_t s, bool v)
{
	uint32_t i = s & MASK;

	if (v)
		w->seen[i / 64] |= 1ull << (i % 64);
	else
		w->seen[i / 64] &= ~(1ull << (i % 64));
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

/* The oldest number the window still holds. */
static uint32_t window_lo(const struct seqwin *w)
{
	uint32_t lo = w->hi - (SEQWIN_BITS - 1);

	return seq_after(w->first, lo) ? w->first : lo;
}

/* Move hi forward to seq: the numbers that leave the window unseen are
 * lost, and so are numbers jumped over that never entered it. Each bit
 * position is visited at most once, whatever the jump. */
static void advance(struct seqwin *w, uint32_t seq, uint64_t *lost)
{
	uint32_t d = seq - w->hi, n = d < SEQWIN_BITS ? d : SEQWIN_BITS;

	for (uint32_t k = 1; k <= n; k++) {
		uint32_t s = seq - n + k;
		/* the number this position held: the one in (hi - BITS, hi]
		 * with the same remainder */
		uint32_t old = w->hi - ((w->hi - s) & MASK);

		if (!bit_get(w, s)) {
			(*lost)++;
			w->missing--;
			log_lost(w, old, old);
		}
		bit_put(w, s, s == seq);
		if (s != seq)
			w->missing++;
	}
	if (d > SEQWIN_BITS) {
		/* hi+1 .. seq-BITS were never inside the window */
		*lost += d - SEQWIN_BITS;
		log_lost(w, w->hi + 1, seq - SEQWIN_BITS);
	}
	w->hi = seq;
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
		advance(w, seq, lost);
		return SEQWIN_NEW;
	}
	if ((uint32_t)-d >= SEQWIN_BITS || seq_after(w->first, seq))
		return SEQWIN_STALE;
	if (bit_get(w, seq))
		return SEQWIN_DUP;
	bit_put(w, seq, true);
	w->missing--;
	return SEQWIN_LATE;
}

uint64_t seqwin_give_up(struct seqwin *w, uint32_t before)
{
	uint64_t n = 0;

	if (!w->valid || !w->missing)
		return 0;
	for (uint32_t s = window_lo(w); seq_after(before, s) && !seq_after(s, w->hi); s++) {
		if (bit_get(w, s))
			continue;
		bit_put(w, s, true);
		w->missing--;
		log_lost(w, s, s);
		n++;
	}
	return n;
}

unsigned seqwin_missing(const struct seqwin *w)
{
	return w->valid ? w->missing : 0;
}

uint32_t seqwin_lo(const struct seqwin *w)
{
	return window_lo(w);
}

unsigned seqwin_holes(const struct seqwin *w, uint32_t (*ranges)[2], unsigned max)
{
	return w->valid ? seqwin_holes_from(w, window_lo(w), ranges, max) : 0;
}

unsigned seqwin_holes_from(const struct seqwin *w, uint32_t from, uint32_t (*ranges)[2],
                           unsigned max)
{
	unsigned n = 0;
	bool open = false;

	if (!w->valid || !w->missing)
		return 0;
	if (seq_after(window_lo(w), from))
		from = window_lo(w);
	for (uint32_t s = from; !seq_after(s, w->hi); s++) {
		/* a whole word seen: skip it (the window is mostly seen) */
		if (!open && (s & 63) == 0 && seq_diff(w->hi, s) >= 63 &&
		    w->seen[(s & MASK) / 64] == UINT64_MAX) {
			s += 63;
			continue;
		}
		if (!bit_get(w, s)) {
			if (!open) {
				if (n == max)
					break;
				ranges[n][0] = s;
				open = true;
			}
			ranges[n][1] = s;
		} else if (open) {
			open = false;
			n++;
		}
	}
	return open ? n + 1 : n;
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
		if (w->hi - s >= SEQWIN_BITS)
			break;
		if (!bit_get(w, s))
			return false;
		if (s == from)
			break;
	}
	return true;
}
