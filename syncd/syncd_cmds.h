/* hafw-syncd's control commands (the table the control socket serves). */
#ifndef HAFW_SYNCD_CMDS_H
#define HAFW_SYNCD_CMDS_H

#include "ctl.h"

#include <stdbool.h>

struct hafw_config;
struct repl;
struct localaddr_watch;
struct json_object;

struct syncd_ctx {
	const struct hafw_config *cfg;
	struct repl *repl;
	struct ctl *ctl;
	struct localaddr_watch *local; /* NULL with filter.ignore_local off */
	unsigned long long started_ms;
	struct ctl_req *commit_req; /* the client waiting for the running commit */
};

extern const struct ctl_cmd syncd_cmds[];

/* Request fields: a boolean (absent: false); an id (-1 absent, -2 invalid). */
bool syncd_req_bool(struct json_object *req, const char *key);
long long syncd_req_id(struct json_object *req, const char *key);
/* "flows" / "expectations", streamed (syncd_list.c). */
struct json_object *syncd_list(struct syncd_ctx *s, struct json_object *req, struct ctl_req *cr,
                               bool exp);

#endif
