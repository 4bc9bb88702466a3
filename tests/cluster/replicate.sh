#!/bin/bash
# Two nodes, real kernel conntrack, real hafw-syncd over multicast.
# A creates >1000 flows of every kind plus expectations; B's external cache
# must hold them, and after `hafwctl commit` on B both kernels' tables must
# agree attribute by attribute (our dumper also checks TCP window scale and
# flags, which conntrack(8) does not print). Updates and destroys follow.
# After a commit B announces what it now holds as its own (a third node
# would learn the new owner).
# Control: the replication is cut (B drops A's sync datagrams), A changes,
# B commits: the tables must differ.
. "$(dirname "$0")/lib.sh"
hafw_init replicate

FLOWS=${FLOWS:-1200}
EXPS=${EXPS:-24}

hafw_node a 1
hafw_node b 2
hafw_start a 1
hafw_start b 2

log "creating $FLOWS flows and $EXPS expectations on A"
nsx a "$CTTOOL" mixed "$FLOWS" --exp "$EXPS" | sed 's/^/  /'
nsx a conntrack -I -p tcp -s 10.9.0.1 -d 10.9.0.2 --sport 4000 --dport 443 \
	--state ESTABLISHED -u SEEN_REPLY,ASSURED -t 500 -m 77 >/dev/null 2>&1
A_FLOWS=$(nsx a conntrack -C)
A_EXPS=$(nsx a "$CTTOOL" dump --exp | grep -c . || true)
log "A's kernel holds $A_FLOWS flows and $A_EXPS expectations"

check "A holds at least 1000 flows and the expectations" \
	eval '[ "$A_FLOWS" -ge 1000 ] && [ "$A_EXPS" -ge 20 ]'
check "A's internal cache has every flow" \
	wait_for 10 "A internal = kernel" eval '[ "$(internal_flows a)" = "$A_FLOWS" ]'
check "B's external cache has every flow" \
	wait_for 10 "B external = A's flows" eval '[ "$(external_flows b)" = "$A_FLOWS" ]'
check "B's external cache has every expectation" \
	wait_for 10 "B external exps" eval '[ "$(external_exps b)" = "$A_EXPS" ]'
check "B's kernel is still empty before the commit" eq "$(nsx b conntrack -C)" 0

# The cache's content, not only its size: every flow key A holds is in B's
# external cache with the same mark and state.
cache_keys() {
	python3 -c '
import json,sys
j=json.load(sys.stdin)
for f in j["flows"]:
    o=f["orig"]
    print(f["zone"], o["proto"], o["src"], o["dst"], o.get("sport"), o.get("dport"),
          o.get("type"), o.get("id"), f.get("mark"), f.get("state"), f.get("status"))' | sort
}
ctl a --json flows | cache_keys >"$HAFW_TMP/a.cache"
ctl b --json flows --external | cache_keys >"$HAFW_TMP/b.cache"
check "B's external cache matches A's internal cache entry by entry" \
	diff -q "$HAFW_TMP/a.cache" "$HAFW_TMP/b.cache"

log "commit on B"
ctl b commit | sed 's/^/  /'
check "B's kernel has every flow after commit" eq "$(nsx b conntrack -C)" "$A_FLOWS"
check "kernel tables agree attribute by attribute (hafw-cttool)" compare_tables a b
check "conntrack -L -o extended and -L expect agree" compare_ct_lists a b
check "commit was counted without errors" eq "$(stat_of b "['replication']['commit_errors']")" 0
check "B's internal cache learns the committed flows" \
	wait_for 10 "B internal = $A_FLOWS" eval '[ "$(internal_flows b)" = "$A_FLOWS" ]'
check "B announces the committed flows as its own: A's external cache holds them" \
	wait_for 10 "A external = $A_FLOWS" eval '[ "$(external_flows a)" = "$A_FLOWS" ]'
check "B's versions are newer than A's: its copies win a commit" \
	eval '[ "$(ctl b --json flows | python3 -c "import json,sys; print(min(f[\"version\"] for f in json.load(sys.stdin)[\"flows\"]))")" -gt \
	       "$(ctl a --json flows | python3 -c "import json,sys; print(max(f[\"version\"] for f in json.load(sys.stdin)[\"flows\"]))")" ]'

# Updates: marks and a TCP state change on A reach B.
log "updating marks of 300 flows and the state of one TCP flow on A"
nsx a "$CTTOOL" update-marks --mark 4242 --limit 300 | sed 's/^/  /'
nsx a conntrack -U -p tcp -s 10.9.0.1 -d 10.9.0.2 --sport 4000 --dport 443 -m 78 >/dev/null 2>&1
# count_mark NODE MARK [--external]
count_mark() { ctl "$1" --json flows ${3:-} | python3 -c "
import json,sys; print(sum(1 for f in json.load(sys.stdin)['flows'] if f.get('mark')==$2))"; }
A_MARKED=$(nsx a "$CTTOOL" dump --flows | grep -cE " mark=4242( |$)" || true)
check "A's kernel holds the marked flows" ge "$A_MARKED" 299
check "A's internal cache saw the mark updates" \
	wait_for 10 "$A_MARKED marks on A" eval '[ "$(count_mark a 4242)" = "$A_MARKED" ]'
check "mark updates reach B's external cache" \
	wait_for 10 "$A_MARKED marks on B" eval '[ "$(count_mark b 4242 --external)" = "$A_MARKED" ]'
check "a single flow's mark change reaches B" \
	wait_for 10 "mark 78 on B" eval '[ "$(count_mark b 78 --external)" = 1 ]'
# A TCP state change (ESTABLISHED -> FIN_WAIT) reaches B too.
nsx a conntrack -U -p tcp -s 10.9.0.1 -d 10.9.0.2 --sport 4000 --dport 443 \
	--state FIN_WAIT >/dev/null 2>&1
state_of_b() { ctl b --json flows --external | python3 -c "
import json,sys
print([f.get('state') for f in json.load(sys.stdin)['flows']
       if f['orig']['src']=='10.9.0.1' and f['orig'].get('sport')==4000])"; }
check "a TCP state change reaches B" \
	wait_for 10 "FIN_WAIT on B" eval '[ "$(state_of_b)" = "['"'"'FIN_WAIT'"'"']" ]'
ctl b commit >/dev/null
check "after the second commit the tables agree again" compare_tables a b

# Destroys: every UDP flow on A goes; B's external cache follows.
A_UDP=$(nsx a conntrack -L -p udp 2>/dev/null | grep -c . || true)
nsx a conntrack -D -p udp >/dev/null 2>&1
A_NOW=$(nsx a conntrack -C)
log "destroyed $A_UDP UDP flows on A, $A_NOW remain"
check "destroys reach B's external cache" \
	wait_for 10 "B external = $A_NOW" eval '[ "$(external_flows b)" = "$A_NOW" ]'
udp_in_b() { ctl b --json flows --external | python3 -c "
import json,sys; print(sum(1 for f in json.load(sys.stdin)['flows'] if f['orig']['proto']=='udp'))"; }
check "no UDP flow left in B's external cache" eq "$(udp_in_b)" 0

# Expectation destroys: a flush of A's expectations empties B's copy.
nsx a conntrack -F expect >/dev/null 2>&1
check "expectation destroys reach B's external cache" \
	wait_for 10 "B exps = 0" eval '[ "$(external_exps b)" = 0 ]'

# B's kernel still holds the UDP flows of the first commit (a commit adds,
# the peer's destroys reach B's cache, not B's kernel): start B's kernel
# over from its cache so the control below starts from equal tables.
nsx b conntrack -F >/dev/null 2>&1
nsx b conntrack -F expect >/dev/null 2>&1
ctl b commit >/dev/null
check "after flush and commit the tables agree" compare_tables a b

# Control case: exactly the replication is cut (B drops A's sync
# datagrams), A changes, B commits: the same comparison must see the
# difference, or the checks above prove nothing.
log "control: B drops A's sync datagrams; A changes; B commits"
nsx b nft -f - <<'NFT'
table inet hafwcut {
	chain in {
		type filter hook input priority -500; policy accept;
		ip saddr 192.168.77.1 udp dport 3780 drop
	}
}
NFT
nsx a "$CTTOOL" gen 50 --src 10.77.0.0 >/dev/null
nsx a "$CTTOOL" update-marks --mark 999 --limit 20 >/dev/null
sleep 1
ctl b commit >/dev/null
check "control: B's commit did not get A's changes" not compare_tables a b
check "control: conntrack -L shows the difference too" not compare_ct_lists a b
nsx b nft delete table inet hafwcut
check "once the cut heals, B NACKs what it missed and its copy equals A's table again" \
	wait_for 10 "B = A" eval '[ "$(stat_of b "['"'"'peers'"'"']['"'"'nacks_sent'"'"']")" -gt 0 ] && [ "$(external_flows b)" = "$(nsx a conntrack -C)" ]'
check "A's syncd still running" kill -0 "$PID_a"
finish
