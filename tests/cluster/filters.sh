#!/bin/bash
# Flows of the node's own addresses and of the sync link are never
# replicated, nor flows matching the configured ignore lists (address/CIDR
# on the original tuple, L4 protocol); a flow whose reply tuple holds an
# ignored address (SNAT to the firewall) still is, and keep_addresses wins.
# Control: node C runs with every filter off and receives all of them.
. "$(dirname "$0")/lib.sh"
hafw_init filters

hafw_node a 1
hafw_node b 2
hafw_node c 3
ip -n "$(ns_of a)" addr add 198.51.100.1/32 dev lo
ip -n "$(ns_of a)" addr add 198.51.100.2/32 dev lo
HAFW_FILTER='filter = { ignore_addresses = [ "10.99.0.0/16", "2001:db8:99::/48" ]; ignore_protocols = [ "gre", "136" ]; keep_addresses = [ "198.51.100.2" ]; };'
hafw_config a 1
echo "$HAFW_FILTER" >>"$HAFW_TMP/a.conf"
hafw_config c 3
echo 'filter = { ignore_local = false; };' >>"$HAFW_TMP/c.conf"
hafw_start a 1
hafw_start b 2
hafw_start c 3

ins() { nsx a conntrack -I "$@" -t 300 >/dev/null 2>&1 || log "conntrack -I $* failed"; }
# replicated
ins -p tcp -s 10.1.0.1 -d 10.2.0.1 --sport 1000 --dport 80 --state ESTABLISHED
ins -p tcp -s 10.1.0.1 -d 10.2.0.1 --sport 1001 --dport 80 --state ESTABLISHED --src-nat 198.51.100.1
ins -p tcp -s 198.51.100.2 -d 10.2.0.1 --sport 1002 --dport 80 --state ESTABLISHED
ins -p udp -s 10.1.0.1 -d 10.2.0.9 --sport 1003 --dport 53 --src-nat 10.99.0.5 # reply only
KEEP=4
# not replicated
ins -p tcp -s 198.51.100.1 -d 10.2.0.1 --sport 2000 --dport 22 --state ESTABLISHED # own
ins -p udp -s 192.168.77.1 -d 192.168.77.2 --sport 2001 --dport 9 # sync link
ins -p tcp -s 10.99.3.4 -d 10.2.0.1 --sport 2002 --dport 80 --state ESTABLISHED # ignored
ins -p tcp -s 2001:db8:99::1 -d 2001:db8:1::1 --sport 2003 --dport 80 --state ESTABLISHED
ins -p gre -s 10.1.0.1 -d 10.2.0.1 --srckey 1 --dstkey 2 # ignored protocol
ins -p udplite -s 10.1.0.1 -d 10.2.0.1 --sport 2004 --dport 5 # by number
DROP=6

check "A's kernel holds all $((KEEP + DROP)) flows" eq "$(nsx a conntrack -C)" $((KEEP + DROP))
check "B receives exactly the $KEEP flows that pass the filters" \
	wait_for 10 "B external = $KEEP" eval '[ "$(external_flows b)" = "$KEEP" ]'

check "A counted the filtered flows" ge "$(stat_of a "['replication']['filtered']")" "$DROP"
sleep 0.5
check "no filtered flow arrived late" eq "$(external_flows b)" "$KEEP"
check "control: C, with filtering off, hears what A sends: the same $KEEP" \
	eq "$(json_get c "sum(p['flows'] for p in j['peers'] if p['id'] == 1)" status)" "$KEEP"

# Control for the source side: a node with ignore_local off and no lists
# replicates every one of the same flows.
hafw_stop a
cp "$HAFW_TMP/c.conf" "$HAFW_TMP/a.conf"
sed -i 's/id = 3; name = "c"/id = 1; name = "a"/; s#c.sock#a.sock#' "$HAFW_TMP/a.conf"
hafw_start a 1
check "control: without filters B receives all $((KEEP + DROP)) flows" \
	wait_for 10 "B external = $((KEEP + DROP))" eval '[ "$(external_flows b)" = "$((KEEP + DROP))" ]'
finish
