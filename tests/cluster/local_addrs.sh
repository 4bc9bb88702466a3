#!/bin/bash
# The node's own addresses are followed live. An address added to A after
# hafw-syncd started (a VIP moving in, as keepalived does) stops flows from
# and to it being replicated; once it is removed, they are replicated again.
# Control: flows from the same addresses before they were local reach B, so
# "not replicated" is the filter and not broken replication; and a sentinel
# flow from a foreign address, created after the filtered ones, reaches B,
# so the filtered ones would have arrived before it.
#
# Needs hafw-syncd to follow the addresses (syncd/localaddr.c wired into
# syncd.c) and `hafwctl stats` to show the watcher's counters under
# "local_addresses".
. "$(dirname "$0")/lib.sh"
hafw_init local_addrs

hafw_node a 1
hafw_node b 2
# the link that will carry the VIP: a veth pair inside A (the dummy driver
# is not on every kernel), without IPv6 link-local addresses, which would
# come a moment later and change the set under the counts below
ip -n "$(ns_of a)" link add vip0 type veth peer name vip0p
ip -n "$(ns_of a)" link set vip0 addrgenmode none
ip -n "$(ns_of a)" link set vip0p addrgenmode none
ip -n "$(ns_of a)" link set vip0 up
ip -n "$(ns_of a)" link set vip0p up
# the same for sync0's link-local address: let it arrive before A starts
wait_for 5 "A's sync0 link-local address" \
	eval '[ -n "$(ip -n "$(ns_of a)" -6 addr show dev sync0 scope link)" ]' || true
hafw_start a 1
hafw_start b 2

VIP4=10.66.0.1
VIP6=2001:db8:66::1
ins() { nsx a conntrack -I "$@" -t 300 >/dev/null 2>&1 || log "conntrack -I $* failed"; }
# tcp SRC DST SPORT: an established TCP flow created in A's kernel
tcp() { ins -p tcp -s "$1" -d "$2" --sport "$3" --dport 80 --state ESTABLISHED; }
# in_b SRC SPORT: how many flows from SRC:SPORT B's external cache holds
in_b() { ctl b --json flows --external | python3 -c "
import json,sys
print(sum(1 for f in json.load(sys.stdin)['flows']
          if f['orig']['src']=='$1' and f['orig'].get('sport')==$2))"; }
local_stat() { stat_of a "['local_addresses']['$1']"; }
filtered_a() { stat_of a "['replication']['filtered']"; }

NETS0=$(local_stat localaddr_nets)
check "A reports its local address set" ge "${NETS0:-0}" 3

# Control: while the addresses are not A's, flows from them are replicated.
tcp $VIP4 10.2.0.1 3000
tcp $VIP6 2001:db8:1::1 3000
check "control: a flow from $VIP4 reaches B while the address is not local" \
	wait_for 10 "$VIP4:3000 on B" eval '[ "$(in_b $VIP4 3000)" = 1 ]'
check "control: a flow from $VIP6 reaches B while the address is not local" \
	wait_for 10 "$VIP6:3000 on B" eval '[ "$(in_b $VIP6 3000)" = 1 ]'

# The VIPs move in after start. vip0 is not the sync link: one /32 and one
# /128 more in the set.
log "adding $VIP4/32 and $VIP6/128 to A's vip0"
ip -n "$(ns_of a)" addr add $VIP4/32 dev vip0
ip -n "$(ns_of a)" addr add $VIP6/128 dev vip0 nodad
check "A follows the new addresses (2 more networks)" \
	wait_for 10 "A's set = $NETS0 + 2" eval '[ "$(local_stat localaddr_nets)" = $((NETS0 + 2)) ]'
F0=$(filtered_a)
tcp $VIP4 10.2.0.1 3001      # from the VIP
tcp 10.1.0.7 $VIP4 3002      # to the VIP
tcp $VIP6 2001:db8:1::1 3001 # from the IPv6 VIP
tcp 10.1.0.1 10.2.0.1 3900   # sentinel: not local, created last
check "A's kernel holds the 2 control flows, the 3 new flows and the sentinel" \
	eq "$(nsx a conntrack -C)" 6
check "the sentinel reaches B" \
	wait_for 10 "sentinel on B" eval '[ "$(in_b 10.1.0.1 3900)" = 1 ]'
check "a flow from the local $VIP4 is not replicated" eq "$(in_b $VIP4 3001)" 0
check "a flow to the local $VIP4 is not replicated" eq "$(in_b 10.1.0.7 3002)" 0
check "a flow from the local $VIP6 is not replicated" eq "$(in_b $VIP6 3001)" 0
check "A counted the 3 flows as filtered" ge "$(($(filtered_a) - F0))" 3
check "B's external cache holds the 2 control flows and the sentinel only" \
	eq "$(external_flows b)" 3

# The VIPs move away: flows from and to them are replicated again.
log "removing $VIP4 and $VIP6 from A"
ip -n "$(ns_of a)" addr del $VIP4/32 dev vip0
ip -n "$(ns_of a)" addr del $VIP6/128 dev vip0
check "A follows the removal (back to $NETS0 networks)" \
	wait_for 10 "A's set = $NETS0" eval '[ "$(local_stat localaddr_nets)" = "$NETS0" ]'
tcp $VIP4 10.2.0.1 3003
tcp 10.1.0.7 $VIP4 3004
tcp $VIP6 2001:db8:1::1 3003
check "a flow from $VIP4 is replicated again" \
	wait_for 10 "$VIP4:3003 on B" eval '[ "$(in_b $VIP4 3003)" = 1 ]'
check "a flow to $VIP4 is replicated again" \
	wait_for 10 "10.1.0.7:3004 on B" eval '[ "$(in_b 10.1.0.7 3004)" = 1 ]'
check "a flow from $VIP6 is replicated again" \
	wait_for 10 "$VIP6:3003 on B" eval '[ "$(in_b $VIP6 3003)" = 1 ]'
check "A's watcher saw the 4 address events" ge "$(local_stat localaddr_events)" 4
check "A's watcher read the set without errors" eq "$(local_stat localaddr_read_errors)" 0
finish
