#!/bin/bash
# Reliable delivery benchmark: hafw-syncd against conntrackd (FTFW over
# multicast) under loss on the sync link, in one run and on the same
# two-node topology as tests/bench/replicate.sh. Not part of ctest; needs
# root.
#
#   sudo tests/bench/reliability.sh          (build first, see docs/BENCHMARKS.md)
#
# Every run gets fresh namespaces: a hub with a bridge (no IGMP snooping) and
# two nodes A and B with sync0 (192.168.77.1 and .2/24) on it; sync0 is not
# tracked. Both daemons of a run are started on an empty table and wait until
# each has heard the other (hafw: and its control connection is up, when the
# build has one). Then the loss is switched on: on each node an nft rule in
# the input hook drops LOSS % of all TCP and UDP packets arriving on sync0
# (multicast datagrams, NACKs and acknowledgements, the hafw control
# connection), so each direction of the link loses LOSS %, which the sender
# cannot tell from loss on a wire. The loss stays on until the run ends.
#   convergence  `hafw-cttool gen N` on A; the time from the start of gen
#                until B's external cache holds exactly A's N flows (hafw:
#                the sum of the peers' `flows` in `hafwctl status`; then,
#                after a heartbeat, B's `digest_match` and `missing`;
#                conntrackd: the external cache's "current active
#                connections" in `conntrackd -s`), bounded by WAIT_S. Each
#                run: converged or not, time, flows short at the end
#                (A's `conntrack -C` minus B's count; negative: extra).
#   wire         sync0 tx bytes of A and B (L2 frames, both directions, the
#                dropped ones included: they were sent) from just before gen
#                until convergence (or the end of the wait), divided by N.
# In the 0 % runs only (as long as the run number allows):
#   idle         (runs <= IDLE_RUNS) SETTLE_S after convergence, sync0 tx
#                bytes of A and B and CPU ticks of both daemons over IDLE_S
#   bulk         (runs <= BULK_RUNS) kill -9 of B's daemon, RESTART_GAP_S
#                later started again, until B holds N again. hafw: nothing
#                else (B pulls A's table at first contact); conntrackd: the
#                stale lock file removed before the start (kill -9 leaves
#                it), and once B answers, `conntrackd -C B.conf -n` (resync
#                request, as conntrackd's primary-backup.sh does on backup).
#                Times from the restart and from B's first flow.
# A round runs every loss level for every daemon; RUNS rounds.
#
# Environment:
#   HAFW_BIN   build directory (default: <repo>/build-bench)
#   N          flows (default 100000)
#   LOSSES     loss levels in % (default "0 10 30")
#   DAEMONS    "hafw ctd" (default both; ctd is the replicate.sh ctd-tuned
#              configuration: FTFW, multicast, 32 MB netlink buffer)
#   RUNS       rounds (default 5)
#   WAIT_S     bound of every convergence wait in seconds (default 40)
#   IDLE_S     idle measurement (default 20 s), IDLE_RUNS (default 3)
#   BULK_RUNS  bulk resync measurements (default 5), RESTART_GAP_S (1)
#   SETTLE_S   quiet time before the idle measurement (default 2)
#   LOSS_HOOKS "input" (default) or "input output": the latter also drops
#              LOSS % in each node's output hook (each datagram then faces
#              two drops, and a UDP sender gets EPERM for its own drops)
#   HAFW_SYNC_OPTS  extra settings for hafw's sync group (default none)
#   QUIET_IDLE, QUIET_MAX_S  wait for an idle machine before each run (85 %,
#              at most 20 s), as replicate.sh
#   OUT_MD     markdown result file (default /tmp/hafw-bench-reliability.md);
#              raw key=value results in ${OUT_MD%.md}.raw, text in .txt
#   KEEP_TMP=1 keep the work directory (configs, daemon logs)
#
# Cleanup on any exit: only the processes this script started (by PID),
# its namespaces, and the sysctls it raised (restored to their values).

set -u

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)

N=${N:-100000}
LOSSES=${LOSSES:-"0 10 30"}
DAEMONS=${DAEMONS:-"hafw ctd"}
RUNS=${RUNS:-5}
WAIT_S=${WAIT_S:-40}
IDLE_S=${IDLE_S:-20}
IDLE_RUNS=${IDLE_RUNS:-3}
BULK_RUNS=${BULK_RUNS:-5}
RESTART_GAP_S=${RESTART_GAP_S:-1}
SETTLE_S=${SETTLE_S:-2}
LOSS_HOOKS=${LOSS_HOOKS:-input}
QUIET_IDLE=${QUIET_IDLE:-85}
QUIET_MAX_S=${QUIET_MAX_S:-20}
OUT_MD=${OUT_MD:-/tmp/hafw-bench-reliability.md}
OUT_RAW=${OUT_MD%.md}.raw
OUT_TXT=${OUT_MD%.md}.txt
# conntrackd: the ctd-tuned configuration of replicate.sh
CTD_BUF=33554432
CTD_GROWTH=67108864

# shared helpers: bookkeeping, cleanup, topology, daemons, pollers
. "$HERE/benchlib.sh"

HAS_CONTROL=0 # set once: does this hafw build open a control connection?

# ---- loss ----

# loss_on NS PCT: drop PCT % of the TCP and UDP packets on sync0
loss_on() {
	local ns=$1 pct=$2 out=""
	if [[ " $LOSS_HOOKS " == *" output "* ]]; then
		out="chain out { type filter hook output priority -500; policy accept;
			oifname \"sync0\" meta l4proto { tcp, udp } numgen random mod 100 < $pct counter drop; }"
	fi
	ip netns exec "$ns" nft -f - <<EOF || die "loss ruleset"
table inet hbloss {
	chain in {
		type filter hook input priority -500; policy accept;
		iifname "sync0" meta l4proto { tcp, udp } numgen random mod 100 < $pct counter drop
	}
	$out
}
EOF
}

# dropped NS: packets the loss rules of NS dropped so far
dropped() {
	ip netns exec "$1" nft list table inet hbloss 2>/dev/null |
		awk '{ for (i = 1; i < NF; i++) if ($i == "packets") s += $(i + 1) } END { print s + 0 }'
}

# ---- daemon helpers ----

hafw_json() { "$HAFWCTL" -s "$C/hafw-$1.sock" --json "$2" 2>/dev/null; }

# hafw_peer NODE PEER_ID FIELD: a field of one peer in `hafwctl peers`
hafw_peer() {
	hafw_json "$1" peers | jq -r --argjson id "$2" --arg f "$3" \
		'[.peers[] | select(.id == $id) | .[$f]] | first // "none"'
}

# kv JSON PATH PREFIX KEY...: "PREFIXKEY=value ..." from one object of JSON
kv() {
	local json=$1 path=$2 pfx=$3
	shift 3
	jq -r --arg p "$pfx" "$path"' as $o | [$ARGS.positional[] | "\($p)\(.)=\($o[.])"] | join(" ")' \
		--args "$@" <<<"$json"
}

# wait_contact DAEMON: both daemons have heard each other (bounded, 10 s)
wait_contact() {
	local i
	for ((i = 0; i < 100; i++)); do
		if [ "$1" = hafw ]; then
			[ "$(hafw_peer b 1 up)" = true ] && [ "$(hafw_peer a 2 up)" = true ] &&
				{ [ "$HAS_CONTROL" = 0 ] || { [ "$(hafw_peer b 1 control_connected)" = true ] &&
					[ "$(hafw_peer a 2 control_connected)" = true ]; }; } && return 0
		else
			[ "$(ctd_stat b 'Pckts recv' 4)" -gt 0 ] 2>/dev/null &&
				[ "$(ctd_stat a 'Pckts recv' 4)" -gt 0 ] 2>/dev/null && return 0
		fi
		sleep 0.1
	done
	log "  WARNING: the daemons did not hear each other within 10 s"
}

start_pair() {
	if [ "$1" = hafw ]; then
		start_hafw b 2 "$NS_B"
		start_hafw a 1 "$NS_A"
		KIND=hafw ARG=$C/hafw-b.sock
	else
		start_ctd b 2 "$NS_B" "$CTD_BUF" "$CTD_GROWTH"
		start_ctd a 1 "$NS_A" "$CTD_BUF" "$CTD_GROWTH"
		KIND=ctd ARG=$C/ctd-b.cli
	fi
	wait_contact "$1"
}

# kill9 PID: SIGKILL, reaped and forgotten
kill9() {
	local p keep=()
	kill -9 "$1" 2>/dev/null
	wait "$1" 2>/dev/null
	forget_pid "$1"
	for p in "${CASE_PIDS[@]}"; do [ "$p" = "$1" ] || keep+=("$p"); done
	CASE_PIDS=("${keep[@]}")
}

# repair_counters DAEMON: what each side did to repair the loss
repair_counters() {
	local sa sb pb
	if [ "$1" = hafw ]; then
		sa=$(hafw_json a stats)
		sb=$(hafw_json b stats)
		pb=$(hafw_json b status | jq '[.peers[] | select(.id == 1)] | first // {}')
		echo "$(kv "$pb" . b_ digest_match missing resync_pending synced lost_datagrams)" \
			"$(kv "$sb" .peers b_ nacks_sent nack_ranges nacks_sent_control misses resyncs_loss \
				resyncs_digest digest_mismatch bulks_requested bulks_received bulks_resumed \
				bulks_stalled window_resets late_heartbeats)" \
			"$(kv "$sa" .replication a_ nacks_received retransmits ring_misses dumps resync_added \
				announces announce_requests bulk_requests bulks_sent bulk_entries_sent frames_sent \
				heartbeats_sent send_errors)"
	else
		echo "b_lost_msgs=$(ctd_stat b 'Lost msgs' 4) a_lost_msgs=$(ctd_stat a 'Lost msgs' 4)" \
			"a_pkts_sent=$(ctd_stat a 'Pckts sent' 1) b_pkts_sent=$(ctd_stat b 'Pckts sent' 1)" \
			"a_send_err=$(ctd_stat a 'Error send' 1) b_send_err=$(ctd_stat b 'Error send' 1)"
	fi
}

# ---- one run ----

run_rel() {
	local d=$1 loss=$2 run=$3 t0 gen st tdone held first akern now_b short res i
	local txA0 txA1 txB0 txB1 extra
	CASE_PIDS=()
	topo_up
	log "$d, $loss% loss, run $run (namespaces $NS_A, $NS_B; load $(cut -d' ' -f1-3 /proc/loadavg))"
	start_pair "$d"
	if [ "$loss" -gt 0 ]; then
		loss_on "$NS_A" "$loss"
		loss_on "$NS_B" "$loss"
	fi
	wait_quiet
	txA0=$(tx_bytes "$NS_A")
	txB0=$(tx_bytes "$NS_B")

	poll_start "$KIND" "$ARG" "$N" "$C/poll.out"
	t0=$(now)
	gen=$(ip netns exec "$NS_A" "$CTTOOL" gen "$N" 2>&1)
	poll_wait
	txA1=$(tx_bytes "$NS_A")
	txB1=$(tx_bytes "$NS_B")
	read -r st tdone held _ _ first <"$C/poll.out" || st=error
	if [ "$st" = converged ] || [ "$st" = timeout ]; then
		res="t=$(fsub "$tdone" "$t0")"
	else
		res="t=-1"
	fi
	akern=$(kernel_count "$NS_A")
	[ "$akern" = "$N" ] || log "  WARNING: A's kernel holds $akern flows, not $N ($gen)"
	if [ "$d" = hafw ]; then
		# digest_match is updated by heartbeats: one interval after the
		# count matched, B has compared its copy with A's digest
		sleep 1.2
	fi
	now_b=$(python3 "$BENCHLIB" count "$KIND" "$ARG" 2>/dev/null || echo -1)
	short=$((akern - now_b))
	extra=$(repair_counters "$d")
	log "  $st after ${res#t=} s; B holds $now_b of A's $akern; $extra"
	RES "rel daemon=$d loss=$loss run=$run idle=$IDLE status=$st $res held=$held" \
		"b_count=$now_b a_count=$akern short=$short" \
		"gen_s=$(sed -nE 's/^gen: created [0-9]+ in ([0-9.]+) s.*/\1/p' <<<"$gen")" \
		"wire_a=$((txA1 - txA0)) wire_b=$((txB1 - txB0))" \
		"wire_bpf=$(fdiv $((txA1 - txA0 + txB1 - txB0)) "$N")" \
		"drop_a=$(dropped "$NS_A") drop_b=$(dropped "$NS_B") $extra"

	if [ "$loss" = 0 ] && [ "$st" = converged ]; then
		[ "$run" -le "$IDLE_RUNS" ] && run_idle "$d" "$run"
		[ "$run" -le "$BULK_RUNS" ] && run_bulk "$d" "$run"
	fi
	topo_down
}

# idle: bytes on the link and CPU of both daemons with N replicated flows
run_idle() {
	local d=$1 run=$2 txA0 txA1 txB0 txB1 cA0 cA1 cB0 cB1 t0 t1 secs
	sleep "$SETTLE_S"
	t0=$(now)
	txA0=$(tx_bytes "$NS_A")
	txB0=$(tx_bytes "$NS_B")
	cA0=$(cpu_ticks "$PID_a")
	cB0=$(cpu_ticks "$PID_b")
	sleep "$IDLE_S"
	t1=$(now)
	txA1=$(tx_bytes "$NS_A")
	txB1=$(tx_bytes "$NS_B")
	cA1=$(cpu_ticks "$PID_a")
	cB1=$(cpu_ticks "$PID_b")
	secs=$(fsub "$t1" "$t0")
	RES "idle daemon=$d run=$run secs=$secs wire_a=$((txA1 - txA0)) wire_b=$((txB1 - txB0))" \
		"bytes_s=$(fdiv $((txA1 - txA0 + txB1 - txB0)) "$secs")" \
		"cpu_a_pct=$(awk -v t=$((cA1 - cA0)) -v hz="$CLK_TCK" -v s="$secs" 'BEGIN { printf "%.3f", 100 * t / hz / s }')" \
		"cpu_b_pct=$(awk -v t=$((cB1 - cB0)) -v hz="$CLK_TCK" -v s="$secs" 'BEGIN { printf "%.3f", 100 * t / hz / s }')"
	log "  idle over $secs s: $(tail -n 1 "$OUT_RAW" | cut -d' ' -f5-)"
}

# bulk: B's daemon killed and started again until B holds N again
# (times from the restart; "up": B's daemon answers its control socket,
# which is when conntrackd can be asked for the resync)
run_bulk() {
	local d=$1 run=$2 t0 tup st tdone held first extra=""
	kill9 "$PID_b"
	sleep "$RESTART_GAP_S"
	poll_start "$KIND" "$ARG" "$N" "$C/poll.out" # errors until B answers
	local START_POLL_S=0.01 # "up" to 10 ms
	t0=$(now)
	if [ "$d" = hafw ]; then
		start_hafw b 2 "$NS_B"
		tup=$(now)
	else
		rm -f "$C/ctd-b.lock"
		start_ctd b 2 "$NS_B" "$CTD_BUF" "$CTD_GROWTH"
		tup=$(now)
		conntrackd -C "$C/ctd-b.cli" -n >/dev/null 2>&1 || log "  conntrackd -n failed"
	fi
	poll_wait
	read -r st tdone held _ _ first <"$C/poll.out" || st=error
	[ "$d" = hafw ] && extra=$(repair_counters hafw)
	RES "bulk daemon=$d run=$run status=$st held=$held" \
		"total_s=$(fsub "$tdone" "$t0") up_s=$(fsub "$tup" "$t0") upall_s=$(fsub "$tdone" "$tup")" \
		"first_s=$(awk -v f="$first" -v t="$t0" 'BEGIN { if (f < 0) print "-"; else printf "%.6f", f - t }')" \
		"xfer_s=$(awk -v f="$first" -v e="$tdone" 'BEGIN { if (f < 0) print "-"; else printf "%.6f", e - f }')" \
		"$extra"
	log "  bulk after restart: $(tail -n 1 "$OUT_RAW" | cut -d' ' -f4-9)"
}

# ---- main ----

case "${1:-}" in
-h | --help)
	sed -n '2,/^$/p' "$0" | sed 's/^# \{0,1\}//'
	exit 0
	;;
esac
bench_init
bench_meta
# a build without the TCP control channel reports no control_channel stats
CASE_PIDS=()
topo_up
start_hafw a 1 "$NS_A"
[ "$(hafw_json a stats | jq 'has("control_channel")')" = true ] && HAS_CONTROL=1
topo_down
RES "meta n $N"
RES "meta runs $RUNS"
RES "meta wait $WAIT_S"
RES "meta loss_hooks $LOSS_HOOKS"
RES "meta control $HAS_CONTROL"
RES "meta idle_s $IDLE_S"
[ -n "${HAFW_SYNC_OPTS:-}" ] && RES "meta hafw_sync_opts $HAFW_SYNC_OPTS"
log "hafw control connection: $([ $HAS_CONTROL = 1 ] && echo yes || echo "no (this build has none)")"

for ((ROUND = 1; ROUND <= RUNS; ROUND++)); do
	log "==== round $ROUND of $RUNS"
	for loss in $LOSSES; do
		for d in $DAEMONS; do
			run_rel "$d" "$loss" "$ROUND"
		done
	done
done

python3 "$BENCHLIB" relreport "$OUT_RAW" "$OUT_TXT" "$OUT_MD" || die "report failed"
cat "$OUT_TXT"
echo
echo "markdown: $OUT_MD   raw: $OUT_RAW"
