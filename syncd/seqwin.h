/* Receive window over one sender's 32-bit datagram sequence numbers.
 *
 * Comparisons are serial-number arithmetic (RFC 1982): a number is "after"
 * another when it is less than 2^31 ahead, so the window survives the
 * counter wrapping. The window remembers the last SEQWIN_BITS numbers (a
 * ring of bits, so advancing by one costs one bit): a duplicate is
 * recognised, a late datagram (reordered, or retransmitted after a NACK)
 * fills its hole, and a number that leaves the window unseen (or is given
 * up) counts as lost exactly once. */
#ifndef HAFW_SEQWIN_H
#define HAFW_SEQWIN_H

#include <stdbool.h>
#include <stdint.h>

/* twice the default retransmit ring (sync.retransmit_ring): a hole stays
 * in the window, and so repairable by NACK, as long as the sender still
 * holds its datagram (2 KiB per peer) */
#define SEQWIN_BITS  16384
#define SEQWIN_WORDS (SEQWIN_BITS / 64)

/* a - b as a signed distance: > 0 when a is after b */
static inline int32_t seq_diff(uint32_t a, uint32_t b)
{
	return (int32_t)(a - b);
}

static inline bool seq_after(uint32_t a, uint32_t b)
{
	return seq_diff(a, b) > 0;
}

#define SEQWIN_LOST_LOG 32

struct seqwin {
	bool valid;
	bool lost_overflow;          /* the log below forgot some lost numbers */
	uint32_t first;              /* first number seen since the reset */
	uint32_t hi;                 /* highest number seen */
	uint32_t missing;            /* holes between first/hi-SEQWIN_BITS and hi */
	uint64_t seen[SEQWIN_WORDS]; /* bit (s % SEQWIN_BITS): s was seen or given up */
	/* the last numbers declared lost, so a range can be checked after it
	 * left the window; a jump over more than the window logs its ends */
	uint32_t lost_log[SEQWIN_LOST_LOG][2]; /* [from, to] ranges */
	unsigned nlost_log;                    /* entries used, at most the size */
	unsigned lost_next;                    /* ring position */
	uint32_t forgot_hi;                    /* with lost_overflow: the newest forgotten number */
};

enum seqwin_verdict {
	SEQWIN_NEW,   /* after everything seen: advances the window */
	SEQWIN_LATE,  /* fills a hole inside the window (reordered, retransmitted) */
	SEQWIN_DUP,   /* seen before (or already given up): drop it */
	SEQWIN_STALE, /* older than the window: drop it */
};

void seqwin_reset(struct seqwin *w);
/* Record seq; *lost gets how many numbers left the window unseen. */
enum seqwin_verdict seqwin_check(struct seqwin *w, uint32_t seq, uint64_t *lost);
/* Give up on every unseen number before `before`: returns how many. */
uint64_t seqwin_give_up(struct seqwin *w, uint32_t before);
/* Numbers in the window below hi not seen yet. */
unsigned seqwin_missing(const struct seqwin *w);
/* The oldest number the window holds (valid windows only). */
uint32_t seqwin_lo(const struct seqwin *w);
/* The holes as [from, to] ranges, oldest first, at most max of them;
 * returns how many. seqwin_holes_from: only those at `from` or after (a
 * hole that begins before it is cut there). */
unsigned seqwin_holes(const struct seqwin *w, uint32_t (*ranges)[2], unsigned max);
unsigned seqwin_holes_from(const struct seqwin *w, uint32_t from, uint32_t (*ranges)[2],
                           unsigned max);
/* Was every number of [from, to] seen? False when any of it was lost,
 * precedes the first number seen, or is not there yet. */
bool seqwin_has_all(const struct seqwin *w, uint32_t from, uint32_t to);

#endif
