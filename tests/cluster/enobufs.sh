#!/bin/bash
# With a tiny netlink receive buffer that may not grow, bursts overrun A's
# event socket (ENOBUFS): events are lost. syncd must count it, re-dump,
# reconcile its internal cache and tell B, so both tables still match.
# Control: a plain listener with the same buffer in A's namespace misses
# events of the same burst, so recovery is really exercised.
. "$(dirname "$0")/lib.sh"
hafw_init enobufs

N=${N:-60000}

hafw_node a 1
hafw_node b 2
HAFW_TRACKER_OPTS='netlink_buffer = 65536; netlink_buffer_max = 65536;' hafw_config a 1
hafw_start a 1
hafw_start b 2

# Control listener: same 64 KiB buffer, counts NEW events of the burst.
nsx a "$CTTOOL" count-events --type new --rcvbuf 65536 --timeout 5 --expect "$N" \
	>"$HAFW_TMP/listener.out" 2>&1 &
LPID=$!
HAFW_PIDS+=("$LPID")
wait_for 5 "listener ready" grep -q READY "$HAFW_TMP/listener.out"

log "burst of $N creates on A"
nsx a "$CTTOOL" gen "$N" --src 10.50.0.0 | sed 's/^/  /'
wait "$LPID"
seen=$(sed -nE 's/^events: ([0-9]+) .*/\1/p' "$HAFW_TMP/listener.out")
log "control listener with the same buffer saw ${seen:-0} of $N NEW events"
check "control: a listener with this buffer loses events" gt "$N" "${seen:-0}"

check "A counted netlink overruns" \
	wait_for 10 "overruns > 0" eval '[ "$(stat_of a "['"'"'tracker'"'"']['"'"'netlink_overruns'"'"']")" -gt 0 ]'
check "A's internal cache recovered every flow" \
	wait_for 60 "A internal = $N" eval '[ "$(internal_flows a)" = "$N" ]'
check "B's external cache has every flow" \
	wait_for 60 "B external = $N" eval '[ "$(external_flows b)" = "$N" ]'
nsx a "$CTTOOL" gen "$N" --src 10.51.0.0 --proto udp | sed 's/^/  /'
check "a second burst (UDP) reaches B too" \
	wait_for 60 "B external = $((2 * N))" eval '[ "$(external_flows b)" = "$((2 * N))" ]'
check "A reconciled with at least one re-dump after the overrun" \
	ge "$(stat_of a "['replication']['dumps']")" 2

# Destroy burst: the TCP half goes at once; lost destroy events must not
# leave stale entries behind on B.
nsx a conntrack -D -p tcp >/dev/null 2>&1 || true
left=$(nsx a conntrack -C)
log "after a destroy burst A holds $left flows"
check "B's external cache follows the destroy burst" \
	wait_for 60 "B external = $left" eval '[ "$(external_flows b)" = "$left" ]'

ctl b commit | sed 's/^/  /'
check "after commit the kernel tables agree attribute by attribute" compare_tables a b
check "syncd on A still running" kill -0 "$PID_a"
finish
