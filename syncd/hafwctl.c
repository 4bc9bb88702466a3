/* hafwctl: the command line for hafw-syncd. One row per subcommand in the
 * table below; each builds a JSON request and renders the answer as a
 * table, or prints it raw with --json. */
#include <errno.h>
#include <getopt.h>
#include <json-c/json.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#define DEFAULT_SOCKET "/run/hafw/syncd.sock"
#define MAX_RESPONSE   (1u << 30)

struct cli {
	const char *socket;
	bool json;
};

struct subcmd {
	const char *name;
	int (*fn)(struct cli *cli, int argc, char **argv);
	const char *args;
	const char *help;
};

static int request(struct cli *cli, struct json_object *req, struct json_object **resp)
{
	struct sockaddr_un sun = {.sun_family = AF_UNIX};
	const char *s = json_object_to_json_string_ext(req, JSON_C_TO_STRING_PLAIN);
	size_t cap = 1 << 16, len = 0;
	char *buf = NULL;
	int fd, ret = 1;

	if (strlen(cli->socket) >= sizeof(sun.sun_path)) {
		fprintf(stderr, "hafwctl: socket path too long: %s\n", cli->socket);
		return 1;
	}
	strcpy(sun.sun_path, cli->socket);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0 || connect(fd, (struct sockaddr *)&sun, sizeof(sun)) < 0) {
		fprintf(stderr, "hafwctl: cannot reach hafw-syncd at %s: %s\n", cli->socket,
		        strerror(errno));
		fprintf(stderr, "hafwctl: is it running? (pick another daemon with -s SOCKET)\n");
		goto out;
	}
	if (write(fd, s, strlen(s)) < 0 || write(fd, "\n", 1) < 0) {
		fprintf(stderr, "hafwctl: sending request: %s\n", strerror(errno));
		goto out;
	}
	buf = malloc(cap);
	for (;;) {
		ssize_t n;

		if (!buf)
			goto out;
		if (len + 1 >= cap) {
			char *nb;
			if (cap >= MAX_RESPONSE) {
				fprintf(stderr, "hafwctl: response too large\n");
				goto out;
			}
			nb = realloc(buf, cap * 2);
			if (!nb)
				goto out;
			buf = nb;
			cap *= 2;
		}
		n = read(fd, buf + len, cap - len - 1);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			fprintf(stderr, "hafwctl: reading response: %s\n", strerror(errno));
			goto out;
		}
		if (n == 0)
			break;
		len += (size_t)n;
		/* one answer is one line */
		if (memchr(buf + len - (size_t)n, '\n', (size_t)n))
			break;
	}
	buf[len] = '\0';
	*resp = json_tokener_parse(buf);
	if (!*resp) {
		fprintf(stderr, "hafwctl: malformed response from hafw-syncd\n");
		goto out;
	}
	ret = 0;
out:
	free(buf);
	if (fd >= 0)
		close(fd);
	return ret;
}

static const char *str(struct json_object *o, const char *key)
{
	struct json_object *v;

	return json_object_object_get_ex(o, key, &v) ? json_object_get_string(v) : "";
}

static long long num(struct json_object *o, const char *key)
{
	struct json_object *v;

	return json_object_object_get_ex(o, key, &v) ? json_object_get_int64(v) : 0;
}

static struct json_object *get(struct json_object *o, const char *key)
{
	struct json_object *v;

	return json_object_object_get_ex(o, key, &v) ? v : NULL;
}

/* Sends req and hands a successful answer to render; errors end here. */
static int run(struct cli *cli, struct json_object *req, void (*render)(struct json_object *))
{
	struct json_object *resp = NULL;
	int ret = request(cli, req, &resp);

	json_object_put(req);
	if (ret)
		return ret;
	if (!json_object_get_boolean(get(resp, "ok"))) {
		if (cli->json)
			printf("%s\n",
			       json_object_to_json_string_ext(resp, JSON_C_TO_STRING_PRETTY));
		fprintf(stderr, "hafwctl: %s\n", str(resp, "error"));
		json_object_put(resp);
		return 1;
	}
	if (cli->json || !render)
		printf("%s\n", json_object_to_json_string_ext(resp, JSON_C_TO_STRING_PRETTY));
	else
		render(resp);
	json_object_put(resp);
	return 0;
}

static struct json_object *new_req(const char *cmd)
{
	struct json_object *r = json_object_new_object();

	json_object_object_add(r, "cmd", json_object_new_string(cmd));
	return r;
}

static void fmt_tuple(struct json_object *t, char *buf, size_t len)
{
	bool v6 = !strcmp(str(t, "family"), "ipv6");

	if (!t) {
		snprintf(buf, len, "-");
	} else if (get(t, "type")) {
		snprintf(buf, len, "%s -> %s type %lld code %lld id %lld", str(t, "src"),
		         str(t, "dst"), num(t, "type"), num(t, "code"), num(t, "id"));
	} else {
		snprintf(buf, len, v6 ? "[%s]:%lld -> [%s]:%lld" : "%s:%lld -> %s:%lld",
		         str(t, "src"), num(t, "sport"), str(t, "dst"), num(t, "dport"));
	}
}

static void render_status(struct json_object *r)
{
	struct json_object *node = get(r, "node"), *in = get(r, "internal"),
	                   *peers = get(r, "peers");
	size_t n = peers ? json_object_array_length(peers) : 0;

	printf("node %lld (%s)  role %s  tracker %s  sync %s on %s  up %llds\n", num(node, "id"),
	       str(node, "name"), str(node, "role"), str(node, "tracker"), str(node, "sync_group"),
	       str(node, "sync_interface"), num(node, "uptime_s"));
	printf("internal cache: %lld flows, %lld expectations\n", num(in, "flows"),
	       num(in, "expectations"));
	if (!n) {
		printf("no peers heard yet\n");
		return;
	}
	printf("\n%-6s %-16s %-8s %-5s %-6s %10s %8s %10s %10s %8s\n", "PEER", "NAME", "ROLE", "UP",
	       "SYNCED", "FLOWS", "EXPECT", "ANNOUNCED", "LAST SEEN", "LOST");
	for (size_t i = 0; i < n; i++) {
		struct json_object *p = json_object_array_get_idx(peers, i);
		bool heard = num(p, "datagrams") > 0;
		char seen[32];

		if (heard)
			snprintf(seen, sizeof(seen), "%.1fs", num(p, "last_seen_ms") / 1000.0);
		else
			snprintf(seen, sizeof(seen), "never");
		printf("%-6lld %-16s %-8s %-5s %-6s %10lld %8lld %10lld %10s %8lld\n", num(p, "id"),
		       str(p, "name"), str(p, "role"),
		       json_object_get_boolean(get(p, "up")) ? "yes" : "no",
		       json_object_get_boolean(get(p, "synced")) ? "yes" : "no", num(p, "flows"),
		       num(p, "expectations"), num(p, "announced_flows"), seen,
		       num(p, "lost_datagrams"));
	}
}

static void render_flows(struct json_object *r)
{
	struct json_object *a = get(r, "flows");
	size_t n = a ? json_object_array_length(a) : 0;
	bool ext = !strcmp(str(r, "cache"), "external");

	printf("%-8s %-48s %-48s %-12s %5s %10s %8s%s\n", "PROTO", "ORIGINAL", "REPLY", "STATE",
	       "ZONE", "MARK", "TIMEOUT", ext ? "  PEER" : "");
	for (size_t i = 0; i < n; i++) {
		struct json_object *f = json_object_array_get_idx(a, i);
		char o[128], rp[128];

		fmt_tuple(get(f, "orig"), o, sizeof(o));
		fmt_tuple(get(f, "reply"), rp, sizeof(rp));
		printf("%-8s %-48s %-48s %-12s %5lld %10lld %8lld", str(get(f, "orig"), "proto"), o,
		       rp, get(f, "state") ? str(f, "state") : "-", num(f, "zone"), num(f, "mark"),
		       num(f, "timeout"));
		if (ext)
			printf("  %lld", num(f, "peer"));
		printf("\n");
	}
	printf("%zu %s flows\n", n, str(r, "cache"));
}

static void render_exps(struct json_object *r)
{
	struct json_object *a = get(r, "expectations");
	size_t n = a ? json_object_array_length(a) : 0;
	bool ext = !strcmp(str(r, "cache"), "external");

	printf("%-8s %-48s %-48s %-8s %8s%s\n", "PROTO", "EXPECTED", "MASTER", "HELPER", "TIMEOUT",
	       ext ? "  PEER" : "");
	for (size_t i = 0; i < n; i++) {
		struct json_object *x = json_object_array_get_idx(a, i);
		char t[128], m[128];

		fmt_tuple(get(x, "tuple"), t, sizeof(t));
		fmt_tuple(get(x, "master"), m, sizeof(m));
		printf("%-8s %-48s %-48s %-8s %8lld", str(get(x, "tuple"), "proto"), t, m,
		       get(x, "helper") ? str(x, "helper") : "-", num(x, "timeout"));
		if (ext)
			printf("  %lld", num(x, "peer"));
		printf("\n");
	}
	printf("%zu %s expectations\n", n, str(r, "cache"));
}

static void render_section(const char *title, struct json_object *o)
{
	printf("%s:\n", title);
	json_object_object_foreach(o, k, v)
	{
		if (json_object_is_type(v, json_type_object))
			render_section(k, v);
		else
			printf("  %-28s %s\n", k, json_object_get_string(v));
	}
}

static void render_stats(struct json_object *r)
{
	json_object_object_foreach(r, k, v)
	{
		if (json_object_is_type(v, json_type_object))
			render_section(k, v);
	}
}

/* Prometheus text exposition: every counter of `stats`, named
 * hafw_<section>_<counter>, for node_exporter's textfile collector or any
 * scraper that runs hafwctl. */
static void metrics_section(const char *prefix, struct json_object *o)
{
	json_object_object_foreach(o, k, v)
	{
		char name[160];

		snprintf(name, sizeof(name), "%s_%s", prefix, k);
		if (json_object_is_type(v, json_type_object))
			metrics_section(name, v);
		else if (json_object_is_type(v, json_type_int))
			printf("%s %lld\n", name, (long long)json_object_get_int64(v));
	}
}

static void render_metrics(struct json_object *r)
{
	json_object_object_foreach(r, k, v)
	{
		char name[64];

		if (!json_object_is_type(v, json_type_object))
			continue;
		snprintf(name, sizeof(name), "hafw_%s", k);
		metrics_section(name, v);
	}
}

static void render_commit(struct json_object *r)
{
	printf("committed %lld flows and %lld expectations in %.3f s (%lld errors)\n",
	       num(r, "flows"), num(r, "expectations"), json_object_get_double(get(r, "seconds")),
	       num(r, "errors"));
}

static void render_peers(struct json_object *r)
{
	struct json_object *peers = get(r, "peers");
	size_t n = peers ? json_object_array_length(peers) : 0;

	if (!n) {
		printf("no peers\n");
		return;
	}
	printf("%-6s %-12s %-8s %-4s %-6s %-7s %10s %10s %7s %7s %8s %8s %7s %8s %-8s\n", "PEER",
	       "NAME", "ROLE", "UP", "SYNCED", "DIGEST", "EPOCH", "LAST SEQ", "MISSING", "LAG MS",
	       "FLOWS", "LOST", "NACKS", "RESYNCS", "LINK");
	for (size_t i = 0; i < n; i++) {
		struct json_object *p = json_object_array_get_idx(peers, i);

		printf(
		    "%-6lld %-12s %-8s %-4s %-6s %-7s %10lld %10lld %7lld %7lld %8lld %8lld %7lld "
		    "%8lld %-8s\n",
		    num(p, "id"), str(p, "name"), str(p, "role"),
		    json_object_get_boolean(get(p, "up")) ? "yes" : "no",
		    json_object_get_boolean(get(p, "synced")) ? "yes" : "no",
		    json_object_get_boolean(get(p, "digest_match")) ? "ok" : "differs",
		    num(p, "epoch"), num(p, "last_seq"), num(p, "missing"), num(p, "lag_ms"),
		    num(p, "flows"), num(p, "lost_datagrams"), num(p, "nacks_sent"),
		    num(p, "resyncs"), str(p, "link"));
	}
}

static void render_resync(struct json_object *r)
{
	printf("asked %lld peer(s) for their full state\n", num(r, "peers"));
}

static void render_forget(struct json_object *r)
{
	printf("forgot %lld entries\n", num(r, "forgotten"));
}

static void render_ok(struct json_object *r)
{
	(void)r;
	printf("ok\n");
}

/* Parses [--external] [--peer ID] [--internal]; returns -1 on bad usage. */
static int parse_cache_opts(int argc, char **argv, struct json_object *req, bool allow_peer,
                            bool allow_internal)
{
	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--external")) {
			json_object_object_add(req, "external", json_object_new_boolean(1));
		} else if (allow_internal && !strcmp(argv[i], "--internal")) {
			json_object_object_add(req, "internal", json_object_new_boolean(1));
		} else if (allow_peer && !strcmp(argv[i], "--peer") && i + 1 < argc) {
			char *end;
			long id;

			errno = 0;
			id = strtol(argv[++i], &end, 10);
			if (errno || *end || end == argv[i] || id < 1 || id > 0x7fffffff) {
				fprintf(stderr, "hafwctl: --peer needs a node id, not \"%s\"\n",
				        argv[i]);
				return -1;
			}
			json_object_object_add(req, "peer", json_object_new_int64(id));
		} else {
			fprintf(stderr, "hafwctl: %s: unexpected argument \"%s\"\n", argv[0],
			        argv[i]);
			return -1;
		}
	}
	return 0;
}

static int no_args(int argc, char **argv)
{
	if (argc > 1) {
		fprintf(stderr, "hafwctl: %s takes no arguments\n", argv[0]);
		return -1;
	}
	return 0;
}

static int cmd_status(struct cli *cli, int argc, char **argv)
{
	return no_args(argc, argv) ? 2 : run(cli, new_req("status"), render_status);
}

static int cmd_flows(struct cli *cli, int argc, char **argv)
{
	struct json_object *req = new_req("flows");

	if (parse_cache_opts(argc, argv, req, true, false)) {
		json_object_put(req);
		return 2;
	}
	return run(cli, req, render_flows);
}

static int cmd_exps(struct cli *cli, int argc, char **argv)
{
	struct json_object *req = new_req("expectations");

	if (parse_cache_opts(argc, argv, req, true, false)) {
		json_object_put(req);
		return 2;
	}
	return run(cli, req, render_exps);
}

static int cmd_stats(struct cli *cli, int argc, char **argv)
{
	return no_args(argc, argv) ? 2 : run(cli, new_req("stats"), render_stats);
}

static int cmd_metrics(struct cli *cli, int argc, char **argv)
{
	return no_args(argc, argv) ? 2 : run(cli, new_req("stats"), render_metrics);
}

static int cmd_commit(struct cli *cli, int argc, char **argv)
{
	return no_args(argc, argv) ? 2 : run(cli, new_req("commit"), render_commit);
}

static int cmd_flush(struct cli *cli, int argc, char **argv)
{
	struct json_object *req = new_req("flush");

	if (parse_cache_opts(argc, argv, req, false, true)) {
		json_object_put(req);
		return 2;
	}
	return run(cli, req, render_ok);
}

static int cmd_role(struct cli *cli, int argc, char **argv)
{
	struct json_object *req;

	if (argc != 2 ||
	    (strcmp(argv[1], "primary") && strcmp(argv[1], "backup") && strcmp(argv[1], "fault"))) {
		fprintf(stderr, "hafwctl: role needs one of primary, backup, fault\n");
		return 2;
	}
	req = new_req("role");
	json_object_object_add(req, "role", json_object_new_string(argv[1]));
	return run(cli, req, render_ok);
}

static int cmd_peers(struct cli *cli, int argc, char **argv)
{
	return no_args(argc, argv) ? 2 : run(cli, new_req("peers"), render_peers);
}

static int cmd_resync(struct cli *cli, int argc, char **argv)
{
	struct json_object *req = new_req("resync");

	if (parse_cache_opts(argc, argv, req, true, false) ||
	    json_object_object_get_ex(req, "external", NULL)) {
		json_object_put(req);
		return 2;
	}
	return run(cli, req, render_resync);
}

/* For keepalived's vrrp_script: exit 0 only when this node is in sync. */
static int cmd_ready(struct cli *cli, int argc, char **argv)
{
	struct json_object *resp = NULL, *req;
	int ret;

	if (no_args(argc, argv))
		return 2;
	req = new_req("ready");
	ret = request(cli, req, &resp);
	json_object_put(req);
	if (ret)
		return 1;
	if (cli->json)
		printf("%s\n", json_object_to_json_string_ext(resp, JSON_C_TO_STRING_PRETTY));
	if (!json_object_get_boolean(get(resp, "ok")) ||
	    !json_object_get_boolean(get(resp, "ready"))) {
		fprintf(stderr, "hafwctl: not ready: %s\n",
		        get(resp, "reason") ? str(resp, "reason") : str(resp, "error"));
		ret = 1;
	} else if (!cli->json) {
		printf("ready: %s\n", str(resp, "reason"));
	}
	json_object_put(resp);
	return ret;
}

static int cmd_debug(struct cli *cli, int argc, char **argv)
{
	struct json_object *req;
	char *end;
	long n = 1;

	if (argc < 4 || strcmp(argv[1], "forget") || strcmp(argv[2], "--peer")) {
		fprintf(stderr, "hafwctl: debug forget --peer ID [COUNT]\n");
		return 2;
	}
	req = new_req("debug_forget");
	errno = 0;
	json_object_object_add(req, "peer", json_object_new_int64(strtol(argv[3], &end, 10)));
	if (errno || *end || argc > 5) {
		json_object_put(req);
		fprintf(stderr, "hafwctl: debug forget --peer ID [COUNT]\n");
		return 2;
	}
	if (argc == 5) {
		n = strtol(argv[4], &end, 10);
		if (errno || *end || n < 1) {
			json_object_put(req);
			fprintf(stderr, "hafwctl: COUNT must be a positive number\n");
			return 2;
		}
	}
	json_object_object_add(req, "count", json_object_new_int64(n));
	return run(cli, req, render_forget);
}

static const struct subcmd subcmds[] = {
    {"status", cmd_status, "", "node, role, cache sizes and peers"},
    {"flows", cmd_flows, "[--external] [--peer ID]", "flows in the internal or external cache"},
    {"expectations", cmd_exps, "[--external] [--peer ID]", "expectations in a cache"},
    {"stats", cmd_stats, "", "every counter: events, frames, drops by reason, errors"},
    {"metrics", cmd_metrics, "", "the counters of stats in Prometheus text format"},
    {"commit", cmd_commit, "", "write the external caches into this node's tracker"},
    {"flush", cmd_flush, "[--internal|--external]", "empty caches (both by default)"},
    {"role", cmd_role, "primary|backup|fault", "set this node's role (keepalived notify)"},
    {"peers", cmd_peers, "", "per peer: up, synced, digest, sequence, loss, NACKs"},
    {"resync", cmd_resync, "[--peer ID]", "ask peers for their full state again"},
    {"ready", cmd_ready, "", "exit 0 only when in sync with every peer that is up"},
    {"debug", cmd_debug, "forget --peer ID [N]", "test aid: drop N entries of a peer's copy"},
};

static void usage(FILE *f)
{
	fprintf(f, "Usage: hafwctl [-s SOCKET] [--json] COMMAND [ARGS]\n\n"
	           "Shows and drives hafw-syncd through its control socket (root only).\n\n"
	           "  -s, --socket PATH  control socket (default " DEFAULT_SOCKET ")\n"
	           "  -j, --json         print the daemon's JSON answer instead of a table\n"
	           "  -h, --help         this text\n\nCommands:\n");
	for (size_t i = 0; i < sizeof(subcmds) / sizeof(subcmds[0]); i++)
		fprintf(f, "  %-13s %-26s %s\n", subcmds[i].name, subcmds[i].args, subcmds[i].help);
	fprintf(f, "\nExit status: 0 success, 1 error or daemon unreachable, 2 usage.\n");
}

int main(int argc, char **argv)
{
	static const struct option lopts[] = {
	    {"socket", required_argument, NULL, 's'},
	    {"json", no_argument, NULL, 'j'},
	    {"help", no_argument, NULL, 'h'},
	    {NULL, 0, NULL, 0},
	};
	struct cli cli = {.socket = DEFAULT_SOCKET};
	int opt;

	/* "+" stops at the command so its own options reach it */
	while ((opt = getopt_long(argc, argv, "+s:jh", lopts, NULL)) != -1) {
		switch (opt) {
		case 's':
			cli.socket = optarg;
			break;
		case 'j':
			cli.json = true;
			break;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (optind >= argc) {
		usage(stderr);
		return 2;
	}
	for (size_t i = 0; i < sizeof(subcmds) / sizeof(subcmds[0]); i++) {
		if (strcmp(argv[optind], subcmds[i].name))
			continue;
		/* --json may also follow the command */
		for (int k = optind + 1; k < argc; k++) {
			if (!strcmp(argv[k], "--json") || !strcmp(argv[k], "-j")) {
				cli.json = true;
				memmove(&argv[k], &argv[k + 1],
				        sizeof(*argv) * (size_t)(argc - k - 1));
				argc--;
				k--;
			}
		}
		return subcmds[i].fn(&cli, argc - optind, argv + optind);
	}
	fprintf(stderr, "hafwctl: unknown command \"%s\"\n\n", argv[optind]);
	usage(stderr);
	return 2;
}
