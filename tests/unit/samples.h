/* Sample flows and expectations shared by the unit tests. */
#ifndef HAFW_TEST_SAMPLES_H
#define HAFW_TEST_SAMPLES_H

#include "flow.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Every presence bit of struct hafw_flow / struct hafw_exp. */
#define TS_ALL_FLOW_BITS ((HAFW_FA_SECMARK << 1) - 1)
#define TS_ALL_EXP_BITS  ((HAFW_EA_ZONE << 1) - 1)

/* Presence bits of TCP, SCTP and DCCP state (one union in the kernel's
 * and libnetfilter_conntrack's objects). */
#define TS_PROTO_STATE_BITS                                                                        \
	(HAFW_FA_TCP_STATE | HAFW_FA_TCP_WSCALE | HAFW_FA_TCP_FLAGS | HAFW_FA_SCTP |               \
	 HAFW_FA_SCTP_VTAG | HAFW_FA_DCCP)

/* Status bits nfct_conv_flow_to() drops for a create (the kernel owns
 * them); kept here independently of the code under test. */
#define TS_NFCT_STATUS_DROP                                                                        \
	(HAFW_IPS_EXPECTED | HAFW_IPS_CONFIRMED | HAFW_IPS_DYING | HAFW_IPS_SRC_NAT_DONE |         \
	 HAFW_IPS_DST_NAT_DONE | HAFW_IPS_TEMPLATE | HAFW_IPS_UNTRACKED | HAFW_IPS_OFFLOAD |       \
	 HAFW_IPS_HW_OFFLOAD | HAFW_IPS_HELPER)

/* Parse a textual address into t->src/dst; l3 follows from the text. */
void ts_addr(uint8_t *dst, const char *text);
void ts_tuple(struct hafw_tuple *t, uint8_t l4, const char *src, const char *dst, uint16_t sport,
              uint16_t dport);
void ts_icmp(struct hafw_tuple *t, const char *src, const char *dst, uint8_t type, uint8_t code,
             uint16_t id);

/* orig, reply = inverse, nothing else. */
void ts_flow_plain(struct hafw_flow *f, const struct hafw_tuple *orig);
/* Every presence bit set with distinctive values, but protocol state
 * (TCP, SCTP, DCCP) only for orig's own protocol. With nat, the reply
 * tuple is rewritten (DNAT of the destination, SNAT of the source, ports
 * too when the protocol has ports, the ICMP id for ICMP) and the status
 * says so. */
void ts_flow_full(struct hafw_flow *f, const struct hafw_tuple *orig, bool nat);
/* The state presence bits of protocol l4 itself (0 for one without). */
uint32_t ts_proto_state_bits(uint8_t l4);
/* Add TCP, SCTP and DCCP state, with the values ts_flow_full() gives its
 * own protocol, whatever f's protocol: the model holds them all, but the
 * decoder refuses and nfct_conv_flow_to() skips another protocol's. */
void ts_flow_all_state(struct hafw_flow *f);
/* A full expectation (every presence bit) for an FTP data connection. */
void ts_exp_full(struct hafw_exp *e, bool v6);

/* The protocol variants the round-trip tests walk through. */
struct ts_variant {
	const char *name;
	struct hafw_tuple orig;
};
size_t ts_variants(struct ts_variant *out, size_t max);

/* Deterministic PRNG (xorshift64*) for reproducible "random" tests. */
uint64_t ts_rand(uint64_t *state);

#endif
