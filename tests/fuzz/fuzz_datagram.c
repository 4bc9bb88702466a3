/* libFuzzer harness: one datagram from the sync link, taken the way the
 * receive path takes it (repl_rx.c): the header, then the payload of its
 * type through the same frame_read() the daemon uses; every valid event is
 * re-encoded and put in (or deleted from) a cache. The accepted events are
 * built into a new frame with the frame builder, which must unpack again
 * to as many events. */
#include "cache.h"
#include "flow_pb.h"
#include "frame.h"
#include "fuzz_check.h"
#include "wire.h"

#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct cache *flows, *exps;
static uint8_t rebuilt[HAFW_WIRE_MAX_DGRAM];
static bool rebuild_full;

/* What the receive path does with each valid event (repl_rx.c), plus the
 * harness's own checks: re-encodes and decodes to the same object, and
 * goes into a rebuilt frame. */
static void apply_event(const struct frame_event *ev, void *arg)
{
	struct frame_builder *fb = arg;
	uint8_t blob[HAFW_FLOW_MAX_ENCODED];
	int len;

	if (ev->obj == FRAME_FLOW) {
		const struct hafw_flow *f = &ev->u.flow;

		len = fuzz_check_flow(f, blob);
		if (ev->type == HAFW_EV_DESTROY)
			cache_del(flows, &f->orig, f->zone);
		else
			FUZZ_ASSERT(cache_put(flows, &f->orig, f->zone, blob, (size_t)len, 1) == 0);
	} else {
		const struct hafw_exp *x = &ev->u.exp;

		len = fuzz_check_exp(x, blob);
		if (ev->type == HAFW_EV_DESTROY)
			cache_del(exps, &x->tuple, x->zone);
		else
			FUZZ_ASSERT(cache_put(exps, &x->tuple, x->zone, blob, (size_t)len, 1) == 0);
	}
	/* the canonical encoding may be longer than a crafted one (empty labels
	 * become 16 bytes): a rebuild that does not fit is not a failure */
	if (frame_add(fb, ev->type, ev->obj, blob, (size_t)len) == -ENOSPC)
		rebuild_full = true;
}

/* The real decoder of DATA payloads (frame_read, as repl_rx.c uses it). */
static void rx_data(const uint8_t *payload, size_t len)
{
	struct frame_builder fb;
	Hafw__Frame *fr;
	unsigned bad;
	int n;

	frame_init(&fb, rebuilt, sizeof(rebuilt));
	rebuild_full = false;
	n = frame_read(payload, len, apply_event, &fb, &bad);
	if (n < 0)
		return;
	FUZZ_ASSERT(rebuild_full || fb.events == (unsigned)n);
	fr = hafw__frame__unpack(NULL, fb.used, rebuilt);
	FUZZ_ASSERT(fr != NULL);
	FUZZ_ASSERT(fr->n_events == fb.events);
	hafw__frame__free_unpacked(fr, NULL);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct hafw_wire_hdr h;
	enum hafw_wire_err err;

	if (!flows) {
		flows = cache_new(0, 0x1234);
		exps = cache_new(0, 0x5678);
	}
	err = hafw_wire_hdr_parse(data, size, &h);
	FUZZ_ASSERT((unsigned)err < HAFW_WIRE_NERR);
	FUZZ_ASSERT(hafw_wire_err_name(err) != NULL);
	if (err != HAFW_WIRE_OK)
		return 0;
	FUZZ_ASSERT(HAFW_WIRE_HDR_LEN + (size_t)h.len == size);
	switch (h.type) {
	case HAFW_MSG_DATA:
		rx_data(data + HAFW_WIRE_HDR_LEN, h.len);
		break;
	case HAFW_MSG_HEARTBEAT: {
		Hafw__Heartbeat *hb =
		    hafw__heartbeat__unpack(NULL, h.len, data + HAFW_WIRE_HDR_LEN);

		if (hb)
			hafw__heartbeat__free_unpacked(hb, NULL);
		break;
	}
	case HAFW_MSG_NACK: {
		Hafw__Nack *nk = hafw__nack__unpack(NULL, h.len, data + HAFW_WIRE_HDR_LEN);

		if (nk)
			hafw__nack__free_unpacked(nk, NULL);
		break;
	}
	default:
		FUZZ_ASSERT(0);
	}
	cache_flush(flows);
	cache_flush(exps);
	return 0;
}
