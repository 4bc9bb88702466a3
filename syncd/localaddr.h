/* The node's own addresses, read and followed live through rtnetlink.
 *
 * Flows from or to this node, and on the sync link, are not replicated
 * (filter.h). Virtual addresses move between nodes (keepalived) long after
 * syncd started, so the set is followed: the watcher hears every address
 * event, reads the whole set again and reports it when it differs.
 *
 * The set: every address of every interface as a /32 or /128, plus each
 * subnet of the sync interface, deduplicated, in a canonical order (so two
 * sets compare with memcmp). Kept out of the replication core: it needs
 * sockets. */
#ifndef HAFW_LOCALADDR_H
#define HAFW_LOCALADDR_H

#include "filter.h"

#include <stdint.h>

struct event_base;
struct localaddr_watch;

/* Reads the current set into out[0..*n). sync_ifname and backup_ifname
 * (the sync links) may be NULL or name an interface that does not exist
 * (then no subnet is added for it). Returns 0, -ENOSPC when the set has
 * more than max networks, -EINVAL for bad arguments, or the netlink
 * error. */
int localaddr_read(const char *sync_ifname, const char *backup_ifname, struct filter_net *out,
                   unsigned max, unsigned *n);

/* The set after a change; nets stays valid until the next call or close. */
typedef void (*localaddr_changed_fn)(void *arg, const struct filter_net *nets, unsigned n);

/* Subscribes to address events, then reads the set and calls changed()
 * once before returning, so the caller has it with no gap. Later calls
 * come from the loop, at most one per loop turn, only when the set
 * differs from the last one reported. changed() may close the watcher
 * except from the call inside open. Returns 0 or a negative errno. */
int localaddr_watch_open(struct localaddr_watch **w, struct event_base *base,
                         const char *sync_ifname, const char *backup_ifname,
                         localaddr_changed_fn changed, void *arg);
void localaddr_watch_close(struct localaddr_watch *w);

struct localaddr_stat {
	const char *name;
	uint64_t value;
};

/* Counters as name/value pairs, like the trackers' and channels'. */
int localaddr_watch_stats(const struct localaddr_watch *w, struct localaddr_stat *out, int max);

/* The event socket, for tests that shrink its buffer to force overruns. */
int localaddr_watch_fd(const struct localaddr_watch *w);

#endif
