#!/bin/sh
# Print every Criterion "Synthesis" line from the test harness logs, and a
# total.  Under automake's harness Criterion's summary (on stderr) lands only
# in tests/*.log; CI reads it from here.
dir=${1:-tests}
logs=$(find "$dir" -name '*.log' ! -name 'test-suite.log' | sort)
[ -n "$logs" ] || { echo "no test logs under $dir" >&2; exit 1; }
tested=0 passing=0 failing=0 crashing=0
for log in $logs; do
	line=$(grep -a 'Synthesis:' "$log" | tail -n 1)
	[ -n "$line" ] || continue
	echo "$(basename "$log" .log): $line"
	set -- $(echo "$line" | sed 's/\x1b\[[0-9;]*m//g' | sed 's/.*Tested: *\([0-9]*\).*Passing: *\([0-9]*\).*Failing: *\([0-9]*\).*Crashing: *\([0-9]*\).*/\1 \2 \3 \4/')
	tested=$((tested + $1)); passing=$((passing + $2))
	failing=$((failing + $3)); crashing=$((crashing + $4))
done
echo "[====] Synthesis: Tested: $tested | Passing: $passing | Failing: $failing | Crashing: $crashing"
