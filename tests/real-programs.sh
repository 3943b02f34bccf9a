#!/bin/sh
# SPDX-License-Identifier: MIT
#
# real-programs.sh - the programs real users broke `uspf run` with, run
# natively and then under `uspf run --policy P` for every policy; each run
# must print the same stdout and exit with the same status as the native
# run (stderr may differ; it is shown when a run fails).  What they do:
#
#   autotools      bash runs an autoconf configure and `make -j2` of a tiny
#                  libtool project (tests/real-programs/autotools/): configure
#                  does `exec 5>>config.log`, libtool `exec 5<&0 ... 5<&-`,
#                  onto whatever uspf holds there; then the program runs.
#   fds-bash/dash  a shell script using fds 3-9 (and, in bash, 10-1023) around
#                  a 4 MB string built from $(seq 1 200000).
#   *-closed, fdstate*
#                  programs started with fds 0 and 1 closed: Python must see
#                  sys.stdin/stdout as None and fail writing to them exactly
#                  as natively; open() must return the lowest free fd (0).
#   t_fds-*        close_range(3, ~0U, 0), closefrom(3), close(3..1023),
#                  dup2(/dev/null, 3..1023), then malloc and touch memory
#                  allocated before and after, and fork.
#   pthread-exit-* main thread calls pthread_exit() (pthreads, C11 threads;
#                  SIGTERM to such a process must end it); a child forked by a
#                  non-main thread whose thread returns: each must exit.
#   own-uffd       a program with a userfaultfd of its own.
#   python-*, perl, gcc, git, sqlite3, java, node, xz
#                  everyday programs: multiprocessing pools (fork, spawn),
#                  subprocess, a compiler driver, threads, big heaps.
#
# Every run is bounded by `timeout` (REAL_PROGRAMS_TIMEOUT, default 60 s;
# the autotools case gets twice that): a run that times out is a failure
# printed as "hang", and never blocks the suite.  A program that is not
# installed is skipped with one line ("skip: java not installed").  One line
# per case and policy (ok, FAIL, skip; an ok line says how many faults uspf
# served in that run, all its processes summed from --stats), then
# "N passed, N failed, N skipped" counting case x policy runs.  About 100 s on 2 CPUs when nothing hangs
# (a third of it the autotools case).
#
# Automake test protocol: exit 0 pass, 77 skip, 1 fail.  `make check` sets
# USPF_BIN, USPF_TARGETS, USPF_SRCDIR and USPF_BUILDDIR; by hand, from the top
# of a built tree: sh tests/real-programs.sh.  REAL_PROGRAMS_CASES="git xz"
# runs only the cases named (shell patterns), REAL_PROGRAMS_POLICIES only
# those policies, REAL_PROGRAMS_KEEP=1 keeps the scratch directory.

here=$(cd "$(dirname "$0")" && pwd)
USPF_SRCDIR=${USPF_SRCDIR:-$(cd "$here/.." && pwd)}
USPF_BUILDDIR=${USPF_BUILDDIR:-$(pwd)}
USPF_BIN=${USPF_BIN:-./uspf}
USPF_TARGETS=${USPF_TARGETS:-$USPF_BUILDDIR/tests/targets}
TIMEOUT=${REAL_PROGRAMS_TIMEOUT:-60}
POLICIES=${REAL_PROGRAMS_POLICIES:-"spf mmap-lock spf-adaptive pervma-rwsem pervma-refcnt"}
CASES=${REAL_PROGRAMS_CASES:-}

abspath() {
	case $1 in
	/*) printf '%s\n' "$1" ;;
	*) printf '%s/%s\n' "$(pwd)" "$1" ;;
	esac
}
USPF_BIN=$(abspath "$USPF_BIN")
USPF_TARGETS=$(abspath "$USPF_TARGETS")

if [ ! -x "$USPF_BIN" ]; then
	echo "skip: no uspf command at $USPF_BIN (build it, or set USPF_BIN)"
	exit 77
fi
if ! command -v timeout >/dev/null 2>&1; then
	echo "skip: timeout(1) not installed: a hang could not be bounded"
	exit 77
fi
if [ -n "${USPF_SANITIZERS:-}" ]; then
	echo "skip: built with $USPF_SANITIZERS: a sanitizer-built preload module is not loaded into other programs"
	exit 77
fi

TMP=$(mktemp -d "${TMPDIR:-/tmp}/real-programs.XXXXXX") || exit 1
if [ -n "${REAL_PROGRAMS_KEEP:-}" ]; then
	echo "scratch directory: $TMP"
else
	trap 'rm -rf "$TMP"' EXIT
fi
trap 'exit 1' HUP INT TERM
mkdir -p "$TMP/home" "$TMP/files" "$TMP/bin" "$TMP/run"

# One environment for every run, native or not, whatever make or the user
# exported: no outer jobserver, no other preload, a fixed locale and zone.
export LC_ALL=C TZ=UTC HOME="$TMP/home" PYTHONHASHSEED=0 PYTHONDONTWRITEBYTECODE=1
unset MAKEFLAGS MFLAGS MAKELEVEL GNUMAKEFLAGS MAKEOVERRIDES LD_PRELOAD LD_LIBRARY_PATH \
	USPF_POLICY CC CFLAGS CPPFLAGS LDFLAGS LIBS CONFIG_SITE CDPATH ENV BASH_ENV \
	GIT_DIR GIT_WORK_TREE JAVA_TOOL_OPTIONS _JAVA_OPTIONS NODE_OPTIONS 2>/dev/null

npolicies=0
for p in $POLICIES; do
	npolicies=$((npolicies + 1))
done
passed=0 failed=0 skipped=0

# Nanoseconds, for the timings; seconds when date has no %N.
now() {
	now_ns=$(date +%s%N 2>/dev/null)
	case $now_ns in
	*N*|'') echo "$(date +%s)000000000" ;;
	*) echo "$now_ns" ;;
	esac
}
secs() {
	awk -v a="$1" -v b="$2" 'BEGIN { printf "%.1f", (b - a) / 1e9 }'
}

# (The shell has no local variables: each function's have a prefix.)
selected() {
	[ -z "$CASES" ] && return 0
	for sel_pat in $CASES; do
		# shellcheck disable=SC2254
		case $1 in
		$sel_pat) return 0 ;;
		esac
	done
	return 1
}

# A missing program: one line, and every policy run of the case skipped.
skip_case() {
	echo "skip: $2 ($1: $npolicies runs)"
	skipped=$((skipped + npolicies))
}

# need CASE PROGRAM...: true if every PROGRAM is installed, else skips CASE.
need() {
	need_case=$1
	shift
	selected "$need_case" || return 1
	for need_prog in "$@"; do
		if ! command -v "$need_prog" >/dev/null 2>&1; then
			skip_case "$need_case" "$need_prog not installed"
			return 1
		fi
	done
	return 0
}

# target NAME: the path of tests/targets/NAME, built from its source into
# the scratch directory when the build tree has none (a run by hand before
# `make check` built it).
target() {
	if [ -x "$USPF_TARGETS/$1" ]; then
		echo "$USPF_TARGETS/$1"
		return 0
	fi
	tgt_src=$USPF_SRCDIR/tests/targets/$1.c
	if [ -x "$TMP/bin/$1" ]; then
		echo "$TMP/bin/$1"
	elif [ -f "$tgt_src" ] && ${USPF_CC:-cc} -std=gnu11 -O2 -pthread -o "$TMP/bin/$1" \
		"$tgt_src" >"$TMP/bin/$1.log" 2>&1; then
		echo "note: $1 is not in $USPF_TARGETS: built from $tgt_src" >&2
		echo "$TMP/bin/$1"
	else
		return 1
	fi
}

# tcheck CASE TARGET MODE CMD...: check CASE MODE CMD with each @T@ in CMD
# replaced by the path of tests/targets/TARGET.
tcheck() {
	tc_case=$1 tc_target=$2 tc_mode=$3
	shift 3
	selected "$tc_case" || return 0
	if ! tc_path=$(target "$tc_target"); then
		skip_case "$tc_case" "$tc_target not built, nor buildable: $(tail -n 1 \
			"$TMP/bin/$tc_target.log" 2>/dev/null)"
		return
	fi
	for tc_arg; do
		shift
		[ "$tc_arg" = @T@ ] && tc_arg=$tc_path
		set -- "$@" "$tc_arg"
	done
	check "$tc_case" "$tc_mode" "$@"
}

# run_one DIR MODE POLICY CMD...: runs CMD in DIR (fresh; $SETUP DIR first,
# natively), under `uspf run --policy POLICY` unless POLICY is empty, with
# stdout in DIR.out, stderr in DIR.err, the status in $rc and the time in
# $took.  MODE "null": stdin from /dev/null; "closed": fds 0 and 1 closed,
# fd 9 open on DIR.out.  Inherited fds 3 to 9 are closed first.
run_one() {
	dir=$1 ro_mode=$2 ro_pol=$3
	shift 3
	rm -rf "$dir"
	mkdir -p "$dir"
	if [ -n "$SETUP" ] && ! "$SETUP" "$dir" >"$dir.err" 2>&1; then
		: >"$dir.out"
		rc=setup
		took=0.0
		return
	fi
	rm -f "$dir.stats"
	set -- timeout --verbose -k 5 "$CASE_TIMEOUT" \
		${ro_pol:+"$USPF_BIN" run --policy "$ro_pol" --stats "$dir.stats" --} "$@"
	ro_t0=$(now)
	# Not exec: this subshell waits, so that its "Killed" or "Segmentation
	# fault" goes to DIR.err too.
	(
		cd "$dir" || exit 126
		exec 3>&- 4>&- 5>&- 6>&- 7>&- 8>&- 9>&- >"$dir.out" 2>"$dir.err"
		if [ "$ro_mode" = closed ]; then
			"$@" 9>&1 <&- >&-
		else
			"$@" </dev/null
		fi
		exit $?
	)
	rc=$?
	took=$(secs "$ro_t0" "$(now)")
}

hung() {
	case $rc in
	124|137) grep -q '^timeout: sending signal' "$1.err" ;;
	*) return 1 ;;
	esac
}

# Shows why a run failed: its stdout against the native one, its stderr.
details() {
	if ! cmp -s "$1.out" "$2.out"; then
		echo "    stdout, native (-) and $3 (+):"
		diff -u "$1.out" "$2.out" | sed -n '3,22p' | sed 's/^/    /'
	fi
	if [ -s "$2.err" ]; then
		echo "    stderr, $3 (last 10 lines):"
		tail -n 10 "$2.err" | cut -c 1-300 | sed 's/^/    /'
	fi
}

# check NAME MODE CMD...: the case NAME, natively and under every policy.
# $SETUP (a function given the run's directory) prepares each run natively;
# $CASE_TIMEOUT bounds each run; a native exit 77 skips the case.
check() {
	name=$1 mode=$2
	shift 2
	selected "$name" || return 0
	: "${CASE_TIMEOUT:=$TIMEOUT}"
	base=$TMP/run/$name
	run_one "$base.native" "$mode" "" "$@"
	nrc=$rc
	if [ "$nrc" = setup ]; then
		echo "FAIL $name: setup failed"
		tail -n 10 "$base.native.err" | sed 's/^/    /'
		failed=$((failed + 1))
		skipped=$((skipped + npolicies))
		return
	fi
	if hung "$base.native"; then
		echo "FAIL $name [native]: hang (no exit in $CASE_TIMEOUT s): policies not tried"
		tail -n 10 "$base.native.err" | sed 's/^/    /'
		failed=$((failed + 1))
		skipped=$((skipped + npolicies))
		return
	fi
	if [ "$nrc" = 77 ]; then
		echo "skip: $name: exits 77 natively ($(tail -n 1 "$base.native.err"))"
		skipped=$((skipped + npolicies))
		return
	fi
	echo "     $name [native]: exit $nrc, $(wc -l <"$base.native.out" | tr -d ' ') lines ($took s)"
	for p in $POLICIES; do
		run_one "$base.$p" "$mode" "$p" "$@"
		if [ "$rc" = setup ]; then
			echo "FAIL $name [$p]: setup failed"
			tail -n 10 "$base.$p.err" | sed 's/^/    /'
			failed=$((failed + 1))
		elif hung "$base.$p"; then
			echo "FAIL $name [$p]: hang (no exit in $CASE_TIMEOUT s)"
			details "$base.native" "$base.$p" "$p"
			failed=$((failed + 1))
		elif [ "$rc" != "$nrc" ]; then
			echo "FAIL $name [$p]: exit $rc, natively $nrc ($took s)"
			details "$base.native" "$base.$p" "$p"
			failed=$((failed + 1))
		elif ! cmp -s "$base.native.out" "$base.$p.out"; then
			echo "FAIL $name [$p]: stdout differs ($took s)"
			details "$base.native" "$base.$p" "$p"
			failed=$((failed + 1))
		else
			# How much of the run uspf served: its processes' faults summed.
			f=$(sed -n 's/.*"faults":\([0-9]*\).*/\1/p' "$base.$p.stats" 2>/dev/null |
			    awk '{ s += $1 } END { print s + 0 }')
			echo "ok   $name [$p] ($took s, $f uspf faults)"
			passed=$((passed + 1))
		fi
	done
}

start=$(now)
SETUP=
CASE_TIMEOUT=

# ---- 1. autotools: bash runs configure, make -j2 with libtool ----------------
autotools_tree=
setup_autotools() {
	cp -Rp "$autotools_tree/." "$1/"
}
if need autotools autoreconf libtoolize automake make bash; then
	autotools_tree=$TMP/files/autotools
	mkdir -p "$autotools_tree"
	cp "$USPF_SRCDIR"/tests/real-programs/autotools/configure.ac \
		"$USPF_SRCDIR"/tests/real-programs/autotools/Makefile.am \
		"$USPF_SRCDIR"/tests/real-programs/autotools/greet.c \
		"$USPF_SRCDIR"/tests/real-programs/autotools/prog.c "$autotools_tree/" &&
		(cd "$autotools_tree" && autoreconf -fi) >"$TMP/files/autoreconf.log" 2>&1
	# shellcheck disable=SC2181
	if [ $? -ne 0 ] || [ ! -x "$autotools_tree/configure" ]; then
		skip_case autotools "autoreconf -fi failed natively: $(tail -n 1 "$TMP/files/autoreconf.log")"
	else
		rm -rf "$autotools_tree/autom4te.cache"
		SETUP=setup_autotools
		CASE_TIMEOUT=$((TIMEOUT * 2))
		# configure's and make's stdout are progress text: compared is what
		# the built program prints, and the overall status.
		check autotools null bash -c '
			CONFIG_SHELL=$BASH; export CONFIG_SHELL
			bash ./configure --quiet >configure.out || exit
			make -j2 --quiet >make.out || exit
			./prog'
		SETUP=
		CASE_TIMEOUT=
	fi
fi

# ---- 2. a shell script using fds 3 to 9 ---------------------------------------
cat >"$TMP/files/fds.sh" <<'EOF'
exec 3>f3
exec 4>f4
exec 6>f6 7>f7 8>f8
for i in 3 4 6 7 8; do
	echo "fd $i" >&$i
done
exec 9<f3
read -r line <&9
echo "read from 9: $line"
exec 5>/dev/null
echo discarded >&5
x=$(seq 1 200000)
y="$x$x$x"
echo "length ${#y}"
exec 5<&0
exec 5<&-
exec 3>&- 4>&-
{ echo "to 3, through a pipe" >&3; } 3>&1 | tr a-z A-Z
f() { echo "in f: $1" >&5; }
f one 5>&1
exec 6>&- 7>&- 8>&- 9<&-
exec 5>f5
seq 1 5 >&5
exec 5>&-
cat f3 f4 f5 f6 f7 f8
sub=$(exec 3>&1 4>&1; echo sub >&4)
echo "subshell: $sub"
while read -r n; do
	[ "$n" -eq 3 ] && echo "loop: $n"
done 9<&0 <<HERE
1
2
3
HERE
if [ -n "${BASH_VERSION:-}" ]; then
	# bash alone goes past 9 (not onto 255, where bash 5.2 reads the
	# script from: that crashes bash natively)
	i=10
	while [ $i -lt 1024 ]; do
		[ $i -ne 255 ] && eval "exec $i>/dev/null"
		i=$((i + 1))
	done
	z=$(seq 1 100000 | tr 0-9 a-j)
	echo "bash, fds 10-1023 on /dev/null: ${#z}"
	i=10
	while [ $i -lt 1024 ]; do
		[ $i -ne 255 ] && eval "exec $i>&-"
		i=$((i + 1))
	done
	exec {dyn}>fdyn
	echo dynamic >&$dyn
	exec {dyn}>&-
	cat fdyn
fi
echo done
EOF
if need fds-bash bash; then
	check fds-bash null bash "$TMP/files/fds.sh"
fi
if need fds-dash dash; then
	check fds-dash null dash "$TMP/files/fds.sh"
fi

# ---- 3. programs started with stdin and stdout closed -------------------------
cat >"$TMP/files/closed.py" <<'EOF'
import errno, os, sys
r = os.fdopen(9, "w")
r.write("stdin is None: %s\nstdout is None: %s\nstderr is None: %s\n"
        % (sys.stdin is None, sys.stdout is None, sys.stderr is None))
fd = os.open("/dev/null", os.O_RDONLY)
r.write("open: %d\n" % fd)
data = bytearray(8 << 20)
for i in range(0, len(data), 4096):
    data[i] = i >> 12 & 0xff
r.write("sum: %d\n" % sum(data))
try:
    os.write(1, b"x")
    r.write("write(1): ok\n")
except OSError as e:
    r.write("write(1): %s\n" % errno.errorcode[e.errno])
print("print to a closed stdout: nothing")
r.flush()
sys.stdout.write("fails: sys.stdout is None\n")
EOF
if need python-closed python3; then
	check python-closed closed python3 "$TMP/files/closed.py"
fi
if need python-write-closed python3; then
	check python-write-closed null sh -c \
		'python3 -c "import os; os.write(1, b\"x\")" >&- 2>/dev/null; echo "rc=$?"'
fi
check cat-closed-stdin null sh -c 'cat <&- 2>&1; echo "rc=$?"'
tcheck fdstate t_fds closed @T@ fdstate
tcheck fdstate-sh t_fds null sh -c 'exec "$0" fdstate 9>&1 <&- >&-' @T@

# ---- 4. closing and overwriting every descriptor ------------------------------
for m in close_range closefrom close_loop dup2_devnull; do
	tcheck "t_fds-$m" t_fds null @T@ "$m"
done

# ---- 5. the last thread is not main -------------------------------------------
tcheck pthread-exit-main t_pthread_exit null @T@ main
tcheck pthread-exit-fork t_pthread_exit null @T@ fork
tcheck pthread-exit-c11 t_pthread_exit null @T@ c11
tcheck pthread-exit-term t_pthread_exit null @T@ term

# ---- 6. a userfaultfd of the program's own ------------------------------------
tcheck own-uffd t_own_uffd null @T@

# ---- 7. everyday programs -----------------------------------------------------
cat >"$TMP/files/pool.py" <<'EOF'
import hashlib, multiprocessing as mp, subprocess, sys

def work(i):
    block = bytearray(4096 * (1 + i % 16))
    for j in range(0, len(block), 4096):
        block[j] = (i + j) & 0xff
    h = hashlib.sha256(str(i).encode() + bytes(block)).hexdigest()
    return int(h[:8], 16) % 1000003

if __name__ == "__main__":
    how = sys.argv[1]
    if how == "subprocess":
        out = subprocess.run(["sh", "-c", "seq 1 20000 | sort -r | head -n 3"],
                             capture_output=True, check=True).stdout.decode()
        print(out, end="")
        print(subprocess.check_output([sys.executable, "-c",
                                       "print(sum(range(10**6)))"]).decode(), end="")
        print("close_fds child:", subprocess.call(["true"], close_fds=True))
    else:
        ctx = mp.get_context(how)
        with ctx.Pool(2) as pool:
            r = pool.map(work, range(3000), chunksize=100)
        print(how, len(r), sum(r), r[:5])
EOF
if need python-pool-fork python3; then
	check python-pool-fork null python3 "$TMP/files/pool.py" fork
fi
if need python-pool-spawn python3; then
	check python-pool-spawn null python3 "$TMP/files/pool.py" spawn
fi
if need python-subprocess python3; then
	check python-subprocess null python3 "$TMP/files/pool.py" subprocess
fi

if need perl perl; then
	check perl null perl -e '
		my %h;
		for my $i (1 .. 200000) { $h{"k" . ($i % 9973)} .= chr(97 + $i % 26); }
		my $s = join ",", map { "$_=" . length($h{$_}) } sort keys %h;
		(my $t = $s) =~ s/k(\d+)=(\d+)/$2:$1/g;
		my @m = ($t =~ /(\d+):(\d*7)\b/g);
		print scalar(keys %h), " ", length($t), " ", scalar(@m), " ",
		    unpack("%32C*", $t), "\n";'
fi

cat >"$TMP/files/hello.c" <<'EOF'
#include <stdio.h>
#include <stdlib.h>
int main(void)
{
	unsigned long s = 0, i, n = 1ul << 22;
	unsigned char *p = malloc(n);
	if (!p)
		return 1;
	for (i = 0; i < n; i++)
		p[i] = (unsigned char)(i * 7);
	for (i = 0; i < n; i += 3)
		s += p[i];
	printf("hello from gcc: %lu\n", s);
	free(p);
	return 0;
}
EOF
setup_gcc() {
	cp "$TMP/files/hello.c" "$1/"
}
if need gcc gcc; then
	SETUP=setup_gcc
	check gcc null sh -c 'gcc -O2 -Wall -o hello hello.c && ./hello'
	SETUP=
fi

if need git git; then
	check git null sh -c '
		export GIT_CONFIG_NOSYSTEM=1 GIT_CONFIG_GLOBAL=/dev/null
		export GIT_AUTHOR_NAME=Author GIT_AUTHOR_EMAIL=author@example.org
		export GIT_COMMITTER_NAME=Committer GIT_COMMITTER_EMAIL=committer@example.org
		export GIT_AUTHOR_DATE="2020-01-01T00:00:00+0000"
		export GIT_COMMITTER_DATE="2020-01-02T00:00:00+0000"
		git -c init.defaultBranch=main init -q repo && cd repo || exit
		seq 1 20000 >numbers && echo hello >greeting && mkdir dir &&
			seq 1 300 | sed "s/^/line /" >dir/lines || exit
		git add . && git commit -q -m first || exit
		seq 1 20000 | sed "s/5/five/" >numbers && git rm -q greeting &&
			git commit -q -am second || exit
		git log --format="%H %an %s"
		git rev-parse "HEAD^{tree}"
		git diff --stat HEAD~1 HEAD
		git gc -q && git fsck --no-progress --strict && git count-objects -v | grep -e "^count" -e "^in-pack"
		git show HEAD~1:dir/lines | tail -n 1'
fi

if need sqlite3 sqlite3; then
	check sqlite3 null sqlite3 db.sqlite '
		CREATE TABLE t(id INTEGER PRIMARY KEY, k INTEGER, v TEXT);
		WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 20000)
			INSERT INTO t SELECT x, (x * 7919) % 101, printf("%08d", (x * 104729) % 1000003) FROM c;
		CREATE INDEX t_k ON t(k);
		SELECT count(*), sum(k), min(v), max(v) FROM t;
		SELECT k, count(*), sum(id) FROM t WHERE k < 5 GROUP BY k ORDER BY k;
		SELECT group_concat(v, ",") FROM (SELECT v FROM t ORDER BY v DESC LIMIT 5);
		VACUUM;
		PRAGMA integrity_check;'
fi

cat >"$TMP/files/Hello.java" <<'EOF'
import java.util.*;
import java.util.stream.*;
public class Hello {
    public static void main(String[] args) throws Exception {
        Map<Integer, Long> m = new HashMap<>();
        for (int i = 0; i < 300000; i++)
            m.merge(i % 1009, (long) i, Long::sum);
        long s = m.values().stream().mapToLong(Long::longValue).sum();
        List<String> l = IntStream.range(0, 50000).parallel()
            .mapToObj(i -> Integer.toString(i * 31 % 50021)).sorted().collect(Collectors.toList());
        Thread t = new Thread(() -> System.out.println("thread: " + l.get(12345)));
        t.start();
        t.join();
        System.out.println("java: " + m.size() + " " + s + " " + l.get(0) + " " + l.get(l.size() - 1));
    }
}
EOF
setup_java() {
	cp "$TMP/files/Hello.java" "$1/"
}
if need java java; then
	SETUP=setup_java
	check java null java Hello.java
	SETUP=
fi

if need node node; then
	check node null node -e '
		const m = new Map();
		for (let i = 0; i < 300000; i++) m.set("k" + (i % 5003), (m.get("k" + (i % 5003)) || 0) + i);
		let s = 0;
		for (const v of m.values()) s += v;
		const a = Array.from({ length: 100000 }, (_, i) => (i * 7919) % 100003).sort((x, y) => x - y);
		const b = Buffer.alloc(8 << 20, 7);
		console.log(m.size, s, a[0], a[a.length - 1], b.reduce((x, y) => x + y, 0));
		setTimeout(() => console.log("timer"), 10);'
fi

if need xz xz; then
	check xz null sh -c '
		seq 1 300000 | sed "s/1/one/g" >data &&
		xz -T2 -6 -c data >data.xz && xz -dc data.xz >back && cmp data back &&
		cksum <data && cksum <data.xz && xz -l data.xz | tail -n 1'
fi

echo "time: $(secs "$start" "$(now)") s"
echo "$passed passed, $failed failed, $skipped skipped"
[ "$failed" -eq 0 ] || exit 1
[ "$passed" -eq 0 ] && [ "$skipped" -gt 0 ] && exit 77
exit 0
