#!/bin/bash
# Restarts during churn. (1) B's syncd is killed (-9) while A's flows churn
# and started again: it must hold exactly A's table again. (2) A's syncd is
# stopped, 5000 of its flows are destroyed (and 500 made) while it is down, and it starts
# again: B must drop exactly those once A's new full state is in.
# Control: while A was down B still held the destroyed ones (the check can fail).
. "$(dirname "$0")/lib.sh"
hafw_init restarts

same_as_a() {
	[ "$(external_flows b)" = "$(nsx a conntrack -C)" ] &&
		[ "$(internal_flows a)" = "$(nsx a conntrack -C)" ] &&
		[ "$(json_get b "[p['synced'] and p['digest_match'] for p in j['peers'] if p['id'] == 1][0]" status)" = True ]
}

hafw_node a 1
hafw_node b 2
hafw_start a 1
hafw_start b 2
nsx a "$CTTOOL" gen 5000 --src 10.81.0.1 >/dev/null
check "B holds A's 5000 flows" wait_for 20 "B = A" same_as_a

log "churn on A; B's syncd killed (-9) in the middle and started again"
nsx a "$CTTOOL" gen 5000 --src 10.81.1.1 >/dev/null
kill -9 "$PID_b"
nsx a "$CTTOOL" update-marks --mark 5 --limit 2000 >/dev/null
nsx a "$CTTOOL" gen 5000 --src 10.81.2.1 --proto udp >/dev/null
hafw_start b 2
nsx a conntrack -D -p udp --orig-src 10.81.2.1 >/dev/null 2>&1
check "restarted B holds exactly A's table again" wait_for 30 "B = A" same_as_a
check "restarted B pulled A's table as a bulk" ge "$(stat_of b "['peers']['bulks_received']")" 1
ctl b commit >/dev/null
check "after B's commit the tables agree" compare_tables a b
nsx b conntrack -F >/dev/null 2>&1

log "A's syncd stopped; 5000 flows destroyed and 500 created on A while it is down"
hafw_stop a
n_before=$(nsx a conntrack -C)
nsx a conntrack -D -p tcp --orig-src 10.81.1.1 >/dev/null 2>&1 || true
nsx a "$CTTOOL" gen 500 --src 10.81.3.1 >/dev/null # and 500 new ones
gone=$((n_before + 500 - $(nsx a conntrack -C)))
log "A's kernel: $n_before flows before, $(nsx a conntrack -C) now ($gone destroyed while syncd was down)"
check "control: while A's syncd is down B still holds the destroyed flows" \
	eq "$(external_flows b)" "$n_before"
: >"$HAFW_TMP/a.log"
hafw_start a 1
check "after A's restart B holds exactly A's table (the destroyed ones dropped)" \
	wait_for 30 "B = A" same_as_a
check "B pulled A's new state as bulk transfers over the control connection" \
	ge "$(stat_of b "['peers']['bulks_received']")" 2
check "B counted A's restart once" eq "$(json_get b "[p['restarts'] for p in j['peers'] if p['id'] == 1][0]" status)" 1
check "B swept the flows A's new run lacks" ge "$(stat_of b "['peers']['restart_swept']")" "$gone"
ctl b commit >/dev/null
check "after B's commit the tables agree" compare_tables a b
finish
