#!/bin/sh
# SPDX-License-Identifier: MIT
#
# sanitize.sh - build uspf out of tree with AddressSanitizer and
# UndefinedBehaviorSanitizer (build-asan/, configure
# --enable-sanitizers=address,undefined), and with ThreadSanitizer
# (build-tsan/, --enable-sanitizers=thread), then run `uspf torture` for
# every policy under each.
# Prints one line per run; exits 1 if any build or run failed (a sanitizer
# report, a torture FAIL, or any other non-zero exit).
#
# Only the command is built (--disable-tests, `make uspf`): TSan cannot run
# under Criterion 2.4.1 and ASan's leak reports do not fail Criterion tests,
# so the torture - a plain program - is where both are enforced.
#
# Usage: scripts/sanitize.sh [asan] [tsan]      (default: both)
# Environment: TORTURE_SECONDS (default 2), TORTURE_SEED (default 1),
#              JOBS (make -j, default 2).
# Each run's full output is kept in build-<kind>/torture-<policy>.log.
#
# An out-of-tree build needs a source tree that is not configured in place
# (configure refuses otherwise).  If the tree is configured (config.status
# at the top), its files - what `git ls-files` lists, tracked or not
# ignored - are copied to build-sanitize-src/ and that copy is configured.

set -u

TOP=$(cd "$(dirname "$0")/.." && pwd) || exit 1
SECS=${TORTURE_SECONDS:-2}
SEED=${TORTURE_SEED:-1}
JOBS=${JOBS:-2}
KINDS=${*:-asan tsan}
POLICIES="spf mmap-lock spf-adaptive pervma-rwsem pervma-refcnt spf-v12"
failed=0

say() {
	printf '%s\n' "$*"
}

# The tree to configure from: the top, or a clean copy of it.
source_tree() {
	if [ ! -f "$TOP/config.status" ]; then
		SRC=$TOP
	else
		if ! command -v git >/dev/null 2>&1 || ! git -C "$TOP" rev-parse >/dev/null 2>&1; then
			say "sanitize: $TOP is configured in place and is not a git checkout: run 'make distclean' there first"
			exit 1
		fi
		SRC=$TOP/build-sanitize-src
		rm -rf "$SRC"
		mkdir -p "$SRC" || exit 1
		(cd "$TOP" && git ls-files -co --exclude-standard) | while IFS= read -r f; do
			case "$f" in build-*) continue ;; esac
			[ -f "$TOP/$f" ] || continue
			mkdir -p "$SRC/$(dirname "$f")" && cp -p "$TOP/$f" "$SRC/$f"
		done
	fi
	if [ ! -x "$SRC/configure" ]; then
		(cd "$SRC" && autoreconf -fi >"$SRC/autoreconf.log" 2>&1) || {
			say "sanitize: autoreconf failed: see $SRC/autoreconf.log"
			exit 1
		}
	fi
}

build() {
	kind=$1
	sanitizers=$2
	dir=$TOP/build-$kind

	mkdir -p "$dir" || return 1
	# configure adds -fsanitize=... -fno-omit-frame-pointer to every compile
	# and link, and checks that the compiler can link with them.
	if ! (cd "$dir" && "$SRC/configure" -q --disable-tests \
			--enable-sanitizers="$sanitizers" \
			CFLAGS="-O1 -g" >"$dir/configure.log" 2>&1); then
		say "$kind: configure failed: see $dir/configure.log"
		return 1
	fi
	# A build without the sanitizers would pass every run: make sure.
	if ! grep -q "^SANITIZER_FLAGS = -fsanitize=$sanitizers " "$dir/Makefile"; then
		say "$kind: configure did not set -fsanitize=$sanitizers: see $dir/Makefile"
		return 1
	fi
	if ! make -C "$dir" -j"$JOBS" uspf >"$dir/make.log" 2>&1; then
		say "$kind: build failed: see $dir/make.log"
		return 1
	fi
	say "$kind: built $dir/uspf"
}

# A sanitizer's report in a log, as one line.
report() {
	grep -m1 -E 'ERROR: AddressSanitizer|ERROR: LeakSanitizer|WARNING: ThreadSanitizer|ThreadSanitizer: |runtime error:|SUMMARY: (Address|Thread|UndefinedBehavior|Leak)Sanitizer' "$1"
}

run_one() {
	kind=$1
	policy=$2
	dir=$TOP/build-$kind
	log=$dir/torture-$policy.log
	start=$(date +%s)

	case $kind in
	asan)
		ASAN_OPTIONS="detect_leaks=1:halt_on_error=1:abort_on_error=0" \
		UBSAN_OPTIONS="halt_on_error=1:print_stacktrace=1" \
			"$dir/uspf" torture --policy "$policy" --seconds "$SECS" --seed "$SEED" \
			>"$log" 2>&1
		;;
	tsan)
		TSAN_OPTIONS="halt_on_error=1 second_deadlock_stack=1 history_size=7 suppressions=$TOP/scripts/tsan.supp" \
			"$dir/uspf" torture --policy "$policy" --seconds "$SECS" --seed "$SEED" \
			>"$log" 2>&1
		;;
	esac
	status=$?
	took=$(($(date +%s) - start))
	what=$(report "$log")
	result=$(grep -E '^(PASS|FAIL: )' "$log" | tail -n 1)
	if [ "$status" -eq 0 ] && [ -z "$what" ]; then
		printf '%-5s %-14s ok    %3ss  %s\n' "$kind" "$policy" "$took" "$result"
		return 0
	fi
	printf '%-5s %-14s FAIL  %3ss  exit %s: %s (%s)\n' "$kind" "$policy" "$took" "$status" \
		"${what:-${result:-no result line}}" "$log"
	return 1
}

source_tree
for kind in $KINDS; do
	case $kind in
	asan) sanitizers=address,undefined ;;
	tsan) sanitizers=thread ;;
	*)
		say "sanitize: unknown kind '$kind' (accepted: asan, tsan)"
		exit 2
		;;
	esac
	if ! build "$kind" "$sanitizers"; then
		failed=1
		continue
	fi
	for policy in $POLICIES; do
		run_one "$kind" "$policy" || failed=1
	done
done
exit $failed
