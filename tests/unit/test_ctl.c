/* syncd/ctl.c: the control socket. Server and clients live in this process:
 * the clients are non-blocking unix sockets and the test turns the event
 * loop by hand, so every wait is bounded by a deadline. The uid check is
 * not covered: a client of another uid would need a second process.
 * TEST_CTL_FILTER=<name pattern> runs some of the tests. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "ctl.h"

#include <dirent.h>
#include <errno.h>
#include <event2/buffer.h>
#include <event2/event.h>
#include <json-c/json.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#define N_ENTRIES 200000
#define SLICE     500
#define BIG_LEN   (1 << 20)
/* What the server may hold for one stream: its low watermark (64 KiB)
 * plus one slice of ours (500 entries of at most 14 bytes) and change. */
#define OUT_BOUND (96 * 1024)
#define BATCH     50

struct pend {
	struct ctl_req *cr;
	struct event *tmr;
};

struct sstate {
	int i, n;
};

static struct {
	struct event_base *base;
	struct ctl *ctl;
	char dir[64], rundir[80], path[100];
	int fds_at_start;
	unsigned long imm_calls, later_calls, answered, cancels;
	unsigned long stream_calls, fills, dones;
	size_t max_out;
	/* descriptors taken and the limit lowered by test_accept_out_of_fds */
	int *dups, ndup;
	struct rlimit rlim;
	bool rlim_low;
} T;

static long now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* One pass of the loop, even when some descriptor stays ready. */
static void spin(void)
{
	event_base_loop(T.base, EVLOOP_NONBLOCK | EVLOOP_ONCE);
}

/* Turn the loop until cond holds or ms have passed; the value of cond. */
#define WAIT_FOR(cond, ms)                                                                         \
	({                                                                                         \
		long end_ = now_ms() + (ms);                                                       \
		bool ok_;                                                                          \
		while (!(ok_ = (cond)) && now_ms() < end_)                                         \
			spin();                                                                    \
		ok_;                                                                               \
	})

static void pump(int ms)
{
	long end = now_ms() + ms;

	while (now_ms() < end)
		spin();
}

static int fd_count(void)
{
	DIR *d = opendir("/proc/self/fd");
	struct dirent *e;
	int n = 0;

	assert_non_null(d);
	while ((e = readdir(d)))
		n += e->d_name[0] != '.';
	closedir(d);
	return n;
}

static struct ctl_stats stats(void)
{
	struct ctl_stats st;

	ctl_get_stats(T.ctl, &st);
	return st;
}

static int req_int(struct json_object *req, const char *key, int def)
{
	struct json_object *v;

	return json_object_object_get_ex(req, key, &v) ? json_object_get_int(v) : def;
}

/* ---- the commands under test ---- */

static struct json_object *h_imm(void *arg, struct json_object *req, struct ctl_req *cr)
{
	struct json_object *o = json_object_new_object();

	(void)arg;
	(void)req;
	(void)cr;
	T.imm_calls++;
	json_object_object_add(o, "x", json_object_new_int(1));
	return o;
}

/* An answer larger than the socket buffer, given at once. */
static struct json_object *h_big(void *arg, struct json_object *req, struct ctl_req *cr)
{
	struct json_object *o = json_object_new_object();
	char *s = malloc(BIG_LEN);

	(void)arg;
	(void)req;
	(void)cr;
	assert_non_null(s);
	memset(s, 'a', BIG_LEN);
	json_object_object_add(o, "blob", json_object_new_string_len(s, BIG_LEN));
	free(s);
	return o;
}

static void pend_fire(evutil_socket_t fd, short what, void *arg)
{
	struct pend *p = arg;
	struct json_object *o = json_object_new_object();

	(void)fd;
	(void)what;
	json_object_object_add(o, "answer", json_object_new_int(42));
	T.answered++;
	ctl_answer(p->cr, o);
	event_free(p->tmr);
	free(p);
}

static void pend_cancel(void *arg)
{
	struct pend *p = arg;

	T.cancels++;
	event_free(p->tmr);
	free(p);
}

/* Answers after "ms" milliseconds from a timer. */
static struct json_object *h_later(void *arg, struct json_object *req, struct ctl_req *cr)
{
	struct pend *p = calloc(1, sizeof(*p));
	int ms = req_int(req, "ms", 20);
	struct timeval tv = {ms / 1000, (ms % 1000) * 1000};

	(void)arg;
	assert_non_null(p);
	T.later_calls++;
	p->cr = cr;
	p->tmr = evtimer_new(T.base, pend_fire, p);
	assert_non_null(p->tmr);
	evtimer_add(p->tmr, &tv);
	return ctl_later(cr, pend_cancel, p);
}

static void count_cancel(void *arg)
{
	(void)arg;
	T.cancels++;
}

/* Defers, then finds the answer before returning. */
static struct json_object *h_later_sync(void *arg, struct json_object *req, struct ctl_req *cr)
{
	struct json_object *o = json_object_new_object(), *r;

	(void)arg;
	(void)req;
	T.later_calls++;
	r = ctl_later(cr, count_cancel, NULL);
	json_object_object_add(o, "sync", json_object_new_boolean(1));
	T.answered++;
	ctl_answer(cr, o);
	return r;
}

static bool s_fill(void *state, struct evbuffer *out)
{
	struct sstate *s = state;
	int end = s->n - s->i > SLICE ? s->i + SLICE : s->n;
	bool first = s->i == 0;

	T.fills++;
	if (first)
		evbuffer_add_printf(out, "{\"ok\":true,\"entries\":[");
	for (; s->i < end; s->i++)
		evbuffer_add_printf(out, "%s{\"i\":%d}", s->i ? "," : "", s->i);
	if (s->i == s->n)
		evbuffer_add_printf(out, "]}\n");
	if (evbuffer_get_length(out) > T.max_out)
		T.max_out = evbuffer_get_length(out);
	return s->i == s->n;
}

static void s_done(void *state)
{
	T.dones++;
	free(state);
}

static const struct ctl_stream_ops s_ops = {.fill = s_fill, .done = s_done};

/* "n" entries (N_ENTRIES by default) in slices of SLICE. */
static struct json_object *h_stream(void *arg, struct json_object *req, struct ctl_req *cr)
{
	struct sstate *s = calloc(1, sizeof(*s));

	(void)arg;
	assert_non_null(s);
	T.stream_calls++;
	s->n = req_int(req, "n", N_ENTRIES);
	return ctl_stream(cr, &s_ops, s);
}

static const struct ctl_cmd cmds[] = {
    {"imm", h_imm},       {"big", h_big}, {"later", h_later}, {"later_sync", h_later_sync},
    {"stream", h_stream}, {NULL, NULL},
};

/* ---- clients ---- */

static int cl_connect(void)
{
	struct sockaddr_un sun = {.sun_family = AF_UNIX};
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	long end = now_ms() + 5000;

	assert_true(fd >= 0);
	strcpy(sun.sun_path, T.path);
	/* a full backlog says EAGAIN: let the server accept and retry */
	while (connect(fd, (struct sockaddr *)&sun, sizeof(sun)) < 0) {
		assert_int_equal(errno, EAGAIN);
		assert_true(now_ms() < end);
		spin();
	}
	return fd;
}

/* false when the server closed before everything was sent */
static bool cl_send_len(int fd, const char *s, size_t len)
{
	long end = now_ms() + 5000;

	while (len) {
		ssize_t n = send(fd, s, len, MSG_NOSIGNAL);

		if (n < 0 && (errno == EPIPE || errno == ECONNRESET))
			return false;
		if (n < 0) {
			assert_int_equal(errno, EAGAIN);
			assert_true(now_ms() < end);
			spin();
			continue;
		}
		s += n;
		len -= (size_t)n;
	}
	return true;
}

static void cl_send(int fd, const char *s)
{
	assert_true(cl_send_len(fd, s, strlen(s)));
}

/* Everything until the server closes, at most chunk bytes per turn of
 * the loop: a slow reader when chunk is small. */
static char *cl_recv_all(int fd, size_t chunk, size_t *lenp)
{
	size_t cap = 1 << 16, len = 0;
	char *buf = malloc(cap);
	long end = now_ms() + 30000;

	assert_non_null(buf);
	for (;;) {
		ssize_t n;

		if (len + chunk + 1 > cap) {
			cap = 2 * (len + chunk + 1);
			buf = realloc(buf, cap);
			assert_non_null(buf);
		}
		n = recv(fd, buf + len, chunk, 0);
		/* unread bytes of ours in the server's socket make its close
		 * show here as ECONNRESET, after all it sent */
		if (n == 0 || (n < 0 && errno == ECONNRESET))
			break;
		if (n < 0) {
			assert_int_equal(errno, EAGAIN);
			assert_true(now_ms() < end);
		} else {
			len += (size_t)n;
		}
		spin();
	}
	buf[len] = '\0';
	*lenp = len;
	return buf;
}

/* One answer: a single JSON document ending with the only newline. */
static struct json_object *parse_answer(char *buf, size_t len)
{
	struct json_object *o;

	assert_true(len > 0);
	assert_int_equal(buf[len - 1], '\n');
	assert_ptr_equal(memchr(buf, '\n', len), buf + len - 1);
	o = json_tokener_parse(buf);
	assert_non_null(o);
	return o;
}

static struct json_object *ask_len(const char *req, size_t reqlen)
{
	int fd = cl_connect();
	struct json_object *o;
	size_t len;
	char *buf;

	assert_true(cl_send_len(fd, req, reqlen));
	buf = cl_recv_all(fd, 65536, &len);
	close(fd);
	o = parse_answer(buf, len);
	free(buf);
	return o;
}

static struct json_object *ask(const char *req)
{
	return ask_len(req, strlen(req));
}

static bool ok_of(struct json_object *o)
{
	struct json_object *v;

	assert_true(json_object_object_get_ex(o, "ok", &v));
	return json_object_get_boolean(v);
}

static int int_of(struct json_object *o, const char *key)
{
	struct json_object *v;

	assert_true(json_object_object_get_ex(o, key, &v));
	return json_object_get_int(v);
}

/* The server closed: EOF (or the reset of a close with our bytes unread)
 * with nothing before it. */
static void assert_closed_silently(int fd)
{
	size_t len;
	char *buf = cl_recv_all(fd, 4096, &len);

	assert_int_equal(len, 0);
	free(buf);
}

/* ---- fixtures ---- */

static int setup(void **state)
{
	(void)state;
	memset(&T, 0, sizeof(T));
	T.fds_at_start = fd_count();
	snprintf(T.dir, sizeof(T.dir), "/tmp/hafw-test-ctl-XXXXXX");
	if (!mkdtemp(T.dir))
		return -1;
	/* ctl_open creates the socket's directory */
	snprintf(T.rundir, sizeof(T.rundir), "%s/run", T.dir);
	snprintf(T.path, sizeof(T.path), "%s/ctl.sock", T.rundir);
	T.base = event_base_new();
	if (!T.base || ctl_open(&T.ctl, T.base, T.path, cmds, NULL) < 0)
		return -1;
	return 0;
}

static void fds_restore(void)
{
	while (T.ndup > 0)
		close(T.dups[--T.ndup]);
	free(T.dups);
	T.dups = NULL;
	if (T.rlim_low)
		setrlimit(RLIMIT_NOFILE, &T.rlim);
	T.rlim_low = false;
}

static int teardown(void **state)
{
	(void)state;
	fds_restore();
	ctl_close(T.ctl);
	event_base_free(T.base);
	unlink(T.path);
	rmdir(T.rundir);
	rmdir(T.dir);
	/* no test leaves a descriptor behind */
	if (fd_count() != T.fds_at_start) {
		fprintf(stderr, "fds: %d at start, %d now\n", T.fds_at_start, fd_count());
		return -1;
	}
	return 0;
}

/* ---- tests ---- */

static void test_socket_rules(void **state)
{
	struct ctl *second = NULL;
	struct json_object *o;
	struct stat sb;

	(void)state;
	assert_int_equal(stat(T.rundir, &sb), 0);
	assert_int_equal(sb.st_mode & 0777, 0700);
	assert_int_equal(stat(T.path, &sb), 0);
	assert_true(S_ISSOCK(sb.st_mode));
	assert_int_equal(sb.st_mode & 0777, 0600);
	/* a second daemon on the same path is refused, the first keeps it */
	assert_int_equal(ctl_open(&second, T.base, T.path, cmds, NULL), -EADDRINUSE);
	assert_null(second);
	o = ask("{\"cmd\":\"imm\"}\n");
	assert_true(ok_of(o));
	json_object_put(o);
}

static void test_stale_socket_replaced(void **state)
{
	struct sockaddr_un sun = {.sun_family = AF_UNIX};
	struct ctl *c = NULL;
	char path[120];
	int fd;

	(void)state;
	/* a socket file left by a crashed run: bound, nobody listening */
	snprintf(path, sizeof(path), "%s/stale.sock", T.rundir);
	strcpy(sun.sun_path, path);
	fd = socket(AF_UNIX, SOCK_STREAM, 0);
	assert_true(fd >= 0);
	assert_int_equal(bind(fd, (struct sockaddr *)&sun, sizeof(sun)), 0);
	close(fd);
	assert_int_equal(ctl_open(&c, T.base, path, cmds, NULL), 0);
	ctl_close(c);
	assert_int_equal(access(path, F_OK), -1);
}

static void test_immediate(void **state)
{
	struct json_object *o;
	struct ctl_stats st;

	(void)state;
	o = ask("{\"cmd\":\"imm\"}\n");
	/* the server adds "ok" */
	assert_true(ok_of(o));
	assert_int_equal(int_of(o, "x"), 1);
	json_object_put(o);
	st = stats();
	assert_int_equal(st.accepted, 1);
	assert_int_equal(st.open_now, 0);
	assert_int_equal(st.aborted, 0);
	assert_int_equal(st.bad_requests, 0);
}

static void test_immediate_large(void **state)
{
	struct json_object *o, *v;

	(void)state;
	o = ask("{\"cmd\":\"big\"}\n");
	assert_true(ok_of(o));
	assert_true(json_object_object_get_ex(o, "blob", &v));
	assert_int_equal(json_object_get_string_len(v), BIG_LEN);
	json_object_put(o);
	assert_int_equal(stats().open_now, 0);
}

static void test_deferred(void **state)
{
	struct json_object *o;
	size_t len;
	char *buf;
	int fd;

	(void)state;
	o = ask("{\"cmd\":\"later\",\"ms\":20}\n");
	assert_true(ok_of(o));
	assert_int_equal(int_of(o, "answer"), 42);
	json_object_put(o);

	/* answered before the handler returned */
	o = ask("{\"cmd\":\"later_sync\"}\n");
	assert_true(ok_of(o));
	json_object_put(o);

	/* input after the request is not read as another request */
	fd = cl_connect();
	cl_send(fd, "{\"cmd\":\"later\",\"ms\":50}\n{\"cmd\":\"imm\"}\n{\"cmd\":\"imm\"}\n");
	buf = cl_recv_all(fd, 4096, &len);
	close(fd);
	o = parse_answer(buf, len);
	assert_int_equal(int_of(o, "answer"), 42);
	json_object_put(o);
	free(buf);

	assert_int_equal(T.imm_calls, 0);
	assert_int_equal(T.later_calls, 3);
	assert_int_equal(T.answered, 3);
	assert_int_equal(T.cancels, 0);
	assert_int_equal(stats().open_now, 0);
	assert_int_equal(stats().aborted, 0);
}

/* A client that shuts down its sending side after the request still
 * waits for the answer: that is not leaving. */
static void test_deferred_half_close(void **state)
{
	struct json_object *o;
	size_t len;
	char *buf;
	int fd;

	(void)state;
	fd = cl_connect();
	cl_send(fd, "{\"cmd\":\"later\",\"ms\":100}\n");
	assert_int_equal(shutdown(fd, SHUT_WR), 0);
	buf = cl_recv_all(fd, 4096, &len);
	close(fd);
	o = parse_answer(buf, len);
	assert_int_equal(int_of(o, "answer"), 42);
	json_object_put(o);
	free(buf);
	assert_int_equal(T.cancels, 0);
	assert_int_equal(stats().aborted, 0);
}

static void test_stream_slow_reader(void **state)
{
	struct json_object *o, *a;
	size_t len;
	char *buf;
	int fd;

	(void)state;
	fd = cl_connect();
	cl_send(fd, "{\"cmd\":\"stream\"}\n");
	buf = cl_recv_all(fd, 4096, &len);
	close(fd);
	o = parse_answer(buf, len);
	free(buf);
	assert_true(ok_of(o));
	assert_true(json_object_object_get_ex(o, "entries", &a));
	assert_int_equal(json_object_array_length(a), N_ENTRIES);
	assert_int_equal(int_of(json_object_array_get_idx(a, N_ENTRIES - 1), "i"), N_ENTRIES - 1);
	json_object_put(o);
	assert_int_equal(T.fills, N_ENTRIES / SLICE);
	assert_int_equal(T.dones, 1);
	/* never the whole answer (about 2.7 MB) in memory */
	assert_true(T.max_out <= OUT_BOUND);
	assert_int_equal(stats().open_now, 0);
	assert_int_equal(stats().aborted, 0);
}

static void test_stream_short(void **state)
{
	struct json_object *o, *a;

	(void)state;
	o = ask("{\"cmd\":\"stream\",\"n\":0}\n");
	assert_true(json_object_object_get_ex(o, "entries", &a));
	assert_int_equal(json_object_array_length(a), 0);
	json_object_put(o);
	o = ask("{\"cmd\":\"stream\",\"n\":3}\n");
	assert_true(json_object_object_get_ex(o, "entries", &a));
	assert_int_equal(json_object_array_length(a), 3);
	json_object_put(o);
	assert_int_equal(T.dones, 2);
	assert_int_equal(T.fills, 2);
}

static void test_bad_requests(void **state)
{
	static const struct {
		const char *s;
		size_t len;
	} bad[] = {
#define L(s) {s, sizeof(s) - 1}
	    L("not json\n"),
	    L("[1,2]\n"),
	    L("{\"cmd\":5}\n"),
	    L("{\"nocmd\":1}\n"),
	    L("{\"cmd\":\"nope\"}\n"),
	    L("{\"cmd\":\"imm\"} trailing\n"),
	    L("{\"cmd\":\"imm\"\n"),
	    L("\n"),
	    L("{\"cmd\":\"imm\\u0000x\"}\n"),
	    L("{\"cmd\":\"imm\"}\0junk\n"),
#undef L
	};
	size_t n = sizeof(bad) / sizeof(bad[0]);

	(void)state;
	for (size_t i = 0; i < n; i++) {
		struct json_object *o = ask_len(bad[i].s, bad[i].len), *e;

		assert_false(ok_of(o));
		assert_true(json_object_object_get_ex(o, "error", &e));
		json_object_put(o);
	}
	assert_int_equal(T.imm_calls, 0);
	assert_int_equal(stats().bad_requests, n);
	assert_int_equal(stats().open_now, 0);
}

static void test_oversized_request(void **state)
{
	size_t big = 100 * 1024, len;
	char *req = malloc(big), *buf;
	struct json_object *o, *e;
	int fd;

	(void)state;
	assert_non_null(req);
	memset(req, 'a', big);
	req[big - 1] = '\n';
	fd = cl_connect();
	/* the server answers and closes before it has all of it */
	cl_send_len(fd, req, big);
	buf = cl_recv_all(fd, 4096, &len);
	close(fd);
	o = parse_answer(buf, len);
	assert_false(ok_of(o));
	assert_true(json_object_object_get_ex(o, "error", &e));
	assert_non_null(strstr(json_object_get_string(e), "longer"));
	json_object_put(o);
	free(buf);
	free(req);
	assert_int_equal(stats().bad_requests, 1);
	assert_int_equal(stats().open_now, 0);
}

/* A full line must come within the request timeout: silent, partial and
 * trickling clients are all dropped when it ends. */
static void test_request_timeout(void **state)
{
	long t0 = now_ms(), last = 0;
	int quiet, partial, trickle;

	(void)state;
	ctl_set_timeouts(T.ctl, 200, 10000, 10000);
	quiet = cl_connect();
	partial = cl_connect();
	trickle = cl_connect();
	cl_send(partial, "{\"cmd\":");
	assert_true(WAIT_FOR(stats().accepted == 3, 1000));
	while (stats().open_now > 0 && now_ms() - t0 < 3000) {
		if (now_ms() - last >= 20) {
			last = now_ms();
			send(trickle, " ", 1, MSG_NOSIGNAL);
		}
		spin();
	}
	/* the deadline, give or take the clocks' rounding, and not more:
	 * trickling does not extend it */
	assert_true(now_ms() - t0 >= 150);
	assert_true(now_ms() - t0 < 1000);
	assert_int_equal(stats().open_now, 0);
	assert_int_equal(stats().timeouts, 3);
	assert_int_equal(stats().aborted, 0);
	assert_closed_silently(quiet);
	assert_closed_silently(partial);
	assert_closed_silently(trickle);
	close(quiet);
	close(partial);
	close(trickle);
}

static void test_answer_timeout(void **state)
{
	int fd;

	(void)state;
	ctl_set_timeouts(T.ctl, 10000, 200, 10000);
	fd = cl_connect();
	cl_send(fd, "{\"cmd\":\"later\",\"ms\":60000}\n");
	assert_true(WAIT_FOR(T.cancels == 1, 3000));
	assert_closed_silently(fd);
	close(fd);
	pump(20);
	assert_int_equal(T.cancels, 1);
	assert_int_equal(T.answered, 0);
	assert_int_equal(stats().timeouts, 1);
	assert_int_equal(stats().open_now, 0);
}

/* A client that asks for a large stream and never reads holds neither the
 * answer nor the connection past the write timeout. */
static void test_stalled_reader(void **state)
{
	int fd;

	(void)state;
	ctl_set_timeouts(T.ctl, 10000, 10000, 200);
	fd = cl_connect();
	cl_send(fd, "{\"cmd\":\"stream\"}\n");
	pump(100);
	assert_int_equal(T.stream_calls, 1);
	assert_int_equal(T.dones, 0);
	/* what the socket buffers take, then nothing more */
	assert_true(T.fills < 100);
	assert_true(T.max_out <= OUT_BOUND);
	assert_true(WAIT_FOR(stats().open_now == 0, 3000));
	assert_int_equal(T.dones, 1);
	assert_true(T.fills < 100);
	assert_int_equal(stats().timeouts, 1);
	close(fd);
}

/* Turn the loop one pass at a time until cond holds; bounded. */
#define STEP_UNTIL(cond, ms)                                                                       \
	({                                                                                         \
		long end_ = now_ms() + (ms);                                                       \
		while (!(cond) && now_ms() < end_)                                                 \
			spin();                                                                    \
		(cond);                                                                            \
	})

/* An answer is on the socket, and the socket shut, when the pass of the
 * loop that produced it ends: work scheduled by the command cannot delay
 * it by a turn. */
static void test_written_at_once(void **state)
{
	char buf[256];
	ssize_t n;
	int fd;

	(void)state;
	fd = cl_connect();
	cl_send(fd, "{\"cmd\":\"imm\"}\n");
	assert_true(STEP_UNTIL(T.imm_calls == 1, 2000));
	n = recv(fd, buf, sizeof(buf), 0);
	assert_true(n > 0);
	assert_int_equal(buf[n - 1], '\n');
	assert_int_equal(recv(fd, buf, sizeof(buf), 0), 0);
	close(fd);

	/* the same for a deferred answer given from a timer */
	fd = cl_connect();
	cl_send(fd, "{\"cmd\":\"later\",\"ms\":30}\n");
	assert_true(STEP_UNTIL(T.answered == 1, 2000));
	n = recv(fd, buf, sizeof(buf), 0);
	assert_true(n > 0);
	assert_int_equal(buf[n - 1], '\n');
	assert_int_equal(recv(fd, buf, sizeof(buf), 0), 0);
	close(fd);
	assert_int_equal(stats().open_now, 0);
}

static long cpu_ms(void)
{
	struct rusage ru;

	getrusage(RUSAGE_SELF, &ru);
	return (ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1000 +
	       (ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1000;
}

/* Out of descriptors, accept() fails while the connection stays pending:
 * the listener rests instead of spinning the loop, then serves it. */
static void test_accept_out_of_fds(void **state)
{
	struct timeval tv = {0, 150000};
	struct rlimit low;
	struct json_object *o;
	struct dirent *e;
	size_t len;
	long cpu;
	int fd, hi = 0;
	char *buf;
	DIR *d;

	(void)state;
	d = opendir("/proc/self/fd");
	assert_non_null(d);
	while ((e = readdir(d)))
		if (atoi(e->d_name) > hi)
			hi = atoi(e->d_name);
	closedir(d);
	assert_int_equal(getrlimit(RLIMIT_NOFILE, &T.rlim), 0);
	low = T.rlim;
	low.rlim_cur = (rlim_t)hi + 32;
	T.dups = calloc((size_t)hi + 32, sizeof(*T.dups));
	assert_non_null(T.dups);
	assert_int_equal(setrlimit(RLIMIT_NOFILE, &low), 0);
	T.rlim_low = true;
	/* take every descriptor but one (holes below the highest too), and
	 * give that one to the client */
	while (T.ndup < hi + 32 && (T.dups[T.ndup] = dup(0)) >= 0)
		T.ndup++;
	assert_true(T.ndup > 0 && T.ndup < hi + 32 && errno == EMFILE);
	close(T.dups[--T.ndup]);
	fd = cl_connect();

	/* a spinning loop would burn the whole 150 ms */
	cpu = cpu_ms();
	event_base_loopexit(T.base, &tv);
	event_base_loop(T.base, 0);
	cpu = cpu_ms() - cpu;
	assert_int_equal(stats().accepted, 0);
	assert_true(cpu < 50);

	fds_restore();
	assert_true(WAIT_FOR(stats().accepted == 1, 3000));
	cl_send(fd, "{\"cmd\":\"imm\"}\n");
	buf = cl_recv_all(fd, 4096, &len);
	close(fd);
	o = parse_answer(buf, len);
	free(buf);
	assert_true(ok_of(o));
	json_object_put(o);
}

/* Clients that leave at every stage cost nothing once gone. */
static void test_churn(void **state)
{
	unsigned long calls;
	struct json_object *o;
	struct ctl_stats st;
	int fds = fd_count(), fd[BATCH];

	(void)state;
	/* large immediate answers, left unread (defect 8: each of these
	 * kept its connection for ever) */
	for (int round = 0; round < 2; round++) {
		for (int i = 0; i < BATCH; i++) {
			fd[i] = cl_connect();
			cl_send(fd[i], "{\"cmd\":\"big\"}\n");
		}
		spin();
		for (int i = 0; i < BATCH; i++)
			close(fd[i]);
	}
	assert_true(WAIT_FOR(stats().open_now == 0 && fd_count() == fds, 5000));
	/* 1000 large streams, left unread; every other batch waits until
	 * the server has started them all so they end mid-stream */
	for (int round = 0; round < 1000 / BATCH; round++) {
		for (int i = 0; i < BATCH; i++) {
			fd[i] = cl_connect();
			cl_send(fd[i], "{\"cmd\":\"stream\"}\n");
		}
		/* every request is read in the end, even after its client
		 * left: this batch's and the previous ones' */
		if (round % 2 == 0)
			assert_true(
			    WAIT_FOR(T.stream_calls == (unsigned long)(round + 1) * BATCH, 5000));
		for (int i = 0; i < BATCH; i++)
			close(fd[i]);
	}
	/* connect and leave; a partial line and leave */
	for (int round = 0; round < 4; round++) {
		assert_true(WAIT_FOR(stats().open_now == 0, 5000));
		for (int i = 0; i < BATCH; i++) {
			fd[i] = cl_connect();
			if (round & 1)
				cl_send(fd[i], "{\"cmd\":\"im");
		}
		assert_true(WAIT_FOR(stats().open_now == BATCH, 5000));
		for (int i = 0; i < BATCH; i++)
			close(fd[i]);
	}
	/* a deferred answer, and leave before it comes */
	for (int round = 0; round < 2; round++) {
		calls = T.later_calls;
		for (int i = 0; i < BATCH; i++) {
			fd[i] = cl_connect();
			cl_send(fd[i], "{\"cmd\":\"later\",\"ms\":60000}\n");
		}
		assert_true(WAIT_FOR(T.later_calls == calls + BATCH, 5000));
		for (int i = 0; i < BATCH; i++)
			close(fd[i]);
	}
	assert_true(WAIT_FOR(stats().open_now == 0, 10000));
	pump(50);
	st = stats();
	assert_int_equal(st.open_now, 0);
	assert_int_equal(fd_count(), fds);
	assert_int_equal(T.stream_calls, 1000);
	assert_int_equal(T.dones, 1000);
	assert_int_equal(T.later_calls, 2 * BATCH);
	assert_int_equal(T.cancels, 2 * BATCH);
	assert_int_equal(T.answered, 0);
	assert_int_equal(st.accepted, 1000 + 8 * BATCH);
	assert_int_equal(st.aborted, st.accepted);
	assert_int_equal(st.timeouts, 0);
	/* and the server still answers */
	o = ask("{\"cmd\":\"imm\"}\n");
	assert_true(ok_of(o));
	json_object_put(o);
}

/* Closing the control socket ends open answers: their owners hear it. */
static void test_close_with_open_answers(void **state)
{
	int a, b;

	(void)state;
	a = cl_connect();
	cl_send(a, "{\"cmd\":\"later\",\"ms\":60000}\n");
	b = cl_connect();
	cl_send(b, "{\"cmd\":\"stream\"}\n");
	assert_true(WAIT_FOR(T.later_calls == 1 && T.stream_calls == 1, 3000));
	ctl_close(T.ctl);
	T.ctl = NULL;
	assert_int_equal(T.cancels, 1);
	assert_int_equal(T.dones, 1);
	close(a);
	close(b);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
#define T_(f) cmocka_unit_test_setup_teardown(f, setup, teardown)
	    T_(test_socket_rules),
	    T_(test_stale_socket_replaced),
	    T_(test_immediate),
	    T_(test_immediate_large),
	    T_(test_deferred),
	    T_(test_deferred_half_close),
	    T_(test_stream_slow_reader),
	    T_(test_stream_short),
	    T_(test_bad_requests),
	    T_(test_oversized_request),
	    T_(test_request_timeout),
	    T_(test_answer_timeout),
	    T_(test_stalled_reader),
	    T_(test_churn),
	    T_(test_close_with_open_answers),
	    T_(test_written_at_once),
	    T_(test_accept_out_of_fds),
#undef T_
	};

	/* a client that left makes the server's writes fail with EPIPE */
	signal(SIGPIPE, SIG_IGN);
	if (getenv("TEST_CTL_FILTER"))
		cmocka_set_test_filter(getenv("TEST_CTL_FILTER"));
	return cmocka_run_group_tests(tests, NULL, NULL);
}
