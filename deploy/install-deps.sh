#!/bin/bash
# Installs every build, run and test dependency of hafw on Debian 12.
# Idempotent and quiet when everything is already there.
set -euo pipefail

PACKAGES=(
	# build
	build-essential cmake pkg-config clang clang-format libclang-rt-14-dev
	libmnl-dev libnetfilter-conntrack-dev libevent-dev
	libprotobuf-c-dev protobuf-c-compiler libssl-dev
	libconfig-dev libjson-c-dev libcmocka-dev liburcu-dev libcap-ng-dev
	# run and test
	iproute2 conntrack nftables keepalived conntrackd iperf3 tcpdump
	procps psmisc python3 jq
)

missing=()
for p in "${PACKAGES[@]}"; do
	if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed"; then
		missing+=("$p")
	fi
done
[ ${#missing[@]} -eq 0 ] && exit 0

if [ "$(id -u)" -ne 0 ]; then
	echo "install-deps: need root to install: ${missing[*]}" >&2
	exit 1
fi
echo "install-deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
# policy-rc.d keeps the packaged daemons (conntrackd, keepalived) from being
# started by their install scripts: tests start their own instances
had_policy=0
[ -e /usr/sbin/policy-rc.d ] && had_policy=1
if [ $had_policy -eq 0 ]; then
	printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d
	chmod +x /usr/sbin/policy-rc.d
fi
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
[ $had_policy -eq 0 ] && rm -f /usr/sbin/policy-rc.d
echo "install-deps: done"
