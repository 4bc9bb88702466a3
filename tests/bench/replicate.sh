#!/bin/bash
# Replication benchmark: hafw-syncd against conntrackd (FTFW over multicast)
# on the same two-node topology, in one run. Not part of ctest; needs root.
#
#   sudo tests/bench/replicate.sh            (build first, see docs/BENCHMARKS.md)
#
# Every case gets fresh namespaces with the same topology: a hub namespace
# with a bridge (no IGMP snooping) and two nodes A and B, each with sync0
# (192.168.77.1 and .2/24) on the bridge; traffic on sync0 is not tracked,
# as on a real cluster. Flows are created on A with `hafw-cttool gen N`
# (batched creates). Cases, for every N in SIZES:
#   kernel       create rate with no listener in the namespace, then with one
#                counting listener (hafw-cttool count-events --type new)
#   hafw         hafw-syncd on A and B
#   ctd-default  conntrackd FTFW, NetlinkBufferSize 2 MB / growth 8 MB (the
#                values of the shipped example configuration)
#   ctd-tuned    conntrackd FTFW, NetlinkBufferSize 32 MB / growth 64 MB
# Per daemon case, in this order: replication time (start of gen until B's
# external cache holds N); sync-link bytes per flow (sync0 tx bytes of A and
# B, L2 frames, both directions); B's daemon RSS growth per cached flow; A's
# and B's daemon CPU time per 100k NEW events; commit on B (daemon-reported
# time and the time the client waited, checked with conntrack -C on B),
# with A's daemon stopped: the kernel builds conntrack events whenever a
# listener exists in ANY namespace, which two machines would not share;
# then A's daemon is started again and, once B's external cache is full
# again, the time until a conntrack -F on A empties B's external cache.
#
# Environment:
#   HAFW_BIN   build directory (default: <repo>/build-bench)
#   SIZES      flow counts (default "10000 100000 300000")
#   DAEMONS    cases (default "kernel hafw ctd-default ctd-tuned")
#   REPEAT     rounds (default 3); a round runs every case once, so noise
#              from other load spreads over all daemons; tables show medians
#   WAIT_S     bound of every convergence wait in seconds (default 40)
#   QUIET_IDLE before each case wait (at most QUIET_MAX_S, default 20 s) until
#              the machine is at least this % idle over 0.5 s (default 85)
#   OUT_MD     markdown result file (default /tmp/hafw-bench-replicate.md);
#              the raw key=value results go to ${OUT_MD%.md}.raw and the
#              text table to ${OUT_MD%.md}.txt
#   COMMIT_PEER_RUNNING=1  keep A's daemon running during B's commit (by
#              default it is stopped: see "(b) commit" below)
#   KEEP_TMP=1 keep the work directory (configs, daemon logs)
#
# Cleanup on any exit: only the processes this script started (by PID),
# its namespaces, and the sysctls it raised (restored to their values).

set -u

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)

SIZES=${SIZES:-"10000 100000 300000"}
DAEMONS=${DAEMONS:-"kernel hafw ctd-default ctd-tuned"}
WAIT_S=${WAIT_S:-40}
REPEAT=${REPEAT:-3}
QUIET_IDLE=${QUIET_IDLE:-85}
QUIET_MAX_S=${QUIET_MAX_S:-20}
COMMIT_PEER_RUNNING=${COMMIT_PEER_RUNNING:-0}
OUT_MD=${OUT_MD:-/tmp/hafw-bench-replicate.md}
OUT_RAW=${OUT_MD%.md}.raw
OUT_TXT=${OUT_MD%.md}.txt

# shared helpers: bookkeeping, cleanup, topology, daemons, pollers
. "$HERE/benchlib.sh"

# ---- cases ----

run_kernel() {
	local n=$1 k1 k2 alone listen evline i ce
	CASE=$((CASE + 1))
	k1="${PFX}c${CASE}k1"
	k2="${PFX}c${CASE}k2"
	add_ns "$k1"
	add_ns "$k2"
	wait_quiet
	alone=$(ip netns exec "$k1" "$CTTOOL" gen "$n" 2>&1)
	log "kernel, no listener: $alone"
	ip netns exec "$k2" "$CTTOOL" count-events --type new --expect "$n" --timeout "$WAIT_S" \
		>"$TMP/count-events.out" 2>&1 &
	ce=$!
	PIDS+=("$ce")
	for ((i = 0; i < 50; i++)); do
		grep -q READY "$TMP/count-events.out" && break
		sleep 0.1
	done
	listen=$(ip netns exec "$k2" "$CTTOOL" gen "$n" 2>&1)
	for ((i = 0; i < (WAIT_S + 10) * 10; i++)); do
		kill -0 "$ce" 2>/dev/null || break
		sleep 0.1
	done
	stop_pid "$ce"
	evline=$(grep '^events:' "$TMP/count-events.out")
	log "kernel, one listener: $listen; listener: $evline"
	# gen: created N in X s (R/s), E errors
	# events: N in X s (R/s) first-to-last, overruns O
	RES "kernel n=$n round=$ROUND idle=$IDLE" \
		"gen_alone=$(sed -nE 's/.*\(([0-9.]+)\/s\).*/\1/p' <<<"$alone")" \
		"gen_listen=$(sed -nE 's/.*\(([0-9.]+)\/s\).*/\1/p' <<<"$listen")" \
		"listener_rate=$(sed -nE 's/.*\(([0-9.]+)\/s\).*/\1/p' <<<"$evline")" \
		"listener_events=$(awk '{ print $2 }' <<<"$evline")" \
		"listener_overruns=$(awk '{ print $NF }' <<<"$evline")"
	del_ns "$k1"
	del_ns "$k2"
	wait_ct_drain
}

# A made-up peer (id 3, from A's namespace) streams numbered heartbeats to
# B at STREAM_RATE while B commits, reconciles and re-announces (a second
# commit of the same flows, after the timed one): what B does not read in
# time is counted as lost (target: none).
STREAM_RATE=${STREAM_RATE:-20000}
b_peer3() { "$HAFWCTL" -s "$C/hafw-b.sock" --json status | jq "[.peers[] | select(.id == 3) | .$1] | add // 0"; }
b_sockdrops() { ip netns exec "$NS_B" awk '/^Udp: [0-9]/ { print $6 }' /proc/net/snmp; }
stream_start() {
	local i
	ip netns exec "$NS_A" python3 "$ROOT/tests/cluster/send_dgrams.py" 192.168.77.1 \
		239.192.77.1 3780 stream "$STREAM_RATE" 300 >/dev/null 2>&1 &
	STREAM_PID=$!
	PIDS+=("$STREAM_PID")
	for ((i = 0; i < 50; i++)); do
		[ "$(b_peer3 datagrams)" -gt 1000 ] && break
		sleep 0.1
	done
	STREAM_LOST0=$(b_peer3 lost_datagrams)
	STREAM_GOT0=$(b_peer3 datagrams)
	STREAM_DROPS0=$(b_sockdrops)
}
stream_stop() {
	local i
	# the commit's reconciling dump and re-announce run on the same loop
	for ((i = 0; i < 600; i++)); do
		[ "$("$HAFWCTL" -s "$C/hafw-b.sock" --json status | jq '.node.reconciling')" = false ] && break
		sleep 0.1
	done
	sleep 1.5 # one heartbeat interval: what is missing is counted by now
	STREAM_LOST=$(($(b_peer3 lost_datagrams) - STREAM_LOST0))
	STREAM_GOT=$(($(b_peer3 datagrams) - STREAM_GOT0))
	STREAM_DROPS=$(($(b_sockdrops) - STREAM_DROPS0))
	stop_pid "$STREAM_PID"
	log "  streaming peer during the commit: $STREAM_GOT datagrams read, $STREAM_LOST lost, $STREAM_DROPS socket drops"
}

run_daemon() {
	local d=$1 n=$2 kind arg i
	local cpuA0 cpuA1 cpuA2 cpuA3 cpuB0 cpuB1 rssB0 rssB1 rssA0 rssA1 txA0 txA1 txB0 txB1
	local t0 poll st tdone held repl_s akern bbefore expected commit_s commit_wall cout
	local bkern flush_s fst left lost gen payload0 payload1 extra="" gen_s lag_s flush_cmd_s
	local lost_flush st2 held2
	CASE_PIDS=()
	topo_up
	log "case $d, $n flows (namespaces ${NS_A}, ${NS_B}; load $(cut -d' ' -f1-3 /proc/loadavg))"
	case $d in
	hafw)
		start_hafw b 2 "$NS_B"
		start_hafw a 1 "$NS_A"
		kind=hafw arg=$C/hafw-b.sock
		# B knows A once A's heartbeat (every second) arrived
		for ((i = 0; i < 50; i++)); do
			[ "$("$HAFWCTL" -s "$C/hafw-b.sock" --json status | jq '.peers | length')" -ge 1 ] &&
				break
			sleep 0.1
		done
		;;
	ctd-default | ctd-tuned)
		if [ "$d" = ctd-default ]; then
			CTD_BUF=2097152 CTD_GROWTH=8388608
		else
			CTD_BUF=33554432 CTD_GROWTH=67108864
		fi
		start_ctd b 2 "$NS_B" "$CTD_BUF" "$CTD_GROWTH"
		start_ctd a 1 "$NS_A" "$CTD_BUF" "$CTD_GROWTH"
		kind=ctd arg=$C/ctd-b.cli
		# FTFW alive messages: B has heard A
		for ((i = 0; i < 50; i++)); do
			[ "$(ctd_stat b 'Pckts recv' 4)" -gt 0 ] 2>/dev/null && break
			sleep 0.1
		done
		;;
	*) die "unknown case $d" ;;
	esac
	wait_quiet

	cpuA0=$(cpu_ticks "$PID_a")
	cpuB0=$(cpu_ticks "$PID_b")
	rssA0=$(rss_kb "$PID_a")
	rssB0=$(rss_kb "$PID_b")
	txA0=$(tx_bytes "$NS_A")
	txB0=$(tx_bytes "$NS_B")
	[ "$d" = hafw ] && payload0=$("$HAFWCTL" -s "$C/hafw-a.sock" --json stats | jq '.channel.bytes_sent')

	# (a) replication: start of gen until B's external cache holds N
	poll_start "$kind" "$arg" "$n" "$C/poll.out"
	t0=$(now)
	gen=$(ip netns exec "$NS_A" "$CTTOOL" gen "$n" 2>&1)
	log "  $gen"
	poll_wait
	cpuA1=$(cpu_ticks "$PID_a")
	cpuB1=$(cpu_ticks "$PID_b")
	read -r st tdone held _ _ <"$C/poll.out" || st=error
	if [ "$st" = converged ] || [ "$st" = timeout ]; then
		repl_s=$(fsub "$tdone" "$t0")
	else
		repl_s=-1 held=-1
	fi
	gen_s=$(sed -nE 's/^gen: created [0-9]+ in ([0-9.]+) s.*/\1/p' <<<"$gen")
	lag_s=$(fsub "$repl_s" "${gen_s:-0}")
	log "  replication: $st after $repl_s s (${lag_s} s after gen ended), B holds $held of $n"
	sleep 1 # late datagrams and acknowledgements are part of the cost
	txA1=$(tx_bytes "$NS_A")
	txB1=$(tx_bytes "$NS_B")
	rssA1=$(rss_kb "$PID_a")
	rssB1=$(rss_kb "$PID_b")
	akern=$(kernel_count "$NS_A")
	[ "$akern" = "$n" ] || log "  WARNING: A's kernel holds $akern flows, not $n"
	if [ "$d" = hafw ]; then
		payload1=$("$HAFWCTL" -s "$C/hafw-a.sock" --json stats | jq '.channel.bytes_sent')
		lost="$("$HAFWCTL" -s "$C/hafw-b.sock" --json status |
			jq '[.peers[].lost_datagrams] | add // 0')/$("$HAFWCTL" -s "$C/hafw-a.sock" --json stats |
			jq '.tracker.netlink_overruns')"
		# where a missing flow got lost: A's internal cache against A's kernel
		extra="payload_bpf=$(fdiv $((payload1 - payload0)) "$n")"
		extra+=" a_internal=$("$HAFWCTL" -s "$C/hafw-a.sock" --json status | jq '.internal.flows')"
		extra+=" a_resyncs=$("$HAFWCTL" -s "$C/hafw-a.sock" --json stats | jq '.replication.dumps')"
		extra+=" a_resync_added=$("$HAFWCTL" -s "$C/hafw-a.sock" --json stats | jq '.replication.resync_added')"
	else
		# FTFW lost messages seen by B / netlink overruns logged by A
		lost="$(ctd_stat b 'Lost msgs' 4)/$(grep -cE 'has been doubled|maximum netlink|overrun' \
			"$C/ctd-a.log")"
	fi
	# refresh held: the count right now (a non-converged run keeps going)
	held=$(python3 "$BENCHLIB" count "$kind" "$arg" 2>/dev/null || echo "$held")

	# (b) commit on B. The kernel builds a conntrack event whenever some
	# socket on the host listens to the group, in any namespace (the
	# listener check is not per namespace): A's daemon would make B's commit
	# pay for events nobody in B receives. On two machines it would not, so
	# A's daemon is stopped for the commit and started again afterwards
	# (COMMIT_PEER_RUNNING=1 keeps it running).
	if [ "$COMMIT_PEER_RUNNING" != 1 ]; then
		stop_case_pid "$PID_a"
	fi
	bbefore=$(kernel_count "$NS_B")
	[ "$bbefore" = 0 ] || log "  WARNING: B's kernel holds $bbefore flows before the commit"
	expected=$held
	t0=$(now)
	if [ "$d" = hafw ]; then
		cout=$("$HAFWCTL" -s "$C/hafw-b.sock" --json commit)
		commit_wall=$(fsub "$(now)" "$t0")
		commit_s=$(jq '.seconds' <<<"$cout")
		log "  commit: $(jq -c '{ok, flows, errors, seconds}' <<<"$cout") (wall $commit_wall s)"
	else
		ip netns exec "$NS_B" conntrackd -C "$C/ctd-b.cli" -c >/dev/null 2>&1
		commit_wall=$(fsub "$(now)" "$t0")
		commit_s=$(sed -nE 's/.*commit has taken ([0-9.]+) seconds.*/\1/p' "$C/ctd-b.log" | tail -n 1)
		[ -n "$commit_s" ] || commit_s=$commit_wall
		log "  commit: $(grep -E 'Committed|commit has taken' "$C/ctd-b.log" | tail -n 2 |
			sed -E 's/^\[[^]]*\] \(pid=[0-9]+\) //' | tr '\n' ' ')(wall $commit_wall s)"
	fi
	bkern=$(kernel_count "$NS_B")
	for ((i = 0; i < 100 && bkern != expected; i++)); do
		sleep 0.1
		bkern=$(kernel_count "$NS_B")
	done
	log "  B's kernel holds $bkern flows after the commit (expected $expected)"
	sleep 2 # what a daemon does after its commit (reconciling dump, own events) settles
	if [ "$d" = hafw ]; then
		# (b2) the same commit again, with a peer streaming datagrams at
		# B meanwhile: B's table is flushed first so the commit creates
		# every flow again; its reconciling dump and re-announce count too
		ip netns exec "$NS_B" conntrack -F >/dev/null 2>&1
		for ((i = 0; i < 300; i++)); do
			[ "$("$HAFWCTL" -s "$C/hafw-b.sock" --json status | jq '.internal.flows')" = 0 ] && break
			sleep 0.1
		done
		stream_start
		t0=$(now)
		cout=$("$HAFWCTL" -s "$C/hafw-b.sock" --json commit)
		log "  commit under load: $(jq -c '{ok, flows, errors, seconds}' <<<"$cout") (wall $(fsub "$(now)" "$t0") s)"
		stream_stop
		extra+=" commit_load_s=$(jq '.seconds' <<<"$cout") commit_lost=$STREAM_LOST"
		extra+=" commit_sockdrops=$STREAM_DROPS commit_stream=$STREAM_GOT"
		extra+=" b_slice_max_us=$("$HAFWCTL" -s "$C/hafw-b.sock" --json stats | jq '.replication.slice_max_us')"
	fi
	if [ "$COMMIT_PEER_RUNNING" != 1 ]; then
		# A's daemon again, and B's external cache full again (hafw-syncd B
		# drops a restarted peer's flows and A announces its table anew;
		# conntrackd B keeps them)
		if [ "$d" = hafw ]; then
			start_hafw a 1 "$NS_A"
		else
			start_ctd a 1 "$NS_A" "$CTD_BUF" "$CTD_GROWTH"
		fi
		poll_start "$kind" "$arg" "$held" "$C/poll.out"
		poll_wait
		read -r st2 _ held2 _ _ <"$C/poll.out" || st2=error
		log "  A's daemon restarted; B's external cache: $st2 with $held2"
		sleep 1
	fi

	# (c) conntrack -F on A until B's external cache is empty
	poll_start "$kind" "$arg" 0 "$C/poll.out"
	cpuA2=$(cpu_ticks "$PID_a")
	t0=$(now)
	ip netns exec "$NS_A" conntrack -F >/dev/null 2>&1
	flush_cmd_s=$(fsub "$(now)" "$t0")
	poll_wait
	cpuA3=$(cpu_ticks "$PID_a")
	read -r fst tdone left _ _ <"$C/poll.out" || fst=error
	if [ "$fst" = converged ] || [ "$fst" = timeout ]; then
		flush_s=$(fsub "$tdone" "$t0")
	else
		flush_s=-1 left=-1
	fi
	log "  flush: $fst after $flush_s s (conntrack -F took $flush_cmd_s s), $left left in B's external cache"
	if [ "$d" = hafw ]; then
		lost_flush="$("$HAFWCTL" -s "$C/hafw-b.sock" --json status |
			jq '[.peers[].lost_datagrams] | add // 0')/$("$HAFWCTL" -s "$C/hafw-a.sock" --json stats |
			jq '.tracker.netlink_overruns')"
	else
		lost_flush="$(ctd_stat b 'Lost msgs' 4)/$(grep -cE 'has been doubled|maximum netlink|overrun' \
			"$C/ctd-a.log")"
	fi
	# both counters are cumulative: subtract what the create phase saw
	lost_flush=$(awk -v a="$lost" -v b="$lost_flush" 'BEGIN { split(a, x, "/"); split(b, y, "/");
		printf "%d/%d", y[1] - x[1], y[2] - x[2] }')

	RES "case daemon=$d n=$n round=$ROUND idle=$IDLE" \
		"repl_status=$st repl_s=$repl_s repl_held=$held gen_s=$gen_s lag_s=$lag_s" \
		"repl_rate=$(fdiv "$n" "$repl_s")" \
		"gen_rate=$(sed -nE 's/.*\(([0-9.]+)\/s\).*/\1/p' <<<"$gen")" \
		"a_kernel=$akern b_before=$bbefore" \
		"commit_s=$commit_s commit_wall=$commit_wall commit_expected=$expected commit_kernel=$bkern" \
		"commit_rate=$(fdiv "$expected" "$commit_s")" \
		"commit_us_per_flow=$(awk -v s="$commit_s" -v n="$expected" 'BEGIN { if (n > 0) printf "%.3f", s * 1e6 / n; else print "-" }')" \
		"flush_status=$fst flush_s=$flush_s flush_left=$left flush_cmd_s=$flush_cmd_s" \
		"wire_bpf=$(fdiv $((txA1 - txA0 + txB1 - txB0)) "$n")" \
		"wire_a_bytes=$((txA1 - txA0)) wire_b_bytes=$((txB1 - txB0))" \
		"rss_bpf=$(fdiv $(((rssB1 - rssB0) * 1024)) "$n")" \
		"rss_a_bpf=$(fdiv $(((rssA1 - rssA0) * 1024)) "$n")" \
		"rss_b_kb=$rssB0,$rssB1" \
		"cpu_a_100k=$(fdiv "$(((cpuA1 - cpuA0) * 100000))" "$((n * CLK_TCK))")" \
		"cpu_b_100k=$(fdiv "$(((cpuB1 - cpuB0) * 100000))" "$((n * CLK_TCK))")" \
		"cpu_a_flush_100k=$(fdiv "$(((cpuA3 - cpuA2) * 100000))" "$((n * CLK_TCK))")" \
		"lost=$lost lost_flush=$lost_flush $extra"
	topo_down
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

RES "meta repeat $REPEAT"
if [ "$COMMIT_PEER_RUNNING" = 1 ]; then
	RES "meta commit A's daemon running during B's commit"
else
	RES "meta commit A's daemon stopped during B's commit"
fi
for ((ROUND = 1; ROUND <= REPEAT; ROUND++)); do
	log "==== round $ROUND of $REPEAT"
	for n in $SIZES; do
		for d in $DAEMONS; do
			if [ "$d" = kernel ]; then
				log "case kernel limits, $n flows"
				run_kernel "$n"
			else
				run_daemon "$d" "$n"
			fi
		done
	done
done

python3 "$BENCHLIB" report "$OUT_RAW" "$OUT_TXT" "$OUT_MD" || die "report failed"
cat "$OUT_TXT"
echo
echo "markdown: $OUT_MD   raw: $OUT_RAW"
