/* Invariants shared by the harnesses: whatever the decoder accepts must be
 * something we can encode again (into the buffer size the daemon uses) and
 * decode back. With HAFW_FUZZ_STRICT the second decode must also equal the
 * first, attribute by attribute. */
#ifndef HAFW_FUZZ_CHECK_H
#define HAFW_FUZZ_CHECK_H

#include "flow_pb.h"
#include "fuzz_assert.h"

#include <stdio.h>
#include <stdlib.h>

/* Returns the encoded length, written to blob. */
static inline int fuzz_check_flow(const struct hafw_flow *f, uint8_t *blob)
{
	struct hafw_flow g;
	int n = hafw_flow_encode(f, blob, HAFW_FLOW_MAX_ENCODED);

	FUZZ_ASSERT(n > 0);
	FUZZ_ASSERT(hafw_flow_decode(blob, (size_t)n, &g) == 0);
#ifdef HAFW_FUZZ_STRICT
	if (hafw_flow_diff(f, &g, 0)) {
		fprintf(stderr, "flow round trip differs in %s\n", hafw_flow_diff(f, &g, 0));
		abort();
	}
#endif
	return n;
}

static inline int fuzz_check_exp(const struct hafw_exp *e, uint8_t *blob)
{
	struct hafw_exp x;
	int n = hafw_exp_encode(e, blob, HAFW_FLOW_MAX_ENCODED);

	FUZZ_ASSERT(n > 0);
	FUZZ_ASSERT(hafw_exp_decode(blob, (size_t)n, &x) == 0);
#ifdef HAFW_FUZZ_STRICT
	if (hafw_exp_diff(e, &x, 0)) {
		fprintf(stderr, "expectation round trip differs in %s\n", hafw_exp_diff(e, &x, 0));
		abort();
	}
#endif
	return n;
}

#endif
