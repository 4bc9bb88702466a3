#!/bin/bash
# The sync link is down for 10 s (nft drops everything on it, both ways)
# while flows churn on A; A's retransmit ring is small, so what was lost
# cannot all be resent: B must notice, ask for A's full state and converge
# to A's table. Meanwhile `hafwctl peers` shows A down on B; once the link
# is back, `hafwctl ready` fails until B's copy is complete (the control
# connection comes back a little after the datagrams, so that moment is
# long enough to see).
# Control: the same with NACK and resync off stays diverged.
. "$(dirname "$0")/lib.sh"
hafw_init linkdown

cut() { # NODE on|tcp|off: everything on sync0 dropped, only TCP, nothing
	case $2 in
	on) nsx "$1" nft -f - <<'EOF2' ;;
table inet hafwcut {
	chain in { type filter hook input priority -500; policy accept; iifname "sync0" drop; }
	chain out { type filter hook output priority -500; policy accept; oifname "sync0" drop; }
}
EOF2
	tcp) nsx "$1" nft -f - <<'EOF2' ;;
flush table inet hafwcut
table inet hafwcut {
	chain in { type filter hook input priority -500; policy accept; iifname "sync0" meta l4proto tcp drop; }
	chain out { type filter hook output priority -500; policy accept; oifname "sync0" meta l4proto tcp drop; }
}
EOF2
	off) nsx "$1" nft delete table inet hafwcut ;;
	esac
}
same_as_a() {
	[ "$(external_flows b)" = "$(nsx a conntrack -C)" ] &&
		[ "$(internal_flows a)" = "$(nsx a conntrack -C)" ]
}
peer_a() { json_get b "[p['$1'] for p in j['peers'] if p['id'] == 1][0]" peers; }

run() { # OPTS: one outage with churn; leaves the nodes running
	HAFW_SYNC_OPTS="retransmit_ring = 64; $1" hafw_config a 1
	HAFW_SYNC_OPTS="$1" hafw_config b 2
	hafw_start a 1
	hafw_start b 2
	nsx a "$CTTOOL" gen 3000 --src 10.82.0.1 >/dev/null
	wait_for 20 "B = A" same_as_a || return 1
	cut b on
	t0=$SECONDS
	nsx a "$CTTOOL" gen 3000 --src 10.82.1.1 >/dev/null
	nsx a "$CTTOOL" update-marks --mark 9 --limit 1000 >/dev/null
	nsx a conntrack -D -p tcp --orig-src 10.82.0.1 >/dev/null 2>&1
	sleep $((10 - (SECONDS - t0)))
}

hafw_node a 1
hafw_node b 2
run "" || check "B holds A's first 3000 flows" false
check "during the outage B shows A down" eq "$(peer_a up)" False
check "during the outage B is ready (a down peer is not waited for)" \
	eval 'ctl b ready >/dev/null 2>&1'
# The datagrams come back first, the control connection (which would carry
# the bulk) a second later, so the time between A being heard and B's copy
# being complete is long enough to watch.
cut b tcp
check "A is heard again" wait_for 10 "A up" eval '[ "$(peer_a up)" = True ]'
check "while its copy is incomplete B is not ready" not eval 'ctl b ready >/dev/null 2>&1'
ctl b ready 2>&1 | sed 's/^/  /'
sleep 1
check "and still not a second later" not eval 'ctl b ready >/dev/null 2>&1'
cut b off
check "B converges to A's table" wait_for 30 "B = A" same_as_a
check "B needed A's full state (the ring did not reach back)" \
	ge "$(($(stat_of b "['peers']['resyncs_loss']") + $(stat_of b "['peers']['misses']")))" 1
check "B is ready again" eval 'ctl b ready >/dev/null 2>&1'
ctl b commit >/dev/null
check "after B's commit the tables agree" compare_tables a b

log "control: the same outage with NACK and resync off"
hafw_stop_all
nsx a conntrack -F >/dev/null 2>&1
nsx b conntrack -F >/dev/null 2>&1
: >"$HAFW_TMP/a.log"
: >"$HAFW_TMP/b.log"
run "nack = false; resync = false; digest_grace_ms = 0;" || check "control: B holds A's first flows" false
cut b off
sleep 3
ctl b commit >/dev/null
check "control: without repair B's copy stays wrong" not compare_tables a b
finish
