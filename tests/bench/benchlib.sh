# Shared helpers of the benchmarks in tests/bench (replicate.sh,
# reliability.sh): sourced, not run. The caller sets HERE (its directory)
# and the knobs it uses (WAIT_S, QUIET_IDLE, QUIET_MAX_S, OUT_RAW,
# WANT_CT_MAX, WANT_CT_BUCKETS) before sourcing; this file sets the paths
# of the binaries from HAFW_BIN and keeps the bookkeeping: every process the
# benchmark starts (by PID), its namespaces, the sysctls it raised, and the
# work directory, all undone by cleanup() on exit.
#
# Functions a caller uses: log, die, stop_pid, stop_case_pid, add_ns,
# del_ns, now, fsub, fdiv, cpu_ticks, rss_kb, tx_bytes, kernel_count,
# wait_ct_drain, wait_quiet, topo_up, topo_down, start_hafw, start_ctd,
# ctd_stat, poll_start, poll_wait, RES, bench_init, bench_meta.

ROOT=$(cd "$HERE/../.." && pwd)
HAFW_BIN=${HAFW_BIN:-$ROOT/build-bench}
SYNCD=$HAFW_BIN/syncd/hafw-syncd
HAFWCTL=$HAFW_BIN/syncd/hafwctl
CTTOOL=$HAFW_BIN/tests/tools/hafw-cttool
BENCHLIB=$HERE/benchlib.py
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

# start_hafw and start_ctd ask a new daemon every START_POLL_S (default
# 0.1 s) whether it answers, for at most 5 s
START_POLL_S=${START_POLL_S:-0.1}
start_tries() { awk -v s="$START_POLL_S" 'BEGIN { printf "%d", 5 / s }'; }

# start_hafw NODE(a|b) ID NS: sets PID_<node>, control socket $C/hafw-NODE.sock;
# HAFW_SYNC_OPTS (default none) adds settings to the sync group
start_hafw() {
	local node=$1 id=$2 ns=$3 conf=$C/hafw-$1.conf sock=$C/hafw-$1.sock i tries
	cat >"$conf" <<EOF
node    = { id = $id; name = "$node"; };
control = { socket = "$sock"; };
tracker = { type = "kernel"; };
sync    = { interface = "sync0"; group = "239.192.77.1"; port = 3780; ${HAFW_SYNC_OPTS:-}};
log     = { level = "info"; };
EOF
	ip netns exec "$ns" "$SYNCD" -c "$conf" >>"$C/hafw-$node.log" 2>&1 &
	eval "PID_$node=$!"
	PIDS+=("$!")
	CASE_PIDS+=("$!")
	tries=$(start_tries)
	for ((i = 0; i < tries; i++)); do
		"$HAFWCTL" -s "$sock" status >/dev/null 2>&1 && return 0
		sleep "$START_POLL_S"
	done
	tail -n 20 "$C/hafw-$node.log" >&2
	die "hafw-syncd $node did not come up"
}

# start_ctd NODE(a|b) IDX NS BUFSIZE MAXGROWTH: conntrackd in the foreground
# inside NS; its own lock file, socket and log; a client config with only the
# socket path ($C/ctd-NODE.cli) for the -s/-c/-e client calls.
start_ctd() {
	local node=$1 idx=$2 ns=$3 buf=$4 growth=$5 conf=$C/ctd-$1.conf i tries
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
	tries=$(start_tries)
	for ((i = 0; i < tries; i++)); do
		conntrackd -C "$C/ctd-$node.cli" -s >/dev/null 2>&1 && return 0
		sleep "$START_POLL_S"
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


# ---- results and set-up ----

RES() { echo "$*" >>"$OUT_RAW"; }

# bench_init: root, binaries and tools present; work directory, traps,
# conntrack sysctls raised (restored on exit); an empty results file.
bench_init() {
	local b t
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
}

# bench_meta: the machine, versions and build in the results file
bench_meta() {
	RES "meta cmd ${BENCH_CMD:-$0}"
	RES "meta when $(date -u '+%Y-%m-%d %H:%M UTC')"
	RES "meta host $(. /etc/os-release && echo "$PRETTY_NAME")"
	RES "meta kernel $(uname -r)"
	RES "meta cpus $(nproc)"
	RES "meta conntrackd $(conntrackd -v 2>&1 | head -n 1 | sed -E 's/.* (v[0-9][0-9.]*[0-9]).*/conntrackd \1/')"
	RES "meta hafw $(git -C "$ROOT" describe --always --dirty 2>/dev/null || echo unknown)" \
		"(hafw-syncd built $(date -u -r "$SYNCD" '+%H:%M UTC'))"
}
