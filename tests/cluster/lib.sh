# Shared helpers for cluster tests: namespaces on a sync "hub" bridge,
# hafw-syncd instances, waiting with bounds, cleanup on any exit.
#
# Every test sources this, calls hafw_init NAME, builds its nodes with
# hafw_node, and lets the EXIT trap tear everything down (processes by PID,
# then namespaces). Names carry the test name and our PID, so parallel or
# leftover runs never collide.

set -u

HAFW_BIN=${HAFW_BIN:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)/build}
SYNCD=$HAFW_BIN/syncd/hafw-syncd
HAFWCTL=$HAFW_BIN/syncd/hafwctl
CTTOOL=$HAFW_BIN/tests/tools/hafw-cttool
HAFW_CLUSTER_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)

HAFW_PIDS=()
HAFW_NETNS=()
HAFW_ON_EXIT=() # commands run at cleanup, after the processes and namespaces
HAFW_FAILS=0
HAFW_CHECKS=0

log() { printf '[%s %s] %s\n' "$HAFW_TEST" "$(date +%T.%3N)" "$*"; }

hafw_cleanup() {
	local pid ns
	for pid in "${HAFW_PIDS[@]}"; do
		kill "$pid" 2>/dev/null
	done
	for pid in "${HAFW_PIDS[@]}"; do
		# bounded wait: 50 x 0.1 s, then SIGKILL
		for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
		kill -9 "$pid" 2>/dev/null
	done
	for ns in "${HAFW_NETNS[@]}"; do
		ip netns del "$ns" 2>/dev/null
	done
	for cmd in "${HAFW_ON_EXIT[@]}"; do
		eval "$cmd"
	done
	if [ "$HAFW_FAILS" -ne 0 ] && [ -d "$HAFW_TMP" ]; then
		for f in "$HAFW_TMP"/*.log; do
			[ -e "$f" ] || continue
			echo "---- $f (last 30 lines)"
			tail -n 30 "$f"
		done
	fi
	rm -rf "$HAFW_TMP"
}

# hafw_init NAME: unique prefix, temp dir, traps.
hafw_init() {
	HAFW_TEST=$1
	HAFW_PREFIX="h${HAFW_TEST:0:6}$$"
	HAFW_TMP=$(mktemp -d "/tmp/hafw-$HAFW_TEST.XXXXXX")
	trap hafw_cleanup EXIT
	trap 'exit 130' INT TERM
	for b in "$SYNCD" "$HAFWCTL" "$CTTOOL"; do
		[ -x "$b" ] || { echo "missing $b (build first)"; exit 1; }
	done
	ip netns add "${HAFW_PREFIX}hub"
	HAFW_NETNS+=("${HAFW_PREFIX}hub")
	ip -n "${HAFW_PREFIX}hub" link add br0 type bridge
	# no IGMP snooping: the sync group must reach every port, also an
	# attacker that never joined
	ip -n "${HAFW_PREFIX}hub" link set br0 type bridge mcast_snooping 0
	ip -n "${HAFW_PREFIX}hub" link set br0 up
}

# hafw_node NAME INDEX: a namespace with sync0 (192.168.77.INDEX/24 and
# fd77::INDEX/64) attached to the hub bridge, and the node ruleset below. Prints nothing; the namespace
# name is ${HAFW_PREFIX}NAME.
hafw_node() {
	local name=$1 idx=$2 ns=${HAFW_PREFIX}$1
	ip netns add "$ns"
	HAFW_NETNS+=("$ns")
	ip link add sync0 netns "$ns" type veth peer name "p$idx" netns "${HAFW_PREFIX}hub"
	ip -n "${HAFW_PREFIX}hub" link set "p$idx" master br0 up
	ip -n "$ns" link set lo up
	ip -n "$ns" addr add "192.168.77.$idx/24" dev sync0
	ip -n "$ns" addr add "fd77::$idx/64" dev sync0 nodad
	ip -n "$ns" link set sync0 up
	node_ruleset "$name"
}

ns_of() { echo "${HAFW_PREFIX}$1"; }

# hafw_backup_link NAME INDEX: a second sync link, sync1 (192.168.78.INDEX/24)
# on a second hub bridge (made on first use).
hafw_backup_link() {
	local ns=${HAFW_PREFIX}$1 idx=$2 hub=${HAFW_PREFIX}hub2
	if ! ip netns list | grep -qw "$hub"; then
		ip netns add "$hub"
		HAFW_NETNS+=("$hub")
		ip -n "$hub" link add br1 type bridge
		ip -n "$hub" link set br1 type bridge mcast_snooping 0
		ip -n "$hub" link set br1 up
	fi
	ip link add sync1 netns "$ns" type veth peer name "q$idx" netns "$hub"
	ip -n "$hub" link set "q$idx" master br1 up
	ip -n "$ns" addr add "192.168.78.$idx/24" dev sync1
	ip -n "$ns" link set sync1 up
}

# hafw_host NAME: a plain namespace (a client or a server), no sync link.
hafw_host() {
	ip netns add "${HAFW_PREFIX}$1"
	HAFW_NETNS+=("${HAFW_PREFIX}$1")
	ip -n "${HAFW_PREFIX}$1" link set lo up
}

# hafw_link NS1 IF1 ADDR1 NS2 IF2 ADDR2: a veth pair between two of our
# namespaces (addresses with prefix, e.g. 10.1.0.1/24).
hafw_link() {
	ip link add "$2" netns "$(ns_of "$1")" type veth peer name "$5" netns "$(ns_of "$4")"
	ip -n "$(ns_of "$1")" addr add "$3" dev "$2"
	ip -n "$(ns_of "$4")" addr add "$6" dev "$5"
	ip -n "$(ns_of "$1")" link set "$2" up
	ip -n "$(ns_of "$4")" link set "$5" up
}
sock_of() { echo "$HAFW_TMP/$1.sock"; }

# hafw_config NAME ID [EXTRA...]: writes $HAFW_TMP/NAME.conf; each EXTRA
# argument is a line appended (e.g. 'tracker = { ... };' replaces nothing,
# so pass whole sections through HAFW_TRACKER / HAFW_SYNC variables).
hafw_config() {
	local name=$1 id=$2
	cat >"$HAFW_TMP/$name.conf" <<EOF
node    = { id = $id; name = "$name"; };
control = { socket = "$(sock_of "$name")"; };
tracker = { type = "kernel"; ${HAFW_TRACKER_OPTS:-} };
sync    = { interface = "sync0"; group = "${HAFW_GROUP:-239.192.77.1}"; port = 3780; ${HAFW_SYNC_OPTS:-} };
log     = { level = "info"; };
EOF
}

# hafw_start NAME ID: start hafw-syncd in namespace NAME and wait for its
# control socket (at most 5 s).
hafw_start() {
	local name=$1 id=$2
	[ -e "$HAFW_TMP/$name.conf" ] || hafw_config "$name" "$id"
	ip netns exec "$(ns_of "$name")" "$SYNCD" -c "$HAFW_TMP/$name.conf" \
		>>"$HAFW_TMP/$name.log" 2>&1 &
	eval "PID_$name=$!"
	HAFW_PIDS+=("$!")
	for _ in $(seq 50); do
		"$HAFWCTL" -s "$(sock_of "$name")" status >/dev/null 2>&1 && return 0
		sleep 0.1
	done
	log "hafw-syncd $name did not come up"
	cat "$HAFW_TMP/$name.log"
	return 1
}

# hafw_stop NAME: SIGTERM and wait (bounded) for a clean exit.
hafw_stop() {
	local name=$1 pid
	eval "pid=\$PID_$name"
	kill "$pid" 2>/dev/null
	for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || return 0; sleep 0.1; done
	kill -9 "$pid" 2>/dev/null
	return 1
}

ctl() { local name=$1; shift; "$HAFWCTL" -s "$(sock_of "$name")" "$@"; }
nsx() { local name=$1; shift; ip netns exec "$(ns_of "$name")" "$@"; }

# json_get NAME PYEXPR CMD...: run hafwctl --json CMD on NAME and evaluate a
# python expression on the answer (bound to j).
json_get() {
	local name=$1 expr=$2
	shift 2
	ctl "$name" --json "$@" | python3 -c "import json,sys; j=json.load(sys.stdin); print($expr)"
}

internal_flows() { json_get "$1" "j['internal']['flows']" status; }
internal_exps() { json_get "$1" "j['internal']['expectations']" status; }
external_flows() { json_get "$1" "sum(p['flows'] for p in j['peers'])" status; }
external_exps() { json_get "$1" "sum(p['expectations'] for p in j['peers'])" status; }
stat_of() { json_get "$1" "j$2" stats; }

# wait_for SECONDS DESCRIPTION COMMAND...: poll every 0.1 s until COMMAND
# succeeds or the time is up. Returns 1 on timeout.
wait_for() {
	local secs=$1 what=$2 end
	shift 2
	end=$((SECONDS + secs))
	while [ "$SECONDS" -le "$end" ]; do
		"$@" >/dev/null 2>&1 && return 0
		sleep 0.1
	done
	log "timeout after ${secs}s waiting for: $what"
	return 1
}

# check DESCRIPTION COMMAND...: records a pass or a failure.
check() {
	local what=$1
	shift
	HAFW_CHECKS=$((HAFW_CHECKS + 1))
	if "$@"; then
		log "PASS: $what"
	else
		log "FAIL: $what"
		HAFW_FAILS=$((HAFW_FAILS + 1))
	fi
}

eq() { [ "$1" = "$2" ] || { echo "  expected '$2', got '$1'"; return 1; }; }
ge() { [ "$1" -ge "$2" ] || { echo "  expected >= $2, got $1"; return 1; }; }
gt() { [ "$1" -gt "$2" ] || { echo "  expected > $2, got $1"; return 1; }; }
not() { ! "$@"; }

# Canonical conntrack -L -o extended: the timeout column and use= counts
# differ between nodes by nature; everything else must be equal.
ct_list() {
	nsx "$1" conntrack -L -o extended 2>/dev/null |
		sed -E 's/^(\S+\s+\S+\s+\S+\s+\S+) [0-9]+ /\1 T /; s/ use=[0-9]+//; s/ id=[0-9]+//' | sort
}
# conntrack -L expect lists one family at a time (IPv4 by default)
exp_list() {
	{
		nsx "$1" conntrack -L expect -f ipv4 2>/dev/null
		nsx "$1" conntrack -L expect -f ipv6 2>/dev/null
	} | sed -E 's/^[0-9]+ /T /' | sort
}

# The node's ruleset: the sync link is not tracked (as on a real cluster),
# and a rule that uses ct label gives new flows the label extension; without
# one the kernel silently drops labels (see PITFALLS.md).
node_ruleset() {
	nsx "$1" nft -f "$HAFW_CLUSTER_DIR/sync-notrack.nft"
	nsx "$1" nft -f - <<'EOF'
table inet hafwtest {
	chain c {
		type filter hook forward priority 0; policy accept;
		ct label 127 counter
	}
}
EOF
}

# compare_tables A B [cttool compare options]: attribute-by-attribute
# comparison of both kernels' tables (flows and expectations) with our own
# dumper, which also sees TCP window scale and flags. A committed flow gets
# at least the time its source gives it (and what a packet would give it on
# B): B's timeouts only need to reach A's.
compare_tables() {
	local a=$1 b=$2
	shift 2
	nsx "$a" "$CTTOOL" dump --flows >"$HAFW_TMP/$a.flows" &&
		nsx "$b" "$CTTOOL" dump --flows >"$HAFW_TMP/$b.flows" &&
		nsx "$a" "$CTTOOL" dump --exp >"$HAFW_TMP/$a.exps" &&
		nsx "$b" "$CTTOOL" dump --exp >"$HAFW_TMP/$b.exps" || return 1
	"$CTTOOL" compare "$HAFW_TMP/$a.flows" "$HAFW_TMP/$b.flows" --timeout-at-least "$@" >"$HAFW_TMP/cmp.flows"
	local rf=$?
	"$CTTOOL" compare "$HAFW_TMP/$a.exps" "$HAFW_TMP/$b.exps" "$@" >"$HAFW_TMP/cmp.exps"
	local re=$?
	tail -n 1 "$HAFW_TMP/cmp.flows" "$HAFW_TMP/cmp.exps" | grep compare | sed 's/^/  /'
	if [ $rf -ne 0 ] || [ $re -ne 0 ]; then
		head -n 8 "$HAFW_TMP/cmp.flows" "$HAFW_TMP/cmp.exps" | sed 's/^/  /'
		return 1
	fi
	return 0
}

# compare_ct_lists A B: the same through conntrack(8)'s own listing.
compare_ct_lists() {
	diff <(ct_list "$1") <(ct_list "$2") >"$HAFW_TMP/ctdiff" &&
		diff <(exp_list "$1") <(exp_list "$2") >>"$HAFW_TMP/ctdiff" && return 0
	echo "  conntrack -L differs ($(wc -l <"$HAFW_TMP/ctdiff") diff lines):"
	head -n 6 "$HAFW_TMP/ctdiff" | sed 's/^/  /'
	return 1
}

# hafw_stop_all: SIGTERM every syncd still running, so sanitizer builds run
# their exit checks (leaks) before the logs are read.
hafw_stop_all() {
	local v name
	for v in $(compgen -v PID_); do
		name=${v#PID_}
		kill -0 "${!v}" 2>/dev/null && hafw_stop "$name"
	done
	return 0
}

# A sanitizer report in any daemon log fails the test.
sanitizer_clean() {
	! grep -lE "ERROR: (Address|Leak)Sanitizer|runtime error:" "$HAFW_TMP"/*.log 2>/dev/null
}

# On failure, what each running node says about itself.
hafw_diag() {
	local v name
	for v in $(compgen -v PID_); do
		name=${v#PID_}
		kill -0 "${!v}" 2>/dev/null || continue
		echo "---- $name: status and counters"
		ctl "$name" status 2>&1 | sed 's/^/  /'
		ctl "$name" stats 2>&1 | grep -E "overrun|resync|send_err|lost|bad_|dropped|errors|events_(new|sent|received)|frames|dgrams" |
			grep -v " 0$" | sed 's/^/  /'
	done
}

# finish: summary line that ctest and humans read; exit status follows it.
finish() {
	[ "$HAFW_FAILS" -ne 0 ] && hafw_diag
	hafw_stop_all
	check "no sanitizer report in the daemon logs" sanitizer_clean
	local passed=$((HAFW_CHECKS - HAFW_FAILS))
	echo "$HAFW_TEST: $passed passed, $HAFW_FAILS failed"
	[ "$HAFW_FAILS" -eq 0 ]
}
