/* hafw-syncd configuration (libconfig). One table describes every scalar
 * option: its path, type, default and bounds; lists are handled beside it.
 * Errors name the file and line. */
#ifndef HAFW_CONFIG_H
#define HAFW_CONFIG_H

#include <net/if.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define CONFIG_MAX_LIST  64
#define CONFIG_MAX_PEERS 64

/* A peer named in the "peers" list: when the list exists, only these ids
 * are accepted on the sync link (and, with an address, only from it). */
struct hafw_config_peer {
	int id;
	char name[64];
	uint8_t addr_len; /* 0: any address; 4 or 16 */
	uint8_t addr[16];
};

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
	int sync_sndbuf;
	int sync_send_queue;
	int sync_dead_interval_ms;
	int sync_max_peers;
	int sync_peer_expire_s;
	int sync_max_entries;
	int sync_tombstone_ms;
	bool sync_nack;
	int sync_nack_interval_ms;
	int sync_retransmit_ring;
	bool sync_resync;
	int sync_digest_grace_ms;
	bool sync_control;       /* the TCP control channel */
	int sync_control_port;   /* its TCP port (0: sync.port) */
	int sync_control_buffer; /* bytes that may wait for one peer */
	struct hafw_config_peer peers[CONFIG_MAX_PEERS];
	int n_peers;
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
