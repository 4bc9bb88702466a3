/* C model of a tracked flow and an expectation.
 *
 * This is the only representation the replication core sees. Conversions to
 * protobuf live in flow_pb.c, to libnetfilter_conntrack objects with the
 * kernel tracker (syncd/nfct_conv.c).
 */
#ifndef HAFW_FLOW_H
#define HAFW_FLOW_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Ports, ICMP ids and GRE keys in host order; addresses in network order. */
struct hafw_tuple {
	uint8_t src[16];
	uint8_t dst[16];
	uint16_t sport;
	uint16_t dport;
	uint8_t l3; /* AF_INET or AF_INET6 */
	uint8_t l4;
	uint8_t icmp_type;
	uint8_t icmp_code;
};

struct hafw_seqadj {
	uint32_t correction_pos;
	int32_t offset_before;
	int32_t offset_after;
};

/* Presence bits: an attribute without its bit is unknown, not zero. */
enum hafw_flow_attr {
	HAFW_FA_REPLY = 1u << 0,
	HAFW_FA_ZONE = 1u << 1,
	HAFW_FA_ORIG_ZONE = 1u << 2,
	HAFW_FA_REPLY_ZONE = 1u << 3,
	HAFW_FA_STATUS = 1u << 4,
	HAFW_FA_TIMEOUT = 1u << 5,
	HAFW_FA_MARK = 1u << 6,
	HAFW_FA_LABELS = 1u << 7,
	HAFW_FA_TCP_STATE = 1u << 8,
	HAFW_FA_TCP_WSCALE = 1u << 9,
	HAFW_FA_TCP_FLAGS = 1u << 10,
	HAFW_FA_SCTP = 1u << 11,
	HAFW_FA_SCTP_VTAG = 1u << 12,
	HAFW_FA_DCCP = 1u << 13,
	HAFW_FA_HELPER = 1u << 14,
	HAFW_FA_MASTER = 1u << 15,
	HAFW_FA_SEQADJ_ORIG = 1u << 16,
	HAFW_FA_SEQADJ_REPLY = 1u << 17,
	HAFW_FA_SYNPROXY = 1u << 18,
	HAFW_FA_START = 1u << 19,
	HAFW_FA_SECMARK = 1u << 20,
};

#define HAFW_LABELS_LEN 16 /* the kernel keeps 128 label bits */
#define HAFW_HELPER_LEN 16 /* NF_CT_HELPER_NAME_LEN */

enum { HAFW_DIR_ORIG = 0, HAFW_DIR_REPLY = 1 };

struct hafw_flow {
	uint32_t present;
	/* What a reader knows of attributes its message does not carry: the
	 * flow no longer has them (gone), or they may have been removed
	 * without a word (unsure). See hafw_flow_merge() and
	 * hafw_flow_needs_reread(). Neither is part of the flow's state:
	 * they are not encoded nor compared, and a merge applies src's
	 * without copying them into dst. */
	uint32_t gone;
	uint32_t unsure;
	struct hafw_tuple orig;
	struct hafw_tuple reply;
	struct hafw_tuple master;
	uint16_t zone;
	uint16_t orig_zone;
	uint16_t reply_zone;
	uint32_t status;
	uint32_t timeout;
	uint32_t mark;
	uint32_t secmark;
	uint8_t labels[HAFW_LABELS_LEN];
	uint8_t tcp_state;
	uint8_t tcp_wscale[2];
	uint8_t tcp_flags[2];
	uint8_t sctp_state;
	uint8_t dccp_state;
	uint8_t dccp_role;
	uint32_t sctp_vtag[2];
	uint64_t dccp_handshake_seq;
	char helper[HAFW_HELPER_LEN];
	struct hafw_seqadj seqadj[2];
	uint32_t synproxy_isn;
	uint32_t synproxy_its;
	uint32_t synproxy_tsoff;
	uint64_t start_ns;
};

enum hafw_exp_attr {
	HAFW_EA_TIMEOUT = 1u << 0,
	HAFW_EA_FLAGS = 1u << 1,
	HAFW_EA_CLASS = 1u << 2,
	HAFW_EA_HELPER = 1u << 3,
	HAFW_EA_FN = 1u << 4,
	HAFW_EA_NAT = 1u << 5,
	HAFW_EA_ZONE = 1u << 6,
};

#define HAFW_EXPFN_LEN 32

struct hafw_exp {
	uint32_t present;
	struct hafw_tuple master;
	struct hafw_tuple tuple;
	struct hafw_tuple mask;
	struct hafw_tuple nat_tuple;
	uint32_t timeout;
	uint32_t flags;
	uint32_t class_;
	uint32_t nat_dir;
	uint16_t zone;
	char helper[HAFW_HELPER_LEN];
	char fn[HAFW_EXPFN_LEN];
};

enum hafw_event_type {
	HAFW_EV_NEW = 1,
	HAFW_EV_UPDATE = 2,
	HAFW_EV_DESTROY = 3,
};

/* Kernel status bits (include/uapi/linux/netfilter/nf_conntrack_common.h),
 * repeated here so the model does not depend on kernel headers. */
enum {
	HAFW_IPS_EXPECTED = 1u << 0,
	HAFW_IPS_SEEN_REPLY = 1u << 1,
	HAFW_IPS_ASSURED = 1u << 2,
	HAFW_IPS_CONFIRMED = 1u << 3,
	HAFW_IPS_SRC_NAT = 1u << 4,
	HAFW_IPS_DST_NAT = 1u << 5,
	HAFW_IPS_SEQ_ADJUST = 1u << 6,
	HAFW_IPS_SRC_NAT_DONE = 1u << 7,
	HAFW_IPS_DST_NAT_DONE = 1u << 8,
	HAFW_IPS_DYING = 1u << 9,
	HAFW_IPS_FIXED_TIMEOUT = 1u << 10,
	HAFW_IPS_TEMPLATE = 1u << 11,
	HAFW_IPS_UNTRACKED = 1u << 12,
	HAFW_IPS_HELPER = 1u << 13,
	HAFW_IPS_OFFLOAD = 1u << 14,
	HAFW_IPS_HW_OFFLOAD = 1u << 15,
};

static inline int hafw_tuple_addr_len(const struct hafw_tuple *t)
{
	return t->l3 == 10 /* AF_INET6 */ ? 16 : 4;
}

bool hafw_tuple_is_icmp(const struct hafw_tuple *t);
void hafw_tuple_invert(const struct hafw_tuple *t, struct hafw_tuple *out);
bool hafw_tuple_equal(const struct hafw_tuple *a, const struct hafw_tuple *b);
uint64_t hafw_tuple_hash(const struct hafw_tuple *t, uint16_t zone, uint64_t seed);
/* "10.0.0.1:1234 -> 10.0.0.2:80 tcp", for logs and hafwctl. */
int hafw_tuple_format(const struct hafw_tuple *t, char *buf, size_t len);
const char *hafw_l4_name(uint8_t l4);
const char *hafw_tcp_state_name(uint8_t state);

/* Copy into dst every attribute present in src (an update event carries only
 * what changed), and apply src->gone. Tuples and zone are the key and are
 * not touched. */
void hafw_flow_merge(struct hafw_flow *dst, const struct hafw_flow *src);
/* True when merging src into dst could keep a value that src's source may
 * have removed without saying (src->unsure): the flow must be read again
 * (tracker_ops.get_flow) and that answer merged instead. */
bool hafw_flow_needs_reread(const struct hafw_flow *dst, const struct hafw_flow *src);
void hafw_exp_merge(struct hafw_exp *dst, const struct hafw_exp *src);

/* Attribute-by-attribute comparison for tests; returns the name of the first
 * attribute that differs, or NULL when equal. Timeouts are compared within
 * timeout_slack seconds. */
const char *hafw_flow_diff(const struct hafw_flow *a, const struct hafw_flow *b,
                           uint32_t timeout_slack);
const char *hafw_exp_diff(const struct hafw_exp *a, const struct hafw_exp *b,
                          uint32_t timeout_slack);

#endif
