#!/bin/bash
# Redundant sync links: A and B share two links, sync0 and sync1. While
# flows churn on A, sync0 stops carrying anything (nft drops everything on
# it, both ways, the control connection too; the interface stays up): both nodes move to
# sync1 within a dead interval, B keeps following A, and no resync is
# needed (what sync0 swallowed before the switch is NACKed). `hafwctl
# status` names sync1 the active link, `hafwctl peers` the link in use.
# Control: the same with no backup link leaves B behind while sync0 is cut.
. "$(dirname "$0")/lib.sh"
hafw_init redundant

cut() { # NODE on|off: sync0 carries nothing
	if [ "$2" = on ]; then
		nsx "$1" nft -f - <<'EOF2'
table inet hafwcut {
	chain in { type filter hook input priority -500; policy accept; iifname "sync0" drop; }
	chain out { type filter hook output priority -500; policy accept; oifname "sync0" drop; }
}
EOF2
	else
		nsx "$1" nft delete table inet hafwcut
	fi
}
same_as_a() {
	[ "$(external_flows b)" = "$(nsx a conntrack -C)" ] &&
		[ "$(internal_flows a)" = "$(nsx a conntrack -C)" ]
}
resyncs() {
	json_get b "sum(p['$1'] for p in j['peers'])" status
}
active_link() { json_get "$1" "[l['interface'] for l in j['node']['sync_links'] if l['active']][0]" status; }
peer_link() { json_get b "[p['link'] for p in j['peers'] if p['id'] == 1][0]" peers; }

# run OPTS: churn on A with sync0 cut after the first batch; B's flows
# compared with A's table within 6 s of the cut
run() {
	local opts="heartbeat_ms = 250; dead_interval_ms = 1000; $1"
	HAFW_SYNC_OPTS="$opts" hafw_config a 1
	HAFW_SYNC_OPTS="$opts" hafw_config b 2
	hafw_start a 1
	hafw_start b 2
	nsx a "$CTTOOL" gen 2000 --src 10.83.0.1 >/dev/null
	wait_for 20 "B = A" same_as_a || return 1
	r0=$(resyncs resyncs)
	nsx a "$CTTOOL" gen 2000 --src 10.83.1.1 >/dev/null &
	local gen=$!
	sleep 0.2
	cut a on
	cut b on
	wait "$gen"
	nsx a "$CTTOOL" update-marks --mark 7 --limit 1000 >/dev/null
	nsx a conntrack -D -p tcp --orig-src 10.83.0.1 >/dev/null 2>&1
	followed=no
	wait_for 6 "B = A with sync0 cut" same_as_a && followed=yes
	return 0
}

hafw_node a 1
hafw_node b 2
hafw_backup_link a 1
hafw_backup_link b 2
run 'backup_interface = "sync1";' || check "B holds A's first 2000 flows" false
check "B follows A with sync0 cut" eq "$followed" yes
check "A sends on sync1" eq "$(active_link a)" sync1
check "B sends on sync1" eq "$(active_link b)" sync1
check "B's peer A is on sync1" eq "$(peer_link)" sync1
check "A switched once" eq "$(stat_of a "['replication']['link_switches']")" 1
check "no resync was needed" eq "$(resyncs resyncs)" "$r0"
check "what sync0 swallowed came back by NACK" \
	ge "$(stat_of b "['peers']['nacks_sent']")" 1
ctl b commit >/dev/null
check "after B's commit the tables agree" compare_tables a b
cut a off
cut b off
check "both go back to sync0 once it is healthy" \
	wait_for 10 "A and B on sync0" eval '[ "$(active_link a)" = sync0 ] && [ "$(active_link b)" = sync0 ]'
nsx a "$CTTOOL" gen 500 --src 10.83.2.1 >/dev/null
check "and replication goes on there" wait_for 10 "B = A" same_as_a

log "control: one sync link"
hafw_stop_all
nsx a conntrack -F >/dev/null 2>&1
nsx b conntrack -F >/dev/null 2>&1
cut a off 2>/dev/null
cut b off 2>/dev/null
: >"$HAFW_TMP/a.log"
: >"$HAFW_TMP/b.log"
run "" || check "control: B holds A's first 2000 flows" false
check "control: without the backup link B does not follow while sync0 is cut" eq "$followed" no
finish
