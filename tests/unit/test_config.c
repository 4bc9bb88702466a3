/* syncd/config.c: libconfig loader, every error with file and line. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>
#include <unistd.h>

#define CONTRACT                                                                                   \
	"node    = { id = 1; name = \"fw-a\"; };\n"                                                \
	"control = { socket = \"/run/hafw/fw-a.sock\"; };\n"                                       \
	"tracker = { type = \"kernel\"; };\n"                                                      \
	"sync    = { interface = \"sync0\"; group = \"239.192.77.1\"; port = 3780; };\n"

static char path[64];
static char err[8192];
static struct hafw_config cfg;

static void write_file(char *name, size_t size, const char *text)
{
	int fd;

	snprintf(name, size, "/tmp/hafw-test-config-XXXXXX");
	fd = mkstemp(name);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
	close(fd);
}

/* Write text to a temporary file and load it. */
static int load(const char *text)
{
	int ret;

	write_file(path, sizeof(path), text);
	memset(err, 0, sizeof(err));
	ret = config_load(path, &cfg, err, sizeof(err));
	unlink(path);
	return ret;
}

/* An error line "PATH:LINE: ...substr..." (any line when line < 0). */
static bool has_err(int line, const char *substr)
{
	char prefix[128];
	const char *p = err;

	if (line >= 0)
		snprintf(prefix, sizeof(prefix), "%s:%d: ", path, line);
	else
		snprintf(prefix, sizeof(prefix), "%s:", path);
	while (*p) {
		const char *eol = strchr(p, '\n');
		size_t n = eol ? (size_t)(eol - p) : strlen(p);
		char one[512];

		snprintf(one, sizeof(one), "%.*s", (int)n, p);
		if (!strncmp(one, prefix, strlen(prefix)) && strstr(one, substr))
			return true;
		p += n + (eol ? 1 : 0);
	}
	return false;
}

static int count_lines(void)
{
	int n = 0;

	for (const char *p = err; *p; p++)
		n += *p == '\n';
	return n;
}

#define EXPECT_ERR(line, substr)                                                                   \
	do {                                                                                       \
		if (!has_err(line, substr))                                                        \
			fail_msg("no error '%s:%d: ...%s...' in:\n%s", path, line, substr, err);   \
	} while (0)

static void test_contract(void **state)
{
	(void)state;
	if (load(CONTRACT) != 0)
		fail_msg("contract config refused:\n%s", err);
	assert_string_equal(err, "");
	assert_int_equal(cfg.node_id, 1);
	assert_string_equal(cfg.node_name, "fw-a");
	assert_string_equal(cfg.ctl_socket, "/run/hafw/fw-a.sock");
	assert_string_equal(cfg.tracker_type, "kernel");
	assert_string_equal(cfg.sync_if, "sync0");
	assert_string_equal(cfg.sync_group, "239.192.77.1");
	assert_int_equal(cfg.sync_port, 3780);
	/* config_defaults() for the rest */
	{
		struct hafw_config d;

		config_defaults(&d);
		assert_int_equal(cfg.nl_rcvbuf, d.nl_rcvbuf);
		assert_int_equal(cfg.nl_rcvbuf_max, d.nl_rcvbuf_max);
		assert_int_equal(cfg.commit_batch, d.commit_batch);
		assert_int_equal(cfg.sync_mtu, d.sync_mtu);
		assert_int_equal(cfg.sync_flush_ms, d.sync_flush_ms);
		assert_int_equal(cfg.sync_heartbeat_ms, d.sync_heartbeat_ms);
		assert_int_equal(cfg.sync_ttl, d.sync_ttl);
		assert_int_equal(cfg.sync_rcvbuf, d.sync_rcvbuf);
		assert_int_equal(cfg.ignore_local, d.ignore_local);
		assert_int_equal(cfg.log_syslog, d.log_syslog);
		assert_string_equal(cfg.log_level, d.log_level);
	}
	assert_int_equal(cfg.n_ignore_addrs, 0);
	assert_int_equal(cfg.n_keep_addrs, 0);
	assert_int_equal(cfg.n_ignore_protos, 0);
	assert_int_equal(config_log_level(&cfg), LOG_INFO);
}

static void test_every_option(void **state)
{
	(void)state;
	if (load("node = { id = 2147483647; name = \"b\"; };\n"
	         "control = { socket = \"/tmp/x.sock\"; };\n"
	         "tracker = { type = \"dataplane\"; netlink_buffer = 65536;\n"
	         "            netlink_buffer_max = 1048576; commit_batch = 100000; };\n"
	         "sync = { interface = \"eth1\"; group = \"ff15::77\"; port = 1; mtu = 9000;\n"
	         "         flush_ms = 1000; heartbeat_ms = 50; ttl = 255; rcvbuf = 65536; };\n"
	         "filter = { ignore_local = false;\n"
	         "           ignore_addresses = [\"10.0.0.0/8\", \"fd00::/8\", \"192.0.2.1\"];\n"
	         "           keep_addresses = (\"10.9.9.9\");\n"
	         "           ignore_protocols = [\"tcp\", \"udplite\"];\n"
	         "};\n"
	         "log = { syslog = true; level = \"debug\"; };\n") != 0)
		fail_msg("refused:\n%s", err);
	assert_int_equal(cfg.node_id, 0x7fffffff);
	assert_string_equal(cfg.tracker_type, "dataplane");
	assert_int_equal(cfg.nl_rcvbuf, 65536);
	assert_int_equal(cfg.nl_rcvbuf_max, 1048576);
	assert_int_equal(cfg.commit_batch, 100000);
	assert_string_equal(cfg.sync_group, "ff15::77");
	assert_int_equal(cfg.sync_port, 1);
	assert_int_equal(cfg.sync_mtu, 9000);
	assert_int_equal(cfg.sync_flush_ms, 1000);
	assert_int_equal(cfg.sync_heartbeat_ms, 50);
	assert_int_equal(cfg.sync_ttl, 255);
	assert_int_equal(cfg.sync_rcvbuf, 65536);
	assert_false(cfg.ignore_local);
	assert_int_equal(cfg.n_ignore_addrs, 3);
	assert_string_equal(cfg.ignore_addrs[0], "10.0.0.0/8");
	assert_string_equal(cfg.ignore_addrs[2], "192.0.2.1");
	assert_int_equal(cfg.n_keep_addrs, 1);
	assert_string_equal(cfg.keep_addrs[0], "10.9.9.9");
	assert_int_equal(cfg.n_ignore_protos, 2);
	assert_string_equal(cfg.ignore_protos[1], "udplite");
	assert_true(cfg.log_syslog);
	assert_int_equal(config_log_level(&cfg), LOG_DEBUG);

	/* 64-bit integers in range are integers; numbers in a protocol list */
	if (load(CONTRACT "tracker = { type = \"kernel\"; };\n") == 0)
		fail_msg("duplicate section accepted");
	if (load("node = { id = 1L; name = \"a\"; };\n"
	         "tracker = { type = \"kernel\"; netlink_buffer = 4194304L; netlink_buffer_max = "
	         "65536; };\n"
	         "sync = { interface = \"s\"; group = \"239.0.0.1\"; };\n"
	         "filter = { ignore_protocols = [47, 132]; };\n") != 0)
		fail_msg("refused:\n%s", err);
	assert_int_equal(cfg.node_id, 1);
	assert_string_equal(cfg.ignore_protos[0], "47");
	/* a maximum below the buffer is raised to it */
	assert_int_equal(cfg.nl_rcvbuf_max, 4194304);
}

static void test_syntax_error(void **state)
{
	(void)state;
	assert_int_equal(load("node = { id = 1; name = \"fw-a\"; };\n"
	                      "tracker = { type = \"kernel\"; };\n"
	                      "sync = { interface = \"s\"; group = \"239.0.0.1\";\n"
	                      "         port = ; };\n"),
	                 -1);
	EXPECT_ERR(4, "syntax error");
	assert_int_equal(load("node = { id = 1; name = \"fw-a\" };\n"
	                      "\n"
	                      "sync = { interface = \"unterminated; };\n"),
	                 -1);
	assert_true(has_err(-1, ""));
	assert_int_equal(load("\n\n\n}"), -1);
	EXPECT_ERR(4, "syntax error");
}

static void test_unknown(void **state)
{
	(void)state;
	assert_int_equal(load(CONTRACT "sync2 = { port = 1; };\n"), -1);
	EXPECT_ERR(5, "unknown section 'sync2'");
	assert_int_equal(load("node = { id = 1; name = \"fw-a\";\n"
	                      "  colour = \"red\";\n"
	                      "};\n"
	                      "tracker = { type = \"kernel\"; };\n"
	                      "sync = { interface = \"s\"; group = \"239.0.0.1\";\n"
	                      "  prot = 3780; };\n"),
	                 -1);
	EXPECT_ERR(2, "unknown option 'node.colour'");
	EXPECT_ERR(6, "unknown option 'sync.prot'");
	assert_int_equal(count_lines(), 2);
	/* a top-level scalar where a section is expected */
	assert_int_equal(load(CONTRACT "\nlog = 5;\n"), -1);
	EXPECT_ERR(6, "'log' must be a group");
	assert_int_equal(load(CONTRACT "verbose = true;\n"), -1);
	EXPECT_ERR(5, "unknown section 'verbose'");
}

static void test_wrong_type(void **state)
{
	(void)state;
	assert_int_equal(load("node = { id = 1; name = \"fw-a\"; };\n"
	                      "tracker = { type = \"kernel\"; };\n"
	                      "sync = { interface = \"s\"; group = \"239.0.0.1\";\n"
	                      "         port = \"3780\"; };\n"),
	                 -1);
	EXPECT_ERR(4, "'sync.port' must be an integer, not a string");
	assert_int_equal(
	    load("node = { id = 1.5; name = 7; };\n"
	         "tracker = { type = [\"kernel\"]; };\n"
	         "sync = { interface = \"s\"; group = \"239.0.0.1\"; port = 3780.0; };\n"
	         "filter = { ignore_local = \"yes\"; ignore_addresses = \"10.0.0.0/8\"; };\n"
	         "log = { syslog = 1; };\n"),
	    -1);
	EXPECT_ERR(1, "'node.id' must be an integer, not a float");
	EXPECT_ERR(1, "'node.name' must be a string, not an integer");
	EXPECT_ERR(2, "'tracker.type' must be a string, not a list");
	EXPECT_ERR(3, "'sync.port' must be an integer, not a float");
	EXPECT_ERR(4, "'filter.ignore_local' must be true or false");
	EXPECT_ERR(4, "'filter.ignore_addresses' must be a list");
	EXPECT_ERR(5, "'log.syslog' must be true or false");
	assert_int_equal(count_lines(), 7);
}

static void test_ranges(void **state)
{
	(void)state;
	assert_int_equal(load("node = { id = 1; name = \"fw-a\"; };\n"
	                      "tracker = { type = \"kernel\"; };\n"
	                      "sync = { interface = \"s\"; group = \"239.0.0.1\";\n"
	                      "\n"
	                      "         port = 70000; };\n"),
	                 -1);
	EXPECT_ERR(5, "'sync.port' = 70000 is out of range [1, 65535]");
	assert_int_equal(load("node = { id = 0; name = \"fw-a\"; };\n"
	                      "tracker = { type = \"kernel\"; commit_batch = 100001; };\n"
	                      "sync = { interface = \"s\"; group = \"239.0.0.1\"; port = 0;\n"
	                      "  ttl = 256; heartbeat_ms = 49; flush_ms = -1; };\n"),
	                 -1);
	EXPECT_ERR(1, "'node.id' = 0 is out of range");
	EXPECT_ERR(2, "'tracker.commit_batch' = 100001");
	EXPECT_ERR(3, "'sync.port' = 0");
	EXPECT_ERR(4, "'sync.ttl' = 256");
	EXPECT_ERR(4, "'sync.heartbeat_ms' = 49");
	EXPECT_ERR(4, "'sync.flush_ms' = -1");
	/* 64-bit values are checked, not truncated */
	assert_int_equal(load("node = { id = 4294967297L; name = \"fw-a\"; };\n"
	                      "tracker = { type = \"kernel\"; };\n"
	                      "sync = { interface = \"s\"; group = \"239.0.0.1\"; };\n"),
	                 -1);
	EXPECT_ERR(1, "'node.id' = 4294967297 is out of range");
	/* string lengths */
	assert_int_equal(
	    load("node = { id = 1; name = \"\"; };\n"
	         "tracker = { type = \"kernel\"; };\n"
	         "sync = { interface = \"abcdefghijklmnop\"; group = \"239.0.0.1\"; };\n"),
	    -1);
	EXPECT_ERR(1, "'node.name' must be 1 to 63 characters");
	EXPECT_ERR(3, "'sync.interface' must be 1 to 15 characters");
}

static void test_semantics(void **state)
{
	static const char *const bad_groups[] = {"10.1.2.3",     "192.0.2.1",  "240.0.0.1",
	                                         "2001:db8::1",  "fe80::1",    "not-an-ip",
	                                         "239.0.0.1/24", "224.0.0.256"};

	(void)state;
	for (size_t i = 0; i < sizeof(bad_groups) / sizeof(bad_groups[0]); i++) {
		char text[512];

		snprintf(text, sizeof(text),
		         "node = { id = 1; name = \"fw-a\"; };\n"
		         "tracker = { type = \"kernel\"; };\n"
		         "sync = { interface = \"sync0\";\n"
		         "         group = \"%s\"; };\n",
		         bad_groups[i]);
		assert_int_equal(load(text), -1);
		EXPECT_ERR(4, "is not an IPv4 or IPv6 multicast address");
	}
	assert_int_equal(load("node = { id = 1; name = \"fw-a\"; };\n"
	                      "tracker = { type = \"kernel\"; };\n"
	                      "sync = { interface = \"sync0\"; group = \"224.0.0.1\"; };\n"),
	                 0);
	assert_int_equal(load("node = { id = 1; name = \"fw-a\"; };\n"
	                      "tracker = { type = \"kernel\"; };\n"
	                      "sync = { interface = \"sync0\"; group = \"ff02::1:3\"; };\n"),
	                 0);
	/* tracker type */
	assert_int_equal(load("node = { id = 1; name = \"fw-a\"; };\n"
	                      "\n"
	                      "tracker = { type = \"xdp\"; };\n"
	                      "sync = { interface = \"sync0\"; group = \"239.0.0.1\"; };\n"),
	                 -1);
	EXPECT_ERR(3, "tracker.type must be \"kernel\" or \"dataplane\", not \"xdp\"");
	/* log level */
	assert_int_equal(load(CONTRACT "log = {\n  level = \"loud\"; };\n"), -1);
	EXPECT_ERR(6, "log.level must be");
	/* a backup sync link: another interface, and peers with an address
	 * need one on it too */
	if (load("node = { id = 1; name = \"fw-a\"; };\n"
	         "tracker = { type = \"kernel\"; };\n"
	         "sync = { interface = \"sync0\"; group = \"239.0.0.1\";\n"
	         "         backup_interface = \"sync1\"; };\n"
	         "peers = ( { id = 2; name = \"fw-b\"; address = \"10.0.0.2\";\n"
	         "            backup_address = \"10.1.0.2\"; } );\n") != 0)
		fail_msg("refused:\n%s", err);
	assert_string_equal(cfg.sync_backup_if, "sync1");
	assert_int_equal(cfg.peers[0].backup_addr_len, 4);
	assert_int_equal(cfg.peers[0].backup_addr[1], 1);
	assert_int_equal(load("node = { id = 1; name = \"fw-a\"; };\n"
	                      "tracker = { type = \"kernel\"; };\n"
	                      "sync = { interface = \"sync0\"; group = \"239.0.0.1\";\n"
	                      "         backup_interface = \"sync0\"; };\n"),
	                 -1);
	EXPECT_ERR(4, "sync.backup_interface must be another interface");
	assert_int_equal(
	    load("node = { id = 1; name = \"fw-a\"; };\n"
	         "tracker = { type = \"kernel\"; };\n"
	         "sync = { interface = \"sync0\"; group = \"239.0.0.1\";\n"
	         "         backup_interface = \"sync1\"; };\n"
	         "peers = ( { id = 2; name = \"fw-b\"; address = \"10.0.0.2\"; } );\n"),
	    -1);
	EXPECT_ERR(5, "has an address but no backup_address");
	assert_int_equal(load(CONTRACT "peers = ( { id = 2; name = \"b\"; backup_address = "
	                               "\"10.1.0.2\"; } );\n"),
	                 -1);
	EXPECT_ERR(5, "sync.backup_interface is not set");
	assert_int_equal(load(CONTRACT "peers = ( { id = 2; name = \"b\"; backup_address = "
	                               "\"10.1.0\"; } );\n"),
	                 -1);
	EXPECT_ERR(5, "backup_address \"10.1.0\" is not an IPv4 or IPv6 address");
}

static void test_missing(void **state)
{
	(void)state;
	/* no line to point at: the file is named, the option too */
	assert_int_equal(load("node = { id = 1; name = \"fw-a\"; };\n"
	                      "tracker = { type = \"kernel\"; };\n"
	                      "sync = { group = \"239.0.0.1\"; };\n"),
	                 -1);
	EXPECT_ERR(-1, "missing required option 'sync.interface'");
	assert_int_equal(count_lines(), 1);
	assert_int_equal(load(""), -1);
	EXPECT_ERR(-1, "missing required option 'node.id'");
	EXPECT_ERR(-1, "missing required option 'node.name'");
	EXPECT_ERR(-1, "missing required option 'tracker.type'");
	EXPECT_ERR(-1, "missing required option 'sync.interface'");
	EXPECT_ERR(-1, "missing required option 'sync.group'");
	/* a file that cannot be read */
	snprintf(path, sizeof(path), "/nonexistent/hafw.conf");
	assert_int_equal(config_load(path, &cfg, err, sizeof(err)), -1);
	EXPECT_ERR(-1, "cannot read file");
}

static void test_lists(void **state)
{
	char text[8192];
	size_t n;

	(void)state;
	assert_int_equal(load(CONTRACT "filter = {\n"
	                               "  ignore_addresses = [\n"
	                               "    \"10.0.0.0/8\",\n"
	                               "    \"10.0.0.0/33\",\n"
	                               "    \"fd00::/64\",\n"
	                               "    \"host.example\" ];\n"
	                               "\n"
	                               "  keep_addresses = ( \"1.2.3.4\", 5 );\n"
	                               "  ignore_protocols = ( \"tcp\",\n"
	                               "                       \"bogus\", 300 );\n"
	                               "};\n"),
	                 -1);
	EXPECT_ERR(8, "'filter.ignore_addresses' entry 2 is not valid: '10.0.0.0/33'");
	EXPECT_ERR(10, "'filter.ignore_addresses' entry 4 is not valid: 'host.example'");
	EXPECT_ERR(12, "'filter.keep_addresses' entry 2 is not valid");
	EXPECT_ERR(14, "'filter.ignore_protocols' entry 2 is not valid: 'bogus'");
	EXPECT_ERR(14, "'filter.ignore_protocols' entry 3 is not valid: '300'");
	assert_int_equal(count_lines(), 5);
	/* libconfig gives a setting the line of the token that ends it: the
	 * last entry of a list whose "]" is on the next line gets that line. */
	assert_int_equal(load(CONTRACT "filter = { ignore_addresses = [\n"
	                               "  \"1.1.1.1\",\n"
	                               "  \"bad\"\n"
	                               "]; };\n"),
	                 -1);
	assert_true(has_err(7, "entry 2") || has_err(8, "entry 2"));
	/* too many entries */
	n = (size_t)snprintf(text, sizeof(text), CONTRACT "filter = { ignore_addresses = [");
	for (int i = 0; i < CONFIG_MAX_LIST + 1; i++)
		n += (size_t)snprintf(text + n, sizeof(text) - n, "%s\"10.0.%d.0/24\"",
		                      i ? ", " : "", i);
	snprintf(text + n, sizeof(text) - n, "]; };\n");
	assert_int_equal(load(text), -1);
	EXPECT_ERR(5, "has more than 64 entries");
	/* exactly the maximum is fine */
	n = (size_t)snprintf(text, sizeof(text), CONTRACT "filter = { ignore_addresses = [");
	for (int i = 0; i < CONFIG_MAX_LIST; i++)
		n += (size_t)snprintf(text + n, sizeof(text) - n, "%s\"10.0.%d.0/24\"",
		                      i ? ", " : "", i);
	snprintf(text + n, sizeof(text) - n, "]; };\n");
	if (load(text) != 0)
		fail_msg("refused:\n%s", err);
	assert_int_equal(cfg.n_ignore_addrs, CONFIG_MAX_LIST);
	assert_string_equal(cfg.ignore_addrs[CONFIG_MAX_LIST - 1], "10.0.63.0/24");
	/* a group is not a list */
	assert_int_equal(load(CONTRACT "filter = { ignore_protocols = { a = 1; }; };\n"), -1);
	EXPECT_ERR(5, "'filter.ignore_protocols' must be a list");
}

/* All errors of a file, each with its own line. */
static void test_multiple_errors(void **state)
{
	(void)state;
	assert_int_equal(load("node = { id = 1; name = \"fw-a\";\n" /* 1 */
	                      "  role = \"primary\"; };\n"          /* 2 */
	                      "tracker = { type = \"kernel\"; };\n" /* 3 */
	                      "sync = {\n"                          /* 4 */
	                      "  interface = \"sync0\";\n"          /* 5 */
	                      "  group = \"10.0.0.1\";\n"           /* 6 */
	                      "  port = 99999;\n"                   /* 7 */
	                      "};\n"                                /* 8 */
	                      "filter = { ignore_addresses =\n"     /* 9 */
	                      "  [ \"300.1.1.1\" ]; };\n"           /* 10 */
	                      "extra = { };\n"),                    /* 11 */
	                 -1);
	EXPECT_ERR(2, "unknown option 'node.role'");
	EXPECT_ERR(6, "sync.group \"10.0.0.1\"");
	EXPECT_ERR(7, "'sync.port' = 99999");
	EXPECT_ERR(10, "'filter.ignore_addresses' entry 1");
	EXPECT_ERR(11, "unknown section 'extra'");
	assert_int_equal(count_lines(), 5);
}

static void test_small_error_buffer(void **state)
{
	char small[24];
	int ret;

	(void)state;
	write_file(path, sizeof(path), "a = 1; b = 2; c = 3; d = 4;\n");
	memset(small, 'z', sizeof(small));
	ret = config_load(path, &cfg, small, 16);
	assert_int_equal(ret, -1);
	assert_true(memchr(small, '\0', 16) != NULL);
	assert_int_equal(small[16], 'z');
	assert_int_equal(config_load(path, &cfg, NULL, 0), -1);
	unlink(path);
}

/* An error in an included file names that file and its line; an error in
 * the main file still names the main file. */
static void test_include(void **state)
{
	char inc[64], main_path[64], main_text[256];
	int ret;

	(void)state;
	write_file(inc, sizeof(inc),
	           "sync = { interface = \"sync0\"; group = \"239.0.0.1\";\n"
	           "         port = 0; };\n"
	           "extra = 1;\n");
	snprintf(main_text, sizeof(main_text),
	         "node = { id = 1; name = \"fw-a\";\n"
	         "         colour = 1; };\n"
	         "tracker = { type = \"kernel\"; };\n"
	         "@include \"%s\"\n",
	         inc);
	write_file(main_path, sizeof(main_path), main_text);
	memset(err, 0, sizeof(err));
	ret = config_load(main_path, &cfg, err, sizeof(err));
	unlink(main_path);
	unlink(inc);
	assert_int_equal(ret, -1);
	/* the included file's own name with its own line, never the main
	 * file's name with the included file's line */
	snprintf(path, sizeof(path), "%s", inc);
	EXPECT_ERR(2, "'sync.port' = 0");
	EXPECT_ERR(3, "unknown section 'extra'");
	snprintf(path, sizeof(path), "%s", main_path);
	EXPECT_ERR(2, "unknown option 'node.colour'");
	assert_false(has_err(-1, "sync.port"));
	assert_false(has_err(-1, "extra"));
}

static void test_shipped_config(void **state)
{
	const char *shipped = HAFW_SOURCE_DIR "/etc/hafw-syncd.conf";

	(void)state;
	if (access(shipped, R_OK) != 0)
		skip();
	snprintf(path, sizeof(path), "%s", "shipped");
	if (config_load(shipped, &cfg, err, sizeof(err)) != 0)
		fail_msg("%s does not load:\n%s", shipped, err);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_contract),
	    cmocka_unit_test(test_every_option),
	    cmocka_unit_test(test_syntax_error),
	    cmocka_unit_test(test_unknown),
	    cmocka_unit_test(test_wrong_type),
	    cmocka_unit_test(test_ranges),
	    cmocka_unit_test(test_semantics),
	    cmocka_unit_test(test_missing),
	    cmocka_unit_test(test_lists),
	    cmocka_unit_test(test_multiple_errors),
	    cmocka_unit_test(test_small_error_buffer),
	    cmocka_unit_test(test_include),
	    cmocka_unit_test(test_shipped_config),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
