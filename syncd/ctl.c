#include "ctl.h"
#include "log.h"

#include <errno.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/listener.h>
#include <json-c/json.h>
#include <libgen.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#define CTL_MAX_REQUEST 65536
/* A stream is refilled when less than this waits to leave: enough to keep
 * the socket busy, small enough that a thousand clients cost little. */
#define CTL_STREAM_LOWAT (64 * 1024)
/* fill() calls per turn of the loop, for producers whose slices are tiny */
#define CTL_FILLS_PER_TURN 32
/* a producer with nothing to give yet is asked again after this */
#define CTL_STREAM_RETRY_MS 10
/* how long the listener rests when accept() runs out of descriptors */
#define CTL_ACCEPT_PAUSE_MS 100
#define CTL_DEFAULT_TMO_MS  10000

enum ctl_state {
	CS_READING,  /* waiting for the request line */
	CS_LATER,    /* the handler answers later */
	CS_STREAM,   /* fill() produces the answer */
	CS_FLUSHING, /* the answer is complete and leaving */
	CS_CLOSING,  /* being freed: callbacks into us are ignored */
};

struct ctl_req {
	struct ctl *c;
	struct bufferevent *bev;
	/* request deadline, deferred answer deadline, stream retry */
	struct event *tmr;
	enum ctl_state state;
	size_t scanned; /* input already searched for the end of line */
	bool in_handler;
	struct json_object *early; /* ctl_answer() before the handler returned */
	/* owed to the handler's owner, each exactly once */
	bool cancel_due, done_due;
	void (*cancel)(void *arg);
	void *cancel_arg;
	const struct ctl_stream_ops *ops;
	void *stream_state;
	struct ctl_req *prev, *next;
};

struct ctl {
	struct event_base *base;
	struct evconnlistener *lis;
	struct event *accept_pause;
	const struct ctl_cmd *cmds;
	void *arg;
	char path[108];
	struct timeval tmo_request, tmo_answer, tmo_write;
	struct ctl_stats st;
	struct ctl_req *conns; /* every open connection, to end them on close */
};

/* Handlers return these to say the answer comes later or as a stream;
 * they are only compared, never handed to json-c. */
static char later_marker, stream_marker;
#define CTL_LATER  ((struct json_object *)&later_marker)
#define CTL_STREAM ((struct json_object *)&stream_marker)

static struct hafw_ratelimit rl_ctl = HAFW_RATELIMIT_INIT(5, 5);

static struct timeval ms_tv(unsigned ms)
{
	return (struct timeval){.tv_sec = ms / 1000, .tv_usec = (ms % 1000) * 1000};
}

struct json_object *ctl_error(const char *fmt, ...)
{
	struct json_object *o = json_object_new_object();
	char msg[256];
	va_list ap;

	if (!o)
		return NULL;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	json_object_object_add(o, "ok", json_object_new_boolean(0));
	json_object_object_add(o, "error", json_object_new_string(msg));
	return o;
}

/* The one way a connection ends. The owner of a deferred or streamed
 * answer hears of it here, once, before its request is freed. */
static void conn_end(struct ctl_req *cr)
{
	struct ctl *c = cr->c;

	cr->state = CS_CLOSING;
	if (cr->cancel_due) {
		cr->cancel_due = false;
		if (cr->cancel)
			cr->cancel(cr->cancel_arg);
	}
	if (cr->done_due) {
		cr->done_due = false;
		cr->ops->done(cr->stream_state);
	}
	json_object_put(cr->early);
	if (cr->prev)
		cr->prev->next = cr->next;
	else
		c->conns = cr->next;
	if (cr->next)
		cr->next->prev = cr->prev;
	event_free(cr->tmr);
	bufferevent_free(cr->bev);
	free(cr);
	c->st.open_now--;
}

static void conn_abort(struct ctl_req *cr)
{
	cr->c->st.aborted++;
	conn_end(cr);
}

/* The client left for good (closed), rather than only shutting down its
 * sending side while it still waits for the answer. */
static bool peer_gone(evutil_socket_t fd)
{
	struct pollfd p = {.fd = fd};

	return poll(&p, 1, 0) == 1 && (p.revents & (POLLHUP | POLLERR));
}

static void event_cb(struct bufferevent *bev, short what, void *arg)
{
	struct ctl_req *cr = arg;

	if (what & BEV_EVENT_TIMEOUT) {
		cr->c->st.timeouts++;
		conn_end(cr);
		return;
	}
	/* libevent stopped reading at EOF; a deferred answer can still go */
	if ((what & BEV_EVENT_EOF) && !(what & BEV_EVENT_ERROR) && cr->state == CS_LATER &&
	    !peer_gone(bufferevent_getfd(bev)))
		return;
	if (what & (BEV_EVENT_EOF | BEV_EVENT_ERROR))
		conn_abort(cr);
}

static void flushed_cb(struct bufferevent *bev, void *arg)
{
	(void)bev;
	conn_end(arg);
}

/* The answer is complete in the output buffer. Write it now rather than
 * on a later turn of the loop: work the command scheduled (the
 * reconciling dump after a commit) must not delay it. What does not fit
 * in the socket leaves from the buffer, under the write timeout. */
static void flush(struct ctl_req *cr)
{
	struct evbuffer *out = bufferevent_get_output(cr->bev);
	evutil_socket_t fd = bufferevent_getfd(cr->bev);

	cr->state = CS_FLUSHING;
	event_del(cr->tmr);
	bufferevent_disable(cr->bev, EV_READ);
	while (evbuffer_get_length(out) > 0) {
		int n;

		/* A bufferevent keeps the start of its output frozen so that
		 * only its own write callback drains it; it thaws it the same
		 * way around each write. */
		evbuffer_unfreeze(out, 1);
		n = evbuffer_write(out, fd);
		evbuffer_freeze(out, 1);
		if (n >= 0 || errno == EINTR)
			continue;
		if (errno == EAGAIN || errno == EWOULDBLOCK)
			break;
		conn_abort(cr);
		return;
	}
	if (evbuffer_get_length(out) == 0) {
		/* EOF now: the close itself may wait for the end of this
		 * callback */
		shutdown(fd, SHUT_WR);
		conn_end(cr);
		return;
	}
	bufferevent_setwatermark(cr->bev, EV_WRITE, 0, 0);
	bufferevent_setcb(cr->bev, NULL, flushed_cb, event_cb, cr);
	bufferevent_enable(cr->bev, EV_WRITE);
}

static void reply(struct ctl_req *cr, struct json_object *resp)
{
	struct evbuffer *out = bufferevent_get_output(cr->bev);
	const char *s;

	if (!resp)
		resp = ctl_error("out of memory");
	if (!resp) {
		conn_end(cr);
		return;
	}
	if (json_object_is_type(resp, json_type_object) &&
	    !json_object_object_get_ex(resp, "ok", NULL))
		json_object_object_add(resp, "ok", json_object_new_boolean(1));
	s = json_object_to_json_string_ext(resp, JSON_C_TO_STRING_PLAIN);
	if (!s || evbuffer_add(out, s, strlen(s)) < 0 || evbuffer_add(out, "\n", 1) < 0) {
		json_object_put(resp);
		conn_end(cr);
		return;
	}
	json_object_put(resp);
	flush(cr);
}

/* Fill the output buffer up to the low watermark, a bounded number of
 * slices per turn. Called again by the write callback as it drains. */
static void stream_pump(struct ctl_req *cr)
{
	struct evbuffer *out = bufferevent_get_output(cr->bev);

	for (int i = 0; i < CTL_FILLS_PER_TURN; i++) {
		size_t before = evbuffer_get_length(out);

		if (before >= CTL_STREAM_LOWAT)
			return;
		if (cr->ops->fill(cr->stream_state, out)) {
			/* done() runs when the connection ends, after the
			 * last slice left or the client did */
			flush(cr);
			return;
		}
		if (evbuffer_get_length(out) == before)
			break;
	}
	/* Nothing left to send and no slice given: no write will call us
	 * back, so a timer does. */
	if (evbuffer_get_length(out) == 0) {
		struct timeval tv = ms_tv(CTL_STREAM_RETRY_MS);

		event_add(cr->tmr, &tv);
	}
}

static void stream_write_cb(struct bufferevent *bev, void *arg)
{
	(void)bev;
	stream_pump(arg);
}

static void stream_start(struct ctl_req *cr)
{
	cr->state = CS_STREAM;
	event_del(cr->tmr);
	bufferevent_disable(cr->bev, EV_READ);
	bufferevent_setwatermark(cr->bev, EV_WRITE, CTL_STREAM_LOWAT, 0);
	bufferevent_setcb(cr->bev, NULL, stream_write_cb, event_cb, cr);
	bufferevent_enable(cr->bev, EV_WRITE);
	stream_pump(cr);
}

static void later_start(struct ctl_req *cr)
{
	cr->state = CS_LATER;
	/* Input stays enabled only so that a client that closes is noticed;
	 * read_cb drops whatever else it sends. */
	event_add(cr->tmr, &cr->c->tmo_answer);
}

/* Parse one request line: a JSON object and nothing after it. */
static struct json_object *parse_request(const char *line, size_t len)
{
	struct json_tokener *tok = json_tokener_new();
	struct json_object *req;
	size_t end;

	if (!tok)
		return NULL;
	req = json_tokener_parse_ex(tok, line, (int)len);
	if (!req || json_tokener_get_error(tok) != json_tokener_success) {
		json_object_put(req);
		json_tokener_free(tok);
		return NULL;
	}
	for (end = json_tokener_get_parse_end(tok); end < len; end++)
		if (line[end] != ' ' && line[end] != '\t' && line[end] != '\r')
			break;
	json_tokener_free(tok);
	if (end < len || !json_object_is_type(req, json_type_object)) {
		json_object_put(req);
		return NULL;
	}
	return req;
}

static const struct ctl_cmd *find_cmd(const struct ctl *c, struct json_object *req)
{
	struct json_object *cmd;
	const char *name;
	size_t len;

	if (!json_object_object_get_ex(req, "cmd", &cmd) ||
	    !json_object_is_type(cmd, json_type_string))
		return NULL;
	name = json_object_get_string(cmd);
	len = (size_t)json_object_get_string_len(cmd);
	for (const struct ctl_cmd *k = c->cmds; k->name; k++)
		if (strlen(k->name) == len && !memcmp(k->name, name, len))
			return k;
	return NULL;
}

/* Takes req. cr may be gone when this returns. */
static void dispatch(struct ctl_req *cr, struct json_object *req)
{
	struct ctl *c = cr->c;
	const struct ctl_cmd *k;
	struct json_object *resp, *cmd;

	if (!req) {
		c->st.bad_requests++;
		reply(cr, ctl_error("request must be a JSON object with a \"cmd\" string"));
		return;
	}
	k = find_cmd(c, req);
	if (!k) {
		c->st.bad_requests++;
		if (json_object_object_get_ex(req, "cmd", &cmd) &&
		    json_object_is_type(cmd, json_type_string))
			resp = ctl_error("unknown command \"%.64s\"", json_object_get_string(cmd));
		else
			resp = ctl_error("request must be a JSON object with a \"cmd\" string");
		json_object_put(req);
		reply(cr, resp);
		return;
	}
	cr->in_handler = true;
	resp = k->fn(c->arg, req, cr);
	cr->in_handler = false;
	json_object_put(req);
	if (resp == CTL_LATER && cr->cancel_due) {
		later_start(cr);
		return;
	}
	if (resp == CTL_LATER && cr->early) {
		/* answered before the handler returned */
		resp = cr->early;
		cr->early = NULL;
	} else if (resp == CTL_STREAM && cr->done_due) {
		stream_start(cr);
		return;
	} else if (resp == CTL_LATER || resp == CTL_STREAM) {
		/* a marker without its registration: a handler bug */
		hafw_log_rl(&rl_ctl, LOG_ERR, "control: command %s returned no answer", k->name);
		resp = ctl_error("internal error");
	}
	/* a plain answer; a cancel() or done() still owed runs when the
	 * connection ends */
	reply(cr, resp);
}

static void read_cb(struct bufferevent *bev, void *arg)
{
	struct ctl_req *cr = arg;
	struct evbuffer *in = bufferevent_get_input(bev);
	struct evbuffer_ptr p;
	struct json_object *req;
	size_t len = evbuffer_get_length(in);
	unsigned char *line;

	if (cr->state != CS_READING) {
		evbuffer_drain(in, len);
		return;
	}
	/* search only what is new: a client sending a byte at a time must
	 * not make this quadratic */
	if (evbuffer_ptr_set(in, &p, cr->scanned, EVBUFFER_PTR_SET) < 0)
		evbuffer_ptr_set(in, &p, 0, EVBUFFER_PTR_SET);
	p = evbuffer_search(in, "\n", 1, &p);
	if (p.pos < 0 || (size_t)p.pos > CTL_MAX_REQUEST) {
		cr->scanned = len;
		if (len > CTL_MAX_REQUEST) {
			cr->c->st.bad_requests++;
			reply(cr, ctl_error("request longer than %d bytes", CTL_MAX_REQUEST));
		}
		return;
	}
	line = evbuffer_pullup(in, p.pos + 1);
	req = line ? parse_request((const char *)line, (size_t)p.pos) : NULL;
	evbuffer_drain(in, (size_t)p.pos + 1);
	dispatch(cr, req);
}

static void tmr_cb(evutil_socket_t fd, short what, void *arg)
{
	struct ctl_req *cr = arg;

	(void)fd;
	(void)what;
	switch (cr->state) {
	case CS_READING:
	case CS_LATER:
		cr->c->st.timeouts++;
		conn_end(cr);
		break;
	case CS_STREAM:
		stream_pump(cr);
		break;
	default:
		break;
	}
}

static void accept_cb(struct evconnlistener *lis, evutil_socket_t fd, struct sockaddr *sa,
                      int salen, void *arg)
{
	struct ctl *c = arg;
	struct ctl_req *cr;
	struct ucred cred;
	socklen_t len = sizeof(cred);

	(void)lis;
	(void)sa;
	(void)salen;
	/* the file mode already keeps others out; this also covers a socket
	 * passed around or a directory with looser rights */
	if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) < 0) {
		c->st.refused++;
		hafw_log_rl(&rl_ctl, LOG_WARNING, "control: refused connection: peer unknown: %s",
		            strerror(errno));
		close(fd);
		return;
	}
	if (cred.uid != 0) {
		c->st.refused++;
		hafw_log_rl(&rl_ctl, LOG_WARNING, "control: refused connection from uid %u",
		            (unsigned)cred.uid);
		close(fd);
		return;
	}
	cr = calloc(1, sizeof(*cr));
	if (!cr) {
		close(fd);
		return;
	}
	cr->c = c;
	cr->bev = bufferevent_socket_new(c->base, fd, BEV_OPT_CLOSE_ON_FREE);
	cr->tmr = evtimer_new(c->base, tmr_cb, cr);
	if (!cr->bev || !cr->tmr) {
		if (cr->tmr)
			event_free(cr->tmr);
		if (cr->bev)
			bufferevent_free(cr->bev);
		else
			close(fd);
		free(cr);
		return;
	}
	cr->next = c->conns;
	if (c->conns)
		c->conns->prev = cr;
	c->conns = cr;
	c->st.accepted++;
	c->st.open_now++;
	/* A deadline for the whole request, not an idle timeout: a client
	 * trickling bytes is dropped as surely as a silent one. */
	event_add(cr->tmr, &c->tmo_request);
	bufferevent_set_timeouts(cr->bev, NULL, &c->tmo_write);
	/* Reading stops at the limit; read_cb refuses the request there. */
	bufferevent_setwatermark(cr->bev, EV_READ, 0, CTL_MAX_REQUEST + 1);
	bufferevent_setcb(cr->bev, read_cb, NULL, event_cb, cr);
	bufferevent_enable(cr->bev, EV_READ);
}

static void accept_resume(evutil_socket_t fd, short what, void *arg)
{
	struct ctl *c = arg;

	(void)fd;
	(void)what;
	evconnlistener_enable(c->lis);
}

static void accept_error_cb(struct evconnlistener *lis, void *arg)
{
	struct ctl *c = arg;
	int err = EVUTIL_SOCKET_ERROR();
	struct timeval tv = ms_tv(CTL_ACCEPT_PAUSE_MS);

	hafw_log_rl(&rl_ctl, LOG_WARNING, "control: accept: %s", strerror(err));
	/* Out of descriptors, the pending connection stays readable: without
	 * a pause the loop would spin on it. */
	evconnlistener_disable(lis);
	event_add(c->accept_pause, &tv);
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

void ctl_set_timeouts(struct ctl *c, unsigned request_ms, unsigned answer_ms, unsigned write_ms)
{
	c->tmo_request = ms_tv(request_ms);
	c->tmo_answer = ms_tv(answer_ms);
	c->tmo_write = ms_tv(write_ms);
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
	c->base = base;
	c->cmds = cmds;
	c->arg = arg;
	ctl_set_timeouts(c, CTL_DEFAULT_TMO_MS, CTL_DEFAULT_TMO_MS, CTL_DEFAULT_TMO_MS);
	snprintf(c->path, sizeof(c->path), "%s", path);
	strcpy(sun.sun_path, path);
	c->accept_pause = evtimer_new(base, accept_resume, c);
	if (!c->accept_pause) {
		ret = -ENOMEM;
		goto err;
	}
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
	/* CLOSE_ON_EXEC: accepted sockets must not leak into scripts */
	c->lis = evconnlistener_new(base, accept_cb, c,
	                            LEV_OPT_CLOSE_ON_FREE | LEV_OPT_CLOSE_ON_EXEC, 16, fd);
	if (!c->lis) {
		ret = -ENOMEM;
		unlink(path);
		goto err;
	}
	evconnlistener_set_error_cb(c->lis, accept_error_cb);
	*out = c;
	return 0;
err:
	if (fd >= 0)
		close(fd);
	if (c->accept_pause)
		event_free(c->accept_pause);
	free(c);
	return ret;
}

void ctl_close(struct ctl *c)
{
	if (!c)
		return;
	while (c->conns)
		conn_end(c->conns);
	evconnlistener_free(c->lis);
	event_free(c->accept_pause);
	unlink(c->path);
	free(c);
}

void ctl_get_stats(const struct ctl *c, struct ctl_stats *out)
{
	*out = c->st;
}

struct json_object *ctl_later(struct ctl_req *cr, void (*cancel)(void *arg), void *arg)
{
	cr->cancel = cancel;
	cr->cancel_arg = arg;
	cr->cancel_due = true;
	return CTL_LATER;
}

void ctl_answer(struct ctl_req *cr, struct json_object *resp)
{
	/* only a pending deferred answer; anything else is dropped */
	if (!cr || !cr->cancel_due || (cr->state != CS_LATER && !cr->in_handler)) {
		json_object_put(resp);
		return;
	}
	cr->cancel_due = false;
	if (cr->in_handler) {
		json_object_put(cr->early);
		cr->early = resp ? resp : ctl_error("out of memory");
		return;
	}
	reply(cr, resp);
}

struct json_object *ctl_stream(struct ctl_req *cr, const struct ctl_stream_ops *ops, void *state)
{
	cr->ops = ops;
	cr->stream_state = state;
	cr->done_due = true;
	return CTL_STREAM;
}
