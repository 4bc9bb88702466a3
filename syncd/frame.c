#include "frame.h"

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
}

static size_t event_body_len(size_t blob_len)
{
	/* type: tag + 1-byte varint; object: tag + length + bytes */
	return 2 + 1 + varint_len(blob_len) + blob_len;
}

size_t frame_event_size(size_t blob_len)
{
	size_t body = event_body_len(blob_len);

	return 1 + varint_len(body) + body;
}

int frame_add(struct frame_builder *fb, int ev_type, enum frame_obj obj, const uint8_t *blob,
              size_t len)
{
	size_t body = event_body_len(len);
	uint8_t *p;

	if (ev_type < 1 || ev_type > 127)
		return -EINVAL;
	if (fb->used + frame_event_size(len) > fb->cap)
		return -ENOSPC;
	p = fb->buf + fb->used;
	*p++ = (1 << 3) | 2; /* Frame.events, length-delimited */
	p = put_varint(p, body);
	*p++ = (1 << 3) | 0; /* Event.type, varint */
	*p++ = (uint8_t)ev_type;
	*p++ = (uint8_t)((obj << 3) | 2);
	p = put_varint(p, len);
	memcpy(p, blob, len);
	p += len;
	fb->used = p - fb->buf;
	fb->events++;
	return 0;
}
