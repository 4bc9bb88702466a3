#include "filter.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void filter_init(struct hafw_filter *f)
{
	memset(f, 0, sizeof(*f));
}

int filter_add_net(struct hafw_filter *f, int af, const void *addr, unsigned prefix)
{
	struct filter_net *n;
	unsigned alen = af == AF_INET6 ? 16 : 4;

	if ((af != AF_INET && af != AF_INET6) || prefix > alen * 8)
		return -EINVAL;
	if (f->nnets >= FILTER_MAX_NETS)
		return -ENOSPC;
	n = &f->nets[f->nnets++];
	memset(n, 0, sizeof(*n));
	n->af = af;
	n->prefix = prefix;
	memcpy(n->addr, addr, alen);
	/* clear host bits so matching is a plain prefix compare */
	for (unsigned i = prefix; i < alen * 8; i++)
		n->addr[i / 8] &= ~(0x80 >> (i % 8));
	return 0;
}

static int parse_cidr(const char *cidr, struct filter_net *out);

int filter_add_keep(struct hafw_filter *f, const char *cidr)
{
	if (f->nkeep >= sizeof(f->keep) / sizeof(f->keep[0]))
		return -ENOSPC;
	if (parse_cidr(cidr, &f->keep[f->nkeep]))
		return -EINVAL;
	f->nkeep++;
	return 0;
}

int filter_add_cidr(struct hafw_filter *f, const char *cidr)
{
	struct filter_net n;

	if (parse_cidr(cidr, &n))
		return -EINVAL;
	return filter_add_net(f, n.af, n.addr, n.prefix);
}

static int parse_cidr(const char *cidr, struct filter_net *out)
{
	char buf[INET6_ADDRSTRLEN + 5];
	char *slash, *end;
	uint8_t addr[16];
	long prefix;
	int af;

	if (strlen(cidr) >= sizeof(buf))
		return -EINVAL;
	strcpy(buf, cidr);
	slash = strchr(buf, '/');
	if (slash)
		*slash = '\0';
	if (inet_pton(AF_INET, buf, addr) == 1)
		af = AF_INET;
	else if (inet_pton(AF_INET6, buf, addr) == 1)
		af = AF_INET6;
	else
		return -EINVAL;
	prefix = af == AF_INET ? 32 : 128;
	if (slash) {
		errno = 0;
		prefix = strtol(slash + 1, &end, 10);
		if (errno || end == slash + 1 || *end || prefix < 0 ||
		    prefix > (af == AF_INET ? 32 : 128))
			return -EINVAL;
	}
	memset(out, 0, sizeof(*out));
	out->af = af;
	out->prefix = prefix;
	memcpy(out->addr, addr, af == AF_INET ? 4 : 16);
	for (unsigned i = prefix; i < (af == AF_INET ? 32u : 128u); i++)
		out->addr[i / 8] &= ~(0x80 >> (i % 8));
	return 0;
}

int filter_add_l4(struct hafw_filter *f, const char *proto)
{
	char *end;
	long n;
	struct protoent *pe;

	errno = 0;
	n = strtol(proto, &end, 10);
	if (end != proto && !*end) {
		if (errno || n < 0 || n > 255)
			return -EINVAL;
	} else {
		static const struct {
			const char *name;
			int num;
		} known[] = {{"tcp", 6},     {"udp", 17},   {"udplite", 136}, {"icmp", 1},
		             {"icmpv6", 58}, {"sctp", 132}, {"gre", 47},      {"dccp", 33}};
		n = -1;
		for (size_t i = 0; i < sizeof(known) / sizeof(known[0]); i++)
			if (!strcasecmp(proto, known[i].name))
				n = known[i].num;
		if (n < 0 && (pe = getprotobyname(proto)))
			n = pe->p_proto;
		if (n < 0)
			return -EINVAL;
	}
	f->l4[n / 8] |= 1u << (n % 8);
	return 0;
}

static bool net_valid(const struct filter_net *n)
{
	return (n->af == AF_INET && n->prefix <= 32) || (n->af == AF_INET6 && n->prefix <= 128);
}

int filter_set_local(struct hafw_filter *f, const struct filter_net *nets, unsigned n)
{
	if (n > FILTER_MAX_LOCAL)
		return -ENOSPC;
	if (n && !nets)
		return -EINVAL;
	/* all checked before anything is replaced: a refused set leaves the
	 * previous one whole */
	for (unsigned i = 0; i < n; i++)
		if (!net_valid(&nets[i]))
			return -EINVAL;
	for (unsigned i = 0; i < n; i++) {
		struct filter_net *d = &f->local[i];
		unsigned alen = nets[i].af == AF_INET6 ? 16 : 4;

		memset(d, 0, sizeof(*d));
		d->af = nets[i].af;
		d->prefix = nets[i].prefix;
		memcpy(d->addr, nets[i].addr, alen);
		for (unsigned b = d->prefix; b < alen * 8; b++)
			d->addr[b / 8] &= ~(0x80 >> (b % 8));
	}
	f->nlocal = n;
	return 0;
}

static bool net_match(const struct filter_net *n, int af, const uint8_t *addr)
{
	unsigned full = n->prefix / 8, rest = n->prefix % 8;

	if (n->af != af)
		return false;
	if (memcmp(n->addr, addr, full))
		return false;
	return !rest || ((addr[full] & (0xff00 >> rest)) == n->addr[full]);
}

static bool one_ignored(const struct hafw_filter *f, int af, const uint8_t *a)
{
	for (unsigned i = 0; i < f->nkeep; i++)
		if (net_match(&f->keep[i], af, a))
			return false;
	for (unsigned i = 0; i < f->nnets; i++)
		if (net_match(&f->nets[i], af, a))
			return true;
	for (unsigned i = 0; i < f->nlocal; i++)
		if (net_match(&f->local[i], af, a))
			return true;
	return false;
}

static bool addr_ignored(const struct hafw_filter *f, const struct hafw_tuple *t)
{
	return one_ignored(f, t->l3, t->src) || one_ignored(f, t->l3, t->dst);
}

bool filter_ignores_flow(const struct hafw_filter *f, const struct hafw_flow *fl)
{
	if (f->l4[fl->orig.l4 / 8] & (1u << (fl->orig.l4 % 8)))
		return true;
	return addr_ignored(f, &fl->orig);
}

bool filter_ignores_exp(const struct hafw_filter *f, const struct hafw_exp *e)
{
	if (f->l4[e->tuple.l4 / 8] & (1u << (e->tuple.l4 % 8)))
		return true;
	return addr_ignored(f, &e->master);
}
