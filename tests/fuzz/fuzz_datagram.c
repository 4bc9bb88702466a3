/* libFuzzer harness: one datagram from the sync link, taken the way the
 * receive path takes it (repl.c on_dgram/rx_data/apply_event): header,
 * then the payload of its type; every event of a frame is validated,
 * re-encoded and put in (or deleted from) a cache. The accepted events are
 * built into a new frame with the frame builder, which must unpack again
 * to as many events. */
#include "cache.h"
#include "flow_pb.h"
#include "frame.h"
#include "fuzz_check.h"
#include "wire.h"

#include <errno.h>
#include <stddef.h>
#include <stdint.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct cache *flows, *exps;
static uint8_t rebuilt[HAFW_WIRE_MAX_DGRAM];

static int apply_event(const Hafw__Event *ev, struct frame_builder *fb)
{
	uint8_t blob[HAFW_FLOW_MAX_ENCODED];
	int len;

	if (ev->type < HAFW__EVENT_TYPE__EV_NEW || ev->type > HAFW__EVENT_TYPE__EV_DESTROY ||
	    !ev->flow == !ev->exp)
		return -EINVAL;
	if (ev->flow) {
		struct hafw_flow f;

		if (hafw_flow_from_pb(ev->flow, &f) < 0)
			return -EINVAL;
		len = fuzz_check_flow(&f, blob);
		if (ev->type == HAFW__EVENT_TYPE__EV_DESTROY)
			cache_del(flows, &f.orig, f.zone);
		else
			FUZZ_ASSERT(cache_put(flows, &f.orig, f.zone, blob, (size_t)len, 1) == 0);
		if (frame_add(fb, (int)ev->type, FRAME_FLOW, blob, (size_t)len) == -ENOSPC)
			return 1;
	} else {
		struct hafw_exp x;

		if (hafw_exp_from_pb(ev->exp, &x) < 0)
			return -EINVAL;
		len = fuzz_check_exp(&x, blob);
		if (ev->type == HAFW__EVENT_TYPE__EV_DESTROY)
			cache_del(exps, &x.tuple, x.zone);
		else
			FUZZ_ASSERT(cache_put(exps, &x.tuple, x.zone, blob, (size_t)len, 1) == 0);
		if (frame_add(fb, (int)ev->type, FRAME_EXP, blob, (size_t)len) == -ENOSPC)
			return 1;
	}
	return 0;
}

static void rx_data(const uint8_t *payload, size_t len)
{
	Hafw__Frame *fr = hafw__frame__unpack(NULL, len, payload);
	struct frame_builder fb;
	unsigned added = 0;

	if (!fr)
		return;
	frame_init(&fb, rebuilt, sizeof(rebuilt));
	for (size_t i = 0; i < fr->n_events; i++)
		if (apply_event(fr->events[i], &fb) == 0)
			added++;
	hafw__frame__free_unpacked(fr, NULL);
	FUZZ_ASSERT(fb.events == added);
	fr = hafw__frame__unpack(NULL, fb.used, rebuilt);
	FUZZ_ASSERT(fr != NULL);
	FUZZ_ASSERT(fr->n_events == added);
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
