/* syncd/seqwin.c: the receive window over a sender's sequence numbers. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "seqwin.h"

static void test_in_order_and_duplicates(void **state)
{
	struct seqwin w;
	uint64_t lost;

	(void)state;
	seqwin_reset(&w);
	for (uint32_t s = 10; s < 1000; s++) {
		assert_int_equal(seqwin_check(&w, s, &lost), SEQWIN_NEW);
		assert_int_equal(lost, 0);
	}
	assert_int_equal(seqwin_check(&w, 999, &lost), SEQWIN_DUP);
	assert_int_equal(seqwin_check(&w, 900, &lost), SEQWIN_DUP);
	assert_int_equal(seqwin_check(&w, 999 - SEQWIN_BITS, &lost), SEQWIN_STALE);
	assert_int_equal(seqwin_missing(&w), 0);
	assert_true(seqwin_has_all(&w, 10, 999));
	assert_true(seqwin_has_all(&w, 500, 600));
	assert_false(seqwin_has_all(&w, 9, 999));   /* before the first seen */
	assert_false(seqwin_has_all(&w, 10, 1000)); /* not there yet */
}

/* Reordering is neither loss nor a step backwards. */
static void test_reorder(void **state)
{
	struct seqwin w;
	uint64_t lost, total = 0;

	(void)state;
	seqwin_reset(&w);
	assert_int_equal(seqwin_check(&w, 1, &lost), SEQWIN_NEW);
	assert_int_equal(seqwin_check(&w, 3, &lost), SEQWIN_NEW);
	assert_int_equal(seqwin_missing(&w), 1);
	assert_false(seqwin_has_all(&w, 1, 3));
	assert_int_equal(seqwin_check(&w, 2, &lost), SEQWIN_LATE);
	assert_int_equal(seqwin_check(&w, 2, &lost), SEQWIN_DUP);
	assert_int_equal(w.hi, 3);
	assert_true(seqwin_has_all(&w, 1, 3));
	for (uint32_t s = 4; s < 2000; s++)
		seqwin_check(&w, s, &lost), total += lost;
	assert_int_equal(total, 0);
}

/* Loss is counted once, when a number leaves the window or is given up;
 * a range with a loss is never "all there". */
static void test_loss(void **state)
{
	struct seqwin w;
	uint64_t lost, total = 0;

	(void)state;
	seqwin_reset(&w);
	for (uint32_t s = 1; s <= 100; s++)
		if (s != 50 && s != 51)
			seqwin_check(&w, s, &lost), total += lost;
	assert_int_equal(total, 0);
	assert_int_equal(seqwin_missing(&w), 2);
	assert_int_equal(seqwin_give_up(&w, 51), 1); /* only 50 is before 51 */
	assert_int_equal(seqwin_give_up(&w, 51), 0);
	assert_int_equal(seqwin_check(&w, 50, &lost), SEQWIN_DUP);
	for (uint32_t s = 101; s <= 200 + SEQWIN_BITS; s++)
		seqwin_check(&w, s, &lost), total += lost;
	assert_int_equal(total, 1); /* 51 left the window */
	assert_false(seqwin_has_all(&w, 1, 200 + SEQWIN_BITS));
	assert_false(seqwin_has_all(&w, 51, 51));
	assert_true(seqwin_has_all(&w, 52, 200 + SEQWIN_BITS));
	assert_true(seqwin_has_all(&w, 1, 49));
	/* a jump far past the window */
	assert_int_equal(seqwin_check(&w, 400 + 10 * SEQWIN_BITS, &lost), SEQWIN_NEW);
	/* jumped over: those that never entered the window are lost now, the
	 * rest when they leave it */
	assert_int_equal(lost, 200 + 8 * SEQWIN_BITS);
	assert_int_equal(seqwin_missing(&w), SEQWIN_BITS - 1);
	assert_false(seqwin_has_all(&w, 401 + SEQWIN_BITS, 400 + 10 * SEQWIN_BITS));
	assert_true(seqwin_has_all(&w, 400 + 10 * SEQWIN_BITS, 400 + 10 * SEQWIN_BITS));
}

/* The lost log forgets old entries: a range older than what it still
 * remembers is reported as not known to be complete. */
static void test_lost_log_overflow(void **state)
{
	struct seqwin w;
	uint64_t lost;

	(void)state;
	seqwin_reset(&w);
	for (uint32_t s = 1; s <= 20000; s++)
		if (s % 100 != 0)
			seqwin_check(&w, s, &lost);
	assert_true(w.lost_overflow);
	assert_false(seqwin_has_all(&w, 150, 199 + 1));
	assert_false(seqwin_has_all(&w, 101, 150)); /* forgotten area: unknown */
	assert_true(seqwin_has_all(&w, 19901, 19999));
}

/* Serial arithmetic across the wrap of the 32-bit counter. */
static void test_wrap(void **state)
{
	struct seqwin w;
	uint64_t lost, total = 0;

	(void)state;
	assert_true(seq_after(0, 0xffffffffu));
	assert_true(seq_after(5, 0xfffffff0u));
	assert_false(seq_after(0xfffffff0u, 5));
	assert_int_equal(seq_diff(2, 0xfffffffeu), 4);
	seqwin_reset(&w);
	const uint32_t end = 2 * SEQWIN_BITS;

	for (uint32_t s = 0xffffff00u; s != end; s++) {
		if (s == 3)
			continue;
		assert_int_equal(seqwin_check(&w, s, &lost), SEQWIN_NEW);
		total += lost;
	}
	assert_int_equal(total, 1); /* 3, once it left the window */
	assert_int_equal(seqwin_check(&w, 3, &lost), SEQWIN_STALE);
	assert_int_equal(seqwin_check(&w, 0xffffffffu, &lost), SEQWIN_STALE);
	assert_int_equal(seqwin_check(&w, end - 1, &lost), SEQWIN_DUP);
	assert_true(seqwin_has_all(&w, 0xffffff00u, 2));
	assert_true(seqwin_has_all(&w, end - 100, end - 1));
	assert_false(seqwin_has_all(&w, 0xffffff00u, 5));
}

/* The holes a NACK asks for: ranges, oldest first, filled as they come. */
static void test_holes(void **state)
{
	struct seqwin w;
	uint64_t lost;
	uint32_t r[8][2];

	(void)state;
	seqwin_reset(&w);
	assert_int_equal(seqwin_holes(&w, r, 8), 0);
	for (uint32_t s = 1000; s <= 1100; s++)
		if ((s < 1010 || s > 1019) && s != 1050 && s != 1090 && s != 1091)
			seqwin_check(&w, s, &lost);
	assert_int_equal(seqwin_missing(&w), 13);
	assert_int_equal(seqwin_holes(&w, r, 8), 3);
	assert_int_equal(r[0][0], 1010);
	assert_int_equal(r[0][1], 1019);
	assert_int_equal(r[1][0], 1050);
	assert_int_equal(r[1][1], 1050);
	assert_int_equal(r[2][0], 1090);
	assert_int_equal(r[2][1], 1091);
	assert_int_equal(seqwin_holes(&w, r, 2), 2); /* at most max */
	assert_int_equal(seqwin_check(&w, 1050, &lost), SEQWIN_LATE);
	assert_int_equal(seqwin_missing(&w), 12);
	assert_int_equal(seqwin_holes(&w, r, 8), 2);
	/* a hole at the top: the next number jumps */
	seqwin_check(&w, 1105, &lost);
	assert_int_equal(seqwin_holes(&w, r, 8), 3);
	assert_int_equal(r[2][0], 1101);
	assert_int_equal(r[2][1], 1104);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_in_order_and_duplicates),
	    cmocka_unit_test(test_reorder),
	    cmocka_unit_test(test_loss),
	    cmocka_unit_test(test_lost_log_overflow),
	    cmocka_unit_test(test_wrap),
	    cmocka_unit_test(test_holes),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
