#!/bin/bash
# The sync link over an IPv6 multicast group (ff12::/16, link scope):
# flows, updates and destroys replicate as over IPv4.
# Control: B listening on a different group receives nothing.
. "$(dirname "$0")/lib.sh"
hafw_init ipv6sync

export HAFW_GROUP=ff12::4841:4657
hafw_node a 1
hafw_node b 2
hafw_node c 3
hafw_start a 1
hafw_start b 2
HAFW_GROUP=ff12::dead hafw_config c 3
hafw_start c 3

nsx a "$CTTOOL" mixed 500 --exp 8 --no-labels >/dev/null
N=$(internal_flows a)
check "B holds A's $N flows over the IPv6 group" \
	wait_for 10 "B external = $N" eval '[ "$(external_flows b)" = "$N" ]'
check "B holds A's expectations" \
	wait_for 10 "B exps" eval '[ "$(external_exps b)" = "$(internal_exps a)" ]'
nsx a conntrack -D -p udp >/dev/null 2>&1
N=$(nsx a conntrack -C)
check "destroys replicate over IPv6" \
	wait_for 10 "B external = $N" eval '[ "$(external_flows b)" = "$N" ]'
ctl b commit >/dev/null
check "kernel tables agree after commit" compare_tables a b
check "control: a node on another group received nothing" eq "$(external_flows c)" 0
finish
