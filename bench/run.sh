#!/bin/bash
# Times every workload under each allocator configuration and prints the
# medians, the gcshim/jemalloc ratios and whether the targets are met.
#
# Environment:
#   GCSHIM_LIB        libgcshim.so to preload                   (required)
#   JEMALLOC_SO       plain jemalloc, the baseline               (required)
#   BENCH_DIR         directory holding workload and measure     (required)
#   BENCH_ROUNDS      runs per workload and configuration        (default 5)
#   BENCH_GCSHIM_ENV  extra NAME=VALUE words for the gcshim runs (optional)
#   BENCH_RESULTS     where the table is also written  (BENCH_DIR/results.txt)
set -euo pipefail

: "${GCSHIM_LIB:?GCSHIM_LIB must name libgcshim.so}"
: "${JEMALLOC_SO:?JEMALLOC_SO must name the plain jemalloc shared object}"
: "${BENCH_DIR:?BENCH_DIR must name the directory of the bench programs}"
ROUNDS=${BENCH_ROUNDS:-5}
RESULTS=${BENCH_RESULTS:-$BENCH_DIR/results.txt}
WORKLOAD=$BENCH_DIR/workload
MEASURE=$BENCH_DIR/measure

# Rows: label, then the workload's arguments.
WORKLOADS=(
	"churn|churn"
	"xthread|xthread"
	"realloc|realloc"
	"larson-2t|larson 2"
	"larson-4t|larson 4"
)

# Columns: name, then NAME=VALUE words for the measured process.  Each
# configuration gets a time and a MaxRSS column; the ratios compare
# CANDIDATE with BASELINE.
CONFIGS=(
	"glibc|"
	"jemalloc|LD_PRELOAD=$JEMALLOC_SO"
	"gcshim|LD_PRELOAD=$GCSHIM_LIB ${BENCH_GCSHIM_ENV:-}"
)
BASELINE=jemalloc
CANDIDATE=gcshim

# Targets for the candidate against the baseline.
TARGET_GEOMEAN=1.05
TARGET_MAX_TIME=1.15
TARGET_MAX_RSS=1.05

die() {
	echo "bench: $*" >&2
	exit 1
}

check_inputs() {
	local f
	for f in "$GCSHIM_LIB" "$JEMALLOC_SO" "$WORKLOAD" "$MEASURE"; do
		[[ -f $f ]] || die "missing $f"
	done
	[[ $ROUNDS =~ ^[1-9][0-9]*$ ]] || die "BENCH_ROUNDS must be a positive integer"
	[[ " $(config_names)" == *" $BASELINE "* && " $(config_names)" == *" $CANDIDATE "* ]] ||
		die "BASELINE and CANDIDATE must name configurations"
}

declare -A TIMES RSS

# One measured run; appends its wall time and MaxRSS to the samples.
run_one() {
	local label=$1 config=$3 name=${3%%|*} env argv out
	read -ra env <<<"${config#*|}"
	read -ra argv <<<"$2"
	out=$("$MEASURE" "${env[@]}" "$WORKLOAD" "${argv[@]}") ||
		die "$label failed under $name"
	TIMES[$label|$name]+="${out% *} "
	RSS[$label|$name]+="${out#* } "
}

# Each round starts at the next configuration, so slow drifts of the
# machine (heat, other load) fall on all of them alike.
run_workload() {
	local label=${1%%|*} args=${1#*|} n=${#CONFIGS[@]} r i
	for ((r = 0; r < ROUNDS; r++)); do
		echo "bench: $label round $((r + 1))/$ROUNDS" >&2
		for ((i = 0; i < n; i++)); do
			run_one "$label" "$args" "${CONFIGS[(i + r) % n]}"
		done
	done
}

median() {
	tr ' ' '\n' <<<"$1" | grep . | sort -g |
		awk '{ v[NR] = $1 } END { print NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}

config_names() {
	local c
	for c in "${CONFIGS[@]}"; do
		printf '%s ' "${c%%|*}"
	done
}

# "label time... rss..." per workload, in the order of CONFIGS.
medians() {
	local names w label c
	read -ra names <<<"$(config_names)"
	for w in "${WORKLOADS[@]}"; do
		label=${w%%|*}
		printf '%s' "$label"
		for c in "${names[@]}"; do printf ' %s' "$(median "${TIMES[$label|$c]}")"; done
		for c in "${names[@]}"; do printf ' %s' "$(median "${RSS[$label|$c]}")"; done
		printf '\n'
	done
}

# The aligned table and the verdict on the targets; the ratios are
# computed in awk because bash has no floating point.
print_table() {
	medians | awk -v names="$(config_names)" -v base="$BASELINE" -v cand="$CANDIDATE" \
		-v tg="$TARGET_GEOMEAN" -v tm="$TARGET_MAX_TIME" -v tr="$TARGET_MAX_RSS" '
	function verdict(v, t) { return v <= t ? "met" : "NOT met" }
	BEGIN {
		n = split(names, name, " ")
		for (i = 1; i <= n; i++) {
			if (name[i] == base) b = i
			if (name[i] == cand) c = i
		}
		ratio = cand "/" base
		printf "%-10s", "workload"
		for (i = 1; i <= n; i++) printf " %10s", name[i] " s"
		printf " %16s", ratio
		for (i = 1; i <= n; i++) printf " %13s", name[i] " MiB"
		printf " %16s\n", ratio
	}
	{
		rt = $(1 + c) / $(1 + b)
		rr = $(1 + n + c) / $(1 + n + b)
		printf "%-10s", $1
		for (i = 1; i <= n; i++) printf " %10.3f", $(1 + i)
		printf " %16.3f", rt
		for (i = 1; i <= n; i++) printf " %13.1f", $(1 + n + i) / 1024
		printf " %16.3f\n", rr
		logsum += log(rt); rows++
		if (rt > maxt) { maxt = rt; maxtw = $1 }
		if (rr > maxr) { maxr = rr; maxrw = $1 }
	}
	END {
		g = exp(logsum / rows)
		printf "%s time geomean %.3f (target <= %s: %s), max time %.3f %s (target <= %s: %s), max RSS %.3f %s (target <= %s: %s)\n",
			ratio, g, tg, verdict(g, tg), maxt, maxtw, tm, verdict(maxt, tm),
			maxr, maxrw, tr, verdict(maxr, tr)
	}'
}

main() {
	local w
	check_inputs
	for w in "${WORKLOADS[@]}"; do
		run_workload "$w"
	done
	{
		echo "medians of $ROUNDS rounds; time in seconds, MaxRSS in MiB;" \
			"${CANDIDATE} env: LD_PRELOAD ${BENCH_GCSHIM_ENV:-(defaults)}"
		print_table
	} | tee "$RESULTS"
}

main "$@"
