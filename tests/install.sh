#!/bin/sh
# SPDX-License-Identifier: MIT
#
# install.sh - what a user gets from `make install`.  Installs into a scratch
# DESTDIR and checks, in order:
#   - the command, the library (with its soname and development link), the
#     preload module, the header, the three man pages and uspf.pc are where
#     configure said, byte for byte the tree's header and man pages, and
#     nothing else is installed;
#   - the library exports only uspf_* symbols, and no installed binary
#     carries a run path into the build tree;
#   - uspf.pc names the configured directories and version, links -luspf
#     alone for a shared build, and lists liburing, liburcu-bp and
#     liburcu-cds as private requirements (so --static brings them);
#   - the README's library example, extracted from README.md, builds with
#     `cc prog.c $(pkg-config --cflags --libs uspf)` against the DESTDIR copy
#     (uspf.pc relocated into DESTDIR the way DESTDIR relocates every path),
#     runs on the installed library (real faults, served by uspf) and prints
#     what the README says it prints;
#   - the installed command runs, knows where its preload module is
#     installed, and `uspf run` with the installed module sorts like sort;
#   - `make uninstall` removes every file it installed.
#
# Automake test protocol: exit 0 pass, 77 skip, 1 fail, 99 hard error.  The
# Makefile sets MAKE, PKG_CONFIG, USPF_BUILDDIR, USPF_SRCDIR, USPF_VERSION,
# USPF_CC, USPF_CFLAGS, USPF_LDFLAGS, USPF_SANITIZERS and uspf_prefix,
# uspf_bindir, uspf_libdir, uspf_pkglibdir, uspf_includedir, uspf_mandir,
# uspf_pkgconfigdir (make's values, fully expanded).

set -u

for v in MAKE PKG_CONFIG USPF_BUILDDIR USPF_SRCDIR USPF_VERSION USPF_CC uspf_prefix \
	uspf_bindir uspf_libdir uspf_pkglibdir uspf_includedir uspf_mandir uspf_pkgconfigdir; do
	eval "val=\${$v:-}"
	if [ -z "$val" ]; then
		echo "ERROR: $v is not set: run this test with 'make check TESTS=tests/install.sh'" >&2
		exit 99
	fi
done
USPF_CFLAGS=${USPF_CFLAGS:-}
USPF_LDFLAGS=${USPF_LDFLAGS:-}
USPF_SANITIZERS=${USPF_SANITIZERS:-}

TMP=$(mktemp -d "${TMPDIR:-/tmp}/uspf-install.XXXXXX") || exit 99
trap 'rm -rf "$TMP"' EXIT
D=$TMP/destdir

fail() {
	echo "FAIL: $*" >&2
	exit 1
}

step() {
	echo "+ $*" >&2
}

# A hung fault would hang the test: bound the runs.
if command -v timeout >/dev/null 2>&1; then
	RUN="timeout 120"
else
	RUN=""
fi

# ---- make install DESTDIR=... ----
# The recursive make runs from a test, not from a make rule: it has no
# jobserver to join, so it is told to build nothing in parallel (everything
# is already built: make check builds `all` first).
step "$MAKE install DESTDIR=$D"
(cd "$USPF_BUILDDIR" && $MAKE -j1 install DESTDIR="$D") >"$TMP/install.log" 2>&1 || {
	tail -n 40 "$TMP/install.log" >&2
	fail "make install DESTDIR=$D failed"
}

# ---- every file where configure said, and nothing else ----
bin=$D$uspf_bindir/uspf
lib=$D$uspf_libdir/libuspf.so.0
devlink=$D$uspf_libdir/libuspf.so
module=$D$uspf_pkglibdir/libuspf-preload.so
header=$D$uspf_includedir/uspf.h
pc=$D$uspf_pkgconfigdir/uspf.pc

[ -f "$bin" ] && [ -x "$bin" ] || fail "the command is not installed as $bin"
[ -f "$lib" ] || fail "the library is not installed as $lib (soname libuspf.so.0)"
[ -L "$devlink" ] || fail "no development link $devlink"
[ "$(cd "$D$uspf_libdir" && readlink -f libuspf.so)" = "$(cd "$D$uspf_libdir" && readlink -f libuspf.so.0)" ] ||
	fail "libuspf.so and libuspf.so.0 are not the same library"
[ -f "$module" ] || fail "the preload module is not installed as $module"
[ -f "$pc" ] || fail "uspf.pc is not installed as $pc"
cmp -s "$header" "$USPF_SRCDIR/src/include/uspf.h" || fail "$header is missing or not src/include/uspf.h"
# Every page of man/ (uspf.1, uspf.3, uspf.7 and one per function), as is.
pages=
for src in "$USPF_SRCDIR"/man/*.[0-9]; do
	name=${src##*/}
	dst="$uspf_mandir/man${name##*.}/$name"
	cmp -s "$D$dst" "$src" || fail "$D$dst is missing or not man/$name"
	pages="$pages
$dst"
done

# The complete list; libtool's .la files are part of a libtool install.
expected="$uspf_bindir/uspf
$uspf_includedir/uspf.h
$uspf_libdir/libuspf.la
$uspf_libdir/libuspf.so
$uspf_libdir/libuspf.so.0
$uspf_libdir/libuspf.so.0.0.0
$uspf_pkglibdir/libuspf-preload.la
$uspf_pkglibdir/libuspf-preload.so
$uspf_pkgconfigdir/uspf.pc$pages"
printf '%s\n' "$expected" | sort >"$TMP/expected"
(cd "$D" && find . -type f -o -type l) | sed 's|^\.||' | sort >"$TMP/installed"
echo "installed:" >&2
sed 's/^/    /' "$TMP/installed" >&2
if ! cmp -s "$TMP/expected" "$TMP/installed"; then
	diff "$TMP/expected" "$TMP/installed" >&2
	fail "the installed files are not the expected ones (< expected, > installed)"
fi

# ---- the library's interface, and no run path into the build tree ----
if command -v readelf >/dev/null 2>&1; then
	readelf -d "$lib" | grep -q 'SONAME.*\[libuspf\.so\.0\]' || fail "$lib has no SONAME libuspf.so.0"
	for f in "$bin" "$lib" "$module"; do
		if readelf -d "$f" | grep -E 'RPATH|RUNPATH' | grep -qF "$USPF_BUILDDIR"; then
			fail "$f has a run path into the build tree: $(readelf -d "$f" | grep -E 'RPATH|RUNPATH')"
		fi
	done
else
	echo "readelf not found: SONAME and run paths not checked" >&2
fi
if command -v nm >/dev/null 2>&1; then
	others=$(nm -D --defined-only "$lib" | awk 'NF == 3 && $3 !~ /^uspf_/ { print $3 }')
	[ -z "$others" ] || fail "$lib exports symbols outside uspf_: $others"
	nm -D --defined-only "$lib" | grep -q ' uspf_create$' || fail "$lib does not export uspf_create"
else
	echo "nm not found: exported symbols not checked" >&2
fi

# ---- uspf.pc, as installed ----
PCPATH=${PKG_CONFIG_PATH:+:$PKG_CONFIG_PATH}
step "uspf.pc:"
sed 's/^/    /' "$pc" >&2
installed_pc() {
	PKG_CONFIG_PATH=$D$uspf_pkgconfigdir$PCPATH $PKG_CONFIG "$@"
}
[ "$(installed_pc --modversion uspf)" = "$USPF_VERSION" ] ||
	fail "pkg-config --modversion uspf: '$(installed_pc --modversion uspf)', expected $USPF_VERSION"
[ "$(installed_pc --variable=libdir uspf)" = "$uspf_libdir" ] ||
	fail "uspf.pc libdir is '$(installed_pc --variable=libdir uspf)', configured $uspf_libdir"
[ "$(installed_pc --variable=includedir uspf)" = "$uspf_includedir" ] ||
	fail "uspf.pc includedir is '$(installed_pc --variable=includedir uspf)', configured $uspf_includedir"
requires=$(installed_pc --print-requires-private uspf) || fail "pkg-config --print-requires-private uspf failed"
for m in liburing liburcu-bp liburcu-cds; do
	printf '%s\n' "$requires" | grep -q "^$m\\b" || fail "uspf.pc does not require $m privately: $requires"
done
[ -z "$(installed_pc --print-requires uspf)" ] ||
	fail "uspf.pc has public Requires (the header needs none): $(installed_pc --print-requires uspf)"

# ---- uspf.pc relocated into DESTDIR: what a user of the install gets ----
# DESTDIR prepends itself to every absolute install path; do the same to the
# absolute values of uspf.pc's own variables (a ${...} value follows them),
# and to nothing of the packages it requires.
mkdir -p "$TMP/pc" || exit 99
sed -E "s|^(prefix\|exec_prefix\|libdir\|includedir)=/|\\1=$D/|" "$pc" >"$TMP/pc/uspf.pc"
reloc_pc() {
	PKG_CONFIG_PATH=$TMP/pc$PCPATH $PKG_CONFIG "$@"
}
flags=$(reloc_pc --cflags --libs uspf) || fail "pkg-config --cflags --libs uspf failed"
step "pkg-config --cflags --libs uspf: $flags"
case " $flags " in
*" -I$D$uspf_includedir "*) ;;
*) fail "pkg-config --cflags does not name $D$uspf_includedir: $flags" ;;
esac
for w in "-L$D$uspf_libdir" -luspf; do
	case " $flags " in
	*" $w "*) ;;
	*) fail "pkg-config --libs does not give $w: $flags" ;;
	esac
done
case " $flags " in
*" -luring "* | *" -lurcu"*) fail "pkg-config --libs (shared) names uspf's private libraries: $flags" ;;
esac
static=$(reloc_pc --static --libs uspf) || fail "pkg-config --static --libs uspf failed"
for l in -luspf -luring -lurcu-bp -lurcu-cds -lpthread; do
	case " $static " in
	*" $l "*) ;;
	*) fail "pkg-config --static --libs uspf lacks $l: $static" ;;
	esac
done

# ---- the README's library example, built against the install ----
readme=$USPF_SRCDIR/README.md
awk '/^## The library/ { in_section = 1; next }
     /^## / { in_section = 0 }
     in_section && /^```c$/ && !done { in_code = 1; next }
     in_code && /^```$/ { in_code = 0; done = 1; next }
     in_code { print }' "$readme" >"$TMP/prog.c"
[ -s "$TMP/prog.c" ] || fail "no \`\`\`c block under '## The library' in $readme"
grep -q 'pkg-config --cflags --libs uspf' "$TMP/prog.c" ||
	fail "the README's example no longer says how to build it with pkg-config"
want=$(sed -n 's/^It prints `\([^`]*\)`.*/\1/p' "$readme" | head -n 1)
[ -n "$want" ] || fail "the README no longer says what its example prints ('It prints \`...\`')"

step "$USPF_CC $USPF_CFLAGS -Wall -Wextra -Werror -o prog prog.c $flags $USPF_LDFLAGS"
# shellcheck disable=SC2086 # flags are words
$USPF_CC $USPF_CFLAGS -Wall -Wextra -Werror -o "$TMP/prog" "$TMP/prog.c" $flags $USPF_LDFLAGS \
	>"$TMP/cc.log" 2>&1 || {
	cat "$TMP/cc.log" >&2
	fail "the README's example does not build against the installed library"
}

LIBPATH=$D$uspf_libdir${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
if command -v ldd >/dev/null 2>&1; then
	resolved=$(LD_LIBRARY_PATH=$LIBPATH ldd "$TMP/prog" | awk '$1 == "libuspf.so.0" { print $3 }')
	[ "$resolved" = "$lib" ] || fail "the example loads libuspf.so.0 from '$resolved', not $lib"
fi
step "LD_LIBRARY_PATH=$D$uspf_libdir ./prog"
LD_LIBRARY_PATH=$LIBPATH $RUN "$TMP/prog" >"$TMP/out" 2>"$TMP/err"
rc=$?
cat "$TMP/out" "$TMP/err" >&2
[ "$rc" -eq 0 ] || fail "the example exited $rc"
# "F faults, S speculative": the README says why S - 1 can show too (the
# last fault may not be counted yet when the snapshot is taken).
case $want in
[0-9]*" faults, "[0-9]*" speculative") ;;
*) fail "the README's example output '$want' is not 'F faults, S speculative'" ;;
esac
got=$(cat "$TMP/out")
want_s=${want#* faults, }
want_s=${want_s% speculative}
case $got in
"${want%%,*}, $want_s speculative" | "${want%%,*}, $((want_s - 1)) speculative") ;;
*) fail "the example printed '$got', the README says '$want'" ;;
esac

# ---- the installed command and its preload module ----
step "$bin --version"
out=$($bin --version) || fail "$bin --version exited $?"
[ "$out" = "uspf $USPF_VERSION" ] || fail "$bin --version printed '$out'"
# Without USPF_PRELOAD, `uspf run` loads the module from the configured
# pkglibdir: the path must be in the binary.
grep -qaF "$uspf_pkglibdir" "$bin" || fail "$bin does not name the configured pkglibdir $uspf_pkglibdir"
if [ -n "$USPF_SANITIZERS" ]; then
	# A sanitizer-built module needs its runtime loaded first; `uspf run`
	# of a plain program is covered by the tests' own targets.
	echo "built with $USPF_SANITIZERS: uspf run with the installed module not tried" >&2
else
	seq 1 20000 | awk '{ print ($1 * 7919) % 20011 }' >"$TMP/in"
	sort -n "$TMP/in" >"$TMP/sorted"
	step "USPF_PRELOAD=$module $bin run --stats stats.json -- sort -n in"
	USPF_PRELOAD=$module $RUN "$bin" run --stats "$TMP/stats.json" -- sort -n "$TMP/in" \
		>"$TMP/out" 2>"$TMP/err"
	rc=$?
	cat "$TMP/err" >&2
	[ "$rc" -eq 0 ] || fail "uspf run -- sort exited $rc"
	cmp -s "$TMP/out" "$TMP/sorted" || fail "uspf run -- sort printed something else than sort"
	grep -q '"program":"sort".*"uspf":true.*"faults":[1-9]' "$TMP/stats.json" ||
		fail "uspf run -- sort: no faults served by uspf in $(cat "$TMP/stats.json")"
fi

# ---- make uninstall leaves nothing ----
step "$MAKE uninstall DESTDIR=$D"
(cd "$USPF_BUILDDIR" && $MAKE -j1 uninstall DESTDIR="$D") >"$TMP/uninstall.log" 2>&1 || {
	tail -n 40 "$TMP/uninstall.log" >&2
	fail "make uninstall DESTDIR=$D failed"
}
left=$(cd "$D" && find . -type f -o -type l)
[ -z "$left" ] || fail "make uninstall left: $left"

echo "install: all checks passed"
exit 0
