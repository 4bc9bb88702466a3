/* The replication core: tracker events in, frames out; frames in, external
 * caches updated; commit moves external caches into the tracker.
 *
 * It sees only the flow model, the tracker and channel ops, and the caches;
 * never netlink, sockets or OpenSSL (the build checks it). Everything it
 * does runs in bounded slices on the caller's libevent loop; time comes
 * from a clock the caller may replace (tests do). */
#ifndef HAFW_REPL_H
#define HAFW_REPL_H

#include "cache.h"
#include "chan.h"
#include "filter.h"
#include "seqwin.h"
#include "tracker.h"
#include "wire.h"

#include <stdbool.h>
#include <stdint.h>

/* A hole is given up once it is older than the peer's heartbeat that came
 * this many heartbeat intervals ago, and at least REPL_GIVE_UP_MIN_MS ago:
 * NACKs (every tick) had that long to fill it. With short heartbeats a
 * count alone would give up after a few NACK rounds, which at high loss
 * turns repairable holes into resyncs. */
#define REPL_GIVE_UP_HEARTBEATS 3
#define REPL_GIVE_UP_MIN_MS     2000
#define REPL_HB_HISTORY         64

enum repl_role { REPL_ROLE_UNKNOWN = 0, REPL_ROLE_PRIMARY, REPL_ROLE_BACKUP, REPL_ROLE_FAULT };

/* Why a datagram or an event from a peer was not applied; each has its
 * counter (per peer where a peer is known, else node-wide). */
struct repl_peer_stats {
	uint64_t dgrams, frames, events, heartbeats;
	uint64_t lost_dgrams;   /* numbers that never arrived */
	uint64_t dup_dgrams;    /* seen before: dropped */
	uint64_t gaps;          /* numbers missing when a later one arrived (NACKed) */
	uint64_t late_dgrams;   /* reordered, applied */
	uint64_t stale_dgrams;  /* older than the window: dropped */
	uint64_t stale_epoch;   /* from an earlier run of the peer: dropped */
	uint64_t stale_events;  /* older version than the one held */
	uint64_t resurrections; /* late copy of a destroyed entry: refused */
	uint64_t cap_refused;   /* the peer's cache is full */
	uint64_t tombs_dropped; /* too many tombstones: a destroy kept none */
	uint64_t bad_frames, bad_events, bad_heartbeats;
	uint64_t restarts;       /* new epochs seen */
	uint64_t restart_swept;  /* entries of an old epoch the new one lacked */
	uint64_t sweeps_skipped; /* full state incomplete: old entries kept */
	uint64_t name_mismatch;  /* heartbeat name differs from the config */
	uint64_t went_down;
	uint64_t window_resets; /* long run of stale numbers: window followed the sender */
	uint64_t nacks_sent, nack_ranges; /* our NACKs to this peer, holes they named */
	uint64_t nacks_sent_control;      /* ... of them over the control connection */
	uint64_t misses;                  /* the peer answered: no longer in its ring */
	uint64_t resyncs_loss;            /* full state asked for because datagrams were lost */
	uint64_t resyncs_digest;          /* ... because the digests kept disagreeing */
	uint64_t digest_mismatch;         /* heartbeats whose digest differed from our copy */
	uint64_t late_heartbeats;         /* arrived after a later datagram: not applied */
	uint64_t resyncs_requested;       /* by hafwctl resync */
	uint64_t bulks_requested, bulks_received, bulks_resumed, bulks_stalled;
	uint64_t bad_control;     /* malformed or unexpected control messages */
	uint64_t unknown_fields;  /* fields a later minor version added: skipped */
	uint64_t unknown_types;   /* message types of a later minor version: skipped */
	uint64_t version_refused; /* another major version: connection refused */
	uint64_t bad_nacks;
	uint64_t probes; /* on a link that is not its active one */
	uint64_t nomem;
};

/* sync.interface and sync.backup_interface */
#define REPL_MAX_LINKS 2

struct repl_peer {
	uint32_t id;
	char name[64];
	bool configured;            /* listed in "peers": never expires */
	struct chan_addr cfg_addr;  /* len 0: any source */
	struct chan_addr cfg_addr2; /* on the backup link */
	struct chan_addr addr;      /* where its datagrams come from (and on which link) */
	uint64_t link_seen_ms[REPL_MAX_LINKS]; /* last heard on each sync link */
	bool up;
	enum repl_role role;
	uint32_t epoch;
	bool epoch_valid;
	uint64_t epoch_seen_ms; /* last datagram of the current epoch */
	struct seqwin win;
	/* numbers and arrival times of its last heartbeats, oldest first:
	 * where the give-up point is (see REPL_GIVE_UP_HEARTBEATS) */
	uint32_t hb_seqs[REPL_HB_HISTORY];
	uint64_t hb_ms[REPL_HB_HISTORY];
	unsigned nhb;
	/* a restart marked the caches; old entries go once the new epoch's
	 * full state is confirmed complete */
	bool sweep_pending, sweeping, need_full;
	bool synced; /* its full state of this epoch arrived complete */
	/* the number from which a full transmission counts for the pending
	 * sweep: one that began earlier was sent before we marked */
	uint32_t mark_seq;
	/* old entries yield to any version while a restart's sweep is
	 * pending (the new run's clock may be behind); not for a resync */
	bool yield_old_gen;
	unsigned stale_run;
	uint64_t stale_since_ms; /* the run of stale numbers began */
	uint64_t nack_ms;        /* our last NACK to it */
	uint64_t behind_ms;      /* since when its stream has holes (0: none) */
	/* NACK marks: holes up to nack_hi were NACKed at least once, up to
	 * nack_round_hi by the last round (a round re-NACKs those), up to
	 * nack_esc_hi by the round before (those go over the connection) */
	bool nack_valid;
	uint32_t nack_hi, nack_round_hi, nack_esc_hi;
	uint64_t nack_fresh_ms;
	/* the control connection (repl_bulk.c) */
	bool ctl_added, ctl_up, hello_sent;
	struct chan_addr ctl_addr; /* the connection goes there */
	uint64_t ctl_retry_ms;     /* no connection before (after a refusal) */
	uint32_t caps, proto_minor;
	struct bulk_tx *btx; /* a bulk we send it */
	uint64_t bulk_rx_id, bulk_rx_entries, bulk_rx_frames, bulk_rx_ms, bulk_req_ms;
	bool bulk_rx_active;
	uint64_t resync_ms;     /* when we last asked for its full state */
	uint64_t digest_bad_ms; /* digests disagree since */
	size_t sweep_cursor_f, sweep_cursor_x;
	uint64_t last_seen_ms;
	uint64_t up_since_ms;
	uint32_t hb_flows, hb_exps; /* what the peer says it holds */
	struct cache *flows;
	struct cache *exps;
	size_t gc_cursor_f, gc_cursor_x;
	struct repl_peer_stats st;
};

struct repl_stats {
	uint64_t local_new, local_update, local_destroy, local_exp_new, local_exp_destroy;
	uint64_t destroy_unknown; /* destroy of a flow the cache did not hold: sent anyway */
	uint64_t update_reads;    /* update of a flow the cache lacked: read from the tracker */
	uint64_t update_reads_stale, update_reads_failed;
	uint64_t filtered;
	uint64_t encode_errors;
	uint64_t frames_sent, events_sent, heartbeats_sent, send_errors;
	uint64_t dgrams_received, own_dgrams, bad_dgrams[HAFW_WIRE_NERR];
	uint64_t peers_refused_unknown, peers_refused_source, peers_refused_full,
	    peers_refused_rate;
	uint64_t peers_expired, peers_evicted;
	uint64_t version_future; /* a version far ahead of our clock: not followed */
	uint64_t nacks_received, nacks_refused, retransmits, ring_misses;
	uint64_t coalesced; /* events merged into a later one before sending */
	uint64_t link_switches;
	uint64_t control_msgs, bulk_requests, bulks_sent, bulk_entries_sent;
	uint64_t unprotected_gone; /* flows destroyed before sync.delay_ms: never sent */
	uint64_t events_received, heartbeats_received;
	uint64_t dumps, dumps_aborted, resync_added, resync_removed, resync_changed;
	uint64_t announces, announces_merged, announce_requests;
	uint64_t commits, commit_flows, commit_exps, commit_errors, commit_superseded;
	uint64_t last_commit_us;
	uint64_t cache_nomem;
	uint64_t tombs_expired;
	/* the longest piece of background work in one turn of the loop
	 * (commit, sweep, announce slices), microseconds */
	uint64_t slice_max_us;
};

struct repl_commit_result {
	uint64_t flows, exps, errors, superseded, usec;
};

/* Time as the core sees it; NULL members mean the system clocks. */
struct repl_clock {
	uint64_t (*mono_ms)(void *arg); /* monotonic milliseconds */
	uint64_t (*wall_us)(void *arg); /* wall clock, microseconds */
	void *arg;
};

struct repl;
struct hafw_config;
struct event_base;

/* cops: the data channel (datagrams); ccops: the control channel (one
 * connection per peer, for hello and bulks), NULL for none. */
struct repl *repl_new(const struct hafw_config *cfg, struct event_base *base,
                      const struct tracker_ops *tops, const struct chan_ops *cops,
                      const struct chan_ops *ccops, const struct hafw_filter *filter,
                      const struct repl_clock *clock);
/* Opens tracker and channel and starts the first dump (it completes on the
 * loop). Returns 0 or a negative errno; *what names the part that failed. */
int repl_start(struct repl *r, const char **what);
void repl_free(struct repl *r);

/* Commit: write the newest copy of every peer's flows and expectations into
 * the tracker, in slices; done() runs once it is complete (never from
 * inside this call). Returns 0, or -EBUSY while a commit runs. */
typedef void (*repl_commit_done_fn)(void *arg, int status, const struct repl_commit_result *res);
int repl_commit_start(struct repl *r, repl_commit_done_fn done, void *arg);
/* The waiter of the running commit went away: the commit goes on. */
void repl_commit_forget(struct repl *r);
bool repl_committing(const struct repl *r);

/* Drop the internal cache and reconcile it with the tracker (a dump that
 * re-announces everything); drop the peers' caches. */
void repl_flush_internal(struct repl *r);
void repl_flush_external(struct repl *r);
/* Reconcile the internal cache with a dump of the tracker. */
void repl_resync(struct repl *r);
/* Ask a peer (id 0: every peer) for its full state: our copy is marked
 * and what the state does not refresh is swept. Returns how many peers
 * were asked (a resync already pending counts as asked). */
int repl_resync_peers(struct repl *r, uint32_t id);
/* In sync: the node has learned its own table, and every peer that is up
 * has sent its full state, completely, with no resync pending and no
 * digest disagreeing. When not, *why says what is missing. */
bool repl_ready(struct repl *r, char *why, size_t len);
/* For tests of the digest: forget up to n entries of a peer's copy
 * behind the core's back. Returns how many. */
size_t repl_debug_forget(struct repl *r, uint32_t id, size_t n);
void repl_set_role(struct repl *r, enum repl_role role);
enum repl_role repl_role(const struct repl *r);
const char *repl_role_name(enum repl_role role);
/* The filter the core applies; the caller may replace its local set
 * (filter_set_local) as addresses come and go. */
struct hafw_filter *repl_filter(struct repl *r);

/* Send what is queued now instead of at the end of the flush interval. */
void repl_flush_frames(struct repl *r);
/* Periodic work (heartbeats, peer liveness, tombstone expiry, restart
 * sweeps); the core's own timer calls it, tests call it after moving their
 * clock. */
void repl_tick(struct repl *r);

/* Read-only views for the control socket. */
const struct repl_stats *repl_get_stats(const struct repl *r);
struct cache *repl_internal_flows(struct repl *r);
struct cache *repl_internal_exps(struct repl *r);
int repl_npeers(const struct repl *r);
struct repl_peer *repl_peer_at(struct repl *r, int i);
struct repl_peer *repl_peer_by_id(struct repl *r, uint32_t id);
uint32_t repl_epoch(const struct repl *r);
bool repl_dumping(const struct repl *r);
/* New flows not sent yet because they are younger than sync.delay_ms. */
size_t repl_txq_delayed_count(const struct repl *r);
int repl_tracker_stats(struct repl *r, struct tracker_stat *out, int max);
int repl_chan_stats(struct repl *r, struct chan_stat *out, int max); /* the first link's */
int repl_control_stats(struct repl *r, struct chan_stat *out, int max);
/* The counters of every peer forgotten so far, summed. */
const struct repl_peer_stats *repl_gone_peers_stats(const struct repl *r);
/* Sync links (repl_link.c): how many, which one carries our datagrams,
 * its interface, whether every peer that is up was heard on it lately,
 * and its channel's counters. */
int repl_nlinks(const struct repl *r);
int repl_active_link(const struct repl *r);
const char *repl_link_name(const struct repl *r, int link);
bool repl_link_healthy(const struct repl *r, int link);
int repl_link_stats(struct repl *r, int link, struct chan_stat *out, int max);
uint64_t repl_now_ms(const struct repl *r);
/* Monotonic clock of the process, for callers without a repl. */
uint64_t repl_mono_ms(void);

#endif
