/* libFuzzer harness: one flow or expectation blob as a peer sends it (and
 * as the caches store it). */
#include "flow_pb.h"
#include "fuzz_check.h"

#include <errno.h>
#include <stddef.h>
#include <stdint.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	uint8_t blob[HAFW_FLOW_MAX_ENCODED];
	struct hafw_flow f;
	struct hafw_exp e;
	int ret;

	ret = hafw_flow_decode(data, size, &f);
	FUZZ_ASSERT(ret == 0 || ret == -EINVAL);
	if (ret == 0)
		fuzz_check_flow(&f, blob);
	ret = hafw_exp_decode(data, size, &e);
	FUZZ_ASSERT(ret == 0 || ret == -EINVAL);
	if (ret == 0)
		fuzz_check_exp(&e, blob);
	return 0;
}
