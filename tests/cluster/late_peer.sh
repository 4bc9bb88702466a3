#!/bin/bash
# A backup whose syncd starts after the primary's (or restarts) learns every
# flow and expectation the primary already holds.
# Control: the same late start with the primary's syncd stopped gets none.
. "$(dirname "$0")/lib.sh"
hafw_init latepeer

N=${N:-20000}
hafw_node a 1
hafw_node b 2
hafw_start a 1
nsx a "$CTTOOL" mixed 400 --exp 10 --no-labels >/dev/null
nsx a "$CTTOOL" gen "$N" --src 10.80.0.0 >/dev/null
A_FLOWS=$(nsx a conntrack -C)
check "A's cache holds its $A_FLOWS flows" \
	wait_for 10 "A internal" eval '[ "$(internal_flows a)" = "$A_FLOWS" ]'

hafw_start b 2
check "B, started late, learns all $A_FLOWS flows" \
	wait_for 20 "B external = $A_FLOWS" eval '[ "$(external_flows b)" = "$A_FLOWS" ]'
check "B learns the expectations" \
	wait_for 10 "B exps" eval '[ "$(external_exps b)" = "$(internal_exps a)" ]'

log "restarting B's syncd"
hafw_stop b
hafw_start b 2
check "B, restarted, learns them again" \
	wait_for 20 "B external = $A_FLOWS" eval '[ "$(external_flows b)" = "$A_FLOWS" ]'
ctl b commit >/dev/null
check "after commit the kernel tables agree" compare_tables a b

log "control: B restarts while A's syncd is down"
hafw_stop a
hafw_stop b
hafw_start b 2
sleep 3
check "control: without A's syncd, B learns nothing" eq "$(external_flows b)" 0
finish
