/* Per-request bookkeeping of hafw-cttool's creating commands: what each
 * request (by netlink sequence number) was, for error messages and per-kind
 * counts. */
#ifndef CTTOOL_REQLOG_H
#define CTTOOL_REQLOG_H

#include "cttool.h"

#define ERR_PRINT_MAX 10
#define DESC_LEN      96

enum kind {
	K_TCP4_EST,
	K_TCP4_SYN,
	K_TCP4_FIN,
	K_TCP4_TW,
	K_TCP4_CW,
	K_TCP6_EST,
	K_TCP6_SYN,
	K_UDP4,
	K_UDP6,
	K_UDPLITE4,
	K_UDPLITE6,
	K_ICMP4,
	K_ICMP6,
	K_SCTP4,
	K_SCTP6,
	K_GRE4,
	K_DCCP4,
	K_UNK4,
	K_UNK6,
	K_NFLOWKINDS,
	K_MASTER = K_NFLOWKINDS,
	K_RELATED,
	K_EXP,
	K_GENERIC,
	K_ALL
};

extern const char *const kind_names[K_ALL];

struct req_slot {
	uint32_t seq;
	enum kind kind;
	char desc[DESC_LEN];
};

struct req_log {
	const char *cmd;
	struct req_slot *ring;
	unsigned int ring_len;
	uint32_t seq_base; /* without a ring: request index = seq - seq_base */
	unsigned int printed;
	uint64_t ok[K_ALL], fail[K_ALL];
	int first_err[K_ALL];
	char first_extack[K_ALL][96];
};

int reqlog_init(struct req_log *l, const char *cmd, unsigned int ring_len);
void reqlog_free(struct req_log *l);
/* remember what request seq was, for error messages */
void reqlog_req(struct req_log *l, uint32_t seq, enum kind k, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
/* ack callback of the batched sender: counts, prints the first errors */
void reqlog_cb(void *ctx, uint32_t seq, int err, const char *extack);

/* Queue one conntrack message built from ct; remembers it for errors. */
int send_ct(struct sender *s, struct req_log *log, struct nf_conntrack *ct, uint16_t flags,
            enum kind k, uint32_t idx);

#endif
