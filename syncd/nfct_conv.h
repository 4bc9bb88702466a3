/* Flow model <-> libnetfilter_conntrack objects. Lives with the kernel
 * tracker so nothing else includes libnetfilter_conntrack. */
#ifndef HAFW_NFCT_CONV_H
#define HAFW_NFCT_CONV_H

#include "flow.h"

#include <libnetfilter_conntrack/libnetfilter_conntrack.h>
#include <linux/netlink.h>

/* Returns 0, or -EAFNOSUPPORT / -EINVAL for objects the model cannot hold. */
int nfct_conv_flow_from(const struct nf_conntrack *ct, struct hafw_flow *f);

/* Where a ctnetlink flow message comes from. */
enum nfct_conv_origin {
	NFCT_CONV_EVENT,    /* the event socket: NEW, UPDATE or DESTROY */
	NFCT_CONV_SNAPSHOT, /* a dump entry or the answer to a GET */
};

/* Read a ctnetlink flow message: nfct_conv_flow_from() of what
 * nfct_nlmsg_parse() makes of it, plus what the library drops (the reply
 * direction's ICMP id, type and code) and what the kernel says by leaving
 * attributes out: f->gone, f->unsure (see hafw_flow_merge). Returns 0,
 * -ENOMEM, or -EINVAL / -EAFNOSUPPORT for messages the model cannot hold. */
int nfct_conv_flow_parse(const struct nlmsghdr *nlh, enum nfct_conv_origin origin,
                         struct hafw_flow *f);
/* Fill ct for a create or update. NAT attributes are derived from the
 * status bits and the reply tuple, as the kernel rebuilds the mapping. */
void nfct_conv_flow_to(const struct hafw_flow *f, struct nf_conntrack *ct);
/* Only the key: orig tuple and zone, for deletes and lookups. */
void nfct_conv_flow_key_to(const struct hafw_flow *f, struct nf_conntrack *ct);

int nfct_conv_exp_from(const struct nf_expect *exp, struct hafw_exp *e);
/* Returns 0 or -ENOMEM. Class, fn and NAT are not set: libnetfilter_conntrack
 * 1.0.9 does not put them into messages, the kernel tracker adds them. */
int nfct_conv_exp_to(const struct hafw_exp *e, struct nf_expect *exp);

#endif
