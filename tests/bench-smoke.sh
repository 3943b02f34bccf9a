#!/bin/sh
# SPDX-License-Identifier: MIT
#
# bench-smoke.sh - smoke test of `uspf bench` (and the command's dispatch):
# a tiny pft run in JSON with every expected row present and non-zero, the
# table format, CSV (one header, a consistent column count, numeric fields),
# --plot (a non-empty SVG; skipped without gnuplot), every other workload
# (page_fault1, malloc1, spf_test, execl, random: tiny sizes, short runs,
# every policy and both references, each row's faults and counters sane;
# --workload lists and all), the vmas and index workloads, --help, and
# usage errors (exit 2 with one line on stderr).  The JSON checks need
# python3 and are skipped without it.  Not a timed assertion: no figure is
# compared with another.
#
# Automake test protocol: exit 0 pass, 77 skip, 1 fail.  USPF_BIN names the
# built command (set by the Makefile); default ./uspf.

USPF_BIN=${USPF_BIN:-./uspf}
TMP=$(mktemp -d "${TMPDIR:-/tmp}/bench-smoke.XXXXXX") || exit 1
trap 'rm -rf "$TMP"' EXIT

fail() {
	echo "FAIL: $*" >&2
	exit 1
}

HAVE_PYTHON=
if command -v python3 >/dev/null 2>&1; then
	HAVE_PYTHON=1
else
	echo "note: python3 not found: the JSON checks are skipped" >&2
fi
if [ ! -x "$USPF_BIN" ]; then
	fail "USPF_BIN=$USPF_BIN is not an executable"
fi

# A hung fault would hang the test: bound every run.
if command -v timeout >/dev/null 2>&1; then
	RUN="timeout 300"
else
	RUN=""
fi

run() {
	echo "+ uspf $*" >&2
	$RUN "$USPF_BIN" "$@" >"$TMP/out" 2>"$TMP/err"
}

# ---- pft, JSON: every row present, every rate positive ----
run bench --workload pft --size 4M --iterations 1 --threads 1,2 --format json ||
	fail "bench --format json exited $? ($(cat "$TMP/err"))"
[ -z "$HAVE_PYTHON" ] || python3 - "$TMP/out" <<'EOF' || fail "pft JSON check"
import json, sys
doc = json.load(open(sys.argv[1]))
for key in ("uspf_version", "machine", "results"):
    assert key in doc, "missing top-level key %s" % key
assert doc["machine"]["cpus"] >= 1
rows = doc["results"]
for policy in ("spf", "mmap-lock", "native", "naive", "raw"):
    for threads in (1, 2):
        hits = [r for r in rows if r["policy"] == policy and r["threads"] == threads]
        assert len(hits) == 1, "%d rows for %s/%d threads" % (len(hits), policy, threads)
        r = hits[0]
        assert r["workload"] == "pft"
        assert r["faults"] == 1024, r
        assert r["faults_per_sec"] > 0, r
        assert r["faults_per_sec_per_cpu"] > 0, r
        assert r["spread"]["min"] <= r["faults_per_sec"] <= r["spread"]["max"] * 1.000001, r
        lat = r["latency_ns"]
        assert lat["p50"] <= lat["p90"] <= lat["p99"], r
        assert lat["max"] >= lat["p50"] * 15 / 16, r
        assert r["spread"]["stddev"] >= 0 and r["spread"]["cov_pct"] >= 0, r
        assert isinstance(r["counters"], dict)
        assert r["ratio_native"] > 0 and r["ratio_naive"] > 0, r
        if policy == "naive":
            assert r["handlers"] == 1, r
            assert r["counters"].get("pages", 0) + r["counters"].get("eexist", 0) >= 1024, r
        if policy in ("spf", "mmap-lock"):
            # the protocol's cost, against the same handlers with no model
            assert r["ratio_raw"] > 0, r
        else:
            assert r["ratio_raw"] is None, r
        if policy == "raw":
            assert r["counters"].get("spf_attempt", 1) == 0, r
            assert r["counters"].get("mmap_lock_fault", 1) == 0, r
        if policy in ("spf", "mmap-lock", "raw"):
            assert r["counters"].get("pages", 0) >= 1024, r
            # every uspf counter, zero or not
            assert "vma_lock_wrong_mm" in r["counters"], r
            assert r["handler_latency_ns"]["p90"] <= r["handler_latency_ns"]["max"], r
print("pft JSON: %d rows ok" % len(rows))
EOF

# ---- handler settings compared in one run: a raw row and a policy row each ----
run bench --workload pft --size 1M --iterations 1 --threads 1 --policy spf \
	--handlers 1,2 --spin-us 0,50 --format json ||
	fail "bench with handler lists exited $? ($(cat "$TMP/err"))"
[ -z "$HAVE_PYTHON" ] || python3 - "$TMP/out" <<'EOF' || fail "handler variants JSON check"
import json, sys
rows = json.load(open(sys.argv[1]))["results"]
for policy in ("raw", "spf"):
    got = sorted((r["handlers"], r["spin_us"], r["variant"]) for r in rows if r["policy"] == policy)
    want = sorted([(1, 0, "handlers=1 spin_us=0"), (2, 0, "handlers=2 spin_us=0"),
                   (1, 50, "handlers=1 spin_us=50"), (2, 50, "handlers=2 spin_us=50")])
    assert got == want, (policy, got)
for r in rows:
    if r["policy"] == "spf":
        raw = [x for x in rows if x["policy"] == "raw" and x["variant"] == r["variant"]][0]
        assert abs(r["ratio_raw"] - r["faults_per_sec"] / raw["faults_per_sec"]) < 1e-3, r
    if r["policy"] in ("native", "naive"):
        assert r["variant"] is None, r
print("handler variants: ok")
EOF

# ---- several pages per fault: the header says so, and what native did ----
run bench --workload pft --size 1M --iterations 1 --threads 1 --policy spf --folio-pages 16 ||
	fail "bench --folio-pages 16 exited $? ($(cat "$TMP/err"))"
grep -q '^# uspf: 16 pages per fault, the analogue of 64K large folios' "$TMP/out" ||
	fail "no folio header: $(cat "$TMP/out")"
grep -q '^# native folio=64K: ' "$TMP/out" || fail "no native folio line: $(cat "$TMP/out")"
run bench --workload pft --size 1M --iterations 1 --threads 1 --policy spf ||
	fail "bench exited $? ($(cat "$TMP/err"))"
grep -q '^# uspf: one page per fault, as the kernel' "$TMP/out" ||
	fail "the default is not one page per fault: $(cat "$TMP/out")"

# ---- pft, table ----
run bench --workload pft --size 1M --iterations 1 --threads 1 --policy spf ||
	fail "bench (table) exited $? ($(cat "$TMP/err"))"
grep -q 'Hmean faults/s' "$TMP/out" || fail "table has no header"
for policy in native naive raw spf; do
	grep -q "^pft *$policy " "$TMP/out" || fail "table has no $policy row"
done
grep -q 'vs_raw=' "$TMP/out" || fail "table has no vs_raw"
grep -q 'cpu_dma_latency' "$TMP/out" || fail "table does not say what --pm-qos did"
run bench --pm-qos sometimes && fail "--pm-qos sometimes accepted"
[ "$(wc -l <"$TMP/err")" -eq 1 ] && grep -q -- '--pm-qos' "$TMP/err" ||
	fail "--pm-qos sometimes said: $(cat "$TMP/err")"

# ---- pft, CSV: one header, one line per row, the same column count on
# every line, numeric fields numeric (or empty: no such value) ----
run bench --workload pft --size 1M --iterations 1 --threads 1,2 --policy spf --format csv ||
	fail "bench --format csv exited $? ($(cat "$TMP/err"))"
awk -F, '
NR == 1 {
	if ($1 != "workload" || $2 != "policy")
		bad("header starts " $1 "," $2)
	cols = NF
	for (i = 1; i <= NF; i++) {
		col[$i] = i
		name[i] = $i
	}
	for (i = split("threads variant ops_per_sec faults_per_sec faults_per_sec_per_cpu faults_per_sec_cov_pct latency_p90_ns latency_max_ns ratio_native ratio_naive counter_pages counter_minflt", want, " "); i > 0; i--)
		if (!(want[i] in col))
			bad("no column " want[i])
	next
}
function bad(msg) { print "csv line " NR ": " msg; failed = 1; exit 1 }
{
	if (NF != cols)
		bad(NF " fields, header has " cols)
	for (i = 1; i <= NF; i++) {
		if (name[i] == "workload" || name[i] == "policy" || name[i] == "intake" ||
		    name[i] == "variant" || name[i] == "ops_name")
			continue
		if ($i != "" && $i !~ /^-?[0-9]+(\.[0-9]+)?$/)
			bad(name[i] " is \"" $i "\"")
	}
	if ($col["workload"] != "pft" || !($col["faults_per_sec"] > 0))
		bad("not a pft row with a positive rate")
	if ($col["policy"] == "spf" && !($col["counter_pages"] >= 256))
		bad("spf row with counter_pages \"" $col["counter_pages"] "\"")
	rows[$col["policy"] "/" $col["threads"]]++
}
END {
	if (failed)
		exit 1
	if (NR != 9)
		bad(NR - 1 " rows, expected 8")
	for (r in rows)
		if (rows[r] != 1)
			bad(rows[r] " rows for " r)
}' "$TMP/out" >&2 || fail "pft CSV check"
grep -q "$(printf '\r')" "$TMP/err" && fail "a progress line on a stderr that is not a terminal"
run bench --workload index --index-sizes 100 --format csv ||
	fail "bench --workload index --format csv exited $?"
[ "$(head -n 1 "$TMP/out")" = "workload,n,insert_ns,lookup_ns,erase_ns" ] ||
	fail "index CSV header: $(head -n 1 "$TMP/out")"
[ "$(wc -l <"$TMP/out")" -eq 2 ] || fail "index CSV: $(wc -l <"$TMP/out") lines"

# ---- --plot: an SVG from gnuplot, if there is one ----
if command -v gnuplot >/dev/null 2>&1; then
	run bench --workload pft --size 1M --iterations 1 --threads 1,2 --policy spf --format csv \
		--plot "$TMP/plot.svg" || fail "bench --plot exited $? ($(cat "$TMP/err"))"
	[ -s "$TMP/plot.svg" ] || fail "--plot wrote no $TMP/plot.svg"
	grep -q '<svg' "$TMP/plot.svg" || fail "--plot wrote no SVG"
	[ "$(wc -l <"$TMP/out")" -eq 9 ] || fail "--plot changed the CSV on stdout"
	ls "$TMP" | grep -q tmp && fail "--plot left a temporary file: $(ls "$TMP")"
else
	echo "note: gnuplot not found (Debian package gnuplot-nox): --plot not drawn" >&2
fi
# without gnuplot: a usage error before anything runs
echo "+ PATH=/nonexistent uspf bench --plot $TMP/none.svg" >&2
PATH=/nonexistent "$USPF_BIN" bench --plot "$TMP/none.svg" >"$TMP/out" 2>"$TMP/err"
rc=$?
[ "$rc" -eq 2 ] || fail "--plot without gnuplot exited $rc, expected 2"
[ "$(wc -l <"$TMP/err")" -eq 1 ] && grep -q 'gnuplot-nox' "$TMP/err" ||
	fail "--plot without gnuplot said: $(cat "$TMP/err")"
[ -s "$TMP/out" ] && fail "--plot without gnuplot wrote to stdout"
[ -e "$TMP/none.svg" ] && fail "--plot without gnuplot wrote a plot"
cat "$TMP/err" >&2
# ---- the harness's workloads, tiny: every row there, faults and counters sane ----
run bench --workload page_fault1,malloc1,spf_test,execl,random,ebizzy --size 1M --chunk-size 64K \
	--map-size 256K --churn-size 1M --file-size 64K --touch-pages 4 \
	--duration 0.05 --iterations 1 --threads 1,2 --format json ||
	fail "bench (harness workloads) exited $? ($(cat "$TMP/err"))"
[ -z "$HAVE_PYTHON" ] || python3 - "$TMP/out" <<'EOF' || fail "harness workloads JSON check"
import json, sys
doc = json.load(open(sys.argv[1]))
assert doc["workloads"] == ["page_fault1", "malloc1", "spf_test", "execl", "random", "ebizzy"], doc["workloads"]
rows = doc["results"]
policies = ("spf", "mmap-lock", "spf-adaptive", "pervma-rwsem", "pervma-refcnt", "spf-v12")
ops = {"page_fault1": "loops", "malloc1": "churn", "spf_test": "loops", "execl": "maps", "random": None,
       "ebizzy": "records"}
for wl in doc["workloads"]:
    for threads in (1, 2):
        for policy in ("native", "naive") + policies:
            hits = [r for r in rows if r["workload"] == wl and r["policy"] == policy
                    and r["threads"] == threads]
            want = 2 if wl == "execl" and policy in policies else 1
            assert len(hits) == want, "%d rows for %s %s/%d threads" % (len(hits), wl, policy, threads)
            for r in hits:
                where = "%s %s/%d %s" % (wl, policy, threads, r["variant"])
                assert r["faults"] > 0, where
                assert r["faults_per_sec"] > 0 and r["faults_per_sec_per_cpu"] > 0, where
                assert r["spread"]["min"] <= r["faults_per_sec"] <= r["spread"]["max"] * 1.000001, where
                assert 0 < r["latency_ns"]["p50"] <= r["latency_ns"]["p99"], where
                assert r["ratio_native"] > 0 and r["ratio_naive"] > 0, where
                assert r.get("ops_name") == ops[wl], where
                if ops[wl]:
                    assert r["ops_per_sec"] >= 0, where
                c = r["counters"]
                assert c.get("cpu_ns", 0) > 0 and "cpu_ns_per_fault" in c, where
                if policy == "native":
                    assert c.get("minflt", 0) > 0, where
                elif policy == "naive":
                    assert r["handlers"] == 1, where
                    assert c.get("pages", 0) + c.get("eexist", 0) >= r["faults"], where
                else:
                    assert c.get("pages", 0) >= r["faults"], where
                    assert c.get("faults_ended") == c.get("faults"), where
                if wl == "execl" and policy in policies:
                    assert r["variant"] in ("immap_reorder=on", "immap_reorder=off"), where
                    assert c.get("i_mmap_locks", 0) > 0 and c.get("i_mmap_hold_ns", 0) > 0, where
                if wl == "spf_test" and policy == "spf":
                    # anon_vma prepared lazily: at least the first fault fell back for it
                    assert c.get("spf_vma_noanon", 0) > 0, where
                    assert c.get("anon_vma_prepare", 0) > 0, where
    if wl == "execl":
        variants = set(r["variant"] for r in rows if r["workload"] == wl and r["policy"] == "spf")
        assert variants == {"immap_reorder=on", "immap_reorder=off"}, variants
print("harness workloads JSON: %d rows ok" % len(rows))
EOF

# ---- spf_test with anon_vma at mmap time: no first-fault fallback for it ----
run bench --workload spf_test --anon-vma-at-mmap --policy spf,pervma-rwsem --threads 2 \
	--loops 5 --iterations 1 --format json ||
	fail "bench --anon-vma-at-mmap exited $? ($(cat "$TMP/err"))"
[ -z "$HAVE_PYTHON" ] || python3 - "$TMP/out" <<'EOF' || fail "--anon-vma-at-mmap JSON check"
import json, sys
doc = json.load(open(sys.argv[1]))
assert doc["config"]["anon_vma_at_mmap"] is True
for r in doc["results"]:
    # 5 loops x 2 mappings x 10 pages, per thread
    assert r["faults"] == 200, r
    if r["policy"] in ("native", "naive"):
        continue
    c = r["counters"]
    assert r["variant"] == "anon_vma_at_mmap=on", r
    assert c.get("pages", 0) >= 200, r
    assert c.get("spf_vma_noanon", 0) == 0 and c.get("anon_vma_prepare", 0) == 0, r
print("anon_vma_at_mmap: ok")
EOF

# ---- --workload all (tiny), table: every workload's header and rows ----
run bench --workload all --policy spf --threads 1 --iterations 1 --size 256K --chunk-size 64K \
	--map-size 64K --churn-size 64K --file-size 16K --touch-pages 2 --duration 0.02 \
	--vmas 10 --index-sizes 100 ||
	fail "bench --workload all exited $? ($(cat "$TMP/err"))"
for wl in pft page_fault1 malloc1 spf_test execl random ebizzy vmas index; do
	grep -q "^# uspf .* bench $wl: " "$TMP/out" || fail "--workload all: no $wl header"
	grep -q "^$wl " "$TMP/out" || fail "--workload all: no $wl row"
done
for wl in pft page_fault1 malloc1 spf_test execl random ebizzy; do
	for policy in native naive spf; do
		grep -q "^$wl *$policy " "$TMP/out" || fail "--workload all: no $wl $policy row"
	done
done
grep -q 'immap_reorder=off' "$TMP/out" || fail "--workload all: no execl row without the reordering"
grep -q 'churn/s=' "$TMP/out" || fail "--workload all: no churn rate"

# ---- vmas, small N ----
run bench --workload vmas --vmas 10,100 --format json ||
	fail "bench --workload vmas exited $? ($(cat "$TMP/err"))"
[ -z "$HAVE_PYTHON" ] || python3 - "$TMP/out" <<'EOF' || fail "vmas JSON check"
import json, sys
rows = json.load(open(sys.argv[1]))["results"]
for policy in ("spf", "mmap-lock"):
    for n in (10, 100):
        hits = [r for r in rows if r["policy"] == policy and r["n"] == n]
        assert len(hits) == 1, "%d rows for vmas %s n=%d" % (len(hits), policy, n)
        assert hits[0]["map_ns_per_op"] > 0 and hits[0]["unmap_ns_per_op"] > 0, hits[0]
print("vmas JSON: %d rows ok" % len(rows))
EOF

# ---- index, small n ----
run bench --workload index --index-sizes 100,1000 --format json ||
	fail "bench --workload index exited $? ($(cat "$TMP/err"))"
[ -z "$HAVE_PYTHON" ] || python3 -c 'import json,sys; json.load(sys.stdin)' <"$TMP/out" ||
	fail "index JSON is not valid"

# ---- help and version ----
run bench --help || fail "bench --help exited $?"
grep -q -- '--workload' "$TMP/out" || fail "bench --help does not list --workload"
run --help || fail "--help exited $?"
grep -q 'bench' "$TMP/out" || fail "--help does not list bench"
run help bench || fail "help bench exited $?"
run --version || fail "--version exited $?"
grep -q '^uspf [0-9]' "$TMP/out" || fail "--version printed '$(cat "$TMP/out")'"

# ---- usage errors: exit 2, one line on stderr naming the culprit ----
usage_error() {
	want=$1
	shift
	run "$@"
	rc=$?
	[ "$rc" -eq 2 ] || fail "'uspf $*' exited $rc, expected 2"
	lines=$(wc -l <"$TMP/err")
	[ "$lines" -eq 1 ] || fail "'uspf $*' wrote $lines lines on stderr: $(cat "$TMP/err")"
	grep -q -- "$want" "$TMP/err" || fail "'uspf $*' error does not name $want: $(cat "$TMP/err")"
	[ -s "$TMP/out" ] && fail "'uspf $*' wrote to stdout"
	cat "$TMP/err" >&2
}

usage_error --threads bench --threads 0
usage_error --threads bench --threads 1,x
usage_error --size bench --size 3X
usage_error --iterations bench --iterations 0
usage_error --format bench --format xml
usage_error --plot bench --plot out.pdf
usage_error --plot bench --plot "$TMP/no/such/dir/out.svg"
usage_error --plot bench --workload vmas --plot "$TMP/out.svg"
usage_error --policy bench --policy nope
usage_error --workload bench --workload nope
usage_error --workload bench --workload pft,
usage_error --workload bench --workload pft,nope
usage_error --duration bench --duration 0
usage_error --duration bench --duration 1x
usage_error --loops bench --loops -1
usage_error --map-size bench --map-size 3X
usage_error --chunk-size bench --chunk-size 3X
usage_error --chunk-size bench --workload ebizzy --size 64K --chunk-size 128K
usage_error --churn-threads bench --churn-threads 2000
usage_error --churn-size bench --churn-size 0
usage_error --spf-vmas bench --spf-vmas 0
usage_error --spf-pages bench --spf-pages 100000
usage_error --file-size bench --file-size 2G
usage_error --touch-pages bench --touch-pages 0
usage_error --touch-pages bench --workload execl --file-size 16K --touch-pages 5
usage_error --immap-reorder bench --immap-reorder maybe
usage_error --size bench --workload malloc1 --size 4K --threads 2
usage_error --intake bench --intake nope
usage_error --folio-pages bench --folio-pages 100000
usage_error --folio-pages bench --fault-around 0
usage_error --bogus bench --bogus
usage_error --size bench --size
usage_error nosuch nosuch
usage_error --bogus --bogus

# tests/commit_hold (BENCHMARKS.md, "The commit's PTL hold") still runs
# and installs the right bytes.  Built by make check; skipped elsewhere.
HOLD=$(dirname "$0")/commit_hold
[ -x "$HOLD" ] || HOLD=./tests/commit_hold
if [ -x "$HOLD" ]; then
	out=$($RUN "$HOLD" --threads 2 --pages 100 2>&1)
	rc=$?
	if [ $rc -ne 77 ]; then
		[ $rc -eq 0 ] || fail "commit_hold: exit $rc: $out"
		case $out in
		"threads 2, 100 pages: UFFDIO_COPY "*) ;;
		*) fail "commit_hold printed: $out" ;;
		esac
	fi
fi

# tests/round_trip_parts (BENCHMARKS.md, "Where the microseconds go") runs
# every part and round trip, and the handlers install the right bytes.
PARTS=$(dirname "$0")/round_trip_parts
[ -x "$PARTS" ] || PARTS=./tests/round_trip_parts
if [ -x "$PARTS" ]; then
	out=$($RUN "$PARTS" --pages 64 2>&1)
	rc=$?
	if [ $rc -ne 77 ]; then
		[ $rc -eq 0 ] || fail "round_trip_parts: exit $rc: $out"
		n=$(printf '%s\n' "$out" | grep -c ' us$')
		[ "$n" -ge 10 ] || fail "round_trip_parts printed $n parts: $out"
	fi
fi

echo "bench-smoke: all checks passed"
exit 0
