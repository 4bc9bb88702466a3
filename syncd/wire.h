/* The fixed datagram header of the sync link, written and read byte by
 * byte (network order), never by casting a packet to a struct:
 *
 *   0      4    5    6        8         12        16        20
 *   | magic| ver|type| length | sender  | epoch   | seq     | payload...
 *
 * length counts the payload after the header. The whole header is the
 * associated data that the security layer authenticates. */
#ifndef HAFW_WIRE_H
#define HAFW_WIRE_H

#include <stddef.h>
#include <stdint.h>

#define HAFW_WIRE_MAGIC     0x48414657u /* "HAFW" */
#define HAFW_WIRE_VERSION   2
#define HAFW_WIRE_HDR_LEN   20
#define HAFW_WIRE_MAX_DGRAM 65507

enum hafw_msg_type {
	HAFW_MSG_DATA = 1,      /* payload: Frame */
	HAFW_MSG_HEARTBEAT = 2, /* payload: Heartbeat */
	HAFW_MSG_NACK = 3,      /* payload: Nack */
	HAFW_MSG_MAX = 3,
};

struct hafw_wire_hdr {
	uint32_t magic;
	uint8_t version;
	uint8_t type;
	uint16_t len;
	uint32_t sender;
	uint32_t epoch;
	uint32_t seq;
};

/* Why a datagram was refused; each has its own counter. */
enum hafw_wire_err {
	HAFW_WIRE_OK = 0,
	HAFW_WIRE_ESHORT,   /* shorter than the header */
	HAFW_WIRE_EMAGIC,   /* not ours */
	HAFW_WIRE_EVERSION, /* a version we do not speak */
	HAFW_WIRE_ETYPE,    /* unknown message type */
	HAFW_WIRE_ETRUNC,   /* length says more than arrived */
	HAFW_WIRE_ELONG,    /* trailing bytes after length */
	HAFW_WIRE_ESENDER,  /* sender id 0 is reserved */
	HAFW_WIRE_NERR,
};

/* A message of the control channel's stream: checks the header alone
 * (magic, version, sender) and gives the payload length that follows;
 * HAFW_WIRE_ESHORT when fewer than HAFW_WIRE_HDR_LEN bytes are there. */
enum hafw_wire_err hafw_wire_hdr_peek(const uint8_t *buf, size_t len, struct hafw_wire_hdr *h);

const char *hafw_wire_err_name(enum hafw_wire_err e);
void hafw_wire_hdr_write(const struct hafw_wire_hdr *h, uint8_t *buf);
enum hafw_wire_err hafw_wire_hdr_parse(const uint8_t *buf, size_t len, struct hafw_wire_hdr *h);

#endif
