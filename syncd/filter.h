/* Which flows are never replicated: configured addresses/CIDRs and L4
 * protocols, and the node's own addresses and the sync link's subnet (the
 * local set, followed live by localaddr.c and replaced as a whole).
 * Addresses are matched against the original tuple only: a flow SNATed to
 * the firewall's address has that address in its reply tuple and must be
 * replicated.
 *
 * Plain code with no I/O: the replication core links it. */
#ifndef HAFW_FILTER_H
#define HAFW_FILTER_H

#include "flow.h"

#include <stdbool.h>

#define FILTER_MAX_NETS 256
/* Addresses come and go with VIPs, containers, IPv6 privacy addresses:
 * room for far more than a firewall has, bounded all the same. */
#define FILTER_MAX_LOCAL 1024

struct filter_net {
	uint8_t af;
	uint8_t prefix;
	uint8_t addr[16];
};

struct hafw_filter {
	struct filter_net nets[FILTER_MAX_NETS];
	unsigned nnets;
	/* never ignored, even when local: virtual addresses that move with
	 * the primary role (DNAT to a VIP, SNAT from a VIP) */
	struct filter_net keep[FILTER_MAX_NETS / 4];
	unsigned nkeep;
	uint8_t l4[32]; /* bitmap of ignored protocol numbers */
	/* the local set, apart from the configured nets so that replacing it
	 * never touches them */
	struct filter_net local[FILTER_MAX_LOCAL];
	unsigned nlocal;
};

void filter_init(struct hafw_filter *f);
/* "10.0.0.0/8", "fd00::1", ... Returns 0, -EINVAL or -ENOSPC. */
int filter_add_cidr(struct hafw_filter *f, const char *cidr);
int filter_add_keep(struct hafw_filter *f, const char *cidr);
int filter_add_net(struct hafw_filter *f, int af, const void *addr, unsigned prefix);
/* "tcp", "udp", ..., or a number 0-255. Returns 0 or -EINVAL. */
int filter_add_l4(struct hafw_filter *f, const char *proto);
/* Replaces the local set with a copy of nets[0..n). Returns 0, -EINVAL (a
 * net with an unknown family or a prefix too long; nets NULL with n > 0)
 * or -ENOSPC (n > FILTER_MAX_LOCAL); on error the previous set stays. */
int filter_set_local(struct hafw_filter *f, const struct filter_net *nets, unsigned n);
bool filter_ignores_flow(const struct hafw_filter *f, const struct hafw_flow *fl);
bool filter_ignores_exp(const struct hafw_filter *f, const struct hafw_exp *e);

#endif
