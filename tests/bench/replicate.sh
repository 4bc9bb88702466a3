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
ROOT=$(cd "$HERE/../.." && pwd)
HAFW_BIN=${HAFW_BIN:-$ROOT/build-bench}
SYNCD=$HAFW_BIN/syncd/hafw-syncd
HAFWCTL=$HAFW_BIN/syncd/hafwctl
CTTOOL=$HAFW_BIN/tests/tools/hafw-cttool
BENCHLIB=$HERE/benchlib.py

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
# the conntrack limit and hash size are global (initial namespace only)
WANT_CT_MAX=${WANT_CT_MAX:-1048576}
WANT_CT_BUCKETS=${WANT_CT_BUCKETS:-524288}

PFX="hb$$"
PIDS=()
CASE_PIDS=()
NETNS=()
SAVED_CT_MAX=""
SAVED_CT_BUCKETS=""
TMP=""
CASE=0
IDLE=100
ROUND=0

log() { printf '[bench %s] %s\n' "$(date +%T.%3N)" "$*" >&2; }
die() {
	log "ERROR: $*"
	exit 1
}

# ---- process and namespace bookkeeping ----

forget_pid() {
	local p keep=()
	for p in "${PIDS[@]}"; do [ "$p" = "$1" ] || keep+=("$p"); done
	PIDS=("${keep[@]}")
}

# stop_pid PID: SIGTERM, bounded wait (5 s), SIGKILL; reap it.
stop_pid() {
	local pid=$1 i
	kill "$pid" 2>/dev/null
	for ((i = 0; i < 50; i++)); do
		kill -0 "$pid" 2>/dev/null || break
		sleep 0.1
	done
	kill -9 "$pid" 2>/dev/null
	wait "$pid" 2>/dev/null
	forget_pid "$pid"
}

# stop_case_pid PID: stop_pid, and forget it for topo_down too
stop_case_pid() {
	local p keep=()
	stop_pid "$1"
	for p in "${CASE_PIDS[@]}"; do [ "$p" = "$1" ] || keep+=("$p"); done
	CASE_PIDS=("${keep[@]}")
}

add_ns() {
	ip netns add "$1" || die "cannot create namespace $1"
	NETNS+=("$1")
}

del_ns() {
	local n keep=()
	ip netns del "$1" 2>/dev/null
	for n in "${NETNS[@]}"; do [ "$n" = "$1" ] || keep+=("$n"); done
	NETNS=("${keep[@]}")
}

# restore_sysctl NAME SAVED OURS
restore_sysctl() {
	local cur
	[ -n "$2" ] || return 0
	cur=$(sysctl -n "$1" 2>/dev/null)
	if [ "$cur" = "$3" ]; then
		sysctl -qw "$1=$2" || log "could not restore $1=$2"
	else
		log "$1 is $cur now, not our $3: changed by someone else, left alone"
	fi
}

cleanup() {
	local rc=$? pid ns
	trap - EXIT INT TERM
	for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null; done
	for pid in "${PIDS[@]}"; do
		for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
		kill -9 "$pid" 2>/dev/null
		wait "$pid" 2>/dev/null
	done
	for ns in "${NETNS[@]}"; do ip netns del "$ns" 2>/dev/null; done
	# restore only what is still our value: if something else changed it
	# meanwhile, it is theirs now
	restore_sysctl net.netfilter.nf_conntrack_buckets "$SAVED_CT_BUCKETS" "$WANT_CT_BUCKETS"
	restore_sysctl net.netfilter.nf_conntrack_max "$SAVED_CT_MAX" "$WANT_CT_MAX"
	if [ -n "$TMP" ] && [ -d "$TMP" ]; then
		if [ "$rc" -ne 0 ] || [ "${KEEP_TMP:-0}" = 1 ]; then
			log "work directory kept: $TMP"
		else
			rm -rf "$TMP"
		fi
	fi
	exit "$rc"
}

# ---- small measurements ----

now() { echo "$EPOCHREALTIME"; }
fsub() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.6f", a - b }'; }
fdiv() { awk -v a="$1" -v b="$2" 'BEGIN { if (b + 0 == 0) print "-"; else printf "%.4f", a / b }'; }
cpu_ticks() { awk '{ print $14 + $15 }' "/proc/$1/stat" 2>/dev/null || echo 0; }
rss_kb() { awk '/^VmRSS:/ { print $2 }' "/proc/$1/status" 2>/dev/null || echo 0; }
tx_bytes() { ip -n "$1" -s -j link show sync0 | jq '.[0].stats64.tx.bytes'; }
kernel_count() { ip netns exec "$1" conntrack -C 2>/dev/null || echo -1; }
ct_slab_objs() { awk '$1 == "nf_conntrack" { print $2 }' /proc/slabinfo; }
CLK_TCK=$(getconf CLK_TCK)

# Freed conntrack entries of deleted namespaces go away in the background;
# wait (bounded, 60 s) so the next case does not pay for the previous one:
# until the slab is back near where it was at the start, or (entries of
# other users of this machine) stops shrinking for a second.
wait_ct_drain() {
	local i n prev=-1 still=0
	for ((i = 0; i < 600; i++)); do
		n=$(ct_slab_objs)
		[ "${n:-0}" -le $((CT_SLAB_BASE + 5000)) ] && return 0
		if [ "$prev" -ge 0 ] && [ "$n" -ge "$prev" ]; then
			still=$((still + 1))
			[ $still -ge 10 ] && return 0
		else
			still=0
		fi
		prev=$n
		sleep 0.1
	done
	log "conntrack slab still holds $n objects after 60 s (base $CT_SLAB_BASE)"
}

# idle_pct: % of all CPUs idle over 0.5 s (from /proc/stat)
idle_pct() {
	local a b
	a=$(awk '/^cpu / { print $2 + $3 + $4 + $5 + $6 + $7 + $8 + $9, $5 + $6 }' /proc/stat)
	sleep 0.5
	b=$(awk '/^cpu / { print $2 + $3 + $4 + $5 + $6 + $7 + $8 + $9, $5 + $6 }' /proc/stat)
	awk -v a="$a" -v b="$b" 'BEGIN { split(a, x, " "); split(b, y, " ");
		t = y[1] - x[1]; printf "%d", (t > 0 ? 100 * (y[2] - x[2]) / t : 100) }'
}

# wait_quiet: other work on this machine distorts a 2-CPU benchmark; wait
# (bounded) for it to calm down and record how idle it was. Sets IDLE.
wait_quiet() {
	local i
	for ((i = 0; i < QUIET_MAX_S * 2; i++)); do
		IDLE=$(idle_pct)
		[ "$IDLE" -ge "$QUIET_IDLE" ] && return 0
	done
	log "  machine only $IDLE% idle after ${QUIET_MAX_S}s of waiting; measuring anyway"
}

# ---- topology ----

# topo_up: fresh hub, A and B for one case. Sets NS_HUB NS_A NS_B.
topo_up() {
	local idx ns
	CASE=$((CASE + 1))
	C=$TMP/c$CASE
	mkdir -p "$C"
	NS_HUB="${PFX}c${CASE}hub"
	NS_A="${PFX}c${CASE}a"
	NS_B="${PFX}c${CASE}b"
	add_ns "$NS_HUB"
	ip -n "$NS_HUB" link add br0 type bridge
	ip -n "$NS_HUB" link set br0 type bridge mcast_snooping 0
	ip -n "$NS_HUB" link set br0 up
	for idx in 1 2; do
		if [ $idx = 1 ]; then ns=$NS_A; else ns=$NS_B; fi
		add_ns "$ns"
		ip link add sync0 netns "$ns" type veth peer name "p$idx" netns "$NS_HUB"
		ip -n "$NS_HUB" link set "p$idx" master br0 up
		ip -n "$ns" link set lo up
		ip -n "$ns" addr add "192.168.77.$idx/24" dev sync0
		ip -n "$ns" link set sync0 up
		# the sync link is not tracked: the tables hold the generated flows
		ip netns exec "$ns" nft -f "$ROOT/tests/cluster/sync-notrack.nft" || die "nft ruleset"
	done
}

topo_down() {
	local pid
	for pid in "${CASE_PIDS[@]}"; do stop_pid "$pid"; done
	CASE_PIDS=()
	del_ns "$NS_A"
	del_ns "$NS_B"
	del_ns "$NS_HUB"
	wait_ct_drain
}

# ---- daemons ----

# start_hafw NODE(a|b) ID NS: sets PID_<node>, control socket $C/hafw-NODE.sock
start_hafw() {
	local node=$1 id=$2 ns=$3 conf=$C/hafw-$1.conf sock=$C/hafw-$1.sock i
	cat >"$conf" <<EOF
node    = { id = $id; name = "$node"; };
control = { socket = "$sock"; };
tracker = { type = "kernel"; };
sync    = { interface = "sync0"; group = "239.192.77.1"; port = 3780; };
log     = { level = "info"; };
EOF
	ip netns exec "$ns" "$SYNCD" -c "$conf" >>"$C/hafw-$node.log" 2>&1 &
	eval "PID_$node=$!"
	PIDS+=("$!")
	CASE_PIDS+=("$!")
	for ((i = 0; i < 50; i++)); do
		"$HAFWCTL" -s "$sock" status >/dev/null 2>&1 && return 0
		sleep 0.1
	done
	tail -n 20 "$C/hafw-$node.log" >&2
	die "hafw-syncd $node did not come up"
}

# start_ctd NODE(a|b) IDX NS BUFSIZE MAXGROWTH: conntrackd in the foreground
# inside NS; its own lock file, socket and log; a client config with only the
# socket path ($C/ctd-NODE.cli) for the -s/-c/-e client calls.
start_ctd() {
	local node=$1 idx=$2 ns=$3 buf=$4 growth=$5 conf=$C/ctd-$1.conf i
	cat >"$conf" <<EOF
Sync {
	Mode FTFW {
	}
	Multicast {
		IPv4_address 225.0.0.50
		Group 3780
		IPv4_interface 192.168.77.$idx
		Interface sync0
		SndSocketBuffer 1249280
		RcvSocketBuffer 1249280
		Checksum on
	}
}
General {
	Systemd no
	HashSize 262144
	HashLimit 1048576
	LogFile $C/ctd-$node.log
	LockFile $C/ctd-$node.lock
	UNIX {
		Path $C/ctd-$node.ctl
	}
	NetlinkBufferSize $buf
	NetlinkBufferSizeMaxGrowth $growth
}
EOF
	cat >"$C/ctd-$node.cli" <<EOF
General {
	UNIX {
		Path $C/ctd-$node.ctl
	}
}
EOF
	ip netns exec "$ns" conntrackd -C "$conf" >>"$C/ctd-$node.out" 2>&1 &
	eval "PID_$node=$!"
	PIDS+=("$!")
	CASE_PIDS+=("$!")
	for ((i = 0; i < 50; i++)); do
		conntrackd -C "$C/ctd-$node.cli" -s >/dev/null 2>&1 && return 0
		sleep 0.1
	done
	tail -n 20 "$C/ctd-$node.out" "$C/ctd-$node.log" >&2
	die "conntrackd $node did not come up"
}

# ctd_stat NODE REGEX FIELD: a number from `conntrackd -s`
ctd_stat() {
	conntrackd -C "$C/ctd-$1.cli" -s 2>/dev/null | awk -v re="$2" -v f="$3" '$0 ~ re { print $f; exit }'
}

# poll_start KIND ARG TARGET OUTFILE: background poller of B's external cache
poll_start() {
	python3 "$BENCHLIB" wait "$1" "$2" "$3" "$WAIT_S" >"$4" 2>>"$C/poll.err" &
	POLL_PID=$!
	PIDS+=("$POLL_PID")
	sleep 0.3 # interpreter start-up and first poll before the clock starts
}

# poll_wait: the poller ends by itself within WAIT_S; bound it anyway.
poll_wait() {
	local i
	for ((i = 0; i < (WAIT_S + 15) * 10; i++)); do
		kill -0 "$POLL_PID" 2>/dev/null || break
		sleep 0.1
	done
	stop_pid "$POLL_PID"
}

# ---- cases ----

RES() { echo "$*" >>"$OUT_RAW"; }

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
[ "$(id -u)" = 0 ] || die "needs root (network namespaces, conntrack)"
for b in "$SYNCD" "$HAFWCTL" "$CTTOOL"; do
	[ -x "$b" ] || die "missing $b (build first: see docs/BENCHMARKS.md)"
done
for t in conntrackd conntrack nft jq python3 ip awk; do
	command -v "$t" >/dev/null || die "missing tool $t"
done

TMP=$(mktemp -d /tmp/hafw-bench.XXXXXX)
trap cleanup EXIT
trap 'exit 130' INT TERM

modprobe nf_conntrack 2>/dev/null
SAVED_CT_MAX_NOW=$(sysctl -n net.netfilter.nf_conntrack_max) || die "no nf_conntrack sysctls"
SAVED_CT_BUCKETS_NOW=$(sysctl -n net.netfilter.nf_conntrack_buckets)
if [ "$SAVED_CT_MAX_NOW" -lt "$WANT_CT_MAX" ]; then
	SAVED_CT_MAX=$SAVED_CT_MAX_NOW
	sysctl -qw net.netfilter.nf_conntrack_max="$WANT_CT_MAX" || die "cannot raise nf_conntrack_max"
fi
if [ "$SAVED_CT_BUCKETS_NOW" -lt "$WANT_CT_BUCKETS" ]; then
	SAVED_CT_BUCKETS=$SAVED_CT_BUCKETS_NOW
	sysctl -qw net.netfilter.nf_conntrack_buckets="$WANT_CT_BUCKETS" ||
		log "cannot raise nf_conntrack_buckets (continuing with $SAVED_CT_BUCKETS_NOW)"
fi
log "nf_conntrack_max $SAVED_CT_MAX_NOW -> $(sysctl -n net.netfilter.nf_conntrack_max)," \
	"buckets $SAVED_CT_BUCKETS_NOW -> $(sysctl -n net.netfilter.nf_conntrack_buckets) (restored on exit)"
CT_SLAB_BASE=$(ct_slab_objs)

: >"$OUT_RAW"
RES "meta cmd ${BENCH_CMD:-$0}"
RES "meta when $(date -u '+%Y-%m-%d %H:%M UTC')"
RES "meta host $(. /etc/os-release && echo "$PRETTY_NAME")"
RES "meta kernel $(uname -r)"
RES "meta cpus $(nproc)"
RES "meta conntrackd $(conntrackd -v 2>&1 | head -n 1 | sed -E 's/.* (v[0-9][0-9.]*[0-9]).*/conntrackd \1/')"
RES "meta hafw $(git -C "$ROOT" describe --always --dirty 2>/dev/null || echo unknown)" \
	"(hafw-syncd built $(date -u -r "$SYNCD" '+%H:%M UTC'))"

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
