#!/bin/bash
# Three nodes, each with its own flows, 10% loss on every node's sync
# input: every node's copy of every other node must equal that node's
# table (flow by flow, from hafwctl's listings), and a commit on C of both
# peers' flows must equal A's and B's tables together.
# Control: the same with NACK and resync off ends with copies that differ.
. "$(dirname "$0")/lib.sh"
hafw_init three

lose() {
	nsx "$1" nft -f - <<EOF2
table inet hafwloss {
	chain in {
		type filter hook input priority -500; policy accept;
		udp dport 3780 numgen random mod 100 < $2 counter drop
	}
}
EOF2
}
keys() { # NODE [--peer ID]: the flows a node holds (its own, or its copy of a peer's)
	ctl "$1" --json flows "${@:2}" | python3 -c '
import json,sys
for f in json.load(sys.stdin)["flows"]:
    o=f["orig"]
    print(o["src"], o.get("sport"), o["dst"], o.get("dport"), f.get("mark"), f.get("state"))' | sort
}
copies_equal() {
	local n m
	for n in a b c; do
		keys "$n" >"$HAFW_TMP/$n.own"
	done
	for n in a b c; do
		for m in a b c; do
			[ "$n" = "$m" ] && continue
			keys "$n" --peer "$(id_of "$m")" | cmp -s - "$HAFW_TMP/$m.own" || return 1
		done
	done
}
id_of() { case $1 in a) echo 1 ;; b) echo 2 ;; c) echo 3 ;; esac; }

run() { # OPTS
	local n
	for n in a b c; do
		HAFW_SYNC_OPTS="$1" hafw_config "$n" "$(id_of "$n")"
		hafw_start "$n" "$(id_of "$n")"
		lose "$n" 10
	done
	nsx a "$CTTOOL" gen 3000 --src 10.91.0.1 >/dev/null
	nsx b "$CTTOOL" gen 3000 --src 10.92.0.1 --proto udp >/dev/null
	nsx c "$CTTOOL" gen 3000 --src 10.93.0.1 >/dev/null
	nsx a "$CTTOOL" update-marks --mark 11 --limit 1000 >/dev/null
	nsx b conntrack -D -p udp --orig-src 10.92.0.1 --sport 1024:1999 >/dev/null 2>&1
}

hafw_node a 1
hafw_node b 2
hafw_node c 3
run ""
check "every node's copy of every other node equals that node's table" \
	wait_for 60 "copies equal" copies_equal
log "lost/NACKs/resyncs seen: $(for n in a b c; do echo -n "$n: $(stat_of "$n" "['peers']['lost_dgrams']")/$(stat_of "$n" "['peers']['nacks_sent']")/$(stat_of "$n" "['peers']['resyncs_loss']") "; done)"
check "datagrams were lost and repaired" gt "$(stat_of c "['peers']['nacks_sent']")" 0
for n in a b c; do nsx "$n" nft delete table inet hafwloss; done
nsx a "$CTTOOL" dump --flows >"$HAFW_TMP/ab.flows"
nsx b "$CTTOOL" dump --flows | grep -v "^#" >>"$HAFW_TMP/ab.flows"
nsx c conntrack -D -p tcp --orig-src 10.93.0.1 >/dev/null 2>&1
ctl c commit >/dev/null
nsx c "$CTTOOL" dump --flows >"$HAFW_TMP/c.flows"
check "C's commit holds exactly A's and B's flows" \
	eval '"$CTTOOL" compare "$HAFW_TMP/ab.flows" "$HAFW_TMP/c.flows" --timeout-at-least >/dev/null'

log "control: the same with NACK and resync off"
hafw_stop_all
for n in a b c; do
	nsx "$n" conntrack -F >/dev/null 2>&1
	: >"$HAFW_TMP/$n.log"
done
run "nack = false; resync = false; digest_grace_ms = 0;"
sleep 5
check "control: without repair some copy differs" not copies_equal
finish
