#!/bin/bash
# Loss on the sync link, in both directions (nft numgen drops in A's and
# B's input), and duplicates (10% of A's datagrams leave twice, nft dup):
# 20k flows created, 5k marks changed and 10k flows destroyed on A at 10%
# and then at 30% loss. NACKs, retransmits and, where those
# fail, a full-state resync must bring B's copy to exactly A's table:
# B commits and both kernels are compared attribute by attribute.
# Control: the same run with NACK and resync turned off must end diverged.
. "$(dirname "$0")/lib.sh"
hafw_init lossy

lose() { # NODE PERCENT: drop that share of sync datagrams arriving at NODE
	nsx "$1" nft -f - <<EOF2
table inet hafwloss {
	chain in {
		type filter hook input priority -500; policy accept;
		udp dport 3780 numgen random mod 100 < $2 counter drop
	}
}
EOF2
}
dropped() { nsx "$1" nft list table inet hafwloss | sed -nE 's/.*packets ([0-9]+).*/\1/p'; }
# dup NODE PERCENT: that share of NODE's sync datagrams leaves twice
dup() {
	nsx "$1" nft -f - <<EOF2
table netdev hafwdup {
	chain egress {
		type filter hook egress device "sync0" priority 0; policy accept;
		udp dport 3780 numgen random mod 100 < $2 counter dup to "sync0"
	}
}
EOF2
}

# run NAME PERCENT SRC2: churn on A under loss; returns after B's copy
# equals A's table or 60 s
churn() {
	local pct=$1 net=$2
	nsx a "$CTTOOL" gen 10000 --src "10.$net.0.1" >/dev/null
	nsx a "$CTTOOL" gen 10000 --src "10.$net.1.1" --proto udp >/dev/null
	nsx a "$CTTOOL" update-marks --mark "$pct" --limit 5000 >/dev/null
	nsx a conntrack -D -p udp >/dev/null 2>&1
}
converged() {
	[ "$(external_flows b)" = "$(internal_flows a)" ] &&
		[ "$(internal_flows a)" = "$(nsx a conntrack -C)" ] &&
		[ "$(json_get b "[p['digest_match'] and p['missing'] == 0 for p in j['peers'] if p['id'] == 1][0]" status)" = True ]
}

hafw_node a 1
hafw_node b 2
hafw_start a 1
hafw_start b 2
dup a 10
lose a 10
lose b 10
for pct in 10 30; do
	nsx a nft flush table inet hafwloss
	nsx b nft flush table inet hafwloss
	lose a $pct
	lose b $pct
	t0=$SECONDS
	log "churn at ${pct}% loss"
	churn $pct $((20 + pct))
	check "${pct}% loss: B converges to A's table" wait_for 60 "B = A" converged
	log "${pct}% loss: converged after $((SECONDS - t0)) s; dropped at B $(dropped b), at A $(dropped a);" \
		"B's NACKs $(stat_of b "['peers']['nacks_sent']"), A's retransmits $(stat_of a "['replication']['retransmits']")," \
		"B's resyncs $(stat_of b "['peers']['resyncs_loss']")+$(stat_of b "['peers']['resyncs_digest']")"
	check "${pct}% loss: some datagrams really were dropped" gt "$(dropped b)" 0
done
nsx a nft delete table inet hafwloss
nsx b nft delete table inet hafwloss
check "duplicates arrived and were dropped" gt "$(stat_of b "['peers']['dup_dgrams']")" 0
nsx a nft delete table netdev hafwdup
ctl b commit | sed 's/^/  /'
check "after commit the kernel tables agree attribute by attribute" compare_tables a b
check "B repaired with NACKs and retransmits" gt "$(stat_of a "['replication']['retransmits']")" 0

# Control: the same churn at 10% loss with NACK and resync off.
log "control: NACK and resync off"
hafw_stop a
hafw_stop b
nsx a conntrack -F >/dev/null 2>&1
nsx b conntrack -F >/dev/null 2>&1
HAFW_SYNC_OPTS='nack = false; resync = false; digest_grace_ms = 0;' hafw_config a 1
HAFW_SYNC_OPTS='nack = false; resync = false; digest_grace_ms = 0;' hafw_config b 2
: >"$HAFW_TMP/a.log"
: >"$HAFW_TMP/b.log"
hafw_start a 1
hafw_start b 2
lose a 10
lose b 10
churn 10 60
sleep 5
log "control: B holds $(external_flows b) of A's $(internal_flows a) flows; lost $(stat_of b "['peers']['lost_dgrams']")"
nsx a nft delete table inet hafwloss
nsx b nft delete table inet hafwloss
ctl b commit >/dev/null
check "control: without repair the tables differ" not compare_tables a b
finish
