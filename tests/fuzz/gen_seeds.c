/* Writes valid seed inputs for the fuzz harnesses into DIR/<harness>/. */
#include "flow_pb.h"
#include "frame.h"
#include "samples.h"
#include "wire.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static const char *dir;

static void put(const char *harness, const char *name, const void *data, size_t len)
{
	char path[512];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", dir, harness);
	mkdir(path, 0755);
	snprintf(path, sizeof(path), "%s/%s/%s", dir, harness, name);
	f = fopen(path, "wb");
	if (!f || fwrite(data, 1, len, f) != len || fclose(f)) {
		perror(path);
		exit(1);
	}
}

static void put_str(const char *harness, const char *name, const char *text)
{
	put(harness, name, text, strlen(text));
}

static size_t dgram_from(uint32_t sender, uint32_t epoch, uint8_t type, uint32_t seq,
                         const uint8_t *payload, size_t len, uint8_t *out)
{
	struct hafw_wire_hdr h = {
	    .type = type, .len = (uint16_t)len, .sender = sender, .epoch = epoch, .seq = seq};

	hafw_wire_hdr_write(&h, out);
	if (len) /* an empty payload may be NULL */
		memcpy(out + HAFW_WIRE_HDR_LEN, payload, len);
	return HAFW_WIRE_HDR_LEN + len;
}

static size_t dgram(uint8_t type, uint32_t seq, const uint8_t *payload, size_t len, uint8_t *out)
{
	return dgram_from(3, 1, type, seq, payload, len, out);
}

/* fuzz_datagram's script format: a datagram record */
static size_t rec(uint8_t *script, size_t at, uint8_t from, const uint8_t *d, size_t len)
{
	script[at] = 0;
	script[at + 1] = from;
	script[at + 2] = (uint8_t)(len >> 8);
	script[at + 3] = (uint8_t)len;
	memcpy(script + at + 4, d, len);
	return at + 4 + len;
}

static size_t heartbeat(uint32_t sender, uint32_t epoch, uint32_t seq, uint32_t from, uint32_t to,
                        uint8_t *out)
{
	Hafw__Heartbeat hb = HAFW__HEARTBEAT__INIT;
	uint32_t need = 2;
	uint8_t pb[256];
	size_t n;

	hb.node_id = sender;
	hb.has_role = hb.has_last_seq = hb.has_flows = hb.has_expectations = 1;
	hb.role = HAFW__ROLE__ROLE_PRIMARY;
	hb.last_seq = seq;
	hb.flows = 30;
	hb.name = "fw-c";
	if (from) {
		hb.has_full_from_seq = hb.has_full_to_seq = 1;
		hb.full_from_seq = from;
		hb.full_to_seq = to;
		hb.n_need_full = 1;
		hb.need_full = &need;
	}
	n = hafw__heartbeat__pack(&hb, pb);
	return dgram_from(sender, epoch, HAFW_MSG_HEARTBEAT, seq, pb, n, out);
}

static void flows_and_frames(void)
{
	static uint8_t frame[1400], out[1500];
	struct ts_variant v[32];
	size_t nv = ts_variants(v, 32);
	struct frame_builder fb, destroy;
	uint8_t blob[HAFW_FLOW_MAX_ENCODED], dblob[HAFW_FLOW_MAX_ENCODED];
	static uint8_t dframe[1400];
	char name[64];
	int n;

	frame_init(&fb, frame, sizeof(frame));
	frame_init(&destroy, dframe, sizeof(dframe));
	for (size_t i = 0; i < nv; i++) {
		struct hafw_flow f;

		ts_flow_full(&f, &v[i].orig, i % 2);
		n = hafw_flow_encode(&f, blob, sizeof(blob));
		snprintf(name, sizeof(name), "flow_%s_full", v[i].name);
		put("fuzz_flow_decode", name, blob, (size_t)n);
		frame_add(&fb, HAFW_EV_NEW, FRAME_FLOW, blob, (size_t)n, 1000 + i);

		ts_flow_plain(&f, &v[i].orig);
		n = hafw_flow_encode(&f, dblob, sizeof(dblob));
		snprintf(name, sizeof(name), "flow_%s_plain", v[i].name);
		put("fuzz_flow_decode", name, dblob, (size_t)n);
		frame_add(&destroy, HAFW_EV_DESTROY, FRAME_FLOW, dblob, (size_t)n, 2000 + i);
	}
	for (int v6 = 0; v6 < 2; v6++) {
		struct hafw_exp e;

		ts_exp_full(&e, v6);
		n = hafw_exp_encode(&e, blob, sizeof(blob));
		put("fuzz_flow_decode", v6 ? "exp_v6" : "exp_v4", blob, (size_t)n);
		frame_add(&fb, HAFW_EV_UPDATE, FRAME_EXP, blob, (size_t)n, 1500);
		frame_add(&destroy, HAFW_EV_DESTROY, FRAME_EXP, blob, (size_t)n, 2500);
	}
	put("fuzz_datagram", "data_new", out, dgram(HAFW_MSG_DATA, 1, frame, fb.used, out));
	put("fuzz_datagram", "data_destroy", out,
	    dgram(HAFW_MSG_DATA, 2, dframe, destroy.used, out));
	put("fuzz_datagram", "data_empty", out, dgram(HAFW_MSG_DATA, 3, NULL, 0, out));
	{
		Hafw__Heartbeat hb = HAFW__HEARTBEAT__INIT;
		Hafw__Nack nk = HAFW__NACK__INIT;
		uint8_t pb[256];

		hb.node_id = 2;
		hb.has_role = hb.has_last_seq = hb.has_flows = hb.has_expectations = 1;
		hb.has_boot_id = 1;
		hb.role = HAFW__ROLE__ROLE_PRIMARY;
		hb.last_seq = 3;
		hb.flows = 30;
		hb.expectations = 2;
		hb.boot_id = 0x1122334455667788ull;
		hb.name = "fw-b";
		n = (int)hafw__heartbeat__pack(&hb, pb);
		put("fuzz_datagram", "heartbeat", out,
		    dgram(HAFW_MSG_HEARTBEAT, 4, pb, (size_t)n, out));
		uint32_t ranges[4] = {1, 3, 7, 7};

		nk.node_id = 3;
		nk.target = 2;
		nk.has_epoch = 1;
		nk.epoch = 1;
		nk.n_ranges = 4;
		nk.ranges = ranges;
		n = (int)hafw__nack__pack(&nk, pb);
		put("fuzz_datagram", "nack", out, dgram(HAFW_MSG_NACK, 5, pb, (size_t)n, out));
	}
	{
		/* a session: a peer's heartbeat, its flows, a destroy, its full
		 * state confirmed, time passing, a restart (new epoch) with the
		 * state again out of order, a commit */
		static uint8_t script[16384];
		size_t at = 0, len;

		len = heartbeat(3, 100, 1, 0, 0, out);
		at = rec(script, at, 3, out, len);
		len = dgram_from(3, 100, HAFW_MSG_DATA, 2, frame, fb.used, out);
		at = rec(script, at, 3, out, len);
		script[at++] = 0x80 | 3; /* a second */
		len = dgram_from(3, 100, HAFW_MSG_DATA, 3, dframe, destroy.used, out);
		at = rec(script, at, 3, out, len);
		len = heartbeat(3, 100, 4, 1, 3, out);
		at = rec(script, at, 3, out, len);
		script[at++] = 0xc0; /* run the loop: the sweep */
		len = dgram_from(3, 100, HAFW_MSG_DATA, 5, frame, fb.used, out);
		at = rec(script, at, 3, out, len);
		len = dgram_from(3, 101, HAFW_MSG_DATA, 3, frame, fb.used, out);
		at = rec(script, at, 3, out, len);
		len = heartbeat(3, 101, 1, 0, 0, out);
		at = rec(script, at, 3, out, len);
		len = dgram_from(3, 101, HAFW_MSG_DATA, 2, dframe, destroy.used, out);
		at = rec(script, at, 3, out, len);
		len = heartbeat(3, 101, 4, 1, 3, out);
		at = rec(script, at, 3, out, len);
		script[at++] = 0xc0;
		len = heartbeat(4, 7, 1, 0, 0, out); /* a second peer */
		at = rec(script, at, 4, out, len);
		script[at++] = 0xe0;      /* commit */
		script[at++] = 0x80 | 40; /* ten seconds: peers go down */
		put("fuzz_datagram", "session", script, at);
	}
	{
		/* the control connection: hello, a bulk (begin, a frame, end),
		 * a bulk request, a NACK, and a probe on the backup link */
		static uint8_t script[16384];
		Hafw__Hello he = HAFW__HELLO__INIT;
		Hafw__BulkBegin bb = HAFW__BULK_BEGIN__INIT;
		Hafw__BulkEnd be = HAFW__BULK_END__INIT;
		Hafw__BulkRequest br = HAFW__BULK_REQUEST__INIT;
		uint8_t pb[256];
		size_t at = 0, len;

		len = heartbeat(3, 100, 1, 0, 0, out);
		at = rec(script, at, 3, out, len);
		he.node_id = 3;
		he.has_proto_version = he.has_capabilities = 1;
		he.proto_version = 2 << 8 | 1;
		he.capabilities = 1;
		n = (int)hafw__hello__pack(&he, pb);
		len = dgram_from(3, 100, HAFW_MSG_HELLO, 0, pb, (size_t)n, out);
		at = rec(script, at, 0x80 | 3, out, len);
		bb.node_id = 3;
		bb.has_bulk_id = bb.has_flows = 1;
		bb.bulk_id = 77;
		bb.flows = 30;
		n = (int)hafw__bulk_begin__pack(&bb, pb);
		len = dgram_from(3, 100, HAFW_MSG_BULK_BEGIN, 0, pb, (size_t)n, out);
		at = rec(script, at, 0x80 | 3, out, len);
		len = dgram_from(3, 100, HAFW_MSG_BULK, 0, frame, fb.used, out);
		at = rec(script, at, 0x80 | 3, out, len);
		be.node_id = 3;
		be.has_bulk_id = be.has_entries = 1;
		be.bulk_id = 77;
		be.entries = 30;
		n = (int)hafw__bulk_end__pack(&be, pb);
		len = dgram_from(3, 100, HAFW_MSG_BULK_END, 0, pb, (size_t)n, out);
		at = rec(script, at, 0x80 | 3, out, len);
		script[at++] = 0xc0;
		br.node_id = 3;
		br.has_resume_id = br.has_received = 1;
		br.resume_id = 5;
		br.received = 2;
		n = (int)hafw__bulk_request__pack(&br, pb);
		len = dgram_from(3, 100, HAFW_MSG_BULK_REQ, 0, pb, (size_t)n, out);
		at = rec(script, at, 0x80 | 3, out, len);
		script[at++] = 0xc0;
		len = dgram_from(3, 100, HAFW_MSG_PROBE, 0, NULL, 0, out);
		at = rec(script, at, 0x40 | 3, out, len);
		script[at++] = 0x80 | 3;
		put("fuzz_datagram", "control", script, at);
	}
}

static void configs(void)
{
	put_str("fuzz_config", "contract",
	        "node    = { id = 1; name = \"fw-a\"; };\n"
	        "control = { socket = \"/run/hafw/fw-a.sock\"; };\n"
	        "tracker = { type = \"kernel\"; };\n"
	        "sync    = { interface = \"sync0\"; group = \"239.192.77.1\"; port = 3780; };\n");
	put_str("fuzz_config", "every_option",
	        "# every option\n"
	        "node = { id = 2; name = \"fw-b\"; };\n"
	        "control = { socket = \"/run/hafw/fw-b.sock\"; };\n"
	        "tracker = { type = \"dataplane\"; netlink_buffer = 8388608;\n"
	        "            netlink_buffer_max = 134217728; commit_batch = 2048; };\n"
	        "sync = { interface = \"sync0\"; group = \"ff15::77\"; port = 3780; mtu = 1500;\n"
	        "         flush_ms = 5; heartbeat_ms = 1000; ttl = 1; rcvbuf = 16777216; };\n"
	        "filter = {\n"
	        "  ignore_local = true;\n"
	        "  ignore_addresses = [ \"10.0.0.0/8\", \"fd00::/8\" ];\n"
	        "  keep_addresses = ( \"192.0.2.1\" );\n"
	        "  ignore_protocols = ( \"udp\", 47, \"sctp\" );\n"
	        "};\n"
	        "log = { syslog = false; level = \"debug\"; };\n");
	put_str("fuzz_config", "errors",
	        "node = { id = 0; name = \"\"; colour = 1; };\n"
	        "tracker = { type = \"xdp\"; };\n"
	        "sync = { interface = \"sync0\"; group = \"10.0.0.1\"; port = 70000L; };\n"
	        "filter = { ignore_addresses = [ \"10.0.0.0/33\" ]; };\n"
	        "other = 1.5;\n");
}

int main(int argc, char **argv)
{
	if (argc != 2) {
		fprintf(stderr, "usage: %s CORPUS_DIR\n", argv[0]);
		return 2;
	}
	dir = argv[1];
	mkdir(dir, 0755);
	flows_and_frames();
	configs();
	return 0;
}
