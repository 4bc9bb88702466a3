#!/bin/bash
# hafw demo: a two-node cluster in network namespaces, with real traffic.
#
#   deploy/demo.sh [--wait] [--no-build] [--connections N]
#
# Installs the dependencies (deploy/install-deps.sh), builds hafw into
# build/, then builds this topology out of namespaces that only this run
# owns (names hafw-demo-<pid>-*):
#
#                 client 10.0.1.10 (default route via the VIP 10.0.1.1)
#                           |
#          +------ lan bridge 10.0.1.0/24 -------+
#          |                                     |
#   fw-a (id 1, primary)                  fw-b (id 2, backup)
#   lan0 10.0.1.2 + VIP 10.0.1.1          lan0 10.0.1.3
#   wan0 203.0.113.2 + VIP 203.0.113.1    wan0 203.0.113.3
#   sync0 192.168.77.1 ---- sync bridge ---- sync0 192.168.77.2
#          |        multicast 239.192.77.1:3780   |
#          +------ wan bridge 203.0.113.0/24 ----+
#                           |
#                 server 203.0.113.10 (echo service on TCP and UDP 5001)
#
# Both firewalls run the same nftables rule set, etc/nftables-node.conf
# (stateful forward filter, SNAT of the LAN to the WAN VIP, sync link
# untracked) and one hafw-syncd each. The client opens TCP connections to the server through fw-a and
# keeps them open; conntrack -I adds a few more flows on fw-a. The demo
# shows what each syncd holds, commits fw-b's copy into fw-b's kernel, then
# fails over by hand (fw-a's links go down, the VIPs move to fw-b) and
# checks that the open connections still answer through fw-b.
#
# Everything is torn down on exit, Ctrl-C or TERM: the processes this
# script started (by PID), its namespaces, its temp dir. No traffic leaves
# the namespaces it created. Needs root. Exit status 0 when every step
# worked, 1 otherwise.

# functions reached through traps and wait_until are not dead code:
# shellcheck disable=SC2317
set -Eeuo pipefail

cd "$(dirname "$0")/.."
ROOT=$PWD
BUILD=${HAFW_BUILD_DIR:-$ROOT/build}
SYNCD=$BUILD/syncd/hafw-syncd
HAFWCTL=$BUILD/syncd/hafwctl
PY=/usr/bin/python3

WAIT=0
DO_BUILD=1
NCONN=4

usage() {
	cat <<EOF
Usage: deploy/demo.sh [--wait] [--no-build] [--connections N]

Runs a two-node hafw cluster in network namespaces with real traffic
through it, shows replication, a commit on the backup and a failover,
then removes everything it created.

  --wait            pause before tearing down, so you can look around
                    (the namespace names and hafwctl commands are printed)
  --no-build        skip deploy/install-deps.sh and the build; use the
                    binaries already in \$HAFW_BUILD_DIR (default build/)
  --connections N   TCP connections kept open through the firewall
                    (1 to 64, default 4)
  -h, --help        this text
EOF
}

while [ $# -gt 0 ]; do
	case $1 in
	--wait) WAIT=1 ;;
	--no-build) DO_BUILD=0 ;;
	--connections)
		[ $# -ge 2 ] || { usage >&2; exit 2; }
		NCONN=$2
		shift
		;;
	-h | --help) usage; exit 0 ;;
	*) echo "demo: unknown argument \"$1\"" >&2; usage >&2; exit 2 ;;
	esac
	shift
done
if ! [[ $NCONN =~ ^[0-9]+$ ]] || [ "$NCONN" -lt 1 ] || [ "$NCONN" -gt 64 ]; then
	echo "demo: --connections needs a number from 1 to 64" >&2
	exit 2
fi
if [ "$(id -u)" -ne 0 ]; then
	echo "demo: needs root (network namespaces, nftables, conntrack)" >&2
	exit 1
fi

# ---- state and cleanup ----------------------------------------------------

P="hafw-demo-$$"
NS_HUB=$P-hub
NS_A=$P-a
NS_B=$P-b
NS_C=$P-client
NS_S=$P-server
PIDS=()
NETNS=()
TMP=""

cleanup() {
	local rc=$? pid ns
	trap - EXIT INT TERM ERR
	set +e
	for pid in "${PIDS[@]}"; do
		kill "$pid" 2>/dev/null
	done
	for pid in "${PIDS[@]}"; do
		# bounded: 30 x 0.1 s, then SIGKILL
		for _ in $(seq 30); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
		kill -9 "$pid" 2>/dev/null
		wait "$pid" 2>/dev/null
	done
	for ns in "${NETNS[@]}"; do
		ip netns del "$ns" 2>/dev/null
	done
	[ -n "$TMP" ] && rm -rf "$TMP"
	if [ ${#NETNS[@]} -gt 0 ]; then
		echo "demo: removed ${#NETNS[@]} namespaces and ${#PIDS[@]} processes"
	fi
	exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
trap 'echo "demo: failed at line $LINENO: $BASH_COMMAND" >&2' ERR

if [ -t 1 ]; then
	BOLD=$'\033[1m' CYAN=$'\033[36m' PLAIN=$'\033[0m'
else
	BOLD="" CYAN="" PLAIN=""
fi
section() { printf '\n%s==== %s%s\n' "$BOLD" "$*" "$PLAIN"; }
run() {
	# show a command as an operator would type it on that node, then run it
	printf '%s[%s]#%s %s\n' "$CYAN" "$1" "$PLAIN" "$2"
	shift 2
	"$@"
}
die() { echo "demo: $*" >&2; exit 1; }

nsx() { local ns=$1; shift; ip netns exec "$ns" "$@"; }
ctl() { local node=$1; shift; "$HAFWCTL" -s "$TMP/$node.sock" "$@"; }

# wait_until SECONDS COMMAND...: poll every 0.1 s, at most SECONDS*10
# times and at most SECONDS (+1) seconds; 1 on timeout.
wait_until() {
	local secs=$1 i end
	shift
	end=$((SECONDS + secs))
	for ((i = 0; i < secs * 10 && SECONDS <= end; i++)); do
		"$@" >/dev/null 2>&1 && return 0
		sleep 0.1
	done
	return 1
}

# ct_show NS ARGS...: conntrack with its summary line after the table
ct_show() {
	local ns=$1
	shift
	nsx "$ns" conntrack "$@" 2>"$TMP/ct.err"
	sed 's/^conntrack v[0-9.]* (conntrack-tools): /    /' "$TMP/ct.err"
}
jq_py() { "$PY" -c "import json,sys; j=json.load(sys.stdin); print($1)"; }

# ---- build ------------------------------------------------------------------

TMP=$(mktemp -d "/tmp/hafw-demo.XXXXXX")

if [ "$DO_BUILD" -eq 1 ]; then
	section "dependencies and build"
	bash deploy/install-deps.sh
	if ! { cmake -S . -B "$BUILD" && cmake --build "$BUILD" -j"$(nproc)"; } >"$TMP/build.log" 2>&1; then
		tail -n 40 "$TMP/build.log" >&2
		die "build failed (above: the end of the build log)"
	fi
	echo "built $SYNCD and $HAFWCTL"
fi
for b in "$SYNCD" "$HAFWCTL"; do
	[ -x "$b" ] || die "missing $b (run without --no-build)"
done
for t in ip nft conntrack "$PY"; do
	command -v "$t" >/dev/null || die "missing $t (run deploy/install-deps.sh)"
done

# ---- topology ---------------------------------------------------------------

section "namespaces ($P-*)"
addns() {
	ip netns add "$1"
	NETNS+=("$1")
	ip -n "$1" link set lo up
}
addns "$NS_HUB"
for br in brsync brlan brwan; do
	ip -n "$NS_HUB" link add "$br" type bridge
	# no IGMP snooping: the sync group reaches every port of the sync link
	ip -n "$NS_HUB" link set "$br" type bridge mcast_snooping 0
	ip -n "$NS_HUB" link set "$br" up
done

# plug NS IFNAME HUBPORT BRIDGE: a veth from NS into a hub bridge
plug() {
	ip link add "$2" netns "$1" type veth peer name "$3" netns "$NS_HUB"
	ip -n "$NS_HUB" link set "$3" master "$4" up
	ip -n "$1" link set "$2" up
}

for node in a b; do
	ns=$P-$node
	idx=$([ $node = a ] && echo 2 || echo 3)
	addns "$ns"
	plug "$ns" sync0 "$node-sync" brsync
	plug "$ns" lan0 "$node-lan" brlan
	plug "$ns" wan0 "$node-wan" brwan
	ip -n "$ns" addr add "192.168.77.$((idx - 1))/24" dev sync0
	ip -n "$ns" addr add "10.0.1.$idx/24" dev lan0
	ip -n "$ns" addr add "203.0.113.$idx/24" dev wan0
	nsx "$ns" sysctl -qw net.ipv4.ip_forward=1
done
# the virtual addresses start on fw-a (keepalived's job, later)
ip -n "$NS_A" addr add 10.0.1.1/24 dev lan0
ip -n "$NS_A" addr add 203.0.113.1/24 dev wan0

addns "$NS_C"
plug "$NS_C" eth0 c-lan brlan
ip -n "$NS_C" addr add 10.0.1.10/24 dev eth0
ip -n "$NS_C" route add default via 10.0.1.1

addns "$NS_S"
plug "$NS_S" eth0 s-wan brwan
# the server knows only its own subnet: replies reach the client only
# because the firewall rewrote the source to the WAN VIP
ip -n "$NS_S" addr add 203.0.113.10/24 dev eth0
echo "created: ${NETNS[*]}"

# ---- firewall rule set (the same on both nodes) -----------------------------

# etc/nftables-node.conf is written for this very layout (lan0, wan0, sync0,
# VIPs 10.0.1.1 and 203.0.113.1): stateful forward filter, new TCP only on
# a pure SYN, SNAT of the LAN to the WAN VIP, sync link untracked, and a
# ct label rule so labels exist to be replicated.
for ns in "$NS_A" "$NS_B"; do
	nsx "$ns" nft -f "$ROOT/etc/nftables-node.conf"
done
echo "loaded etc/nftables-node.conf on fw-a and fw-b; forward chain:"
nsx "$NS_A" nft list chain inet hafw forward | sed -n 's/^\t\t/    /p'

# ---- hafw-syncd on both nodes -----------------------------------------------

section "hafw-syncd on fw-a (id 1) and fw-b (id 2)"
write_conf() {
	local name=$1 id=$2
	cat >"$TMP/$name.conf" <<EOF
node    = { id = $id; name = "$name"; };
control = { socket = "$TMP/$name.sock"; };
tracker = { type = "kernel"; };
sync    = { interface = "sync0"; group = "239.192.77.1"; port = 3780; };
# the VIPs are local addresses of the primary, and flows to or from a local
# address are not replicated unless kept explicitly
filter  = { keep_addresses = [ "10.0.1.1", "203.0.113.1" ]; };
log     = { level = "info"; };
EOF
}
write_conf fw-a 1
write_conf fw-b 2
echo "config of fw-a ($TMP/fw-a.conf):"
sed 's/^/    /' "$TMP/fw-a.conf"
"$SYNCD" -c "$TMP/fw-a.conf" --check-config

start_syncd() {
	local name=$1 ns=$2
	ip netns exec "$ns" "$SYNCD" -c "$TMP/$name.conf" >>"$TMP/$name.log" 2>&1 &
	PIDS+=("$!")
	if ! wait_until 5 ctl "$name" status; then
		cat "$TMP/$name.log" >&2
		die "hafw-syncd $name did not come up"
	fi
}
start_syncd fw-a "$NS_A"
start_syncd fw-b "$NS_B"
ctl fw-a role primary >/dev/null
ctl fw-b role backup >/dev/null
b_hears_a() { [ "$(ctl fw-b --json status | jq_py "len(j['peers'])")" -ge 1 ]; }
wait_until 5 b_hears_a || die "fw-b never heard fw-a on the sync link"
echo "both daemons running and hearing each other"

# ---- traffic ------------------------------------------------------------------

section "traffic: $NCONN TCP connections client -> server through fw-a"
cat >"$TMP/server.py" <<'EOF'
# Echo service: TCP (line by line, one thread per connection) and UDP.
import os, socket, socketserver, sys, threading

threading.Timer(3600, os._exit, [0]).start()  # bounded lifetime

class Echo(socketserver.StreamRequestHandler):
    def handle(self):
        for line in self.rfile:
            self.wfile.write(line)

class TCP(socketserver.ThreadingTCPServer):
    allow_reuse_address = True
    daemon_threads = True

def udp():
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind((sys.argv[1], int(sys.argv[2])))
    while True:
        data, peer = s.recvfrom(2048)
        s.sendto(data, peer)

threading.Thread(target=udp, daemon=True).start()
TCP((sys.argv[1], int(sys.argv[2])), Echo).serve_forever()
EOF
cat >"$TMP/client.py" <<'EOF'
# Opens N TCP connections and keeps them. At start and on every SIGUSR1 it
# sends one line on each and counts the echoes; results go to a file.
import os, signal, socket, sys, time

server, port, n, out = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
deadline = time.time() + 3600  # bounded lifetime
conns = []
for i in range(n):
    s = socket.create_connection((server, port), timeout=5)
    conns.append(s)

def echo_round(tag):
    ok = 0
    for i, s in enumerate(conns):
        msg = ("%s conn %d\n" % (tag, i)).encode()
        try:
            s.sendall(msg)
            data = b""
            while not data.endswith(b"\n"):
                chunk = s.recv(256)
                if not chunk:
                    break
                data += chunk
            ok += data == msg
        except OSError:
            pass
    with open(out, "a") as f:
        f.write("%s %d/%d\n" % (tag, ok, n))

u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
u.settimeout(5)
try:
    u.sendto(b"hello over udp\n", (server, port))
    u.recv(256)
except OSError:
    pass

pending = []
signal.signal(signal.SIGUSR1, lambda *a: pending.append(1))
echo_round("round0")
rounds = 0
while time.time() < deadline:
    if pending:
        pending.pop()
        rounds += 1
        echo_round("round%d" % rounds)
    time.sleep(0.05)
EOF

ip netns exec "$NS_S" "$PY" "$TMP/server.py" 203.0.113.10 5001 >"$TMP/server.log" 2>&1 &
PIDS+=("$!")
server_listening() { nsx "$NS_S" ss -Hltn "sport = :5001" | grep -q .; }
wait_until 5 server_listening ||
	die "echo server did not start"

ip netns exec "$NS_C" "$PY" "$TMP/client.py" 203.0.113.10 5001 "$NCONN" "$TMP/rounds" \
	>"$TMP/client.log" 2>&1 &
CLIENT_PID=$!
PIDS+=("$CLIENT_PID")

# round_ok TAG: the client wrote "TAG k/N" with k = N
round_ok() { grep -qx "$1 $NCONN/$NCONN" "$TMP/rounds" 2>/dev/null; }
round_line() { grep "^$1 " "$TMP/rounds" 2>/dev/null || echo "$1: no answer"; }
if ! wait_until 15 grep -q "^round0 " "$TMP/rounds"; then
	cat "$TMP/client.log" >&2
	die "client could not connect through fw-a"
fi
echo "client: $(round_line round0) echoes through fw-a"
round_ok round0 || die "not every connection answered through fw-a"

echo "adding flows with conntrack -I on fw-a:"
ct_insert() {
	printf '    conntrack -I %s\n' "$*"
	nsx "$NS_A" conntrack -I "$@" >/dev/null 2>&1 || die "conntrack -I $* failed"
}
ct_insert -p udp -s 10.0.1.20 -d 203.0.113.53 --sport 40000 --dport 53 -t 120 -u SEEN_REPLY
ct_insert -p tcp -s 10.0.1.21 -d 203.0.113.80 --sport 41000 --dport 443 \
	--state ESTABLISHED -u SEEN_REPLY,ASSURED -t 3600 -m 7
ct_insert -p tcp -s 10.0.1.22 -d 203.0.113.25 --sport 41001 --dport 25 \
	--state SYN_SENT -t 60 -m 0x10
ct_insert -p icmp -s 10.0.1.23 -d 203.0.113.10 --icmp-type 8 --icmp-code 0 --icmp-id 77 -t 30
ct_insert -p udp -s fd00:1::10 -d 2001:db8::53 --sport 5353 --dport 53 -t 90

# fw-b's copy is complete when its external cache holds what fw-a's
# internal cache holds
# internal cache, and fw-a's heartbeat has announced that count
a_flows() { ctl fw-a --json status | jq_py "j['internal']['flows']"; }
b_ext() { ctl fw-b --json status | jq_py "sum(p['flows'] for p in j['peers'])"; }
b_announced() {
	ctl fw-b --json status | jq_py "sum(p['announced_flows'] for p in j['peers'])"
}
b_has_all() {
	local n
	n=$(a_flows)
	[ "$n" -ge $((NCONN + 5)) ] && [ "$(b_ext)" = "$n" ] && [ "$(b_announced)" = "$n" ]
}
if ! wait_until 10 b_has_all; then
	die "fw-b's external cache ($(b_ext)) never matched fw-a ($(a_flows))"
fi

# ---- what each node holds -----------------------------------------------------

section "hafwctl status"
run fw-a "hafwctl status" ctl fw-a status
echo
run fw-b "hafwctl status" ctl fw-b status

section "fw-a: its own flows (internal cache)"
run fw-a "hafwctl flows" ctl fw-a flows

section "fw-b: fw-a's flows as fw-b received them (external cache)"
run fw-b "hafwctl flows --external" ctl fw-b flows --external

section "the kernels' tables before the commit"
run fw-a "conntrack -L" ct_show "$NS_A" -L
run fw-b "conntrack -L" ct_show "$NS_B" -L

# ---- commit and failover ------------------------------------------------------

section "commit on fw-b: its external cache goes into its kernel"
run fw-b "hafwctl commit" ctl fw-b commit
run fw-b "conntrack -L" ct_show "$NS_B" -L
B_KERNEL=$(nsx "$NS_B" conntrack -C)
[ "$B_KERNEL" -ge $((NCONN + 5)) ] || die "fw-b's kernel holds only $B_KERNEL flows"

section "failover by hand: fw-a's links go down, the VIPs move to fw-b"
cat <<'EOF'
    (keepalived will do this; today the steps are:
     hafwctl commit on the backup, then move the addresses)
EOF
ip -n "$NS_A" link set lan0 down
ip -n "$NS_A" link set wan0 down
ip -n "$NS_B" addr add 10.0.1.1/24 dev lan0
ip -n "$NS_B" addr add 203.0.113.1/24 dev wan0
ctl fw-b role primary >/dev/null
ctl fw-a role fault >/dev/null
# keepalived sends gratuitous ARP; here the neighbours forget fw-a's MAC
ip -n "$NS_C" neigh flush dev eth0
ip -n "$NS_S" neigh flush dev eth0
echo "fw-a: lan0, wan0 down, role fault; fw-b: holds 10.0.1.1 and 203.0.113.1, role primary"

kill -USR1 "$CLIENT_PID"
wait_until 20 grep -q "^round1 " "$TMP/rounds" || true
echo "client: $(round_line round1) echoes on the same connections, now through fw-b"
FAILOVER_OK=1
round_ok round1 || FAILOVER_OK=0

run fw-b "conntrack -L -p tcp --dport 5001" ct_show "$NS_B" -L -p tcp --dport 5001
run fw-b "hafwctl status" ctl fw-b status

section "result"
if [ "$FAILOVER_OK" -eq 1 ]; then
	echo "all $NCONN TCP connections opened through fw-a kept working through fw-b"
else
	echo "FAILED: $(round_line round1) connections answered after the failover"
	echo "---- fw-b syncd log"
	tail -n 20 "$TMP/fw-b.log"
fi

if [ "$WAIT" -eq 1 ]; then
	section "paused: the cluster is still up"
	cat <<EOF
namespaces: ${NETNS[*]}
look around, e.g.:
    $HAFWCTL -s $TMP/fw-b.sock stats
    ip netns exec $NS_B conntrack -L
    ip netns exec $NS_A nft list ruleset
    kill -USR1 $CLIENT_PID; cat $TMP/rounds   # one more echo round
EOF
	if [ -t 0 ]; then
		read -r -t 3600 -p "press Enter to tear everything down (or wait 1 h) " _ || true
	else
		echo "(stdin is not a terminal: not waiting)"
	fi
fi

section "cleanup"
if [ "$FAILOVER_OK" -ne 1 ]; then
	exit 1
fi
exit 0
