#include "frame.h"
#include "flow_pb.h"

#include <errno.h>
#include <string.h>

static size_t varint_len(uint64_t v)
{
	size_t n = 1;

	while (v >= 0x80) {
		v >>= 7;
		n++;
	}
	return n;
}

static uint8_t *put_varint(uint8_t *p, uint64_t v)
{
	while (v >= 0x80) {
		*p++ = (uint8_t)(v | 0x80);
		v >>= 7;
	}
	*p++ = (uint8_t)v;
	return p;
}

void frame_init(struct frame_builder *fb, uint8_t *buf, size_t cap)
{
	fb->buf = buf;
	fb->cap = cap;
	fb->used = 0;
	fb->events = 0;
	fb->base = 0;
}

static uint64_t zigzag(int64_t v)
{
	return ((uint64_t)v << 1) ^ (uint64_t)(v >> 63);
}

/* How an event's version is written in this frame: as the frame's base
 * (first event), as a difference to it (none when it equals the base), or
 * (version 0 after a base) as an absolute 0. */
enum vmode { V_NONE, V_BASE, V_DELTA, V_ABS0 };

static enum vmode version_mode(const struct frame_builder *fb, uint64_t version, uint64_t *zz)
{
	*zz = 0;
	if (fb->events == 0)
		return version ? V_BASE : V_NONE;
	if (!fb->base) { /* the first event had none: a delta from 0 */
		*zz = zigzag((int64_t)version);
		return version ? V_DELTA : V_NONE;
	}
	if (!version)
		return V_ABS0;
	*zz = zigzag((int64_t)(version - fb->base));
	return *zz ? V_DELTA : V_NONE;
}

static size_t event_body_len(size_t blob_len, enum vmode m, uint64_t zz)
{
	/* type: tag + 1-byte varint; object: tag + length + bytes; version:
	 * tag + varint (a delta) or tag + 0 */
	size_t n = 2 + 1 + varint_len(blob_len) + blob_len;

	if (m == V_DELTA)
		n += 1 + varint_len(zz);
	else if (m == V_ABS0)
		n += 2;
	return n;
}

size_t frame_event_size(const struct frame_builder *fb, size_t blob_len, uint64_t version)
{
	uint64_t zz;
	enum vmode m = version_mode(fb, version, &zz);
	size_t body = event_body_len(blob_len, m, zz);

	return 1 + varint_len(body) + body + (m == V_BASE ? 1 + varint_len(version) : 0);
}

int frame_add(struct frame_builder *fb, int ev_type, enum frame_obj obj, const uint8_t *blob,
              size_t len, uint64_t version)
{
	uint64_t zz;
	enum vmode m = version_mode(fb, version, &zz);
	size_t body = event_body_len(len, m, zz);
	uint8_t *p;

	if (ev_type < 1 || ev_type > 127)
		return -EINVAL;
	if (fb->used + frame_event_size(fb, len, version) > fb->cap)
		return -ENOSPC;
	p = fb->buf + fb->used;
	if (m == V_BASE) {
		*p++ = (2 << 3) | 0; /* Frame.base_version, varint */
		p = put_varint(p, version);
		fb->base = version;
	}
	*p++ = (1 << 3) | 2; /* Frame.events, length-delimited */
	p = put_varint(p, body);
	*p++ = (1 << 3) | 0; /* Event.type, varint */
	*p++ = (uint8_t)ev_type;
	*p++ = (uint8_t)((obj << 3) | 2);
	p = put_varint(p, len);
	memcpy(p, blob, len);
	p += len;
	if (m == V_DELTA) {
		*p++ = (5 << 3) | 0; /* Event.version_delta, zigzag varint */
		p = put_varint(p, zz);
	} else if (m == V_ABS0) {
		*p++ = (4 << 3) | 0; /* Event.version = 0 */
		*p++ = 0;
	}
	fb->used = p - fb->buf;
	fb->events++;
	return 0;
}

/* An event carries exactly one object and a known type. */
static int event_decode(const Hafw__Frame *fr, const Hafw__Event *ev, struct frame_event *out)
{
	if (ev->type < HAFW__EVENT_TYPE__EV_NEW || ev->type > HAFW__EVENT_TYPE__EV_DESTROY ||
	    !ev->flow == !ev->exp)
		return -EINVAL;
	out->type = (int)ev->type;
	if (ev->has_version)
		out->version = ev->version;
	else
		out->version = (fr->has_base_version ? fr->base_version : 0) +
		               (uint64_t)(ev->has_version_delta ? ev->version_delta : 0);
	if (ev->flow) {
		out->obj = FRAME_FLOW;
		return hafw_flow_from_pb(ev->flow, &out->u.flow);
	}
	out->obj = FRAME_EXP;
	return hafw_exp_from_pb(ev->exp, &out->u.exp);
}

int frame_read(const uint8_t *payload, size_t len, frame_event_fn fn, void *arg, unsigned *bad,
               unsigned *unknown)
{
	Hafw__Frame *fr = hafw__frame__unpack(NULL, len, payload);
	struct frame_event ev;
	int good = 0;

	*bad = 0;
	if (unknown)
		*unknown = 0;
	if (!fr)
		return -EINVAL;
	if (unknown)
		*unknown += fr->base.n_unknown_fields;
	for (size_t i = 0; i < fr->n_events; i++) {
		if (unknown)
			*unknown += fr->events[i]->base.n_unknown_fields;
		if (event_decode(fr, fr->events[i], &ev) < 0) {
			(*bad)++;
			continue;
		}
		fn(&ev, arg);
		good++;
	}
	hafw__frame__free_unpacked(fr, NULL);
	return good;
}
