/* The replication core: tracker events in, frames out; frames in, external
 * caches updated; commit moves external caches into the tracker.
 *
 * It sees only the flow model, the tracker and channel ops, and the caches;
 * never netlink, sockets or OpenSSL. */
#ifndef HAFW_REPL_H
#define HAFW_REPL_H

#include "cache.h"
#include "chan.h"
#include "filter.h"
#include "tracker.h"
#include "wire.h"

#include <stdbool.h>
#include <stdint.h>

#define REPL_MAX_PEERS 32

enum repl_role { REPL_ROLE_UNKNOWN = 0, REPL_ROLE_PRIMARY, REPL_ROLE_BACKUP, REPL_ROLE_FAULT };

struct repl_peer {
	uint32_t id;
	char name[64];
	enum repl_role role;
	uint64_t boot_id;
	uint32_t last_seq;
	bool seq_valid;
	uint64_t last_seen_ms;
	uint32_t hb_flows, hb_exps; /* what the peer says it holds */
	struct cache *flows;
	struct cache *exps;
	uint64_t frames, events, lost_dgrams, restarts;
};

struct repl_stats {
	uint64_t local_new, local_update, local_destroy, local_exp_new, local_exp_destroy;
	uint64_t filtered;
	uint64_t encode_errors;
	uint64_t frames_sent, events_sent, heartbeats_sent, send_errors;
	uint64_t dgrams_received, own_dgrams, bad_dgrams[HAFW_WIRE_NERR];
	uint64_t bad_frames, bad_events, peers_refused;
	uint64_t events_received, heartbeats_received;
	uint64_t resyncs, resync_added, resync_removed, resync_changed, announces;
	uint64_t commits, commit_flows, commit_exps, commit_errors;
	uint64_t last_commit_us;
	uint64_t cache_nomem;
};

struct repl_commit_result {
	uint64_t flows, exps, errors, usec;
};

struct repl;
struct hafw_config;
struct event_base;

struct repl *repl_new(const struct hafw_config *cfg, struct event_base *base,
                      const struct tracker_ops *tops, const struct chan_ops *cops,
                      const struct hafw_filter *filter);
/* Opens tracker and channel, dumps the tracker and announces its state.
 * Returns 0 or a negative errno; *what names the part that failed. */
int repl_start(struct repl *r, const char **what);
void repl_free(struct repl *r);

int repl_commit(struct repl *r, struct repl_commit_result *res);
/* Drop cache contents; with tracker also flush the tracker's table. */
void repl_flush_internal(struct repl *r);
void repl_flush_external(struct repl *r);
void repl_set_role(struct repl *r, enum repl_role role);
enum repl_role repl_role(const struct repl *r);
const char *repl_role_name(enum repl_role role);

/* Read-only views for the control socket. */
const struct repl_stats *repl_get_stats(const struct repl *r);
struct cache *repl_internal_flows(struct repl *r);
struct cache *repl_internal_exps(struct repl *r);
int repl_npeers(const struct repl *r);
struct repl_peer *repl_peer_at(struct repl *r, int i);
struct repl_peer *repl_peer_by_id(struct repl *r, uint32_t id);
int repl_tracker_stats(struct repl *r, struct tracker_stat *out, int max);
int repl_chan_stats(struct repl *r, struct chan_stat *out, int max);
uint64_t repl_now_ms(void);
uint32_t repl_now_s(void);

#endif
