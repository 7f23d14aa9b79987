#!/bin/bash
# Runs one fuzz harness: run.sh tests/fuzz/fuzz_NAME
# over tests/fuzz/corpus/NAME (read only) with tests/fuzz/NAME.dict, for
# FUZZ_RUNS inputs (default 10 million).  Inputs that reach new code go to
# FUZZ_FOUND (default: the build tree's tests/fuzz/found-NAME), a crash and
# the input that made it to FUZZ_FOUND too.  Prints one line of figures
# (inputs, executions per second, wall time, corpus); exits non-zero on
# any crash, hang, leak or sanitizer report.  One process, on one core.
set -uo pipefail

bin=$1
name=$(basename "$bin")
name=${name#fuzz_}
src=${top_srcdir:-$(dirname "$0")/../..}/tests/fuzz
runs=${FUZZ_RUNS:-10000000}
found=${FUZZ_FOUND:-$(dirname "$bin")/found-$name}
log=$found.log

# Leaks are checked after every input that allocated more than it freed;
# the check at exit would only see what libFuzzer keeps until then.
export ASAN_OPTIONS=${ASAN_OPTIONS:-leak_check_at_exit=0}
mkdir -p "$found"
SECONDS=0
"$bin" -runs="$runs" -dict="$src/$name.dict" -max_len=4096 -timeout=60 \
	-print_final_stats=1 -artifact_prefix="$found/" "$found" "$src/corpus/$name" \
	>"$log" 2>&1
status=$?
inputs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log")
speed=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log")
reports=$(grep -c 'ERROR: AddressSanitizer\|runtime error:\|ERROR: libFuzzer\|ERROR: LeakSanitizer' "$log")
if [ $status -ne 0 ] || [ "$reports" -ne 0 ] || [ -z "$inputs" ]; then
	grep -B2 -A30 -m1 'ERROR\|runtime error\|==ERROR\|deadly signal' "$log" | head -60
	echo "$name: FAILED after ${inputs:-?} inputs (exit $status, $reports reports; log $log)"
	exit 1
fi
echo "$name: $inputs inputs, 0 crashes, 0 sanitizer reports, $speed exec/s, ${SECONDS}s," \
	"corpus $(ls "$src/corpus/$name" | wc -l)+$(ls "$found" | wc -l) inputs"
