#!/bin/bash
# Installs dependencies, builds hafw normally and with ASan+UBSan, and runs
# the whole test suite (unit, fuzz smoke, cluster) under ctest in both.
# Exits non-zero on any failure.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
JOBS=$(nproc)

bash deploy/install-deps.sh

if [ "$(id -u)" -ne 0 ]; then
	echo "tests/run.sh: cluster tests need root (network namespaces, conntrack)" >&2
	exit 1
fi

rc=0
build_and_test() {
	local dir=$1
	shift
	echo "=== build $dir ($*)"
	cmake -S "$ROOT" -B "$ROOT/$dir" -DCMAKE_BUILD_TYPE=RelWithDebInfo "$@" >/dev/null
	cmake --build "$ROOT/$dir" -j"$JOBS" >/dev/null
	echo "=== test $dir"
	if ! ctest --test-dir "$ROOT/$dir" --output-on-failure --timeout 600; then
		rc=1
	fi
}

build_and_test build
# ASan needs no leak checker noise from short-lived tools; UBSan aborts
export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
CC=clang build_and_test build-asan -DHAFW_SANITIZE=ON -DHAFW_FUZZ=ON
exit $rc
