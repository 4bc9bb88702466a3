/*
 * hafw-cttool: "compare" (diff of two dump files) and "count-events"
 * (fast conntrack event counter).
 */
#include <errno.h>
#include <getopt.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <linux/netlink.h>

#include "cttool.h"

#ifndef SOL_NETLINK
#define SOL_NETLINK 270
#endif

/* ---- compare ---- */

#define CMP_MAX_PRINT  50
#define CMP_MAX_TOKENS 256
#define CMP_MAX_IGNORE 64

struct entry {
	char *key;  /* value of the key= token */
	char *rest; /* remaining tokens, may be "" */
	unsigned long lineno;
};

struct entries {
	struct entry *v;
	size_t n, cap;
	char *path;
};

struct tok {
	const char *name, *val;
	size_t nlen, vlen;
};

struct cmp_opts {
	uint64_t slack;
	bool at_least; /* B's timeout only needs to reach A's (minus slack) */
	char *ignore[CMP_MAX_IGNORE];
	size_t nignore;
};

struct cmp_stats {
	uint64_t missing, extra, differing, printed, lines;
};

static void entries_free(struct entries *e)
{
	size_t i;

	for (i = 0; i < e->n; i++)
		free(e->v[i].key); /* rest points into the same allocation */
	free(e->v);
}

static int cmp_entry(const void *a, const void *b)
{
	const struct entry *x = a, *y = b;
	int c = strcmp(x->key, y->key);

	if (c)
		return c;
	return x->lineno < y->lineno ? -1 : x->lineno > y->lineno;
}

static int read_dump(const char *path, struct entries *e)
{
	FILE *f = fopen(path, "r");
	char *line = NULL;
	size_t cap = 0;
	unsigned long lineno = 0;
	ssize_t len;
	int ret = -1;

	memset(e, 0, sizeof(*e));
	e->path = (char *)path;
	if (!f) {
		fprintf(stderr, "compare: cannot open %s: %s\n", path, strerror(errno));
		return -1;
	}
	while ((len = getline(&line, &cap, f)) >= 0) {
		char *sp, *copy;

		if (++lineno > CT_MAX_ENTRIES) {
			fprintf(stderr, "compare: %s: more than %u lines\n", path, CT_MAX_ENTRIES);
			goto out;
		}
		while (len > 0 && (line[len - 1] == '\n' || line[len - 1] == '\r'))
			line[--len] = '\0';
		if (len == 0 || line[0] == '#')
			continue;
		if (strncmp(line, "key=", 4) != 0) {
			fprintf(stderr, "compare: %s:%lu: line does not start with key=\n", path,
			        lineno);
			goto out;
		}
		if (e->n == e->cap) {
			size_t ncap = e->cap ? e->cap * 2 : 4096;
			struct entry *nv = realloc(e->v, ncap * sizeof(*nv));

			if (!nv)
				goto oom;
			e->v = nv;
			e->cap = ncap;
		}
		copy = strdup(line + 4);
		if (!copy)
			goto oom;
		sp = strchr(copy, ' ');
		if (sp) {
			*sp = '\0';
			sp++;
		} else {
			sp = copy + strlen(copy);
		}
		e->v[e->n].key = copy;
		e->v[e->n].rest = sp;
		e->v[e->n].lineno = lineno;
		e->n++;
	}
	if (ferror(f)) {
		fprintf(stderr, "compare: read error on %s\n", path);
		goto out;
	}
	if (e->n > 1)
		qsort(e->v, e->n, sizeof(*e->v), cmp_entry);
	ret = 0;
	goto out;
oom:
	fprintf(stderr, "compare: out of memory\n");
out:
	free(line);
	fclose(f);
	return ret;
}

/* Report and drop duplicate keys (the first occurrence is kept). */
static int check_dups(struct entries *e)
{
	size_t i, out = 0;
	int dups = 0;

	for (i = 0; i < e->n; i++) {
		if (out > 0 && strcmp(e->v[out - 1].key, e->v[i].key) == 0) {
			if (dups < 10)
				fprintf(stderr,
				        "compare: %s: duplicate key %s (lines %lu and %lu)\n",
				        e->path, e->v[i].key, e->v[out - 1].lineno, e->v[i].lineno);
			dups++;
			free(e->v[i].key);
			continue;
		}
		e->v[out++] = e->v[i];
	}
	e->n = out;
	return dups;
}

static size_t tokenize(const char *s, struct tok *t, size_t max)
{
	size_t n = 0;

	while (*s && n < max) {
		const char *end, *eq;

		while (*s == ' ')
			s++;
		if (!*s)
			break;
		end = strchr(s, ' ');
		if (!end)
			end = s + strlen(s);
		eq = memchr(s, '=', (size_t)(end - s));
		t[n].name = s;
		if (eq) {
			t[n].nlen = (size_t)(eq - s);
			t[n].val = eq + 1;
			t[n].vlen = (size_t)(end - eq - 1);
		} else {
			t[n].nlen = (size_t)(end - s);
			t[n].val = "";
			t[n].vlen = 0;
		}
		n++;
		s = end;
	}
	return n;
}

static bool ignored(const struct cmp_opts *o, const struct tok *t)
{
	size_t i;

	for (i = 0; i < o->nignore; i++)
		if (strlen(o->ignore[i]) == t->nlen && !memcmp(o->ignore[i], t->name, t->nlen))
			return true;
	return false;
}

static bool parse_num(const char *s, size_t len, long long *out)
{
	char buf[32];
	char *end;

	if (len == 0 || len >= sizeof(buf))
		return false;
	memcpy(buf, s, len);
	buf[len] = '\0';
	errno = 0;
	*out = strtoll(buf, &end, 10);
	return !errno && *end == '\0';
}

static bool tok_equal(const struct cmp_opts *o, const struct tok *a, const struct tok *b)
{
	long long x, y;

	if (a->vlen == b->vlen && !memcmp(a->val, b->val, a->vlen))
		return true;
	if (a->nlen == 7 && !memcmp(a->name, "timeout", 7) && parse_num(a->val, a->vlen, &x) &&
	    parse_num(b->val, b->vlen, &y)) {
		if (o->at_least)
			return y + (long long)o->slack >= x;
		return (unsigned long long)(x > y ? x - y : y - x) <= o->slack;
	}
	return false;
}

static void detail(struct cmp_stats *st, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void detail(struct cmp_stats *st, const char *fmt, ...)
{
	va_list ap;

	st->lines++;
	if (st->printed >= CMP_MAX_PRINT)
		return;
	st->printed++;
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
}

static void diff_entry(const struct cmp_opts *o, struct cmp_stats *st, const struct entry *ea,
                       const struct entry *eb)
{
	static struct tok ta[CMP_MAX_TOKENS], tb[CMP_MAX_TOKENS];
	bool used[CMP_MAX_TOKENS] = {false};
	size_t na = tokenize(ea->rest, ta, CMP_MAX_TOKENS);
	size_t nb = tokenize(eb->rest, tb, CMP_MAX_TOKENS);
	size_t i, j;
	bool differs = false;

	for (i = 0; i < na; i++) {
		if (ignored(o, &ta[i]))
			continue;
		for (j = 0; j < nb; j++)
			if (!used[j] && tb[j].nlen == ta[i].nlen &&
			    !memcmp(tb[j].name, ta[i].name, ta[i].nlen))
				break;
		if (j == nb) {
			detail(st, "%s: attr %.*s: %.*s vs -\n", ea->key, (int)ta[i].nlen,
			       ta[i].name, (int)ta[i].vlen, ta[i].val);
			differs = true;
			continue;
		}
		used[j] = true;
		if (!tok_equal(o, &ta[i], &tb[j])) {
			detail(st, "%s: attr %.*s: %.*s vs %.*s\n", ea->key, (int)ta[i].nlen,
			       ta[i].name, (int)ta[i].vlen, ta[i].val, (int)tb[j].vlen, tb[j].val);
			differs = true;
		}
	}
	for (j = 0; j < nb; j++) {
		if (used[j] || ignored(o, &tb[j]))
			continue;
		detail(st, "%s: attr %.*s: - vs %.*s\n", ea->key, (int)tb[j].nlen, tb[j].name,
		       (int)tb[j].vlen, tb[j].val);
		differs = true;
	}
	if (differs)
		st->differing++;
}

static int add_ignores(struct cmp_opts *o, char *list)
{
	char *save = NULL, *t;

	for (t = strtok_r(list, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
		if (o->nignore >= CMP_MAX_IGNORE) {
			fprintf(stderr, "compare: too many --ignore attributes (max %d)\n",
			        CMP_MAX_IGNORE);
			return -1;
		}
		if (!strcmp(t, "key")) {
			fprintf(stderr, "compare: the key cannot be ignored\n");
			return -1;
		}
		o->ignore[o->nignore++] = t;
	}
	return 0;
}

int cmd_compare(int argc, char **argv)
{
	static const struct option opts[] = {{"timeout-slack", required_argument, NULL, 's'},
	                                     {"timeout-at-least", no_argument, NULL, 'l'},
	                                     {"ignore", required_argument, NULL, 'i'},
	                                     {"help", no_argument, NULL, 'h'},
	                                     {NULL, 0, NULL, 0}};
	struct cmp_opts o = {.slack = 5};
	struct cmp_stats st = {0};
	struct entries a, b;
	size_t i = 0, j = 0;
	int opt, dups, ret;

	while ((opt = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (opt) {
		case 's':
			if (parse_uint(optarg, 0, 1u << 30, &o.slack, "--timeout-slack") < 0)
				return EXIT_USAGE;
			break;
		case 'l':
			o.at_least = true;
			break;
		case 'i':
			if (add_ignores(&o, optarg) < 0)
				return EXIT_USAGE;
			break;
		case 'h':
			fputs("Usage: hafw-cttool compare FILE_A FILE_B [--timeout-slack N] "
			      "[--timeout-at-least] [--ignore ATTR1,ATTR2,...]\n"
			      "(see hafw-cttool --help)\n",
			      stdout);
			return EXIT_OK;
		default:
			return EXIT_USAGE;
		}
	}
	if (argc - optind != 2) {
		fprintf(stderr, "compare: need exactly two files (FILE_A FILE_B)\n");
		return EXIT_USAGE;
	}
	if (read_dump(argv[optind], &a) < 0)
		return EXIT_FAIL;
	if (read_dump(argv[optind + 1], &b) < 0) {
		entries_free(&a);
		return EXIT_FAIL;
	}
	dups = check_dups(&a) + check_dups(&b);

	while (i < a.n || j < b.n) {
		int c;

		if (i < a.n && j < b.n)
			c = strcmp(a.v[i].key, b.v[j].key);
		else
			c = i < a.n ? -1 : 1;
		if (c < 0) {
			detail(&st, "missing: %s\n", a.v[i].key);
			st.missing++;
			i++;
		} else if (c > 0) {
			detail(&st, "extra: %s\n", b.v[j].key);
			st.extra++;
			j++;
		} else {
			diff_entry(&o, &st, &a.v[i], &b.v[j]);
			i++;
			j++;
		}
	}
	if (st.lines > st.printed)
		printf("... %llu more detail lines not shown\n",
		       (unsigned long long)(st.lines - st.printed));
	printf("compare: %zu entries, %llu missing, %llu extra, %llu differing\n", a.n,
	       (unsigned long long)st.missing, (unsigned long long)st.extra,
	       (unsigned long long)st.differing);
	if (dups)
		fprintf(stderr, "compare: %d duplicate keys\n", dups);
	ret = (st.missing || st.extra || st.differing || dups) ? EXIT_FAIL : EXIT_OK;
	if (fflush(stdout) != 0)
		ret = EXIT_FAIL;
	entries_free(&a);
	entries_free(&b);
	return ret;
}

/* ---- count-events ---- */

#define EV_VLEN     64
#define EV_BUFSZ    (16 * 1024)
#define EV_IDLE_MAX 60.0

enum ev_type { EV_NEW, EV_DESTROY, EV_ALL };

static volatile sig_atomic_t ev_stop;

static void ev_sig(int sig)
{
	(void)sig;
	ev_stop = 1;
}

static bool ev_match(const struct nlmsghdr *nlh, enum ev_type type)
{
	uint16_t t = nlh->nlmsg_type;

	if ((t >> 8) != NFNL_SUBSYS_CTNETLINK)
		return false;
	switch (type) {
	case EV_NEW:
		return (t & 0xff) == IPCTNL_MSG_CT_NEW &&
		       (nlh->nlmsg_flags & (NLM_F_CREATE | NLM_F_EXCL)) ==
		           (NLM_F_CREATE | NLM_F_EXCL);
	case EV_DESTROY:
		return (t & 0xff) == IPCTNL_MSG_CT_DELETE;
	case EV_ALL:
	default:
		return (t & 0xff) == IPCTNL_MSG_CT_NEW || (t & 0xff) == IPCTNL_MSG_CT_DELETE;
	}
}

int cmd_count_events(int argc, char **argv)
{
	static const struct option opts[] = {
	    {"expect", required_argument, NULL, 'e'}, {"timeout", required_argument, NULL, 't'},
	    {"rcvbuf", required_argument, NULL, 'r'}, {"type", required_argument, NULL, 'T'},
	    {"help", no_argument, NULL, 'h'},         {NULL, 0, NULL, 0}};
	static char bufs[EV_VLEN][EV_BUFSZ];
	struct mmsghdr msgs[EV_VLEN];
	struct iovec iov[EV_VLEN];
	uint64_t expect = 0, tmo = 10, rcvbuf = 16 * 1024 * 1024, count = 0, overruns = 0;
	uint64_t iter, max_iter = 4000000000ull;
	enum ev_type type = EV_ALL;
	struct mnl_socket *nl;
	struct sigaction sa;
	double start, first = 0, last = 0, span;
	bool have_first = false;
	int opt, fd, i, ret = EXIT_FAIL;
	int groups[3], ngroups = 0;

	while ((opt = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (opt) {
		case 'e':
			if (parse_uint(optarg, 1, UINT64_MAX / 2, &expect, "--expect") < 0)
				return EXIT_USAGE;
			break;
		case 't':
			if (parse_uint(optarg, 1, 86400, &tmo, "--timeout") < 0)
				return EXIT_USAGE;
			break;
		case 'r':
			if (parse_uint(optarg, 4096, 1u << 30, &rcvbuf, "--rcvbuf") < 0)
				return EXIT_USAGE;
			break;
		case 'T':
			if (!strcmp(optarg, "new")) {
				type = EV_NEW;
			} else if (!strcmp(optarg, "destroy")) {
				type = EV_DESTROY;
			} else if (!strcmp(optarg, "all")) {
				type = EV_ALL;
			} else {
				fprintf(stderr,
				        "count-events: --type must be new, destroy or all\n");
				return EXIT_USAGE;
			}
			break;
		case 'h':
			fputs(
			    "Usage: hafw-cttool count-events [--expect N] [--timeout S] "
			    "[--rcvbuf BYTES] [--type new|destroy|all]\n(see hafw-cttool --help)\n",
			    stdout);
			return EXIT_OK;
		default:
			return EXIT_USAGE;
		}
	}
	if (optind != argc) {
		fprintf(stderr, "count-events: unexpected argument '%s'\n", argv[optind]);
		return EXIT_USAGE;
	}
	if (type == EV_NEW || type == EV_ALL)
		groups[ngroups++] = NFNLGRP_CONNTRACK_NEW;
	if (type == EV_ALL)
		groups[ngroups++] = NFNLGRP_CONNTRACK_UPDATE;
	if (type == EV_DESTROY || type == EV_ALL)
		groups[ngroups++] = NFNLGRP_CONNTRACK_DESTROY;

	nl = mnl_socket_open(NETLINK_NETFILTER);
	if (!nl) {
		fprintf(stderr, "count-events: cannot open netlink socket: %s\n", strerror(errno));
		return EXIT_FAIL;
	}
	if (mnl_socket_bind(nl, 0, MNL_SOCKET_AUTOPID) < 0) {
		fprintf(stderr, "count-events: bind failed: %s\n", strerror(errno));
		goto out;
	}
	fd = mnl_socket_get_fd(nl);
	set_rcvbuf(fd, (int)rcvbuf);
	for (i = 0; i < ngroups; i++) {
		if (setsockopt(fd, SOL_NETLINK, NETLINK_ADD_MEMBERSHIP, &groups[i],
		               sizeof(groups[i])) < 0) {
			fprintf(stderr, "count-events: cannot join group %d: %s\n", groups[i],
			        strerror(errno));
			goto out;
		}
	}
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = ev_sig;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);

	for (i = 0; i < EV_VLEN; i++) {
		iov[i].iov_base = bufs[i];
		iov[i].iov_len = EV_BUFSZ;
	}
	printf("READY\n");
	fflush(stdout);
	start = now_mono();

	for (iter = 0; iter < max_iter && !ev_stop; iter++) {
		double now = now_mono(), left;
		struct pollfd pfd = {.fd = fd, .events = POLLIN};
		int n, k;

		if (expect && count >= expect)
			break;
		left = have_first ? (double)tmo - (now - first) : EV_IDLE_MAX - (now - start);
		if (left <= 0)
			break;
		n = poll(&pfd, 1, left > 1.0 ? 1000 : (int)(left * 1000) + 1);
		if (n < 0 && errno != EINTR) {
			fprintf(stderr, "count-events: poll failed: %s\n", strerror(errno));
			goto out;
		}
		if (n <= 0)
			continue;
		for (k = 0; k < EV_VLEN; k++) {
			memset(&msgs[k].msg_hdr, 0, sizeof(msgs[k].msg_hdr));
			msgs[k].msg_hdr.msg_iov = &iov[k];
			msgs[k].msg_hdr.msg_iovlen = 1;
		}
		n = recvmmsg(fd, msgs, EV_VLEN, MSG_DONTWAIT, NULL);
		if (n < 0) {
			if (errno == ENOBUFS) {
				overruns++;
				continue;
			}
			if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)
				continue;
			fprintf(stderr, "count-events: recv failed: %s\n", strerror(errno));
			goto out;
		}
		now = now_mono();
		for (k = 0; k < n; k++) {
			const struct nlmsghdr *nlh = (const void *)bufs[k];
			int rem = (int)msgs[k].msg_len;
			uint64_t before = count;

			while (mnl_nlmsg_ok(nlh, rem)) {
				if (ev_match(nlh, type))
					count++;
				nlh = mnl_nlmsg_next(nlh, &rem);
			}
			if (count > before) {
				if (!have_first) {
					have_first = true;
					first = now;
				}
				last = now;
			}
		}
	}
	span = have_first ? last - first : 0;
	printf("events: %llu in %.3f s (%.0f/s) first-to-last, overruns %llu\n",
	       (unsigned long long)count, span, span > 0 ? (double)count / span : 0.0,
	       (unsigned long long)overruns);
	fflush(stdout);
	if (expect && count < expect) {
		fprintf(stderr, "count-events: expected %llu events, got %llu%s\n",
		        (unsigned long long)expect, (unsigned long long)count,
		        have_first ? "" : " (no event within 60 s)");
		goto out;
	}
	ret = EXIT_OK;
out:
	mnl_socket_close(nl);
	return ret;
}
