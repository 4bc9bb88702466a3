/*
 * hafw-cttool: conntrack test/benchmark helper (shared declarations).
 *
 * Everything talks to the kernel through libmnl sockets; objects are
 * built/parsed with libnetfilter_conntrack (nfct_* / nfexp_*).
 */
#ifndef HAFW_CTTOOL_H
#define HAFW_CTTOOL_H

#define NELEM(a) (sizeof(a) / sizeof((a)[0]))

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <libmnl/libmnl.h>
#include <libnetfilter_conntrack/libnetfilter_conntrack.h>

/* Exit codes */
#define EXIT_OK    0
#define EXIT_FAIL  1
#define EXIT_USAGE 2

/* Hard upper bounds that keep every loop finite. */
#define CT_MAX_ENTRIES  (50u * 1000u * 1000u)  /* dump lines / compare lines */
#define CT_MAX_RECV     (200u * 1000u * 1000u) /* recv() calls per dump */
#define CT_LINE_MAX     4096                   /* one canonical dump line */
#define CT_MSG_MAX      2048                   /* largest request we build */
#define CT_DUMP_BUFSZ   (256u * 1024u)         /* recv buffer for dumps */
#define CT_RECV_TIMEOUT 10                     /* seconds, SO_RCVTIMEO */

struct ctnl {
	struct mnl_socket *nl;
	unsigned int portid;
	uint32_t seq;
};

/* Called for every error/ACK message: seq of the request, errno (0 = ACK). */
typedef void (*ack_cb_t)(void *ctx, uint32_t seq, int err, const char *extack);

/*
 * Batched sender on top of mnl_nlmsg_batch. With want_ack every message
 * carries NLM_F_ACK and flush() waits for exactly one ACK per message;
 * otherwise flush() only drains error replies without blocking.
 */
struct sender {
	struct ctnl *c;
	char *buf;
	size_t limit;
	struct mnl_nlmsg_batch *b;
	unsigned int nmsg;     /* messages in the current batch */
	unsigned int max_msgs; /* flush threshold */
	bool want_ack;
	uint32_t seq_lo, seq_hi; /* seq range of the batch being flushed */
	uint64_t sent;           /* messages handed to the kernel */
	uint64_t errors;         /* error replies (incl. lost ones) */
	uint64_t acks;           /* successful ACKs */
	uint64_t overruns;       /* ENOBUFS on the socket */
	ack_cb_t cb;
	void *ctx;
	char *rbuf; /* receive buffer */
	size_t rbuf_len;
};

/* cttool.c: common helpers */
double now_mono(void);
int ctnl_open(struct ctnl *c, int rcvbuf);
void ctnl_close(struct ctnl *c);
int set_rcvbuf(int fd, int bytes);
int set_sndbuf(int fd, int bytes);
struct nlmsghdr *ct_msg_put_header(void *buf, uint16_t subsys, uint8_t msg, uint16_t flags,
                                   uint8_t family, uint32_t seq);
const char *nl_extack_msg(const struct nlmsghdr *nlh);
int parse_uint(const char *s, uint64_t min, uint64_t max, uint64_t *out, const char *what);
int ctnl_dump(struct ctnl *c, bool exp, uint8_t family, mnl_cb_t cb, void *data);

int sender_init(struct sender *s, struct ctnl *c, unsigned int max_msgs, bool want_ack, ack_cb_t cb,
                void *ctx);
void sender_free(struct sender *s);
struct nlmsghdr *sender_cur(struct sender *s);
int sender_commit(struct sender *s);
int sender_flush(struct sender *s);

/* cttool.c: canonical formatting of dump lines */
int fmt_ct_line(const struct nlmsghdr *nlh, const struct nf_conntrack *ct, char *out,
                size_t outlen);
int fmt_exp_line(const struct nf_expect *exp, char *out, size_t outlen);

/* subcommands */
int cmd_dump(int argc, char **argv);
int cmd_compare(int argc, char **argv);
int cmd_gen(int argc, char **argv);
int cmd_count_events(int argc, char **argv);
int cmd_mixed(int argc, char **argv);
int cmd_update_marks(int argc, char **argv);

/* Prints the usage text (cttool.c). */
void usage(FILE *f);

#endif
