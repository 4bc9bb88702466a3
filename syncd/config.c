#include "config.h"
#include "filter.h"

#include <arpa/inet.h>
#include <errno.h>
#include <libconfig.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <syslog.h>

enum opt_type { O_INT, O_STR, O_BOOL };

struct opt {
	const char *path;
	enum opt_type type;
	size_t off;
	size_t size; /* string capacity */
	long long min, max;
	bool required;
};

#define OFF(f) offsetof(struct hafw_config, f)
#define SZ(f)  sizeof(((struct hafw_config *)0)->f)

static const struct opt opts[] = {
    {"node.id", O_INT, OFF(node_id), 0, 1, 0x7fffffff, true},
    {"node.name", O_STR, OFF(node_name), SZ(node_name), 1, 0, true},
    {"control.socket", O_STR, OFF(ctl_socket), SZ(ctl_socket), 1, 0, false},
    {"tracker.type", O_STR, OFF(tracker_type), SZ(tracker_type), 1, 0, true},
    {"tracker.netlink_buffer", O_INT, OFF(nl_rcvbuf), 0, 65536, 1 << 30, false},
    {"tracker.netlink_buffer_max", O_INT, OFF(nl_rcvbuf_max), 0, 65536, 1 << 30, false},
    {"tracker.commit_batch", O_INT, OFF(commit_batch), 0, 1, 100000, false},
    {"sync.interface", O_STR, OFF(sync_if), SZ(sync_if), 1, 0, true},
    {"sync.backup_interface", O_STR, OFF(sync_backup_if), SZ(sync_backup_if), 1, 0, false},
    {"sync.group", O_STR, OFF(sync_group), SZ(sync_group), 1, 0, true},
    {"sync.port", O_INT, OFF(sync_port), 0, 1, 65535, false},
    {"sync.mtu", O_INT, OFF(sync_mtu), 0, 0, 65535, false},
    {"sync.flush_ms", O_INT, OFF(sync_flush_ms), 0, 1, 1000, false},
    {"sync.heartbeat_ms", O_INT, OFF(sync_heartbeat_ms), 0, 50, 60000, false},
    {"sync.ttl", O_INT, OFF(sync_ttl), 0, 1, 255, false},
    {"sync.rcvbuf", O_INT, OFF(sync_rcvbuf), 0, 65536, 1 << 30, false},
    {"sync.sndbuf", O_INT, OFF(sync_sndbuf), 0, 65536, 1 << 30, false},
    {"sync.send_queue", O_INT, OFF(sync_send_queue), 0, 16, 1 << 20, false},
    {"sync.dead_interval_ms", O_INT, OFF(sync_dead_interval_ms), 0, 100, 3600000, false},
    {"sync.max_peers", O_INT, OFF(sync_max_peers), 0, 1, 1024, false},
    {"sync.peer_expire_s", O_INT, OFF(sync_peer_expire_s), 0, 1, 30 * 86400, false},
    {"sync.max_entries", O_INT, OFF(sync_max_entries), 0, 0, 1 << 28, false},
    {"sync.tombstone_ms", O_INT, OFF(sync_tombstone_ms), 0, 100, 3600000, false},
    {"sync.nack", O_BOOL, OFF(sync_nack), 0, 0, 0, false},
    {"sync.nack_interval_ms", O_INT, OFF(sync_nack_interval_ms), 0, 1, 10000, false},
    {"sync.retransmit_ring", O_INT, OFF(sync_retransmit_ring), 0, 0, 1 << 20, false},
    {"sync.resync", O_BOOL, OFF(sync_resync), 0, 0, 0, false},
    {"sync.digest_grace_ms", O_INT, OFF(sync_digest_grace_ms), 0, 0, 3600000, false},
    {"sync.delay_ms", O_INT, OFF(sync_delay_ms), 0, 0, 3600000, false},
    {"sync.control", O_BOOL, OFF(sync_control), 0, 0, 0, false},
    {"sync.control_port", O_INT, OFF(sync_control_port), 0, 0, 65535, false},
    {"sync.control_buffer", O_INT, OFF(sync_control_buffer), 0, 65536, 1 << 30, false},
    {"filter.ignore_local", O_BOOL, OFF(ignore_local), 0, 0, 0, false},
    {"log.syslog", O_BOOL, OFF(log_syslog), 0, 0, 0, false},
    {"log.level", O_STR, OFF(log_level), SZ(log_level), 1, 0, false},
};

struct list_opt {
	const char *path;
	size_t off;
	size_t width;
	size_t count_off;
	int (*check)(const char *s);
};

static int check_cidr(const char *s)
{
	struct hafw_filter f;

	filter_init(&f);
	return filter_add_cidr(&f, s);
}

static int check_proto(const char *s)
{
	struct hafw_filter f;

	filter_init(&f);
	return filter_add_l4(&f, s);
}

static const struct list_opt lists[] = {
    {"filter.ignore_addresses", OFF(ignore_addrs), SZ(ignore_addrs[0]), OFF(n_ignore_addrs),
     check_cidr},
    {"filter.keep_addresses", OFF(keep_addrs), SZ(keep_addrs[0]), OFF(n_keep_addrs), check_cidr},
    {"filter.ignore_protocols", OFF(ignore_protos), SZ(ignore_protos[0]), OFF(n_ignore_protos),
     check_proto},
};

static const char *const groups[] = {"node", "control", "tracker", "sync", "filter", "log"};
/* top-level settings that are lists, not groups */
static const char *const top_lists[] = {"peers"};

void config_defaults(struct hafw_config *c)
{
	memset(c, 0, sizeof(*c));
	snprintf(c->ctl_socket, sizeof(c->ctl_socket), "/run/hafw/syncd.sock");
	c->nl_rcvbuf = 64 << 20;
	c->nl_rcvbuf_max = 256 << 20;
	c->commit_batch = 2048;
	c->sync_port = 3780;
	c->sync_flush_ms = 5;
	c->sync_heartbeat_ms = 250;
	c->sync_ttl = 1;
	c->sync_rcvbuf = 16 << 20;
	c->sync_sndbuf = 4 << 20;
	c->sync_send_queue = 4096;
	c->sync_dead_interval_ms = 2000;
	c->sync_max_peers = 32;
	c->sync_peer_expire_s = 600;
	c->sync_max_entries = 0;
	c->sync_tombstone_ms = 10000;
	c->sync_nack = true;
	c->sync_nack_interval_ms = 20;
	c->sync_retransmit_ring = 8192;
	c->sync_resync = true;
	c->sync_digest_grace_ms = 3000;
	c->sync_control = true;
	c->sync_control_port = 0;
	c->sync_control_buffer = 8 << 20;
	c->ignore_local = true;
	snprintf(c->log_level, sizeof(c->log_level), "info");
}

struct errbuf {
	char *buf;
	size_t len, used;
	int count;
};

__attribute__((format(printf, 4, 5))) static void add_err(struct errbuf *e, const char *file,
                                                          int line, const char *fmt, ...)
{
	va_list ap;
	int n;

	e->count++;
	if (e->used >= e->len)
		return;
	n = snprintf(e->buf + e->used, e->len - e->used, "%s:%d: ", file, line);
	if (n > 0)
		e->used += (size_t)n;
	if (e->used >= e->len)
		return;
	va_start(ap, fmt);
	n = vsnprintf(e->buf + e->used, e->len - e->used, fmt, ap);
	va_end(ap);
	if (n > 0)
		e->used += (size_t)n;
	if (e->used + 1 < e->len) {
		e->buf[e->used++] = '\n';
		e->buf[e->used] = '\0';
	}
}

/* The file a setting came from: an @include names its own. */
static const char *file_of(const config_setting_t *s, const char *path)
{
	const char *f = s ? config_setting_source_file(s) : NULL;

	return f ? f : path;
}

static const char *type_name(int t)
{
	switch (t) {
	case CONFIG_TYPE_INT:
	case CONFIG_TYPE_INT64:
		return "an integer";
	case CONFIG_TYPE_STRING:
		return "a string";
	case CONFIG_TYPE_BOOL:
		return "a boolean";
	case CONFIG_TYPE_LIST:
	case CONFIG_TYPE_ARRAY:
		return "a list";
	case CONFIG_TYPE_GROUP:
		return "a group";
	default:
		return "a float";
	}
}

static bool known_key(const char *group, const char *name)
{
	char path[128];

	snprintf(path, sizeof(path), "%s.%s", group, name);
	for (size_t i = 0; i < sizeof(opts) / sizeof(opts[0]); i++)
		if (!strcmp(opts[i].path, path))
			return true;
	for (size_t i = 0; i < sizeof(lists) / sizeof(lists[0]); i++)
		if (!strcmp(lists[i].path, path))
			return true;
	return false;
}

static void check_unknown(config_t *cfg, const char *file, struct errbuf *e)
{
	config_setting_t *root = config_root_setting(cfg);

	for (int i = 0; i < config_setting_length(root); i++) {
		config_setting_t *g = config_setting_get_elem(root, i);
		const char *gname = config_setting_name(g);
		bool found = false;

		for (size_t k = 0; k < sizeof(top_lists) / sizeof(top_lists[0]); k++)
			if (!strcmp(top_lists[k], gname))
				goto next;
		for (size_t k = 0; k < sizeof(groups) / sizeof(groups[0]); k++)
			found |= !strcmp(groups[k], gname);
		if (!found) {
			add_err(e, file_of(g, file), config_setting_source_line(g),
			        "unknown section '%s'", gname);
			continue;
		}
		if (config_setting_type(g) != CONFIG_TYPE_GROUP) {
			add_err(e, file_of(g, file), config_setting_source_line(g),
			        "'%s' must be a group { ... }", gname);
			continue;
		}
		for (int j = 0; j < config_setting_length(g); j++) {
			config_setting_t *s = config_setting_get_elem(g, j);

			if (!known_key(gname, config_setting_name(s)))
				add_err(e, file_of(s, file), config_setting_source_line(s),
				        "unknown option '%s.%s'", gname, config_setting_name(s));
		}
	next:;
	}
}

/* An address of a peers entry; false (error added) when it is none. */
static bool peer_addr(const char *s, uint8_t *len, uint8_t *out, int idx, const char *key,
                      const char *file, int line, struct errbuf *e)
{
	if (inet_pton(AF_INET, s, out) == 1) {
		*len = 4;
	} else if (inet_pton(AF_INET6, s, out) == 1) {
		*len = 16;
	} else {
		add_err(e, file, line, "peers entry %d: %s \"%s\" is not an IPv4 or IPv6 address",
		        idx, key, s);
		return false;
	}
	return true;
}

/* One entry of "peers": { id = N; name = "..."; address = "...";
 * backup_address = "..."; } */
static void load_peer(config_setting_t *g, int idx, struct hafw_config *c, const char *file,
                      struct errbuf *e)
{
	struct hafw_config_peer *p = &c->peers[c->n_peers];
	int line = config_setting_source_line(g);
	const char *name = NULL, *addr = NULL, *baddr = NULL;
	long long id = 0;
	bool ok = true;

	file = file_of(g, file);
	memset(p, 0, sizeof(*p));
	if (!config_setting_is_group(g)) {
		add_err(e, file, line, "peers entry %d must be a group { id = ...; name = ...; }",
		        idx);
		return;
	}
	for (int j = 0; j < config_setting_length(g); j++) {
		config_setting_t *s = config_setting_get_elem(g, j);
		const char *k = config_setting_name(s);
		int sl = config_setting_source_line(s);

		if (!strcmp(k, "id") && (config_setting_type(s) == CONFIG_TYPE_INT ||
		                         config_setting_type(s) == CONFIG_TYPE_INT64)) {
			id = config_setting_get_int64(s);
		} else if (!strcmp(k, "name") && config_setting_type(s) == CONFIG_TYPE_STRING) {
			name = config_setting_get_string(s);
		} else if (!strcmp(k, "address") && config_setting_type(s) == CONFIG_TYPE_STRING) {
			addr = config_setting_get_string(s);
		} else if (!strcmp(k, "backup_address") &&
		           config_setting_type(s) == CONFIG_TYPE_STRING) {
			baddr = config_setting_get_string(s);
		} else if (!strcmp(k, "id") || !strcmp(k, "name") || !strcmp(k, "address") ||
		           !strcmp(k, "backup_address")) {
			add_err(e, file, sl, "peers entry %d: '%s' must be %s, not %s", idx, k,
			        strcmp(k, "id") ? "a string" : "an integer",
			        type_name(config_setting_type(s)));
			ok = false;
		} else {
			add_err(e, file, sl, "peers entry %d: unknown option '%s'", idx, k);
			ok = false;
		}
	}
	if (id < 1 || id > 0x7fffffff) {
		add_err(e, file, line, "peers entry %d: 'id' is required, 1 to 2147483647", idx);
		ok = false;
	}
	if (!name || !name[0] || strlen(name) >= sizeof(p->name)) {
		add_err(e, file, line, "peers entry %d: 'name' is required, 1 to %zu characters",
		        idx, sizeof(p->name) - 1);
		ok = false;
	}
	if (addr && !peer_addr(addr, &p->addr_len, p->addr, idx, "address", file, line, e))
		ok = false;
	if (baddr && !peer_addr(baddr, &p->backup_addr_len, p->backup_addr, idx, "backup_address",
	                        file, line, e))
		ok = false;
	for (int i = 0; ok && i < c->n_peers; i++) {
		if (c->peers[i].id == id) {
			add_err(e, file, line, "peers entry %d: id %lld is listed twice", idx, id);
			ok = false;
		} else if (!strcmp(c->peers[i].name, name)) {
			add_err(e, file, line, "peers entry %d: name \"%s\" is listed twice", idx,
			        name);
			ok = false;
		}
	}
	if (!ok)
		return;
	p->id = (int)id;
	strcpy(p->name, name);
	c->n_peers++;
}

static void load_peers(config_t *cfg, struct hafw_config *c, const char *file, struct errbuf *e)
{
	config_setting_t *s = config_lookup(cfg, "peers");

	if (!s)
		return;
	if (!config_setting_is_list(s)) {
		add_err(e, file_of(s, file), config_setting_source_line(s),
		        "'peers' must be a list ( { id = ...; name = ...; }, ... )");
		return;
	}
	if (config_setting_length(s) > CONFIG_MAX_PEERS) {
		add_err(e, file_of(s, file), config_setting_source_line(s),
		        "'peers' has more than %d entries", CONFIG_MAX_PEERS);
		return;
	}
	for (int i = 0; i < config_setting_length(s); i++)
		load_peer(config_setting_get_elem(s, i), i + 1, c, file, e);
}

static void load_opt(config_t *cfg, const struct opt *o, struct hafw_config *c, const char *file,
                     struct errbuf *e)
{
	config_setting_t *s = config_lookup(cfg, o->path);
	char *base = (char *)c + o->off;
	int line;

	if (!s) {
		if (o->required)
			add_err(e, file, 0, "missing required option '%s'", o->path);
		return;
	}
	line = config_setting_source_line(s);
	file = file_of(s, file);
	switch (o->type) {
	case O_INT: {
		long long v;

		if (config_setting_type(s) != CONFIG_TYPE_INT &&
		    config_setting_type(s) != CONFIG_TYPE_INT64) {
			add_err(e, file, line, "'%s' must be an integer, not %s", o->path,
			        type_name(config_setting_type(s)));
			return;
		}
		v = config_setting_get_int64(s);
		if (v < o->min || v > o->max) {
			add_err(e, file, line, "'%s' = %lld is out of range [%lld, %lld]", o->path,
			        v, o->min, o->max);
			return;
		}
		*(int *)base = (int)v;
		break;
	}
	case O_STR: {
		const char *v;

		if (config_setting_type(s) != CONFIG_TYPE_STRING) {
			add_err(e, file, line, "'%s' must be a string, not %s", o->path,
			        type_name(config_setting_type(s)));
			return;
		}
		v = config_setting_get_string(s);
		if (strlen(v) < (size_t)o->min || strlen(v) >= o->size) {
			add_err(e, file, line, "'%s' must be 1 to %zu characters", o->path,
			        o->size - 1);
			return;
		}
		strcpy(base, v);
		break;
	}
	case O_BOOL:
		if (config_setting_type(s) != CONFIG_TYPE_BOOL) {
			add_err(e, file, line, "'%s' must be true or false", o->path);
			return;
		}
		*(bool *)base = config_setting_get_bool(s);
		break;
	}
}

static void load_list(config_t *cfg, const struct list_opt *l, struct hafw_config *c,
                      const char *file, struct errbuf *e)
{
	config_setting_t *s = config_lookup(cfg, l->path);
	int *count = (int *)((char *)c + l->count_off);
	char *base = (char *)c + l->off;
	int n;

	if (!s)
		return;
	if (!config_setting_is_aggregate(s) || config_setting_is_group(s)) {
		add_err(e, file_of(s, file), config_setting_source_line(s),
		        "'%s' must be a list [ ... ]", l->path);
		return;
	}
	n = config_setting_length(s);
	if (n > CONFIG_MAX_LIST) {
		add_err(e, file_of(s, file), config_setting_source_line(s),
		        "'%s' has more than %d entries", l->path, CONFIG_MAX_LIST);
		return;
	}
	for (int i = 0; i < n; i++) {
		config_setting_t *it = config_setting_get_elem(s, i);
		const char *v = config_setting_get_string(it);
		char num[16];

		if (!v && config_setting_type(it) == CONFIG_TYPE_INT) {
			snprintf(num, sizeof(num), "%d", config_setting_get_int(it));
			v = num;
		}
		if (!v || strlen(v) >= l->width || l->check(v)) {
			add_err(e, file_of(it, file), config_setting_source_line(it),
			        "'%s' entry %d is not valid: '%s'", l->path, i + 1, v ? v : "?");
			continue;
		}
		strcpy(base + (size_t)(*count) * l->width, v);
		(*count)++;
	}
}

int config_log_level(const struct hafw_config *c)
{
	static const struct {
		const char *name;
		int level;
	} levels[] = {{"error", LOG_ERR},
	              {"warning", LOG_WARNING},
	              {"notice", LOG_NOTICE},
	              {"info", LOG_INFO},
	              {"debug", LOG_DEBUG}};

	for (size_t i = 0; i < sizeof(levels) / sizeof(levels[0]); i++)
		if (!strcmp(levels[i].name, c->log_level))
			return levels[i].level;
	return -1;
}

static void check_semantics(config_t *cfg, struct hafw_config *c, const char *file,
                            struct errbuf *e)
{
	config_setting_t *s;
	uint8_t a[16];

	if (c->tracker_type[0] && strcmp(c->tracker_type, "kernel") &&
	    strcmp(c->tracker_type, "dataplane")) {
		s = config_lookup(cfg, "tracker.type");
		add_err(e, file_of(s, file), s ? config_setting_source_line(s) : 0,
		        "tracker.type must be \"kernel\" or \"dataplane\", not \"%s\"",
		        c->tracker_type);
	}
	if (c->sync_group[0]) {
		bool v4 = inet_pton(AF_INET, c->sync_group, a) == 1;
		bool v6 = !v4 && inet_pton(AF_INET6, c->sync_group, a) == 1;

		if ((!v4 && !v6) || (v4 && (a[0] & 0xf0) != 0xe0) || (v6 && a[0] != 0xff)) {
			s = config_lookup(cfg, "sync.group");
			add_err(e, file_of(s, file), s ? config_setting_source_line(s) : 0,
			        "sync.group \"%s\" is not an IPv4 or IPv6 multicast address",
			        c->sync_group);
		}
	}
	if (config_log_level(c) < 0) {
		s = config_lookup(cfg, "log.level");
		add_err(e, file_of(s, file), s ? config_setting_source_line(s) : 0,
		        "log.level must be error, warning, notice, info or debug");
	}
	if (c->nl_rcvbuf_max < c->nl_rcvbuf)
		c->nl_rcvbuf_max = c->nl_rcvbuf;
	if (c->sync_dead_interval_ms <= c->sync_heartbeat_ms) {
		s = config_lookup(cfg, "sync.dead_interval_ms");
		if (!s)
			s = config_lookup(cfg, "sync.heartbeat_ms");
		add_err(e, file_of(s, file), s ? config_setting_source_line(s) : 0,
		        "sync.dead_interval_ms (%d) must be longer than sync.heartbeat_ms (%d)",
		        c->sync_dead_interval_ms, c->sync_heartbeat_ms);
	}
	for (int i = 0; i < c->n_peers; i++) {
		if (c->peers[i].id != c->node_id)
			continue;
		s = config_lookup(cfg, "peers");
		add_err(e, file_of(s, file), s ? config_setting_source_line(s) : 0,
		        "peers entry %d has this node's own id %d", i + 1, c->node_id);
	}
	if (c->sync_backup_if[0] && !strcmp(c->sync_backup_if, c->sync_if)) {
		s = config_lookup(cfg, "sync.backup_interface");
		add_err(e, file_of(s, file), s ? config_setting_source_line(s) : 0,
		        "sync.backup_interface must be another interface than sync.interface (%s)",
		        c->sync_if);
	}
	for (int i = 0; i < c->n_peers; i++) {
		const struct hafw_config_peer *p = &c->peers[i];
		const char *why = NULL;

		if (p->backup_addr_len && !c->sync_backup_if[0])
			why = "has a backup_address but sync.backup_interface is not set";
		else if (c->sync_backup_if[0] && p->addr_len && !p->backup_addr_len)
			why = "has an address but no backup_address (datagrams on the backup link "
			      "would be refused)";
		if (!why)
			continue;
		s = config_lookup(cfg, "peers");
		add_err(e, file_of(s, file), s ? config_setting_source_line(s) : 0,
		        "peers entry %d (id %d) %s", i + 1, p->id, why);
	}
	if (c->n_peers > c->sync_max_peers) {
		s = config_lookup(cfg, "peers");
		add_err(e, file_of(s, file), s ? config_setting_source_line(s) : 0,
		        "'peers' lists %d peers, more than sync.max_peers (%d)", c->n_peers,
		        c->sync_max_peers);
	}
}

int config_load(const char *path, struct hafw_config *c, char *err, size_t errlen)
{
	struct errbuf e = {err, errlen, 0, 0};
	config_t cfg;

	if (errlen)
		err[0] = '\0';
	config_defaults(c);
	config_init(&cfg);
	if (!config_read_file(&cfg, path)) {
		if (config_error_type(&cfg) == CONFIG_ERR_FILE_IO)
			add_err(&e, path, 0, "cannot read file: %s", strerror(errno));
		else
			add_err(&e, config_error_file(&cfg) ? config_error_file(&cfg) : path,
			        config_error_line(&cfg), "%s", config_error_text(&cfg));
		config_destroy(&cfg);
		return -1;
	}
	check_unknown(&cfg, path, &e);
	for (size_t i = 0; i < sizeof(opts) / sizeof(opts[0]); i++)
		load_opt(&cfg, &opts[i], c, path, &e);
	for (size_t i = 0; i < sizeof(lists) / sizeof(lists[0]); i++)
		load_list(&cfg, &lists[i], c, path, &e);
	load_peers(&cfg, c, path, &e);
	check_semantics(&cfg, c, path, &e);
	config_destroy(&cfg);
	return e.count ? -1 : 0;
}
