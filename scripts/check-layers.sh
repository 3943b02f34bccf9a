#!/bin/sh
# check-layers.sh - the include rules between src/'s layers (issue 11).
#   uffd/            only its own uffd.h
#   src/mm/          only mm/, uffd/uffd.h and the public uspf.h
#   src/*.[ch]       (the library) and src/policy/: nothing from cmd/ or preload/
#   src/cmd/bench/   the runtime only through uspf.h and hooks.h; index.c (the
#                    VMA index microbenchmark) also mm/{vma_index,kmem,call_rcu}.h
#   src/include/     nothing of the project
# Prints each violation as FILE: "HEADER" and exits 1 if there is one.
cd "$(dirname "$0")/.." || exit 2
if [ ! -d src/mm ] || [ ! -d src/cmd/bench ]; then
	echo "check-layers: no src/mm or src/cmd/bench: run from the moved tree" >&2; exit 2
fi

# rule ERE FILE...: every #include "X" of FILE... must match ERE as a whole.
rule() {
	ere=$1; shift
	for f in "$@"; do
		[ -f "$f" ] || continue
		sed -n 's/^[[:space:]]*#[[:space:]]*include[[:space:]]*"\([^"]*\)".*/\1/p' "$f" |
			grep -Evx "$ere" | sed "s|^|$f: \"|; s|\$|\"|"
	done
}
lib='[a-z_]+\.h|(mm|policy)/[a-z_]+\.h|uffd/uffd\.h'
bench='uspf\.h|hooks\.h|config\.h|cmd/cli\.h|cmd/gnuplot\.h|cmd/bench/[a-z0-9_]+\.h'
bad=$(
	rule 'uffd\.h|uffd/uffd\.h' uffd/*.[ch]
	rule 'mm/[a-z_]+\.h|uffd/uffd\.h|uspf\.h' src/mm/*.[ch]
	rule "$lib" src/*.[ch] src/policy/*.[ch]
	for f in src/cmd/bench/*.[ch]; do
		case $f in
		*/index.c) rule "$bench|mm/(vma_index|kmem|call_rcu)\.h" "$f" ;;
		*) rule "$bench" "$f" ;;
		esac
	done
	rule '' src/include/*.h
)
[ -z "$bad" ] && exit 0
printf '%s\n' "$bad" | sed 's/^/check-layers: /' >&2
exit 1
