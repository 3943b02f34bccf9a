#!/bin/sh
# SPDX-License-Identifier: MIT
#
# compare.sh - `uspf compare` on real programs: a target that forks,
# threads and writes memory (tests/targets/t_fork_threads) under two
# policies - the table's rows, the JSON's fields, the processes counted
# whole; every policy on a short target; a program whose output depends on
# the policy (USPF_POLICY, which uspf run sets) reported as differing, exit
# 1; --output-digest; a program killed by a signal; CSV and --plot; usage
# errors (exit 2, one line, nothing run).
#
# Automake test protocol: exit 0 pass, 77 skip, 1 fail.

USPF_BIN=${USPF_BIN:-./uspf}
TARGETS=${USPF_TARGETS:-$(dirname "$0")/targets}
TMP=$(mktemp -d "${TMPDIR:-/tmp}/compare.XXXXXX") || exit 1
trap 'rm -rf "$TMP"' EXIT

fail() {
	echo "FAIL: $*" >&2
	exit 1
}

[ -x "$USPF_BIN" ] || fail "USPF_BIN=$USPF_BIN is not an executable"
[ -x "$TARGETS/t_fork_threads" ] || { echo "no $TARGETS/t_fork_threads: skipped"; exit 77; }
if "$USPF_BIN" run -- true 2>&1 | grep -q 'user-mode faults only'; then
	echo "no full userfaultfd here: skipped"
	exit 77
fi
RUN="timeout 600"
command -v timeout >/dev/null 2>&1 || RUN=""
HAVE_PYTHON=
command -v python3 >/dev/null 2>&1 && HAVE_PYTHON=1

cmp_run() {
	echo "+ uspf compare $*" >&2
	$RUN "$USPF_BIN" compare "$@" >"$TMP/out" 2>"$TMP/err"
}

# ---- forks, threads, memory: two policies, two repeats, JSON ----
cmp_run --quiet --repeat 2 --policy spf,pervma-refcnt --format json -- "$TARGETS/t_fork_threads" ||
	fail "compare t_fork_threads exited $?: $(cat "$TMP/err")"
[ -s "$TMP/err" ] && fail "--quiet wrote to stderr: $(cat "$TMP/err")"
[ -z "$HAVE_PYTHON" ] || python3 - "$TMP/out" <<'EOF' || fail "t_fork_threads JSON"
import json, sys
d = json.load(open(sys.argv[1]))
assert d["repeat"] == 2 and d["checked"] == "stdout", d
assert [r["policy"] for r in d["rows"]] == ["native", "spf", "pervma-refcnt"], d["rows"]
for r in d["rows"]:
    assert r["result"] == "ok", r
    assert len(r["wall_s"]["runs"]) == 2, r
    w = r["wall_s"]
    assert 0 < w["min"] <= w["hmean"] <= w["max"], r
    assert r["peak_rss_kib"] > 0, r
    if r["policy"] == "native":
        assert r["ratio_native"] == 1.0 and r["processes"] == 1, r
        continue
    # 100 forked children, each a process with its own stats line
    assert r["processes"] >= 100, r
    assert r["faults"] > 0 and r["pages"] > 0, r
    assert r["handle_p50_ns"] <= r["handle_p99_ns"], r
    assert r["speculative"] + r["vma_lock"] + r["mmap_lock"] >= r["faults"] * 0.99, r
print("t_fork_threads: ok")
EOF

# ---- every policy, the table ----
cmp_run --quiet --repeat 1 -- "$TARGETS/t_mmap" || fail "compare t_mmap exited $?: $(cat "$TMP/err")"
for p in native spf mmap-lock spf-adaptive pervma-rwsem pervma-refcnt spf-v12; do
	grep -q "^$p  .* ok\$" "$TMP/out" || fail "no ok row for $p: $(cat "$TMP/out")"
done
grep -q '^# uspf .* compare: ' "$TMP/out" || fail "no header: $(cat "$TMP/out")"

# ---- progress on stderr without --quiet; run options in the header ----
cmp_run --repeat 1 --policy spf --handlers 1 --no-heap -- "$TARGETS/t_mmap" ||
	fail "compare with run options exited $?"
grep -q '\[2/2\] spf' "$TMP/err" || fail "no progress: $(cat "$TMP/err")"
grep -q 'uspf run options: --handlers 1 --no-heap' "$TMP/out" || fail "options not in the header"

# ---- output that depends on the policy: reported, exit 1 ----
cmp_run --quiet --repeat 1 --policy spf,mmap-lock -- sh -c 'echo policy=$USPF_POLICY'
rc=$?
[ $rc -eq 1 ] || fail "a differing output exited $rc"
grep -q '^spf .* DIFFERS$' "$TMP/out" || fail "spf not DIFFERS: $(cat "$TMP/out")"
grep -q 'run 1: standard output differs: first difference at byte 7 (line 1)' "$TMP/out" ||
	fail "no 'where': $(cat "$TMP/out")"

# ---- --output-digest: the named file, not stdout ----
cat >"$TMP/w.sh" <<'EOF'
#!/bin/sh
echo "run at $$"
printf 'same\n' >"$1"
EOF
chmod +x "$TMP/w.sh"
cmp_run --quiet --repeat 2 --policy spf --output-digest "$TMP/o.txt" -- "$TMP/w.sh" "$TMP/o.txt" ||
	fail "same file, different stdout, exited $? under --output-digest"
cat >"$TMP/w2.sh" <<'EOF'
#!/bin/sh
echo "policy ${USPF_POLICY:-none}" >"$1"
EOF
chmod +x "$TMP/w2.sh"
cmp_run --quiet --repeat 1 --policy spf --output-digest "$TMP/o2.txt" -- "$TMP/w2.sh" "$TMP/o2.txt"
[ $? -eq 1 ] || fail "a differing --output-digest file passed"
grep -q "o2.txt differs: first difference at byte 7" "$TMP/out" || fail "no file diff: $(cat "$TMP/out")"

# ---- --stdin: every run reads the file ----
printf 'line one\nline two\n' >"$TMP/in.txt"
cmp_run --quiet --repeat 2 --policy spf --stdin "$TMP/in.txt" --output-digest "$TMP/copy.txt" \
	-- sh -c "cat >'$TMP/copy.txt'" || fail "--stdin exited $?: $(cat "$TMP/out")"
cmp -s "$TMP/in.txt" "$TMP/copy.txt" || fail "the program did not read --stdin"

# ---- killed by a signal: said in its row ----
cmp_run --quiet --repeat 1 --policy spf --format csv -- sh -c 'kill -SEGV $$'
[ $? -eq 0 ] || fail "killed alike in every run is no difference"
grep -q '^spf,.*,killed$' "$TMP/out" || fail "no killed row: $(cat "$TMP/out")"
head -1 "$TMP/out" | grep -q '^policy,wall_s_hmean,' || fail "no CSV header"
cols=$(awk -F, '{print NF}' "$TMP/out" | sort -u | wc -l)
[ "$cols" -eq 1 ] || fail "CSV rows of different lengths: $(cat "$TMP/out")"

# ---- --plot ----
if command -v gnuplot >/dev/null 2>&1; then
	cmp_run --quiet --repeat 2 --policy spf --plot "$TMP/c.svg" -- true ||
		fail "--plot exited $?: $(cat "$TMP/err")"
	grep -q '<svg' "$TMP/c.svg" || fail "no SVG"
fi

# ---- usage errors: one line, exit 2, nothing run ----
usage() {
	want=$1
	shift
	"$USPF_BIN" compare "$@" >"$TMP/out" 2>"$TMP/err"
	rc=$?
	[ $rc -eq 2 ] || fail "'compare $*' exited $rc"
	[ "$(wc -l <"$TMP/err")" -eq 1 ] || fail "'compare $*': $(cat "$TMP/err")"
	grep -q -- "$want" "$TMP/err" || fail "'compare $*' does not name $want: $(cat "$TMP/err")"
	[ -e "$TMP/ran" ] && fail "'compare $*' ran the program"
	cat "$TMP/err" >&2
}
usage --policy --policy nope -- touch "$TMP/ran"
usage --repeat --repeat 0 -- touch "$TMP/ran"
usage "not found" -- no-such-program-here
usage "not an executable" -- "$TMP"
usage --spin-us --spin-us 20000 -- touch "$TMP/ran"
usage "no program" --repeat 2
usage --bogus --bogus -- touch "$TMP/ran"

echo "compare: all checks passed"
exit 0
