#include "wire.h"

static void put32(uint8_t *p, uint32_t v)
{
	p[0] = v >> 24;
	p[1] = v >> 16;
	p[2] = v >> 8;
	p[3] = v;
}

static uint32_t get32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

void hafw_wire_hdr_write(const struct hafw_wire_hdr *h, uint8_t *buf)
{
	put32(buf, HAFW_WIRE_MAGIC);
	buf[4] = HAFW_WIRE_VERSION;
	buf[5] = h->type;
	buf[6] = h->len >> 8;
	buf[7] = h->len;
	put32(buf + 8, h->sender);
	put32(buf + 12, h->epoch);
	put32(buf + 16, h->seq);
}

enum hafw_wire_err hafw_wire_hdr_parse(const uint8_t *buf, size_t len, struct hafw_wire_hdr *h)
{
	if (len < HAFW_WIRE_HDR_LEN)
		return HAFW_WIRE_ESHORT;
	h->magic = get32(buf);
	if (h->magic != HAFW_WIRE_MAGIC)
		return HAFW_WIRE_EMAGIC;
	h->version = buf[4];
	if (h->version != HAFW_WIRE_VERSION)
		return HAFW_WIRE_EVERSION;
	h->type = buf[5];
	if (h->type == 0 || h->type > HAFW_MSG_MAX)
		return HAFW_WIRE_ETYPE;
	h->len = (uint16_t)(buf[6] << 8 | buf[7]);
	if ((size_t)h->len > len - HAFW_WIRE_HDR_LEN)
		return HAFW_WIRE_ETRUNC;
	if ((size_t)h->len < len - HAFW_WIRE_HDR_LEN)
		return HAFW_WIRE_ELONG;
	h->sender = get32(buf + 8);
	if (h->sender == 0)
		return HAFW_WIRE_ESENDER;
	h->epoch = get32(buf + 12);
	h->seq = get32(buf + 16);
	return HAFW_WIRE_OK;
}

const char *hafw_wire_err_name(enum hafw_wire_err e)
{
	static const char *const names[HAFW_WIRE_NERR] = {
	    [HAFW_WIRE_OK] = "ok",
	    [HAFW_WIRE_ESHORT] = "short",
	    [HAFW_WIRE_EMAGIC] = "bad_magic",
	    [HAFW_WIRE_EVERSION] = "bad_version",
	    [HAFW_WIRE_ETYPE] = "bad_type",
	    [HAFW_WIRE_ETRUNC] = "truncated",
	    [HAFW_WIRE_ELONG] = "trailing",
	    [HAFW_WIRE_ESENDER] = "bad_sender",
	};
	return (unsigned)e < HAFW_WIRE_NERR ? names[e] : "?";
}

enum hafw_wire_err hafw_wire_hdr_peek(const uint8_t *buf, size_t len, struct hafw_wire_hdr *h)
{
	if (len < HAFW_WIRE_HDR_LEN)
		return HAFW_WIRE_ESHORT;
	h->magic = get32(buf);
	if (h->magic != HAFW_WIRE_MAGIC)
		return HAFW_WIRE_EMAGIC;
	h->version = buf[4];
	if (h->version != HAFW_WIRE_VERSION)
		return HAFW_WIRE_EVERSION;
	h->type = buf[5];
	if (h->type == 0)
		return HAFW_WIRE_ETYPE;
	h->len = (uint16_t)(buf[6] << 8 | buf[7]);
	h->sender = get32(buf + 8);
	if (h->sender == 0)
		return HAFW_WIRE_ESENDER;
	h->epoch = get32(buf + 12);
	h->seq = get32(buf + 16);
	return HAFW_WIRE_OK;
}
