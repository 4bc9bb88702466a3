/* Conversions between the flow model and the protobuf schema. */
#ifndef HAFW_FLOW_PB_H
#define HAFW_FLOW_PB_H

#include "flow.h"
#include "hafw.pb-c.h"

/* Pack into caller-owned memory. Returns bytes written, or -ENOSPC when buf
 * is too small (nothing is written then). */
int hafw_flow_encode(const struct hafw_flow *f, uint8_t *buf, size_t len);
int hafw_exp_encode(const struct hafw_exp *e, uint8_t *buf, size_t len);

/* Unpack untrusted bytes. Returns 0, or -EINVAL for anything malformed
 * (bad protobuf, address of the wrong length, out-of-range field). */
int hafw_flow_decode(const uint8_t *buf, size_t len, struct hafw_flow *f);
int hafw_exp_decode(const uint8_t *buf, size_t len, struct hafw_exp *e);

int hafw_flow_from_pb(const Hafw__Flow *m, struct hafw_flow *f);
int hafw_exp_from_pb(const Hafw__Expectation *m, struct hafw_exp *e);

/* Largest encoding of one flow or expectation (all attributes, IPv6). */
#define HAFW_FLOW_MAX_ENCODED 512

#endif
