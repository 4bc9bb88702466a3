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
	for (uint32_t s = 101; s <= 400; s++)
		seqwin_check(&w, s, &lost), total += lost;
	assert_int_equal(total, 1); /* 51 left the window */
	assert_false(seqwin_has_all(&w, 1, 400));
	assert_false(seqwin_has_all(&w, 51, 51));
	assert_true(seqwin_has_all(&w, 52, 400));
	assert_true(seqwin_has_all(&w, 1, 49));
	/* a jump far past the window */
	assert_int_equal(seqwin_check(&w, 400 + 10 * SEQWIN_BITS, &lost), SEQWIN_NEW);
	/* jumped over: those that never entered the window are lost now, the
	 * rest when they leave it */
	assert_int_equal(lost, 9 * SEQWIN_BITS);
	assert_int_equal(seqwin_missing(&w), SEQWIN_BITS - 1);
	assert_false(seqwin_has_all(&w, 401, 400 + 10 * SEQWIN_BITS));
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
	for (uint32_t s = 0xffffff00u; s != 0x100; s++) {
		if (s == 3)
			continue;
		assert_int_equal(seqwin_check(&w, s, &lost), SEQWIN_NEW);
		total += lost;
	}
	assert_int_equal(total, 1); /* 3, once it left the window */
	assert_int_equal(seqwin_check(&w, 3, &lost), SEQWIN_STALE);
	assert_int_equal(seqwin_check(&w, 0xffffffffu, &lost), SEQWIN_STALE);
	assert_int_equal(seqwin_check(&w, 0xff, &lost), SEQWIN_DUP);
	assert_true(seqwin_has_all(&w, 0xffffff00u, 2));
	assert_true(seqwin_has_all(&w, 0xf0, 0xff));
	assert_false(seqwin_has_all(&w, 0xffffff00u, 5));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_in_order_and_duplicates),
	    cmocka_unit_test(test_reorder),
	    cmocka_unit_test(test_loss),
	    cmocka_unit_test(test_lost_log_overflow),
	    cmocka_unit_test(test_wrap),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
