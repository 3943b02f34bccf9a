#!/bin/sh
# SPDX-License-Identifier: MIT
#
# man-pages.sh - the manual is complete and renders cleanly:
#
#   - every public function declared in src/include/uspf.h has a page
#     man/FUNCTION.3 (a page of its own or a '.so man3/...' link page)
#     whose NAME and SYNOPSIS name it, and uspf(3) lists it in SEE ALSO;
#     every man/uspf_*.3 documents a function that exists;
#   - every page under man/ is in Makefile.am's dist_man_MANS (installed,
#     distributed);
#   - every subcommand of `uspf` has its section in uspf(1), and every flag
#     each accepts appears in that section, the global flags in OPTIONS: the
#     flags are taken from the built command (`uspf SUB --help`, and the
#     list an unknown option gets) and from the getopt_long() tables of the
#     source, so a flag missing from the help text is caught too;
#   - every policy, counter and USPF_* variable of the source is in uspf(7)
#     (POLICIES, COUNTERS, ENVIRONMENT), and every counter in the table of
#     uspf_counter_name(3);
#   - every page renders with `man --warnings -E UTF-8 -l` without a word on
#     standard error, from a staged man1/man3/man7 tree, so that '.so man3/'
#     links resolve as they do once installed.
#
# Every problem found is reported, one line each, naming the function,
# flag, counter, variable or page.  Automake test protocol: exit 0 pass,
# 1 fail, 77 skip (no man(1): the other checks still run, and a failure of
# theirs is still a failure).  srcdir comes from automake; USPF_BIN names
# the built command (default ./uspf).

srcdir=${srcdir:-.}
USPF_BIN=${USPF_BIN:-./uspf}
MANDIR=$(cd "$srcdir/man" && pwd) || exit 1
SRC=$srcdir/src
HEADER=$SRC/include/uspf.h

TMP=$(mktemp -d "${TMPDIR:-/tmp}/man-pages.XXXXXX") || exit 1
trap 'rm -rf "$TMP"' EXIT
: >"$TMP/failures"

fail() {
	echo "FAIL: $*" | tee -a "$TMP/failures" >&2
}

# Roff source to plain words: \- is '-', font and zero-width escapes go.
norm() {
	sed -e 's/\\-/-/g' -e 's/\\f[BIRP]//g' -e 's/\\f(..//g' -e 's/\\&//g' "$@"
}

# The .SH section TITLE of a page (to the next .SH), normalised.
sh_section() {
	norm "$1" | awk -v t=".SH $2" '
		$0 == t || $0 == ".SH \"" substr(t, 5) "\"" { f = 1; next }
		f && /^\.SH/ { exit }
		f { print }'
}

# The .SS section of uspf(1) for subcommand SUB (to the next .SS or .SH).
ss_subcommand() {
	norm "$MANDIR/uspf.1" | awk -v sub_="$1" '
		$0 ~ "^\\.SS \"?uspf " sub_ "([ \"]|$)" { f = 1; next }
		f && /^\.S[SH]/ { exit }
		f { print }'
}

# The item tags of a section on stdin: the lines after .TP (where a flag
# is described, not merely mentioned).
tags() {
	awk 'prev == ".TP" { print } { prev = $0 }'
}

# Does the text on stdin contain WORD as a whole token?  (Tokens are made
# of letters, digits, '_' and '-'.)
has_token() {
	grep -qE -- "(^|[^A-Za-z0-9_-])$1([^A-Za-z0-9_-]|\$)"
}

# ---- functions ----------------------------------------------------------

# Declarations of uspf.h, comments removed: the names before a '('.
awk '{
	line = $0; out = ""
	while (line != "") {
		if (inc) {
			i = index(line, "*/")
			if (!i) { line = ""; break }
			line = substr(line, i + 2); inc = 0
		} else {
			i = index(line, "/*")
			if (!i) { out = out line; line = "" }
			else { out = out substr(line, 1, i - 1); line = substr(line, i + 2); inc = 1 }
		}
	}
	print out
}' "$HEADER" | grep -v typedef |
	sed -n 's/^.*[^A-Za-z0-9_]\(uspf_[a-z0-9_]*\)[[:space:]]*(.*$/\1/p' |
	sort -u >"$TMP/functions"
if [ ! -s "$TMP/functions" ]; then
	fail "found no function declarations in $HEADER (has its layout changed?)"
fi

see_also=$(sh_section "$MANDIR/uspf.3" "SEE ALSO")
while read -r fn; do
	page=$MANDIR/$fn.3
	if [ ! -f "$page" ]; then
		fail "$fn() is declared in uspf.h but has no page: write man/$fn.3 (or a '.so man3/PAGE.3' link to the page that documents it)"
		continue
	fi
	target=$(sed -n '1s/^\.so man3\/\(.*\)$/\1/p' "$page")
	if [ -n "$target" ]; then
		page=$MANDIR/$target
		if [ ! -f "$page" ]; then
			fail "man/$fn.3 links to man3/$target, which is not under man/"
			continue
		fi
	fi
	sh_section "$page" NAME | has_token "$fn" ||
		fail "$fn() is not named in the NAME section of man/${page##*/}"
	sh_section "$page" SYNOPSIS | grep -q -- "$fn(" ||
		fail "$fn() has no prototype in the SYNOPSIS of man/${page##*/}"
	printf '%s\n' "$see_also" | grep -q "^\.BR $fn (3)" ||
		fail "uspf(3) does not list $fn(3) in SEE ALSO"
done <"$TMP/functions"

for page in "$MANDIR"/uspf_*.3; do
	fn=${page##*/}
	fn=${fn%.3}
	grep -qx "$fn" "$TMP/functions" ||
		fail "man/$fn.3 documents $fn(), which uspf.h does not declare"
done

# ---- installation ---------------------------------------------------------

awk '/^dist_man_MANS[[:space:]]*=/ { f = 1 }
	f { print; if (!/\\$/) exit }' "$srcdir/Makefile.am" |
	tr ' \t\\' '\n\n\n' | grep '^man/' | sort >"$TMP/installed"
for page in "$MANDIR"/*.[1-9]; do
	grep -qx "man/${page##*/}" "$TMP/installed" ||
		fail "man/${page##*/} is not in dist_man_MANS in Makefile.am: it would not be installed"
done

# ---- uspf(1): subcommands and flags --------------------------------------

if [ ! -x "$USPF_BIN" ]; then
	fail "USPF_BIN=$USPF_BIN is not an executable: cannot list the command's flags"
else
	# Subcommands: the command's own list, the source's table, and help.
	{
		"$USPF_BIN" --help | awk '/^subcommands:/ { f = 1; next }
			f && /^[[:space:]]*$/ { exit }
			f { print $1 }'
		sed -nE 's/^[[:space:]]*\{[[:space:]]*"([a-z-]+)",[[:space:]]*cmd_[a-z_]+,.*/\1/p' "$SRC/cmd/uspf.c"
		echo help
	} | sort -u >"$TMP/subcommands"
	[ "$(wc -l <"$TMP/subcommands")" -gt 1 ] ||
		fail "found no subcommands in 'uspf --help' or src/cmd/uspf.c"

	while read -r sub; do
		ss_subcommand "$sub" >"$TMP/section"
		tags <"$TMP/section" >"$TMP/tags"
		if [ ! -s "$TMP/section" ]; then
			fail "uspf $sub: no section '.SS \"uspf $sub ...\"' in man/uspf.1"
			continue
		fi
		[ "$sub" = help ] && continue
		{
			# What the help text shows, and the list an unknown
			# option gets (from the getopt_long() table).
			"$USPF_BIN" "$sub" --help 2>&1
			"$USPF_BIN" "$sub" --no-such-option-man-pages-test 2>&1 |
				sed -n 's/.*(accepted: \(.*\))$/\1/p'
		} | grep -oE -- '(^|[[:space:],[(|])--?[A-Za-z][A-Za-z0-9-]*' |
			sed 's/^[^-]*//' >"$TMP/flags"
		# The source's table, in the file defining cmd_SUB().
		file=$(grep -l "^int cmd_$(echo "$sub" | tr - _)(" "$SRC"/cmd/*.c "$SRC"/cmd/bench/*.c)
		if [ -z "$file" ]; then
			fail "uspf $sub: no cmd_$sub() in src/cmd/ to read its options from"
		else
			n=$(sed -nE 's/^[[:space:]]*\{[[:space:]]*"([a-z][a-z0-9-]*)",[[:space:]]*(no|required|optional)_argument.*/--\1/p' "$file" |
				tee -a "$TMP/flags" | wc -l)
			[ "$n" -gt 0 ] ||
				fail "uspf $sub: found no getopt_long() option table in $file"
			sed -n 's/.*getopt_long([^"]*"\([^"]*\)".*/\1/p' "$file" |
				tr -d ':+-' | fold -w1 | sed 's/^/-/' >>"$TMP/flags"
		fi
		for flag in $(sort -u "$TMP/flags"); do
			has_token "$flag" <"$TMP/tags" ||
				fail "uspf $sub accepts $flag, which its section of man/uspf.1 does not describe (no '.TP' item for it)"
		done
	done <"$TMP/subcommands"

	# The global flags: in OPTIONS.
	{
		"$USPF_BIN" --help | sed -n 's/^usage: //p'
		grep -o 'strcmp(arg, "-[^"]*")' "$SRC/cmd/uspf.c" | sed 's/.*"\(.*\)".*/ \1/'
	} | grep -oE -- '(^|[[:space:],[(|])--?[A-Za-z][A-Za-z0-9-]*' |
		sed 's/^[^-]*//' | sort -u >"$TMP/flags"
	sh_section "$MANDIR/uspf.1" OPTIONS | tags >"$TMP/tags"
	for flag in $(cat "$TMP/flags"); do
		has_token "$flag" <"$TMP/tags" ||
			fail "uspf accepts $flag, which OPTIONS in man/uspf.1 does not describe (no '.TP' item for it)"
	done
	sh_section "$MANDIR/uspf.1" "EXIT STATUS" | grep -q . ||
		fail "man/uspf.1 has no EXIT STATUS section"
fi

# ---- uspf(7): policies, counters, environment ------------------------------

awk '/^const struct uspf_policy policy_/ { f = 1 }
	f && /\.name *= *"/ { sub(/.*\.name *= *"/, ""); sub(/".*/, ""); print; f = 0 }' \
	"$SRC"/policy/*.c >"$TMP/policies"
[ -s "$TMP/policies" ] || fail "found no policies (struct uspf_policy .name) in src/policy/*.c"
sh_section "$MANDIR/uspf.7" POLICIES >"$TMP/section"
while read -r pol; do
	grep -qx "\.SS $pol" "$TMP/section" ||
		fail "policy $pol has no '.SS $pol' under POLICIES in man/uspf.7"
done <"$TMP/policies"

sed -n 's/.*\[\(USPF_C_[A-Z0-9_]*\)\] *= *"\([a-z0-9_]*\)".*/\1 \2/p' "$SRC/stats.c" >"$TMP/counters"
[ -s "$TMP/counters" ] || fail "found no counter names in src/stats.c"
sh_section "$MANDIR/uspf.7" COUNTERS >"$TMP/section"
norm "$MANDIR/uspf_counter_name.3" >"$TMP/counter_page"
while read -r enum name; do
	grep -qx "\.B $name" "$TMP/section" ||
		fail "counter $name has no entry ('.B $name') under COUNTERS in man/uspf.7"
	grep -q "^$enum[[:space:]][[:space:]]*$name\$" "$TMP/counter_page" ||
		fail "counter $enum ($name) is not in the table of man/uspf_counter_name.3"
done <"$TMP/counters"

grep -ohE '"USPF_[A-Z0-9_]+"' "$SRC"/preload/*.c "$SRC"/cmd/*.c | tr -d '"' | sort -u >"$TMP/variables"
sh_section "$MANDIR/uspf.7" ENVIRONMENT >"$TMP/section"
while read -r var; do
	has_token "$var" <"$TMP/section" ||
		fail "environment variable $var is not described under ENVIRONMENT in man/uspf.7"
done <"$TMP/variables"

# ---- rendering -------------------------------------------------------------

if ! command -v man >/dev/null 2>&1; then
	if [ -s "$TMP/failures" ]; then
		exit 1
	fi
	echo "SKIP: man(1) not found: the pages' rendering is not checked" >&2
	exit 77
fi

# A manpath like the installed one: '.so man3/PAGE' resolves against it.
for sec in 1 3 7; do
	ln -s "$MANDIR" "$TMP/man$sec"
done
nr=0
for page in "$MANDIR"/*.[1-9]; do
	name=${page##*/}
	sec=${name##*.}
	[ -e "$TMP/man$sec" ] || ln -s "$MANDIR" "$TMP/man$sec"
	warnings=$(cd "$TMP" && LC_ALL=C MANWIDTH=80 MANOPT= \
		man --warnings -E UTF-8 -l "man$sec/$name" 2>&1 >"$TMP/out")
	if [ -n "$warnings" ]; then
		fail "man/$name: man --warnings -E UTF-8 -l says:"
		printf '%s\n' "$warnings" | sed 's/^/    /' >&2
	elif [ ! -s "$TMP/out" ]; then
		fail "man/$name renders to nothing"
	fi
	nr=$((nr + 1))
done

if [ -s "$TMP/failures" ]; then
	echo "$(wc -l <"$TMP/failures") problem(s) in the manual" >&2
	exit 1
fi
echo "$nr pages render silently; $(wc -l <"$TMP/functions") functions," \
	"$(wc -l <"$TMP/subcommands") subcommands, $(wc -l <"$TMP/counters") counters and" \
	"$(wc -l <"$TMP/variables") variables documented"
exit 0
