/* hafw-syncd's control commands (the table the control socket serves). */
#ifndef HAFW_SYNCD_CMDS_H
#define HAFW_SYNCD_CMDS_H

#include "ctl.h"

struct hafw_config;
struct repl;

struct syncd_ctx {
	const struct hafw_config *cfg;
	struct repl *repl;
	unsigned long long started_ms;
};

extern const struct ctl_cmd syncd_cmds[];

#endif
