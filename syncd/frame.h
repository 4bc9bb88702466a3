/* Builds a DATA payload (a protobuf Frame) in caller-owned memory from
 * already encoded flows and expectations, without materialising the Frame
 * struct. The bytes are ordinary protobuf: receivers use
 * hafw__frame__unpack(). */
#ifndef HAFW_FRAME_H
#define HAFW_FRAME_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "flow.h"

enum frame_obj { FRAME_FLOW = 2, FRAME_EXP = 3 }; /* Event field numbers */

struct frame_builder {
	uint8_t *buf;
	size_t cap;
	size_t used;
	unsigned events;
	uint64_t base; /* the frame's base_version (the first event's) */
};

void frame_init(struct frame_builder *fb, uint8_t *buf, size_t cap);
/* Appends one Event with its version (0: none): the first event's version
 * becomes the frame's base, the others travel as a difference to it.
 * Returns 0, or -ENOSPC when it does not fit (the frame is unchanged:
 * flush it and retry). */
int frame_add(struct frame_builder *fb, int ev_type, enum frame_obj obj, const uint8_t *blob,
              size_t len, uint64_t version);
/* Bytes one event of this size and version adds to this frame now. */
size_t frame_event_size(const struct frame_builder *fb, size_t blob_len, uint64_t version);

/* One event of a received frame, decoded and validated. A destroy carries
 * only the key (tuples and zone). */
struct frame_event {
	int type; /* HAFW_EV_NEW, _UPDATE or _DESTROY */
	enum frame_obj obj;
	uint64_t version; /* 0 when the sender gave none */
	union {
		struct hafw_flow flow;
		struct hafw_exp exp;
	} u;
};

typedef void (*frame_event_fn)(const struct frame_event *ev, void *arg);

/* Decode an untrusted DATA payload and hand each valid event to fn, in
 * order. Returns the number of valid events, or -EINVAL when the payload
 * is not a Frame at all; *bad counts the events that were refused,
 * *unknown (may be NULL) the fields of the frame and its events that a
 * later minor version added (skipped). */
int frame_read(const uint8_t *payload, size_t len, frame_event_fn fn, void *arg, unsigned *bad,
               unsigned *unknown);

#endif
