/* Flow model <-> libnetfilter_conntrack objects. Lives with the kernel
 * tracker so nothing else includes libnetfilter_conntrack. */
#ifndef HAFW_NFCT_CONV_H
#define HAFW_NFCT_CONV_H

#include "flow.h"

#include <libnetfilter_conntrack/libnetfilter_conntrack.h>

/* Returns 0, or -EAFNOSUPPORT / -EINVAL for objects the model cannot hold. */
int nfct_conv_flow_from(const struct nf_conntrack *ct, struct hafw_flow *f);
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
