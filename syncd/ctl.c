#include "ctl.h"
#include "log.h"

#include <errno.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/listener.h>
#include <json-c/json.h>
#include <libgen.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#define CTL_MAX_REQUEST 65536

struct ctl {
	struct evconnlistener *lis;
	const struct ctl_cmd *cmds;
	void *arg;
	char path[108];
	unsigned long refused, bad_requests;
};

static struct hafw_ratelimit rl_ctl = HAFW_RATELIMIT_INIT(5, 5);

struct json_object *ctl_error(const char *fmt, ...)
{
	struct json_object *o = json_object_new_object();
	char msg[256];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	json_object_object_add(o, "ok", json_object_new_boolean(0));
	json_object_object_add(o, "error", json_object_new_string(msg));
	return o;
}

static void finish_cb(struct bufferevent *bev, void *arg)
{
	(void)arg;
	bufferevent_free(bev);
}

static void reply(struct bufferevent *bev, struct json_object *resp)
{
	const char *s = json_object_to_json_string_ext(resp, JSON_C_TO_STRING_PLAIN);

	struct evbuffer *out = bufferevent_get_output(bev);

	evbuffer_add(out, s, strlen(s));
	evbuffer_add(out, "\n", 1);
	json_object_put(resp);
	/* Write now rather than on a later turn of the loop: work the command
	 * scheduled (the reconciling dump after a commit) must not delay the
	 * answer. A large answer that does not fit is sent from the buffer. */
	while (evbuffer_get_length(out) > 0 && evbuffer_write(out, bufferevent_getfd(bev)) > 0)
		;
	if (evbuffer_get_length(out) == 0) {
		/* EOF now: closing the socket may wait for the end of this turn */
		shutdown(bufferevent_getfd(bev), SHUT_WR);
		bufferevent_free(bev);
		return;
	}
	/* close once the rest has left */
	bufferevent_setcb(bev, NULL, finish_cb, NULL, NULL);
	bufferevent_disable(bev, EV_READ);
}

static struct json_object *dispatch(struct ctl *c, const char *line)
{
	struct json_object *req = json_tokener_parse(line), *cmd, *resp;
	const char *name;

	if (!req || !json_object_is_type(req, json_type_object) ||
	    !json_object_object_get_ex(req, "cmd", &cmd) ||
	    !json_object_is_type(cmd, json_type_string)) {
		c->bad_requests++;
		json_object_put(req);
		return ctl_error("request must be a JSON object with a \"cmd\" string");
	}
	name = json_object_get_string(cmd);
	for (const struct ctl_cmd *k = c->cmds; k->name; k++) {
		if (strcmp(k->name, name))
			continue;
		resp = k->fn(c->arg, req);
		json_object_put(req);
		if (!resp)
			return ctl_error("out of memory");
		if (!json_object_object_get_ex(resp, "ok", NULL))
			json_object_object_add(resp, "ok", json_object_new_boolean(1));
		return resp;
	}
	c->bad_requests++;
	resp = ctl_error("unknown command \"%.64s\"", name);
	json_object_put(req);
	return resp;
}

static void read_cb(struct bufferevent *bev, void *arg)
{
	struct ctl *c = arg;
	struct evbuffer *in = bufferevent_get_input(bev);
	size_t n;
	char *line = evbuffer_readln(in, &n, EVBUFFER_EOL_LF);

	if (!line) {
		if (evbuffer_get_length(in) > CTL_MAX_REQUEST) {
			c->bad_requests++;
			reply(bev, ctl_error("request longer than %d bytes", CTL_MAX_REQUEST));
		}
		return;
	}
	reply(bev, dispatch(c, line));
	free(line);
}

static void event_cb(struct bufferevent *bev, short what, void *arg)
{
	(void)arg;
	if (what & (BEV_EVENT_EOF | BEV_EVENT_ERROR | BEV_EVENT_TIMEOUT))
		bufferevent_free(bev);
}

static void accept_cb(struct evconnlistener *lis, evutil_socket_t fd, struct sockaddr *sa,
                      int salen, void *arg)
{
	struct ctl *c = arg;
	struct bufferevent *bev;
	struct ucred cred;
	socklen_t len = sizeof(cred);
	struct timeval tmo = {10, 0};

	(void)lis;
	(void)sa;
	(void)salen;
	/* the file mode already keeps others out; this also covers a socket
	 * passed around or a directory with looser rights */
	if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) < 0 || cred.uid != 0) {
		c->refused++;
		hafw_log_rl(&rl_ctl, LOG_WARNING, "control: refused connection from uid %d",
		            (int)cred.uid);
		close(fd);
		return;
	}
	bev = bufferevent_socket_new(evconnlistener_get_base(lis), fd, BEV_OPT_CLOSE_ON_FREE);
	if (!bev) {
		close(fd);
		return;
	}
	bufferevent_setcb(bev, read_cb, NULL, event_cb, c);
	bufferevent_set_timeouts(bev, &tmo, &tmo);
	bufferevent_enable(bev, EV_READ);
}

static int make_dir(const char *path)
{
	char dir[108];

	snprintf(dir, sizeof(dir), "%s", path);
	dirname(dir);
	if (mkdir(dir, 0700) < 0 && errno != EEXIST)
		return -errno;
	return 0;
}

int ctl_open(struct ctl **out, struct event_base *base, const char *path,
             const struct ctl_cmd *cmds, void *arg)
{
	struct ctl *c = calloc(1, sizeof(*c));
	struct sockaddr_un sun = {.sun_family = AF_UNIX};
	evutil_socket_t fd = -1;
	mode_t old;
	int ret;

	if (!c)
		return -ENOMEM;
	if (strlen(path) >= sizeof(sun.sun_path)) {
		ret = -ENAMETOOLONG;
		goto err;
	}
	c->cmds = cmds;
	c->arg = arg;
	snprintf(c->path, sizeof(c->path), "%s", path);
	strcpy(sun.sun_path, path);
	ret = make_dir(path);
	if (ret)
		goto err;
	/* a socket file left by a crashed run refuses connections; one that
	 * answers belongs to a running daemon */
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd >= 0 && connect(fd, (struct sockaddr *)&sun, sizeof(sun)) == 0) {
		ret = -EADDRINUSE;
		goto err;
	}
	if (fd >= 0)
		close(fd);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		ret = -errno;
		goto err;
	}
	unlink(path);
	old = umask(0177);
	ret = bind(fd, (struct sockaddr *)&sun, sizeof(sun));
	umask(old);
	if (ret < 0) {
		ret = -errno;
		goto err;
	}
	c->lis = evconnlistener_new(base, accept_cb, c, LEV_OPT_CLOSE_ON_FREE, 16, fd);
	if (!c->lis) {
		ret = -ENOMEM;
		unlink(path);
		goto err;
	}
	*out = c;
	return 0;
err:
	if (fd >= 0)
		close(fd);
	free(c);
	return ret;
}

void ctl_close(struct ctl *c)
{
	if (!c)
		return;
	evconnlistener_free(c->lis);
	unlink(c->path);
	free(c);
}
