#!/bin/sh
# SPDX-License-Identifier: MIT
#
# uspf-run.sh - what `uspf run` promises around the program, beyond its
# memory (issue 10):
#   - --stats FILE: a relative path is made absolute before the program
#     starts, so a process that changes directory still writes its line
#     there; a path that cannot be written is exit 2 and the program never
#     runs; `--stats -- prog` is a missing value (exit 2), not a file "--";
#     a process that overwrites its environment (as redis rewrites its
#     title) or drops to nobody still writes its line (the file was opened
#     at its start); a process that cannot open it, or whose write at exit
#     fails, says so.
#   - a program started with RLIMIT_NOFILE 29 sees its fds and its limit
#     as natively: uspf's descriptors are above it, and fstat() on them is
#     EBADF as for a free number.
#   - USPF_PRELOAD naming no file: exit 2, one line.
#   - unprivileged (user-mode-only userfaultfd): "uspf is off" once per run,
#     not once per process.
#   - an ASan program runs when the ASan runtime is named in LD_PRELOAD.
#   - scripts/bench-processes.sh runs and prints its table.
#
# Automake test protocol: exit 0 pass, 77 skip, 1 fail.  Needs USPF_BIN and
# USPF_PRELOAD_LIB (set by `make check`); by hand from the top of a built
# tree: USPF_BIN=./uspf USPF_PRELOAD_LIB=.libs/libuspf-preload.so sh tests/uspf-run.sh
set -u
USPF=$(cd "$(dirname "${USPF_BIN:-./uspf}")" && pwd)/$(basename "${USPF_BIN:-./uspf}")
LIB=${USPF_PRELOAD_LIB:-.libs/libuspf-preload.so}
SRCDIR=${USPF_SRCDIR:-.}
[ -x "$USPF" ] || { echo "skip: no uspf binary at $USPF"; exit 77; }
TMP=$(mktemp -d "${TMPDIR:-/tmp}/uspf-run.XXXXXX") || exit 1
trap 'rm -rf "$TMP"' EXIT
RUN="timeout -s KILL 60"
fails=0

fail() { echo "FAIL: $*"; fails=$((fails + 1)); }
ok() { echo "ok: $*"; }

# ---- --stats ----
mkdir "$TMP/cwd" "$TMP/elsewhere"
(cd "$TMP/cwd" && $RUN "$USPF" run --stats rel.json -- sh -c 'cd ../elsewhere && ls >/dev/null')
lines=$(cat "$TMP/cwd/rel.json" 2>/dev/null | grep -c '"pid"')
[ "$lines" -ge 2 ] && [ ! -e "$TMP/elsewhere/rel.json" ] &&
	ok "relative --stats is absolute: $lines lines in one file" ||
	fail "relative --stats: $lines lines in cwd/rel.json"

out=$($RUN "$USPF" run --stats "$TMP/missing/dir/x.json" -- sh -c 'echo RAN' 2>"$TMP/err"); rc=$?
[ $rc -eq 2 ] && [ -z "$out" ] && [ "$(wc -l <"$TMP/err")" -eq 1 ] &&
	ok "unwritable --stats: exit 2, one line, program not run" ||
	fail "unwritable --stats: rc $rc, out '$out', err $(cat "$TMP/err")"

(cd "$TMP" && $RUN "$USPF" run --stats -- sh -c 'echo RAN' >"$TMP/out" 2>"$TMP/err"); rc=$?
[ $rc -eq 2 ] && [ ! -s "$TMP/out" ] && [ ! -e "$TMP/--" ] &&
	ok "--stats -- prog: usage error" || fail "--stats -- prog: rc $rc, $(cat "$TMP/err")"

# A process that overwrites its whole environment block before exit.
cat >"$TMP/wipe.py" <<'PY'
import ctypes, os
libc = ctypes.CDLL(None)
environ = ctypes.POINTER(ctypes.c_char_p).in_dll(libc, "environ")
i = 0
while environ[i]:
    n = len(environ[i])
    ctypes.memset(environ[i], ord("x"), n)
    i += 1
x = [str(i) * 10 for i in range(100000)]
print(len(x))
PY
if command -v python3 >/dev/null 2>&1; then
	$RUN "$USPF" run --stats "$TMP/wipe.json" -- python3 "$TMP/wipe.py" >/dev/null
	grep -q '"program":"python3"' "$TMP/wipe.json" 2>/dev/null &&
		ok "a program that overwrites its environment still writes its line" ||
		fail "environment overwritten: no line in wipe.json"
fi

# setpriv(1) cannot be used under uspf (uspf(7), LIMITS): drop with python.
DROP="import os, sys; os.setgroups([]); os.setresgid(65534, 65534, 65534); os.setresuid(65534, 65534, 65534)"
if [ "$(id -u)" = 0 ] && command -v python3 >/dev/null 2>&1; then
	chmod 0711 "$TMP"
	$RUN "$USPF" run --stats "$TMP/drop.json" -- python3 -c "$DROP; x = [0] * 1000000; print(len(x))" \
		>/dev/null 2>"$TMP/err"
	grep -q '"program":"python3"' "$TMP/drop.json" &&
		ok "a process that drops to nobody writes its line" ||
		fail "privilege drop: $(grep -c '"pid"' "$TMP/drop.json") lines; $(cat "$TMP/err")"
	# A child exec'd as nobody cannot open a root-only file: it says so.
	# (nobody may not reach the build tree - a clone in a 0700 directory -
	# so the module it loads is a copy it can reach.)
	pub=$(mktemp -d /tmp/uspf-nobody.XXXXXX); chmod 0755 "$pub"
	cp "$LIB" "$pub/"
	touch "$TMP/root.json"; chmod 0600 "$TMP/root.json"
	USPF_PRELOAD=$pub/libuspf-preload.so $RUN "$USPF" run --stats "$TMP/root.json" -- \
		python3 -c "$DROP; os.execvp('sh', ['sh', '-c', 'echo x'])" >/dev/null 2>"$TMP/err"
	rm -rf "$pub"
	grep -q "writes no stats line" "$TMP/err" &&
		ok "a process that cannot open the stats file says so" ||
		fail "unopenable stats file: stderr was: $(cat "$TMP/err")"
fi

# A write that fails at exit is said, and the program's status is its own.
out=$($RUN "$USPF" run --stats /dev/full -- sh -c 'echo hi; exit 3' 2>"$TMP/err"); rc=$?
[ $rc -eq 3 ] && [ "$out" = hi ] && grep -q "cannot write its stats line to /dev/full" "$TMP/err" &&
	ok "a stats write that fails at exit is said; the exit status stays the program's" ||
	fail "stats write failure: rc $rc, out '$out', err $(cat "$TMP/err")"

# ---- descriptors: a program with a low fd limit keeps its whole range ----
if command -v python3 >/dev/null 2>&1; then
	# Python's test_subprocess does this at 29: uspf must not land below it.
	cat >"$TMP/lowfd.py" <<'PY'
import os, resource
soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
if hard < 1024:
    print("skip")
else:
    x = [bytes(1000) for _ in range(5000)]      # the heap starts the runtime
    seen = []
    for fd in range(0, 1024):
        try:
            os.fstat(fd)
            seen.append(fd)
        except OSError:
            pass
    print(",".join(map(str, seen)), soft)
PY
	under=$($RUN "$USPF" run -- sh -c 'ulimit -Sn 29; exec python3 "$0"' "$TMP/lowfd.py" 2>&1)
	native=$(sh -c 'ulimit -Sn 29; exec python3 "$0"' "$TMP/lowfd.py" 2>&1)
	[ "$native" = "$under" ] && ok "fd limit 29: the program's fds and limit as natively ($under)" ||
		fail "fd limit 29: natively '$native', under uspf '$under'"
fi

# ---- USPF_PRELOAD ----
USPF_PRELOAD=/nonexistent/libuspf-preload.so $RUN "$USPF" run -- true 2>"$TMP/err"; rc=$?
[ $rc -eq 2 ] && [ "$(wc -l <"$TMP/err")" -eq 1 ] && ok "USPF_PRELOAD missing: exit 2" ||
	fail "USPF_PRELOAD missing: rc $rc"

# ---- unprivileged: one "uspf is off" line per run ----
if [ "$(id -u)" = 0 ] && command -v setpriv >/dev/null 2>&1 &&
   [ "$(cat /proc/sys/vm/unprivileged_userfaultfd 2>/dev/null)" = 0 ]; then
	# nobody may not reach the build tree (a clone in a 0700 directory).
	pub=$(mktemp -d /tmp/uspf-nobody.XXXXXX); chmod 0755 "$pub"
	cp "$USPF" "$LIB" "$pub/"
	out=$(cd / && USPF_PRELOAD=$pub/libuspf-preload.so $RUN setpriv --reuid=65534 \
		--regid=65534 --clear-groups "$pub/uspf" run -- sh -c \
		'sh -c "echo one"; sh -c "echo two"; echo three' 2>"$TMP/err")
	n=$(grep -c "uspf is off" "$TMP/err")
	rm -rf "$pub"
	[ "$n" -eq 1 ] && [ "$(echo $out)" = "one two three" ] &&
		ok "unprivileged: one 'uspf is off' line for a 3-process run" ||
		fail "unprivileged: $n lines, output '$out'"
fi

# ---- ASan ----
asan=$(${USPF_CC:-cc} -print-file-name=libasan.so 2>/dev/null)
if [ -f "$asan" ] && printf '#include <stdio.h>\n#include <stdlib.h>\n#include <string.h>\nint main(void){char*p=malloc(1<<22);memset(p,7,1<<22);printf("%%d\\n",p[12345]);free(p);return 0;}\n' |
   ${USPF_CC:-cc} -fsanitize=address -x c -o "$TMP/asan" - 2>/dev/null; then
	out=$(LD_PRELOAD=$asan $RUN "$USPF" run -- "$TMP/asan" 2>"$TMP/err")
	[ "$out" = 7 ] && ok "an ASan program runs with the ASan runtime first in LD_PRELOAD" ||
		fail "ASan: '$out' $(head -c 300 "$TMP/err")"
fi

# ---- the process-cost benchmark runs ----
if [ -x "$SRCDIR/scripts/bench-processes.sh" ]; then
	USPF_BIN=$USPF $RUN sh "$SRCDIR/scripts/bench-processes.sh" 10 1 >"$TMP/bp" 2>&1
	[ "$(grep -cE '^(subshell|cmdsubst|true|echo) ' "$TMP/bp")" -eq 4 ] &&
		ok "bench-processes.sh prints its four loops" ||
		fail "bench-processes.sh: $(cat "$TMP/bp")"
fi

[ $fails -eq 0 ] || { echo "$fails failed"; exit 1; }
exit 0
