#!/bin/bash
# The GCBench program whole (bench/gcprogram.c) under gcshim with
# GCSHIM_GROWTH=on and under the Boehm collector, each collecting on its
# own: total time, processor time, peak RSS and collections, medians.
# Target: gcshim's total time no slower than Boehm's, both as their users
# run them (their default marker threads), judged on the median of the
# rounds' ratios (each round runs every configuration once, seconds
# apart); the same with one marker each is shown beside it, and gcshim
# with full collections only (GCSHIM_MINOR=0), which says what the minor
# ones bring.
#
# Environment:
#   GCSHIM_LIB            libgcshim.so to preload                  (required)
#   BENCH_DIR             directory holding gcprogram and gcprogram-boehm (required)
#   BENCH_ROUNDS          processes per configuration            (default 9)
#   BENCH_GCPROGRAM_REPEATS  runs of GCBench's temporary trees   (default 2)
#   BENCH_GCSHIM_ENV      extra NAME=VALUE words for the gcshim runs (optional)
#   BENCH_RESULTS         where the table is also written (BENCH_DIR/results.txt)
#   BENCH_APPEND          1: append to BENCH_RESULTS instead of replacing it
#
# Without BENCH_DIR/gcprogram-boehm only gcshim is measured.
set -euo pipefail
BENCH_NAME=gcprogram
# shellcheck source=bench/common.sh
source "$(dirname "$0")/common.sh"

: "${GCSHIM_LIB:?GCSHIM_LIB must name libgcshim.so}"
: "${BENCH_DIR:?BENCH_DIR must name the directory of the bench programs}"
ROUNDS=${BENCH_ROUNDS:-9}
REPEATS=${BENCH_GCPROGRAM_REPEATS:-2}
RESULTS=${BENCH_RESULTS:-$BENCH_DIR/results.txt}
PROGRAM=$BENCH_DIR/gcprogram
PROGRAM_BOEHM=$BENCH_DIR/gcprogram-boehm
TARGET_RATIO=1.0

# name|environment words - command
CONFIGS=()
setup() {
	local shim="LD_PRELOAD=$GCSHIM_LIB GCSHIM_SOCKET=0 GCSHIM_GROWTH=on ${BENCH_GCSHIM_ENV:-}"
	[[ -f $GCSHIM_LIB ]] || die "missing $GCSHIM_LIB"
	[[ -x $PROGRAM ]] || die "missing $PROGRAM"
	[[ $ROUNDS =~ ^[1-9][0-9]*$ ]] || die "BENCH_ROUNDS must be a positive integer"
	[[ $REPEATS =~ ^[1-9][0-9]*$ ]] || die "BENCH_GCPROGRAM_REPEATS must be a positive integer"
	[[ -x $PROGRAM_BOEHM ]] &&
		CONFIGS+=("boehm|- $PROGRAM_BOEHM" "boehm-1|GC_MARKERS=1 - $PROGRAM_BOEHM")
	CONFIGS+=("gcshim|$shim - $PROGRAM" "gcshim-1|$shim GCSHIM_MARKERS=1 - $PROGRAM"
		"gcshim-full|$shim GCSHIM_MINOR=0 - $PROGRAM")
}

declare -A SAMPLES   # config|key -> values, one per round

run_one() {
	local name=${1%%|*} spec=${1#*|} out line kv
	out=$(run_spec "$spec" -r "$REPEATS") || die "$name failed"
	line=$(grep '^RESULT ' <<<"$out") || die "$name printed no result"
	for kv in ${line#RESULT }; do
		SAMPLES[$name|${kv%%=*}]+="${kv#*=} "
	done
}

# Rounds on the outside, the order rotating, as in gc.sh.
run_all() {
	local n=${#CONFIGS[@]} r i
	for ((r = 0; r < ROUNDS; r++)); do
		echo "gcprogram: round $((r + 1))/$ROUNDS" >&2
		for ((i = 0; i < n; i++)); do
			run_one "${CONFIGS[(i + r) % n]}"
		done
	done
}

med() {
	local s=${SAMPLES[$1|$2]:-}
	if [[ -n $s ]]; then median "$s"; else echo -; fi
}

rows() {
	local c name
	for c in "${CONFIGS[@]}"; do
		name=${c%%|*}
		echo "$name $(med "$name" total_ms) $(med "$name" cpu_ms) $(med "$name" maxrss_kb)" \
			"$(med "$name" collections)"
	done
}

# Configuration $1's total time over $2's, round by round (paired_median).
paired() {
	paired_median "${SAMPLES[$1|total_ms]:-}" "${SAMPLES[$2|total_ms]:-}"
}

report() {
	rows | awk -v rounds="$ROUNDS" -v repeats="$REPEATS" -v target="$TARGET_RATIO" \
		-v paired="$(paired gcshim boehm)" -v paired1="$(paired gcshim-1 boehm-1)" '
	{ n++; name[n] = $1; wall[$1] = $2; cpu[$1] = $3; rss[$1] = $4; colls[$1] = $5 }
	function ratio(a, b) { return (a in wall) && (b in wall) && wall[b] > 0 ? wall[a] / wall[b] : -1 }
	END {
		printf "\nthe GCBench program whole (bench/gcprogram.c; its temporary trees x %d), each collector\n", repeats
		printf "collecting on its own: gcshim with GCSHIM_GROWTH=on and malloc, Boehm with GC_MALLOC and its\n"
		printf "defaults; -1: one marker thread (GCSHIM_MARKERS=1, GC_MARKERS=1); gcshim-full: GCSHIM_MINOR=0;\n"
		printf "medians of %d processes\n\n", rounds
		printf "%-12s | %9s | %8s | %12s | %11s\n", "collector", "total ms", "CPU ms", "max RSS MiB", "collections"
		for (i = 1; i <= n; i++)
			printf "%-12s | %9.0f | %8.0f | %12.1f | %11d\n", name[i], wall[name[i]], cpu[name[i]],
				rss[name[i]] / 1024, colls[name[i]]
		r = ratio("gcshim", "boehm"); r1 = ratio("gcshim-1", "boehm-1"); rf = ratio("gcshim-full", "gcshim")
		if (rf > 0)
			printf "gcshim with full collections only / gcshim: %.3f\n", 1 / rf
		if (r1 > 0)
			printf "gcshim/Boehm total time, one marker each: %.3f (round by round: %.3f)\n",
				r1, paired1
		if (r > 0)
			printf "gcshim/Boehm total time, defaults: %.3f; round by round (the median of %d\n" \
				"ratios of runs made seconds apart): %.3f (target <= %s: %s)\n", r, rounds,
				paired, target, paired <= target ? "met" : "NOT met"
		else
			printf "gcshim/Boehm total time: not measured (gcprogram-boehm missing)\n"
	}'
}

main() {
	setup
	run_all
	publish report
}

main "$@"
