/* libFuzzer harness: a hafw-syncd configuration file. The input is
 * written to an in-memory file (memfd, or a temporary file when memfd is
 * not available) and loaded by path, as hafw-syncd does. */
#include "config.h"
#include "fuzz_assert.h"

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int fd = -1;
static char path[64];

static void open_file(void)
{
	fd = memfd_create("hafw-fuzz-config", 0);
	if (fd >= 0) {
		snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
		if (access(path, R_OK) == 0)
			return;
		close(fd);
	}
	snprintf(path, sizeof(path), "/tmp/hafw-fuzz-config-XXXXXX");
	fd = mkstemp(path);
	FUZZ_ASSERT(fd >= 0);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static char err[4096];
	struct hafw_config c;
	int ret;

	if (fd < 0)
		open_file();
	FUZZ_ASSERT(ftruncate(fd, 0) == 0);
	FUZZ_ASSERT(pwrite(fd, data, size, 0) == (ssize_t)size);
	ret = config_load(path, &c, err, sizeof(err));
	FUZZ_ASSERT(ret == 0 || ret == -1);
	FUZZ_ASSERT(memchr(err, '\0', sizeof(err)) != NULL);
	if (ret == 0) {
		/* what was accepted is complete and in range */
		FUZZ_ASSERT(err[0] == '\0');
		FUZZ_ASSERT(c.node_id > 0);
		FUZZ_ASSERT(c.node_name[0] && c.tracker_type[0] && c.sync_if[0] && c.sync_group[0]);
		FUZZ_ASSERT(c.sync_port >= 1 && c.sync_port <= 65535);
		FUZZ_ASSERT(c.n_ignore_addrs >= 0 && c.n_ignore_addrs <= CONFIG_MAX_LIST);
		FUZZ_ASSERT(c.n_keep_addrs >= 0 && c.n_keep_addrs <= CONFIG_MAX_LIST);
		FUZZ_ASSERT(c.n_ignore_protos >= 0 && c.n_ignore_protos <= CONFIG_MAX_LIST);
		FUZZ_ASSERT(config_log_level(&c) >= 0);
		FUZZ_ASSERT(c.nl_rcvbuf_max >= c.nl_rcvbuf);
	} else {
		/* every refusal says where */
		FUZZ_ASSERT(err[0] != '\0');
	}
	return 0;
}
