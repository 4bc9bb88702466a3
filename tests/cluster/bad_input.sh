#!/bin/bash
# Garbage, truncated, oversized, wrong-version and otherwise malformed
# datagrams sent to the sync group from a third namespace: each is dropped
# and counted under its own reason, syncd keeps running, the replicated
# state is intact and replication goes on.
# Control: a well-formed frame from the same namespace IS accepted (this
# issue has no authentication yet), so the drops above come from validation,
# not from the datagrams never arriving.
. "$(dirname "$0")/lib.sh"
hafw_init badinput

SEND="python3 $(dirname "$0")/send_dgrams.py 192.168.77.3 239.192.77.1 3780"
K=5

hafw_node a 1
hafw_node b 2
hafw_node c 3
hafw_start a 1
hafw_start b 2

nsx a "$CTTOOL" mixed 400 --exp 10 --no-labels >/dev/null
A_FLOWS=$(internal_flows a)
check "B holds A's $A_FLOWS flows" \
	wait_for 10 "B external" eval '[ "$(external_flows b)" = "$A_FLOWS" ]'
bad() { stat_of b "['replication']['bad_datagrams']['$1']"; }
rep() { stat_of b "['replication']['$1']"; }
per_peer() { stat_of b "['peers']['$1']"; }
check "no bad datagrams before the attack" eq "$(per_peer bad_frames)$(bad bad_magic)$(bad short)" "000"

for kind in short empty bad_magic bad_version bad_type unknown_type truncated trailing \
	bad_sender bad_frame bad_event oversized; do
	nsx c $SEND "$kind" "$K"
done
sleep 0.5
check "short and empty datagrams counted as short" eq "$(bad short)" $((2 * K))
for reason in bad_magic bad_version bad_type truncated trailing bad_sender; do
	check "$reason datagrams counted" eq "$(bad "$reason")" "$K"
done
check "undecodable and oversized frames counted" eq "$(per_peer bad_frames)" $((2 * K))
check "frames with an invalid flow counted as bad events" eq "$(per_peer bad_events)" "$K"
check "message types of a later version skipped and counted" eq "$(per_peer unknown_types)" "$K"
check "syncd on B still running" kill -0 "$PID_b"
check "B still holds A's flows, none added" eq "$(external_flows b)" "$A_FLOWS"
check "B's log is rate-limited (under 50 warnings for $((13 * K)) bad datagrams)" \
	eval '[ "$(grep -c warning "$HAFW_TMP/b.log")" -lt 50 ]'

check "hafwctl metrics exports the drop counters" \
	eval 'ctl b metrics | grep -qx "hafw_replication_bad_datagrams_bad_magic $K"'

# The control socket and the CLI take untrusted input too.
SOCK_B=$(sock_of b)
ctl_raw() { python3 -c '
import socket,sys
s=socket.socket(socket.AF_UNIX); s.connect(sys.argv[1]); s.sendall(sys.argv[2].encode())
s.shutdown(socket.SHUT_WR); print(s.makefile().read())' "$SOCK_B" "$1"; }
check "control socket answers garbage with an error" \
	eval 'ctl_raw "not json at all
" | grep -q "\"ok\":false"'
check "control socket refuses an unknown command" \
	eval 'ctl_raw "{\"cmd\":\"rm -rf\"}
" | grep -q "unknown command"'
check "control socket survives an oversized request" \
	eval 'head -c 200000 /dev/zero | tr "\\0" x | ctl_raw "$(cat)" >/dev/null; kill -0 $PID_b'
check "a non-root user cannot open the control socket" \
	not setpriv --reuid 65534 --regid 65534 --clear-groups "$HAFWCTL" -s "$SOCK_B" status
check "hafwctl: usage errors exit 2" \
	eval '"$HAFWCTL" -s "$SOCK_B" flows --peer abc 2>/dev/null; [ $? = 2 ]'
check "hafwctl: unknown command exits 2" \
	eval '"$HAFWCTL" -s "$SOCK_B" frobnicate 2>/dev/null; [ $? = 2 ]'
check "hafwctl: an absent daemon is a clear error, exit 1" \
	eval '"$HAFWCTL" -s "$HAFW_TMP/none.sock" status 2>&1 | grep -q "cannot reach hafw-syncd"; "$HAFWCTL" -s "$HAFW_TMP/none.sock" status 2>/dev/null; [ $? = 1 ]'
check "hafwctl: a peer that does not exist is an error" \
	not ctl b flows --peer 77
# 1000 clients that ask for the whole flow table and leave without reading,
# and 200 that connect and stall: the daemon frees every one of them
# (defect 8: a client that left during a large answer leaked its fd).
fds_b() { ls "/proc/$PID_b/fd" | wc -l; }
FDS0=$(fds_b)
python3 - "$SOCK_B" <<'PY'
import socket, sys
for _ in range(1000):
    s = socket.socket(socket.AF_UNIX)
    s.connect(sys.argv[1])
    s.sendall(b'{"cmd":"flows","external":true}\n')
    s.close()
PY
python3 - "$SOCK_B" <<'PY' &
import socket, sys, time
held = []
for _ in range(200):
    s = socket.socket(socket.AF_UNIX)
    s.connect(sys.argv[1])
    held.append(s)
time.sleep(12)  # longer than the daemon's request timeout (10 s)
PY
STALL=$!
HAFW_PIDS+=("$STALL")
sleep 1
check "abandoned and stalled clients: fds held while they stall" ge "$(fds_b)" $((FDS0 + 150))
wait "$STALL"
check "every abandoned and stalled client freed (fd count back to $FDS0)" \
	wait_for 5 "fds back" eval '[ "$(fds_b)" -le "$FDS0" ]'
check "the control socket counted them" \
	eval '[ "$(stat_of b "['"'"'control'"'"']['"'"'timeouts'"'"']")" -ge 200 ]'
check "syncd on B still running after the control-socket abuse" kill -0 "$PID_b"

nsx a "$CTTOOL" gen 500 --src 10.70.0.0 >/dev/null
check "replication goes on after the attack" \
	wait_for 10 "B external" eval '[ "$(external_flows b)" = "$((A_FLOWS + 500))" ]'
ctl b commit >/dev/null
check "after commit the kernel tables agree" compare_tables a b

# Control: the same path with a well-formed frame is accepted.
peer3_flows() { json_get b "sum(p['flows'] for p in j['peers'] if p['id'] == 3)" status; }
check "control: nothing from the third namespace was applied before" eq "$(peer3_flows)" 0
nsx c $SEND valid 1
check "control: a well-formed frame from the third namespace is applied" \
	wait_for 5 "peer 3 flow" eval '[ "$(peer3_flows)" = 1 ]'
finish
