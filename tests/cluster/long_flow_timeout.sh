#!/bin/bash
# A UDP flow that lives longer than its timeout: the kernel refreshes the
# timeout on every packet without an event, so the replica's copy only
# knows the timeout of the flow's first event. Committed on B, the flow must
# get at least what A still gives it (minus 5 s of tolerance), not the
# second or so that "timeout at the last event minus the time since" leaves.
# Real packets from a client through A to a server, every 2 s, for three
# times the UDP timeout (shortened to 10 s by sysctl on A and B).
# Control: what the naive computation (the copy's timeout minus its age)
# would give is checked to fall short, so the scenario really bites.
. "$(dirname "$0")/lib.sh"
hafw_init longflow

TIMEOUT=10
RUN=$((3 * TIMEOUT))

hafw_node a 1
hafw_node b 2
hafw_host cl
hafw_host sv
hafw_link cl eth0 10.61.0.2/24 a lan0 10.61.0.1/24
hafw_link sv eth0 10.62.0.2/24 a wan0 10.62.0.1/24
nsx cl ip route add default via 10.61.0.1
nsx sv ip route add default via 10.62.0.1
nsx a sysctl -qw net.ipv4.ip_forward=1
for n in a b; do
	nsx "$n" sysctl -qw net.netfilter.nf_conntrack_udp_timeout=$TIMEOUT
	nsx "$n" sysctl -qw net.netfilter.nf_conntrack_udp_timeout_stream=$TIMEOUT
done
hafw_start a 1
hafw_start b 2

log "client sends a datagram to the server every 2 s for ${RUN}s"
nsx cl python3 -c '
import socket, sys, time
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind(("10.61.0.2", 40000))
n = int(sys.argv[1]) // 2 + 1
for i in range(n):
    s.sendto(b"ping", ("10.62.0.2", 5000))
    if i < n - 1:
        time.sleep(2)
' "$RUN" &
HAFW_PIDS+=("$!")
CLIENT=$!

flow_on() { # NODE -> "timeout" of the flow in the kernel, or nothing
	nsx "$1" conntrack -L -p udp --orig-src 10.61.0.2 --sport 40000 2>/dev/null |
		awk '{print $3}' | head -n 1
}
check "A tracks the client's flow" wait_for 5 "flow on A" eval '[ -n "$(flow_on a)" ]'
check "B's external cache has it" \
	wait_for 5 "B external" eval '[ "$(external_flows b)" -ge 1 ]'
wait "$CLIENT" # it ends right after its last datagram: A's timeout is fresh
log "the flow has lived $RUN s, three times its timeout; A still refreshes it"

ext_entry() { ctl b --json flows --external | python3 -c '
import json, sys
for f in json.load(sys.stdin)["flows"]:
    if f["orig"]["src"] == "10.61.0.2" and f["orig"].get("sport") == 40000:
        print(f["timeout"], f["age_s"])'; }
read -r EXT_TIMEOUT EXT_AGE <<<"$(ext_entry)"
A_LEFT=$(flow_on a)
log "A's kernel: ${A_LEFT}s left; B's copy: timeout ${EXT_TIMEOUT}s as of ${EXT_AGE}s ago"
ctl b commit | sed 's/^/  /'
B_GOT=$(flow_on b)
log "committed on B with ${B_GOT}s"
check "A still holds the flow (its packets refreshed it)" ge "${A_LEFT:-0}" 1
check "B's copy is older than its timeout (no event since the first)" \
	ge "${EXT_AGE:-0}" "$TIMEOUT"
check "committed timeout >= A's remaining timeout - 5 s" ge "${B_GOT:-0}" $((A_LEFT - 5))
NAIVE=$((EXT_TIMEOUT - EXT_AGE))
[ "$NAIVE" -lt 1 ] && NAIVE=1
check "control: the copy's timeout minus its age ($NAIVE s) would fall short" \
	not ge "$NAIVE" $((A_LEFT - 5))
finish
