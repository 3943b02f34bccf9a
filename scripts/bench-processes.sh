#!/bin/sh
# What a process costs under `uspf run`: shell loops of short commands,
# natively and under uspf, interleaved in one run so that drift on a shared
# machine hits both alike.  Prints wall time per loop (best of REPEAT), the
# ratio to native and the cost per process that uspf adds.
#
#   scripts/bench-processes.sh [N [REPEAT]]     (default 500 3)
#
# Loops (each makes N processes):
#   subshell  ( : )              fork, child exits: the runtime is not
#                                started in the child
#   cmdsubst  x=$(echo $i)       fork, a pipe, the child writes and exits
#   true      /bin/true          fork + exec of a program that never
#                                mallocs: the library loads, no runtime
#   echo      /bin/echo $i       fork + exec of a program that mallocs:
#                                the library loads, the runtime starts
set -u
cd "$(dirname "$0")/.."
n=${1:-500}
repeat=${2:-3}
uspf=${USPF_BIN:-./uspf}
[ -x "$uspf" ] || { echo "bench-processes: build first (./scripts/build.sh)" >&2; exit 2; }

loop() {
	case $1 in
	subshell) echo "i=0; while [ \$i -lt $n ]; do ( : ); i=\$((i+1)); done" ;;
	cmdsubst) echo "i=0; while [ \$i -lt $n ]; do x=\$(echo \$i); i=\$((i+1)); done" ;;
	true) echo "i=0; while [ \$i -lt $n ]; do /bin/true; i=\$((i+1)); done" ;;
	echo) echo "i=0; while [ \$i -lt $n ]; do /bin/echo \$i; i=\$((i+1)); done >/dev/null" ;;
	esac
}

# Wall seconds of one run of "$@".
wall() {
	s=$(date +%s.%N)
	"$@" >/dev/null 2>&1
	e=$(date +%s.%N)
	echo "$s $e" | awk '{ printf "%.4f", $2 - $1 }'
}

min() { awk -v a="$1" -v b="$2" 'BEGIN { print (b == "" || a < b) ? a : b }'; }

echo "# $(uname -r), $(nproc) CPUs; $n processes per loop, best of $repeat; policy ${USPF_POLICY:-spf}"
printf '%-10s %10s %10s %7s %14s\n' loop native_s uspf_s ratio extra_us/proc
for l in subshell cmdsubst true echo; do
	cmd=$(loop $l)
	bn=""; bu=""
	r=0
	while [ $r -lt "$repeat" ]; do
		bn=$(min "$(wall bash -c "$cmd")" "$bn")
		bu=$(min "$(wall "$uspf" run -- bash -c "$cmd")" "$bu")
		r=$((r + 1))
	done
	awk -v l=$l -v a="$bn" -v b="$bu" -v n="$n" 'BEGIN {
		printf "%-10s %10.3f %10.3f %6.2fx %14.0f\n", l, a, b, b / a, (b - a) / n * 1e6 }'
done
