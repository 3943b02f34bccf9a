#!/bin/sh
# The second README command: the whole test suite (what CI runs).
# Criterion's Synthesis lines are gathered from the harness logs and printed.
set -u
cd "$(dirname "$0")/.."
./scripts/deps.sh || exit 1
./scripts/build.sh || exit 1
status=0
make -j"$(nproc)" check || status=$?
sh tests/run-synthesis.sh tests
if [ $status -ne 0 ]; then
	echo "FAILED: make check (see the logs below)"
	for f in $(grep -l -E '^(FAIL|ERROR)' $(find tests -name '*.trs') 2>/dev/null); do
		log=${f%.trs}.log
		echo "==== $log"; tail -n 60 "$log"
	done
	exit $status
fi
# Build, install and package checks, without re-running the suite.
make distcheck DISTCHECK_CONFIGURE_FLAGS=--disable-tests >distcheck.log 2>&1 || {
	echo "FAILED: make distcheck"; tail -n 40 distcheck.log; exit 1; }
echo "make distcheck: ok"
# ASan+UBSan and TSan builds of the torture, every policy, a short bounded run
# (TSan cannot run under Criterion; ASan leak reports do not fail it).
./scripts/sanitize.sh > sanitize.log 2>&1 || {
	echo "FAILED: scripts/sanitize.sh"; cat sanitize.log; exit 1; }
grep -E '^(asan|tsan) ' sanitize.log
echo "sanitizers: ok"
# The suite's verdict last, where CI reads it.
sh tests/run-synthesis.sh tests | tail -n 1
