#!/bin/bash
# Garbage, truncated, oversized, wrong-version and otherwise malformed
# datagrams sent to the sync group from a third namespace: each is dropped
# and counted under its own reason, syncd keeps running, the replicated
# state is intact and replication goes on.
# Control: a well-formed frame from the same namespace IS accepted (this
# issue has no authentication yet), so the drops above come from validation,
# not from the datagrams never arriving.
. "$(dirname "$0")/lib.sh"
hafw_init badinput

SEND="python3 $(dirname "$0")/send_dgrams.py 192.168.77.3 239.192.77.1 3780"
K=5

hafw_node a 1
hafw_node b 2
hafw_node c 3
node_ruleset a
node_ruleset b
hafw_start a 1
hafw_start b 2

nsx a "$CTTOOL" mixed 400 --exp 10 --no-labels >/dev/null
A_FLOWS=$(internal_flows a)
check "B holds A's $A_FLOWS flows" \
	wait_for 10 "B external" eval '[ "$(external_flows b)" = "$A_FLOWS" ]'
bad() { stat_of b "['replication']['bad_datagrams']['$1']"; }
rep() { stat_of b "['replication']['$1']"; }
check "no bad datagrams before the attack" eq "$(rep bad_frames)$(bad bad_magic)$(bad short)" "000"

for kind in short empty bad_magic bad_version bad_type truncated trailing bad_sender \
	bad_frame bad_event oversized; do
	nsx c $SEND "$kind" "$K"
done
sleep 0.5
check "short and empty datagrams counted as short" eq "$(bad short)" $((2 * K))
for reason in bad_magic bad_version bad_type truncated trailing bad_sender; do
	check "$reason datagrams counted" eq "$(bad "$reason")" "$K"
done
check "undecodable and oversized frames counted" eq "$(rep bad_frames)" $((2 * K))
check "frames with an invalid flow counted as bad events" eq "$(rep bad_events)" "$K"
check "syncd on B still running" kill -0 "$PID_b"
check "B still holds A's flows, none added" eq "$(external_flows b)" "$A_FLOWS"
check "B's log is rate-limited (under 50 warnings for $((12 * K)) bad datagrams)" \
	eval '[ "$(grep -c warning "$HAFW_TMP/b.log")" -lt 50 ]'

nsx a "$CTTOOL" gen 500 --src 10.70.0.0 >/dev/null
check "replication goes on after the attack" \
	wait_for 10 "B external" eval '[ "$(external_flows b)" = "$((A_FLOWS + 500))" ]'
ctl b commit >/dev/null
check "after commit the kernel tables agree" compare_tables a b

# Control: the same path with a well-formed frame is accepted.
peer3_flows() { json_get b "sum(p['flows'] for p in j['peers'] if p['id'] == 3)" status; }
check "control: nothing from the third namespace was applied before" eq "$(peer3_flows)" 0
nsx c $SEND valid 1
check "control: a well-formed frame from the third namespace is applied" \
	wait_for 5 "peer 3 flow" eval '[ "$(peer3_flows)" = 1 ]'
finish
