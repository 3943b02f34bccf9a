#!/bin/sh
# SPDX-License-Identifier: MIT
#
# differential.sh - issue 12's differential tester, bounded for make check:
# every policy at fault-around 1 and 16, a few seeds of a few thousand
# operations each, the kernel's own calls against uspf_*() on twin arenas.
# Any difference fails the test, with a shrunk sequence that shows it.
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
# (alarm) ends a run; timeout(1) bounds the whole.
RUN=""
command -v timeout >/dev/null 2>&1 && RUN="timeout 900"

if [ "${USPF_DIFF_LONG:-0}" = 1 ]; then
	# shellcheck disable=SC2086
	exec $RUN "$BIN" --long --policy all --fault-around 1,16 ${USPF_DIFF_ARGS:-}
fi
# shellcheck disable=SC2086
exec $RUN "$BIN" --policy all --fault-around 1,16 --seed 1 --seeds 3 --ops 2000 \
	--shrink-seconds 5 \
	${USPF_DIFF_ARGS:-}
