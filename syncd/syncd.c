/* hafw-syncd: replicates connection tracking state between firewall nodes. */
#include "config.h"
#include "ctl.h"
#include "filter.h"
#include "localaddr.h"
#include "log.h"
#include "repl.h"
#include "syncd_cmds.h"

#include <errno.h>
#include <event2/event.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define VERSION "0.1.0"

static void usage(FILE *f)
{
	fprintf(f, "Usage: hafw-syncd -c FILE [--check-config] [--syslog] [--debug]\n"
	           "\n"
	           "Replicates connection-tracking flows and expectations to the other nodes\n"
	           "of a hafw cluster. Runs in the foreground; logs to stderr unless --syslog\n"
	           "or log.syslog is set.\n"
	           "\n"
	           "  -c, --config FILE   configuration file (libconfig syntax), required\n"
	           "      --check-config  check FILE, report every error with file and line,\n"
	           "                      exit 0 if valid, 1 if not\n"
	           "      --syslog        log to syslog (daemon facility)\n"
	           "  -d, --debug         log at debug level\n"
	           "  -h, --help          this text\n"
	           "  -V, --version       print the version\n"
	           "\n"
	           "Control it with hafwctl; see hafw-syncd(8) and etc/hafw-syncd.conf.\n");
}

static void on_signal(evutil_socket_t sig, short what, void *arg)
{
	(void)what;
	hafw_log(LOG_NOTICE, "signal %d: shutting down", (int)sig);
	event_base_loopbreak(arg);
}

static int build_filter(const struct hafw_config *cfg, struct hafw_filter *f)
{
	int ret;

	filter_init(f);
	for (int i = 0; i < cfg->n_ignore_addrs; i++)
		if ((ret = filter_add_cidr(f, cfg->ignore_addrs[i])))
			return ret;
	for (int i = 0; i < cfg->n_keep_addrs; i++)
		if ((ret = filter_add_keep(f, cfg->keep_addrs[i])))
			return ret;
	for (int i = 0; i < cfg->n_ignore_protos; i++)
		if ((ret = filter_add_l4(f, cfg->ignore_protos[i])))
			return ret;
	/* loopback never crosses a firewall */
	filter_add_cidr(f, "127.0.0.0/8");
	filter_add_cidr(f, "::1/128");
	return 0;
}

/* The node's addresses change (a VIP moves in or out): flows from and to
 * them are its own, never replicated. */
static void on_local_addrs(void *arg, const struct filter_net *nets, unsigned n)
{
	struct repl *repl = arg;
	int ret = filter_set_local(repl_filter(repl), nets, n);

	if (ret)
		hafw_log(LOG_ERR, "local addresses: %s; keeping the previous set", strerror(-ret));
	else
		hafw_log(LOG_INFO, "local addresses: %u networks are not replicated", n);
}

int main(int argc, char **argv)
{
	static const struct option lopts[] = {
	    {"config", required_argument, NULL, 'c'},
	    {"check-config", no_argument, NULL, 'C'},
	    {"syslog", no_argument, NULL, 'S'},
	    {"debug", no_argument, NULL, 'd'},
	    {"help", no_argument, NULL, 'h'},
	    {"version", no_argument, NULL, 'V'},
	    {NULL, 0, NULL, 0},
	};
	const char *path = NULL, *what = "";
	bool check = false, use_syslog = false, debug = false;
	struct hafw_config cfg;
	struct hafw_filter filter;
	struct event_base *base = NULL;
	struct event *sigs[2] = {NULL};
	struct repl *repl = NULL;
	struct ctl *ctl = NULL;
	struct localaddr_watch *local = NULL;
	struct syncd_ctx ctx;
	char err[4096];
	int opt, ret, rc = 1;

	while ((opt = getopt_long(argc, argv, "c:dhV", lopts, NULL)) != -1) {
		switch (opt) {
		case 'c':
			path = optarg;
			break;
		case 'C':
			check = true;
			break;
		case 'S':
			use_syslog = true;
			break;
		case 'd':
			debug = true;
			break;
		case 'h':
			usage(stdout);
			return 0;
		case 'V':
			printf("hafw-syncd %s\n", VERSION);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (!path || optind != argc) {
		fprintf(stderr, "hafw-syncd: %s\n",
		        path ? "unexpected argument" : "-c FILE is required");
		usage(stderr);
		return 2;
	}
	if (config_load(path, &cfg, err, sizeof(err)) < 0) {
		fprintf(stderr, "%s", err);
		return 1;
	}
	if (check) {
		printf("%s: configuration is valid\n", path);
		return 0;
	}
	hafw_log_init("hafw-syncd", use_syslog || cfg.log_syslog,
	              debug ? LOG_DEBUG : config_log_level(&cfg));
	ret = build_filter(&cfg, &filter);
	if (ret) {
		hafw_log(LOG_ERR, "building the address filter: %s", strerror(-ret));
		return 1;
	}
	signal(SIGPIPE, SIG_IGN);
	base = event_base_new();
	if (!base)
		return 1;
	if (strcmp(cfg.tracker_type, "kernel")) {
		hafw_log(LOG_ERR, "tracker type \"%s\" is not available in this build",
		         cfg.tracker_type);
		goto out;
	}
	repl = repl_new(&cfg, base, &tracker_kernel_ops, &chan_mcast_ops, &chan_tcp_ops, &filter,
	                NULL);
	if (!repl) {
		hafw_log(LOG_ERR, "out of memory");
		goto out;
	}
	/* before the first dump, so the node's own flows are filtered from
	 * the start */
	if (cfg.ignore_local) {
		ret = localaddr_watch_open(&local, base, cfg.sync_if, cfg.sync_backup_if,
		                           on_local_addrs, repl);
		if (ret < 0) {
			hafw_log(LOG_ERR, "following the local addresses: %s", strerror(-ret));
			goto out;
		}
	}
	/* The control socket first: a second instance of a running node must
	 * fail before it says anything on the sync link (its new epoch would
	 * make the peers take it for a restart of the running node). */
	ctx = (struct syncd_ctx){
	    .cfg = &cfg, .repl = repl, .local = local, .started_ms = repl_mono_ms()};
	ret = ctl_open(&ctl, base, cfg.ctl_socket, syncd_cmds, &ctx);
	if (ret < 0) {
		hafw_log(LOG_ERR, "control socket %s: %s%s", cfg.ctl_socket, strerror(-ret),
		         ret == -EADDRINUSE ? " (is this node already running?)" : "");
		goto out;
	}
	ctx.ctl = ctl;
	/* a commit of a large table answers when it is done */
	ctl_set_timeouts(ctl, 10000, 600000, 10000);
	ret = repl_start(repl, &what);
	if (ret < 0) {
		hafw_log(LOG_ERR, "starting %s: %s", what, strerror(-ret));
		goto out;
	}
	sigs[0] = evsignal_new(base, SIGTERM, on_signal, base);
	sigs[1] = evsignal_new(base, SIGINT, on_signal, base);
	for (int i = 0; i < 2; i++)
		if (sigs[i])
			evsignal_add(sigs[i], NULL);
	hafw_log(LOG_NOTICE,
	         "node %d (%s) running: epoch %u, tracker %s, sync %s on %s%s%s port %d%s",
	         cfg.node_id, cfg.node_name, repl_epoch(repl), cfg.tracker_type, cfg.sync_group,
	         cfg.sync_if, cfg.sync_backup_if[0] ? " and " : "", cfg.sync_backup_if,
	         cfg.sync_port, cfg.n_peers ? ", peers from the config" : "");
	event_base_dispatch(base);
	rc = 0;
out:
	for (int i = 0; i < 2; i++)
		if (sigs[i])
			event_free(sigs[i]);
	ctl_close(ctl);
	localaddr_watch_close(local); /* before repl_free(): its callback uses repl */
	repl_free(repl);
	if (base)
		event_base_free(base);
	return rc;
}
