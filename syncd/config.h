/* hafw-syncd configuration (libconfig). One table describes every scalar
 * option: its path, type, default and bounds; lists are handled beside it.
 * Errors name the file and line. */
#ifndef HAFW_CONFIG_H
#define HAFW_CONFIG_H

#include <net/if.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define CONFIG_MAX_LIST 64

struct hafw_config {
	int node_id;
	char node_name[64];
	char ctl_socket[108];
	char tracker_type[16];
	int nl_rcvbuf;
	int nl_rcvbuf_max;
	int commit_batch;
	char sync_if[IF_NAMESIZE];
	char sync_group[64];
	int sync_port;
	int sync_mtu;
	int sync_flush_ms;
	int sync_heartbeat_ms;
	int sync_ttl;
	int sync_rcvbuf;
	bool ignore_local;
	char ignore_addrs[CONFIG_MAX_LIST][64];
	int n_ignore_addrs;
	char keep_addrs[CONFIG_MAX_LIST][64];
	int n_keep_addrs;
	char ignore_protos[CONFIG_MAX_LIST][16];
	int n_ignore_protos;
	bool log_syslog;
	char log_level[16];
};

void config_defaults(struct hafw_config *c);
/* Returns 0, or -1 with "file:line: message" lines in err (all errors
 * found, not only the first). */
int config_load(const char *path, struct hafw_config *c, char *err, size_t errlen);
int config_log_level(const struct hafw_config *c);

#endif
