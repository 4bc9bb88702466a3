/* Control socket: a unix stream socket that only root may open. One JSON
 * request per line, one JSON response per line, then the server closes.
 * Commands come from a table given by the program.
 *
 * A handler answers at once (returns the response), later (returns
 * ctl_later() and calls ctl_answer() when the work is done), or in a
 * stream (returns ctl_stream()): large answers are produced in bounded
 * slices while the client reads, never built whole in memory. A client
 * that leaves, stalls past the timeout or sends garbage costs nothing
 * after it is gone: its connection, buffers and any pending answer are
 * freed on every path. */
#ifndef HAFW_CTL_H
#define HAFW_CTL_H

#include <stdbool.h>
#include <stddef.h>

struct json_object;
struct event_base;
struct evbuffer;
struct ctl;
struct ctl_req; /* one request being answered */

/* Returns a new response object (the server adds "ok" when absent), or
 * the marker returned by ctl_later() / ctl_stream(). */
typedef struct json_object *(*ctl_handler)(void *arg, struct json_object *req, struct ctl_req *cr);

struct ctl_cmd {
	const char *name;
	ctl_handler fn;
};

/* cmds ends with {NULL, NULL}. Returns 0 or a negative errno. */
int ctl_open(struct ctl **out, struct event_base *base, const char *path,
             const struct ctl_cmd *cmds, void *arg);
/* Open connections end with it: pending cancel() and done() run. */
void ctl_close(struct ctl *c);
/* Limits of one connection, in milliseconds, 10 s each by default:
 * request, from accept to a full request line; answer, for a deferred
 * answer to come; write, for a client that reads nothing while an answer
 * waits to leave. They apply to connections accepted afterwards. */
void ctl_set_timeouts(struct ctl *c, unsigned request_ms, unsigned answer_ms, unsigned write_ms);
/* {"ok": false, "error": msg} */
struct json_object *ctl_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Answer later. cancel(arg) is called (once, and then cr is gone) if the
 * client leaves or times out before ctl_answer(); the owner drops its
 * pointer to cr then. Return the result from the handler. */
struct json_object *ctl_later(struct ctl_req *cr, void (*cancel)(void *arg), void *arg);
/* The deferred answer; takes resp. cr is gone afterwards. */
void ctl_answer(struct ctl_req *cr, struct json_object *resp);

/* Answer in a stream. fill() appends the next slice of the answer to out
 * (a bounded amount: a few hundred entries) and returns true when the
 * answer is complete (it ends with a newline, its only one; the server
 * adds nothing, so the document carries its own "ok"). It is called again
 * whenever the client has read what was written. done(state) is called
 * exactly once: after the last slice left, or when the client went away
 * first. Return the result from the handler. */
struct ctl_stream_ops {
	bool (*fill)(void *state, struct evbuffer *out);
	void (*done)(void *state);
};
struct json_object *ctl_stream(struct ctl_req *cr, const struct ctl_stream_ops *ops, void *state);

/* Counters of the control socket, for stats. aborted: the client left
 * before its answer was complete (or before it asked); timeouts: dropped
 * by one of the timeouts above. */
struct ctl_stats {
	unsigned long accepted, refused, bad_requests, timeouts, aborted, open_now;
};
void ctl_get_stats(const struct ctl *c, struct ctl_stats *out);

#endif
