#!/bin/bash
# A burst that keeps overrunning A's event socket while A re-dumps: the
# kernel reports ENOBUFS once per congestion episode, so drops during a
# dump go unreported unless the queue was emptied first. Before that was
# handled, A kept ~27k of 250k flows missing for good. Every flow must end
# up in A's cache and in B's.
# Control: A's own socket must have lost events (checked below), or the
# test would prove nothing.
. "$(dirname "$0")/lib.sh"
hafw_init overrunburst

N=${N:-200000}
hafw_node a 1
hafw_node b 2
HAFW_TRACKER_OPTS='netlink_buffer = 1048576; netlink_buffer_max = 1048576;' hafw_config a 1
hafw_start a 1
hafw_start b 2

# A's syncd is paused for 0.3 s in the middle of the burst: its socket
# overflows for sure, and when it resumes the re-dump runs while the burst
# goes on and keeps overflowing it (how the benchmark lost flows).
nsx a "$CTTOOL" gen "$N" --src 10.40.0.0 >"$HAFW_TMP/gen.out" 2>&1 &
GPID=$!
HAFW_PIDS+=("$GPID")
sleep 0.05
kill -STOP "$PID_a"
sleep 0.3
kill -CONT "$PID_a"
wait "$GPID"
sed 's/^/  /' "$HAFW_TMP/gen.out"
# Precondition, the control of this test: A's own socket lost events, so
# without reconciling its cache would stay short (the old code kept ~11%
# of such a burst missing for good).
check "A lost events to overruns during the burst" \
	wait_for 10 "overruns" eval '[ "$(stat_of a "['"'"'tracker'"'"']['"'"'netlink_overruns'"'"']")" -gt 0 ]'
check "A's internal cache converges on all $N flows" \
	wait_for 60 "A internal = $N" eval '[ "$(internal_flows a)" = "$N" ]'
check "B's external cache converges on all $N flows" \
	wait_for 60 "B external = $N" eval '[ "$(external_flows b)" = "$N" ]'
log "A: overruns $(stat_of a "['tracker']['netlink_overruns']"), dumps $(stat_of a "['tracker']['dumps']")"
check "A saw overruns and re-dumped for each" \
	eval '[ "$(stat_of a "['"'"'tracker'"'"']['"'"'dumps'"'"']")" -gt "$(stat_of a "['"'"'tracker'"'"']['"'"'netlink_overruns'"'"']")" ]'
finish
