#!/bin/bash
# Divergence nobody saw: B's copy of A loses 25 entries behind syncd's back
# (`hafwctl debug forget`). No datagram was lost, so only the digest in A's
# heartbeats can tell: within the grace period (3 s) plus a resync B must
# hold exactly A's table again, and count one digest resync.
# Control: the same with the digest check off stays 25 short.
. "$(dirname "$0")/lib.sh"
hafw_init digest

same_as_a() { [ "$(external_flows b)" = "$(internal_flows a)" ]; }
run() { # OPTS
	HAFW_SYNC_OPTS="$1" hafw_config b 2
	hafw_start a 1
	hafw_start b 2
	nsx a "$CTTOOL" gen 2000 --src 10.95.0.1 >/dev/null
	wait_for 20 "B = A" same_as_a
}

hafw_node a 1
hafw_node b 2
run "" || check "B holds A's flows" false
ctl b debug forget --peer 1 25 | sed 's/^/  /'
check "B's copy is now 25 short" eq "$(external_flows b)" $(($(internal_flows a) - 25))
t0=$SECONDS
check "the digest notices and a resync repairs B's copy" wait_for 15 "B = A" same_as_a
log "repaired after $((SECONDS - t0)) s; digest mismatches seen: $(stat_of b "['peers']['digest_mismatch']")"
check "one digest resync, no loss counted" \
	eq "$(stat_of b "['peers']['resyncs_digest']")/$(stat_of b "['peers']['lost_dgrams']")" "1/0"
check "B is ready once the full state is confirmed" wait_for 5 "ready" ctl b ready

log "control: the digest check off"
hafw_stop_all
: >"$HAFW_TMP/b.log"
nsx a conntrack -F >/dev/null 2>&1
run "digest_grace_ms = 0;" || check "control: B holds A's flows" false
ctl b debug forget --peer 1 25 >/dev/null
sleep 6
check "control: without the digest B stays 25 short" \
	eq "$(external_flows b)" $(($(internal_flows a) - 25))
finish
