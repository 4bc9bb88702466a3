/* Control socket: a unix stream socket that only root may open. One JSON
 * request per line, one JSON response per line, then the server closes.
 * Commands come from a table given by the program. */
#ifndef HAFW_CTL_H
#define HAFW_CTL_H

struct json_object;
struct event_base;
struct ctl;

/* Returns a new response object; the server adds "ok" when absent. */
typedef struct json_object *(*ctl_handler)(void *arg, struct json_object *req);

struct ctl_cmd {
	const char *name;
	ctl_handler fn;
};

/* cmds ends with {NULL, NULL}. Returns 0 or a negative errno. */
int ctl_open(struct ctl **out, struct event_base *base, const char *path,
             const struct ctl_cmd *cmds, void *arg);
void ctl_close(struct ctl *c);
/* {"ok": false, "error": msg} */
struct json_object *ctl_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

#endif
