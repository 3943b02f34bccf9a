#!/bin/sh
# SPDX-License-Identifier: MIT
#
# examples.sh - run every program in examples/ briefly: each must exit 0,
# say OK, and print uspf's statistics with faults > 0; malloc --policy all
# must print one line per policy; slab --no-revalidate must (in a run long
# enough) catch a reader using a recycled object.  A bad --policy, and a
# bad value of each example's own flags, must give exit 2 and one line on
# stderr naming the flag.  Small sizes and short runs: the whole test takes
# a few seconds.
#
# Automake test protocol: exit 0 pass, 77 skip, 1 fail.  Runs from the
# build directory; EXAMPLES_DIR overrides where the examples are.

EXAMPLES_DIR=${EXAMPLES_DIR:-./examples}
TMP=$(mktemp -d "${TMPDIR:-/tmp}/examples.XXXXXX") || exit 1
trap 'rm -rf "$TMP"' EXIT

fail() {
	echo "FAIL: $*" >&2
	exit 1
}

# A hung fault would hang the test: bound every run.
if command -v timeout >/dev/null 2>&1; then
	RUN="timeout 120"
else
	RUN=""
fi

run() {
	prog=$1
	shift
	echo "+ $prog $*" >&2
	$RUN "$EXAMPLES_DIR/$prog" "$@" >"$TMP/out" 2>"$TMP/err"
	rc=$?
	cat "$TMP/out" "$TMP/err" >&2
	return $rc
}

# An example run that must pass: exit 0, "<prog>: OK", and faults > 0.
pass() {
	prog=$1
	run "$@" || fail "'$*' exited $? ($(cat "$TMP/err"))"
	grep -q "^$prog: OK\$" "$TMP/out" || fail "'$*' did not say OK"
	grep -Eq '^  faults [1-9][0-9]*, pages' "$TMP/out" || fail "'$*' shows no faults"
}

# A usage error: exit 2, one line on stderr naming the flag, nothing on stdout.
usage_error() {
	want=$1
	shift
	run "$@"
	rc=$?
	[ "$rc" -eq 2 ] || fail "'$*' exited $rc, expected 2"
	lines=$(wc -l <"$TMP/err")
	[ "$lines" -eq 1 ] || fail "'$*' wrote $lines lines on stderr"
	grep -q -- "$want" "$TMP/err" || fail "'$*' error does not name $want"
	[ -s "$TMP/out" ] && fail "'$*' wrote to stdout"
	return 0
}

for prog in arena slab malloc pager; do
	[ -x "$EXAMPLES_DIR/$prog" ] || fail "$EXAMPLES_DIR/$prog is not an executable (make builds it)"
done

# ---- a bad --policy: one line naming the flag and every accepted name ----
for prog in arena slab malloc pager; do
	usage_error --policy "$prog" --policy nope
	grep -q "'nope'" "$TMP/err" || fail "$prog does not name the bad value"
done
POLICIES=$(sed 's/.*one of //; s/,//g' "$TMP/err")
for p in spf mmap-lock; do
	echo " $POLICIES " | grep -q " $p " || fail "accepted names '$POLICIES' lack $p"
done

# ---- arena: pattern intact, writes read back, pages fault again after the reset ----
pass arena --size 1M --rounds 2
grep -q '^reset: MADV_DONTNEED' "$TMP/out" || fail "arena did not reset"
round2=$(sed -n 's/^round 2: .*; \([0-9]*\) faults$/\1/p' "$TMP/out")
[ "${round2:-0}" -gt 0 ] || fail "arena: no faults after the reset"
pass arena --size 256K --rounds 1 --policy pervma-refcnt

# ---- slab: type-safe by RCU, revalidating; free after a grace period ----
pass slab --seconds 0.2
pass slab --seconds 0.2 --mode rcu --policy mmap-lock
grep -q 'on a recycled one' "$TMP/out" || fail "slab prints no recycled count"
# Without revalidation a reader ends up with a recycled object: wide window, a few tries.
caught=0
for try in 1 2 3; do
	pass slab --seconds 0.3 --no-revalidate --window 100
	caught=$(sed -n 's/^readers: \([0-9]*\) times used an object recycled.*/\1/p' "$TMP/out")
	[ "${caught:-0}" -gt 0 ] && break
done
[ "${caught:-0}" -gt 0 ] || fail "slab --no-revalidate never caught a recycled object"

# ---- malloc: every policy in turn, one line each, faults in each ----
pass_all() {
	run malloc "$@" || fail "'malloc $*' exited $? ($(cat "$TMP/err"))"
	grep -q '^malloc: OK$' "$TMP/out" || fail "'malloc $*' did not say OK"
	for p in $POLICIES; do
		n=$(awk -v p="$p" '$1 == p { print $5 }' "$TMP/out")
		[ "${n:-0}" -gt 0 ] || fail "malloc --policy all: no faults on a '$p' line"
	done
}
pass_all --policy all --seconds 0.1
pass malloc --policy spf --seconds 0.1 --threads 2 --churn-threads 1 --large 64K

# ---- pager: a temporary file, and a named one (this script) ----
pass pager --size 300K --reads 200
pass pager --file "$0" --reads 50 --rounds 2 --threads 1 --policy pervma-rwsem

# ---- each example's own flags ----
usage_error --size arena --size 3X
usage_error --rounds arena --rounds 0
usage_error --mode slab --mode sometimes
usage_error --readers slab --readers 0
usage_error --seconds malloc --seconds 0
usage_error --large malloc --large 1K
usage_error --file pager --file "$TMP/nonexistent"
usage_error --threads pager --threads 65
usage_error --bogus arena --bogus
usage_error --seconds slab --seconds

echo "examples: all checks passed"
exit 0
