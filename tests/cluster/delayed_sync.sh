#!/bin/bash
# Delayed sync (sync.delay_ms = 3000 on A): new flows are not sent until
# they are 3 s old. Right after 1000 flows are made on A, B holds none of
# them and A counts them unprotected; 500 destroyed within the 3 s never
# cost a datagram (counted unprotected_gone); the other 500 reach B once
# they are old enough, and the tables then agree.
# Control: the same with no delay reaches B at once.
. "$(dirname "$0")/lib.sh"
hafw_init delayed

b_flows() { external_flows b; }
run() { # DELAY_MS
	HAFW_SYNC_OPTS="delay_ms = $1;" hafw_config a 1
	hafw_config b 2
	hafw_start a 1
	hafw_start b 2
	wait_for 10 "B knows A" eval '[ "$(json_get b "len(j['"'"'peers'"'"'])" status)" = 1 ]'
	nsx a "$CTTOOL" gen 500 --src 10.84.0.1 >/dev/null
	nsx a "$CTTOOL" gen 500 --src 10.84.1.1 >/dev/null
	sleep 0.5
	early=$(b_flows)
	unprotected=$(json_get a "j['internal']['unprotected']" status)
	nsx a conntrack -D -p tcp --orig-src 10.84.1.1 >/dev/null 2>&1
}

hafw_node a 1
hafw_node b 2
run 3000
check "half a second after 1000 new flows, B holds none of them" eq "$early" 0
check "A counts them unprotected" eq "$unprotected" 1000
left=$(nsx a conntrack -C)
log "A holds $left flows after destroying some while they were young"
check "the flows that lived long enough reach B" wait_for 10 "B = A" eval '[ "$(b_flows)" = "$left" ]'
check "A counts none unprotected any more" eq "$(json_get a "j['internal']['unprotected']" status)" 0
check "the flows destroyed while young were never sent" \
	eq "$(stat_of a "['replication']['unprotected_gone']")" "$((1000 - left))"
check "at least some were destroyed young (the check can fail)" gt "$((1000 - left))" 0
ctl b commit >/dev/null
check "after B's commit the tables agree" compare_tables a b

log "control: no delay"
hafw_stop_all
nsx a conntrack -F >/dev/null 2>&1
nsx b conntrack -F >/dev/null 2>&1
: >"$HAFW_TMP/a.log"
: >"$HAFW_TMP/b.log"
run 0
check "control: with no delay B holds them within half a second" eq "$early" 1000
check "control: nothing unprotected" eq "$unprotected" 0
finish
