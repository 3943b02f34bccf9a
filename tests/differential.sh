#!/bin/sh
# SPDX-License-Identifier: MIT
#
# differential.sh - issue 12's differential tester, bounded for make check
# (well under a minute on two cores): every policy at 1 and 16 pages per
# fault, a few seeds of a few thousand operations each, the kernel's own
# calls against uspf_*() on twin arenas, run twice:
#
#   1. as issue 12 asks: results, accesses, pages, protections, bytes and
#      VMA boundaries; pages never touched are not read during a sequence
#      (see tests/differential.c) but in one sweep at the end of each run;
#   2. with --read-untouched: every read is real, so uspf's read-fault path
#      runs throughout; boundaries are then not compared with the plain
#      arena's (such a read gives uspf's VMA an anon_vma, natively not).
#
# Any difference fails the test, with a shrunk sequence that shows it
# (the first two differences of each pass are shrunk, the rest listed).
#
# USPF_DIFF_LONG=1 runs the long configuration (many seeds, 20000 ops).
# USPF_DIFF_ARGS adds arguments (e.g. "--allow boundary,real-boundary").
#
# Automake test protocol: exit 0 pass, 77 skip, 1 fail.

BIN=${USPF_BUILDDIR:-.}/tests/differential
[ -x "$BIN" ] || { echo "differential.sh: $BIN not built" >&2; exit 1; }

# The runtime needs a userfaultfd with kernel faults: root, or the sysctl.
if [ "$(id -u)" != 0 ] &&
   [ "$(cat /proc/sys/vm/unprivileged_userfaultfd 2>/dev/null)" != 1 ]; then
	echo "differential.sh: needs root or vm.unprivileged_userfaultfd=1: skipped"
	exit 77
fi

# A lost fault must not hang make check: the program's own watchdog
# (alarm) ends a run; timeout(1) bounds each pass.
TO=""
command -v timeout >/dev/null 2>&1 && TO="timeout"

run() {
	limit=$1
	shift
	echo "differential.sh: $*"
	if [ -n "$TO" ]; then
		# shellcheck disable=SC2086
		$TO "$limit" "$BIN" "$@" ${USPF_DIFF_ARGS:-}
	else
		# shellcheck disable=SC2086
		"$BIN" "$@" ${USPF_DIFF_ARGS:-}
	fi
}

status=0
if [ "${USPF_DIFF_LONG:-0}" = 1 ]; then
	run 3600 --long --policy all --folio-pages 1,16 || status=1
	run 3600 --long --read-untouched --policy all --folio-pages 1,16 || status=1
	exit $status
fi
run 120 --policy all --folio-pages 1,16 --seed 1 --seeds 10 --ops 4000 \
	--shrink-seconds 5 --max-shrinks 2 || status=1
run 120 --read-untouched --policy all --folio-pages 1,16 --seed 1 --seeds 5 --ops 3000 \
	--shrink-seconds 5 --max-shrinks 2 || status=1
exit $status
