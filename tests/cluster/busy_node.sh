#!/bin/bash
# The event loop keeps reading sync datagrams while its own node commits
# 300k flows and then reconciles (dumps) and re-announces them: a peer
# streaming datagrams at a steady rate to B loses none of them.
# B's receive buffer is small on purpose (1 MiB: about a thousand
# datagrams), so a loop that stops reading for a fraction of a second loses
# datagrams. Control: B's syncd stopped (SIGSTOP) for as long as its commit
# took, with the same stream: the loss is counted, so the check can fail.
. "$(dirname "$0")/lib.sh"
hafw_init busynode

case "$HAFW_BIN" in
*asan*) N=${N:-100000} ;; # sanitizers are ~5x slower; the shape is the same
*) N=${N:-300000} ;;
esac
RATE=4000 # datagrams per second from the streaming peer

# nf_conntrack_max is global (initial namespace only): raise it for the
# test, restore it on exit
CT_MAX=$(cat /proc/sys/net/netfilter/nf_conntrack_max)
if [ "$CT_MAX" -lt $((N + 50000)) ]; then
	echo $((N + 50000)) >/proc/sys/net/netfilter/nf_conntrack_max
	HAFW_ON_EXIT+=("echo $CT_MAX >/proc/sys/net/netfilter/nf_conntrack_max")
fi

hafw_node a 1
hafw_node b 2
hafw_node c 3
HAFW_SYNC_OPTS='rcvbuf = 1048576;' hafw_config b 2
hafw_start a 1
hafw_start b 2

log "creating $N flows on A, in chunks"
for i in $(seq 0 $((N / 10000 - 1))); do
	nsx a "$CTTOOL" gen 10000 --src "10.100.$((i / 250)).$((i % 250 + 1))" >/dev/null
	sleep 0.2
done
check "B's external cache has A's $N flows" \
	wait_for 120 "B external = $N" eval '[ "$(external_flows b)" = "$N" ]'

SEND="python3 $HAFW_CLUSTER_DIR/send_dgrams.py 192.168.77.3 239.192.77.1 3780"
peer3() { json_get b "[p['$1'] for p in j['peers'] if p['id'] == 3][0]" status; }
rcvbuf_errors() { nsx b awk '/^Udp: [0-9]/ {print $6}' /proc/net/snmp; }

log "peer 3 streams $RATE datagrams/s; B commits $N flows"
nsx c $SEND stream $RATE 600 >"$HAFW_TMP/stream.out" 2>&1 &
STREAM=$!
HAFW_PIDS+=("$STREAM")
wait_for 5 "peer 3 heard" eval '[ "$(peer3 datagrams 2>/dev/null || echo 0)" -gt 100 ]'
LOST0=$(peer3 lost_datagrams)
ERR0=$(rcvbuf_errors)
T0=$(date +%s.%N)
ctl b commit | sed 's/^/  /'
check "B's kernel holds the $N committed flows" eq "$(nsx b conntrack -C)" "$N"
check "B reconciled and re-announced them as its own" \
	wait_for 120 "B internal = $N" eval '[ "$(internal_flows b)" = "$N" ] && [ "$(json_get b "j['"'"'node'"'"']['"'"'reconciling'"'"']" status)" = False ]'
check "A learned B's flows (the re-announce went out)" \
	wait_for 60 "A external = $N" eval '[ "$(external_flows a)" = "$N" ]'
T1=$(date +%s.%N)
BUSY=$(python3 -c "print(max(1.0, $T1 - $T0))")
sleep 1.5 # a heartbeat interval: what was missing is counted by now
LOST=$(($(peer3 lost_datagrams) - LOST0))
ERRS=$(($(rcvbuf_errors) - ERR0))
log "B was busy ${BUSY}s (commit, dump, re-announce); datagrams from peer 3: $(peer3 datagrams), lost $LOST, socket drops $ERRS"
log "B's longest slice of background work: $(stat_of b "['replication']['slice_max_us']") us"
check "no datagram of the streaming peer lost while B was busy" eq "$LOST" 0
check "no datagram dropped by B's socket" eq "$ERRS" 0
check "peer 3's stream kept arriving" ge "$(peer3 datagrams)" $((RATE * 2))

log "control: B's syncd stopped for ${BUSY}s with the same stream"
kill -STOP "$PID_b"
sleep "$BUSY"
kill -CONT "$PID_b"
sleep 1.5
LOST2=$(($(peer3 lost_datagrams) - LOST0 - LOST))
log "control: lost $LOST2, socket drops $(($(rcvbuf_errors) - ERR0 - ERRS))"
check "control: a loop that does not read for that long loses datagrams" gt "$LOST2" 0
kill "$STREAM" 2>/dev/null
finish
