#!/bin/bash
# Times every workload under each allocator configuration and prints the
# medians, the ratios of each gcshim configuration to plain jemalloc and
# whether the targets are met.  gcshim runs three times: with its defaults
# (no automatic collection), collecting every BENCH_THRESHOLD bytes
# allocated, and with the growth trigger (GCSHIM_GROWTH=on).  The Boehm
# collector runs in its collecting mode, preloaded through
# bench/boehm-preload.c, when that was built.
#
# Environment:
#   GCSHIM_LIB        libgcshim.so to preload                   (required)
#   JEMALLOC_SO       plain jemalloc, the baseline               (required)
#   BENCH_DIR         directory holding workload and measure     (required)
#   BENCH_ROUNDS      runs per workload and configuration        (default 5)
#   BENCH_GCSHIM_ENV  extra NAME=VALUE words for the gcshim runs (optional)
#   BENCH_THRESHOLD   GCSHIM_THRESHOLD of the collecting column  (default 64M)
#   BOEHM_PRELOAD     the Boehm collector's preload library (optional)
#   BENCH_CLOCK       wall: elapsed time; cpu: user + system time of the
#                     process, steadier on a loaded machine  (default wall)
#   BENCH_RESULTS     where the table is also written  (BENCH_DIR/results.txt)
#   BENCH_SITES       1: the allocation-site configuration instead: plain
#                     jemalloc, gcshim, gcshim recording the stack of every
#                     allocation at depths 8 and 16 (GCSHIM_BACKTRACE), and
#                     heaptrack (BENCH_HEAPTRACK, default: heaptrack in PATH),
#                     with heaptrack/gcshim-bt16 against its target (>= 3),
#                     and the deep workload added
set -euo pipefail
BENCH_NAME=bench
# shellcheck source=bench/common.sh
source "$(dirname "$0")/common.sh"

: "${GCSHIM_LIB:?GCSHIM_LIB must name libgcshim.so}"
: "${JEMALLOC_SO:?JEMALLOC_SO must name the plain jemalloc shared object}"
: "${BENCH_DIR:?BENCH_DIR must name the directory of the bench programs}"
ROUNDS=${BENCH_ROUNDS:-3}
CLOCK=${BENCH_CLOCK:-wall}
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
	"mthread-1t|mthread 1"
	"mthread-2t|mthread 2"
	"cfrac|cfrac"
	"espresso|espresso"
	"xmalloc|xmalloc"
	"mstress|mstress"
	"cscratch|cache-scratch"
	"alloctest1|alloc-test 1"
	"alloctest2|alloc-test 2"
	"mlarge|malloc-large"
	"mleak|mleak"
	"pool|pool"
	"leaky|leaky"
)

THRESHOLD=${BENCH_THRESHOLD:-64M}

# Columns: name, then NAME=VALUE words for the measured process (a later
# word wins over an earlier one of the same name).  Each configuration
# gets a time and a MaxRSS column; the ratios compare each of CANDIDATES
# with BASELINE.
CONFIGS=(
	"glibc|"
	"jemalloc|LD_PRELOAD=$JEMALLOC_SO"
	"gcshim|LD_PRELOAD=$GCSHIM_LIB ${BENCH_GCSHIM_ENV:-}"
	"gcshim-$THRESHOLD|LD_PRELOAD=$GCSHIM_LIB ${BENCH_GCSHIM_ENV:-} GCSHIM_THRESHOLD=$THRESHOLD"
	"gcshim-growth|LD_PRELOAD=$GCSHIM_LIB ${BENCH_GCSHIM_ENV:-} GCSHIM_GROWTH=on"
)
BASELINE=jemalloc
CANDIDATES="gcshim gcshim-$THRESHOLD gcshim-growth"
BOEHM_PRELOAD=${BOEHM_PRELOAD:-}
if [[ -n $BOEHM_PRELOAD && -f $BOEHM_PRELOAD ]]; then
	CONFIGS+=("boehm|LD_PRELOAD=$BOEHM_PRELOAD")
	CANDIDATES+=" boehm"
fi

# Allocation sites: words without '=' in a configuration are a command
# that runs the workload (heaptrack records into BENCH_DIR/heaptrack.*).
SITES=${BENCH_SITES:-0}
# where backtraces are timed, one more: allocations far down the stack
[[ $SITES != 1 ]] || WORKLOADS+=("deep|deep")
HEAPTRACK=${BENCH_HEAPTRACK:-$(command -v heaptrack || true)}
TARGET_HEAPTRACK=3
if [[ $SITES == 1 ]]; then
	CONFIGS=(
		"jemalloc|LD_PRELOAD=$JEMALLOC_SO"
		"gcshim|LD_PRELOAD=$GCSHIM_LIB ${BENCH_GCSHIM_ENV:-}"
		"gcshim-bt8|LD_PRELOAD=$GCSHIM_LIB ${BENCH_GCSHIM_ENV:-} GCSHIM_BACKTRACE=8"
		"gcshim-bt16|LD_PRELOAD=$GCSHIM_LIB ${BENCH_GCSHIM_ENV:-} GCSHIM_BACKTRACE=16"
		"heaptrack|$HEAPTRACK -o $BENCH_DIR/heaptrack.bench"
	)
	CANDIDATES="gcshim gcshim-bt8 gcshim-bt16 heaptrack"
fi

# Targets for the candidate against the baseline.
TARGET_GEOMEAN=1.05
TARGET_MAX_TIME=1.15
TARGET_MAX_RSS=1.05


check_inputs() {
	local f c
	for f in "$GCSHIM_LIB" "$JEMALLOC_SO" "$WORKLOAD" "$MEASURE"; do
		[[ -f $f ]] || die "missing $f"
	done
	[[ $ROUNDS =~ ^[1-9][0-9]*$ ]] || die "BENCH_ROUNDS must be a positive integer"
	[[ $CLOCK == wall || $CLOCK == cpu ]] || die "BENCH_CLOCK must be wall or cpu"
	[[ $THRESHOLD =~ ^[0-9]+[KkMmGg]?$ ]] || die "BENCH_THRESHOLD must be a size such as 64M"
	[[ $SITES != 1 || -x $HEAPTRACK ]] || die "heaptrack not found (set BENCH_HEAPTRACK)"
	for c in $BASELINE $CANDIDATES; do
		[[ " $(config_names)" == *" $c "* ]] ||
			die "BASELINE and CANDIDATES must name configurations"
	done
}

declare -A TIMES RSS

# One measured run; appends its wall time and MaxRSS to the samples.
run_one() {
	local label=$1 config=$3 name=${3%%|*} words env=() prefix=() argv out w wall rss cpu
	read -ra words <<<"${config#*|}"
	for w in "${words[@]}"; do
		if [[ $w == *=* && ${#prefix[@]} -eq 0 ]]; then env+=("$w"); else prefix+=("$w"); fi
	done
	read -ra argv <<<"$2"
	if ((${#prefix[@]})); then   # heaptrack talks on stderr
		out=$("$MEASURE" "${env[@]}" "${prefix[@]}" "$WORKLOAD" "${argv[@]}" 2>/dev/null)
	else
		out=$("$MEASURE" "${env[@]}" "$WORKLOAD" "${argv[@]}")
	fi ||
		die "$label failed under $name"
	read -r wall rss cpu <<<"$out"
	if [[ $CLOCK == cpu ]]; then TIMES[$label|$name]+="$cpu "; else TIMES[$label|$name]+="$wall "; fi
	RSS[$label|$name]+="$rss "
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

config_names() {
	local c
	for c in "${CONFIGS[@]}"; do
		printf '%s ' "${c%%|*}"
	done
}

# "label time... rss... ratio..." per workload: medians in the order of
# CONFIGS, then each candidate's time over the baseline's, round by round
# (paired_median).
medians() {
	local names w label c
	read -ra names <<<"$(config_names)"
	for w in "${WORKLOADS[@]}"; do
		label=${w%%|*}
		printf '%s' "$label"
		for c in "${names[@]}"; do printf ' %s' "$(median "${TIMES[$label|$c]}")"; done
		for c in "${names[@]}"; do printf ' %s' "$(median "${RSS[$label|$c]}")"; done
		for c in $CANDIDATES; do
			printf ' %s' "$(paired_median "${TIMES[$label|$c]}" "${TIMES[$label|$BASELINE]}")"
		done
		printf '\n'
	done
}

# The aligned tables, times then MaxRSS, and the verdicts on the targets,
# one line for each candidate; the ratios are computed in awk because
# bash has no floating point.
print_table() {
	medians | awk -v names="$(config_names)" -v base="$BASELINE" -v cands="$CANDIDATES" \
		-v tg="$TARGET_GEOMEAN" -v tm="$TARGET_MAX_TIME" -v tr="$TARGET_MAX_RSS" \
		-v sites="$([[ $SITES == 1 ]] && echo 1 || echo 0)" -v th="$TARGET_HEAPTRACK" '
	function verdict(v, t) { return v <= t ? "met" : "NOT met" }
	function width(s) { return length(s) > 10 ? length(s) : 10 }
	# One table: column offset 1 for times, 1 + n for MaxRSS.
	function table(unit, off, scale, fmt,    i, k, r, v) {
		printf "%-10s", "workload"
		for (i = 1; i <= n; i++) printf " %*s", w[i], name[i] " " unit
		for (k = 1; k <= m; k++) printf " %*s", rw[k], ratio[k]
		printf "\n"
		for (r = 1; r <= rows; r++) {
			printf "%-10s", label[r]
			for (i = 1; i <= n; i++) printf " %*" fmt, w[i], val[r, off + i] / scale
			for (k = 1; k <= m; k++)
				printf " %*.3f", rw[k], off ? val[r, off + c[k]] / val[r, off + b] : pr[r, k]
			printf "\n"
		}
	}
	BEGIN {
		n = split(names, name, " ")
		m = split(cands, cand, " ")
		for (i = 1; i <= n; i++) {
			if (name[i] == base) b = i
			if (name[i] == "heaptrack") ht = i
			if (name[i] == "gcshim-bt16") bt16 = i
			for (k = 1; k <= m; k++)
				if (name[i] == cand[k]) c[k] = i
		}
		for (i = 1; i <= n; i++) w[i] = width(name[i] " MiB")
		for (k = 1; k <= m; k++) {
			ratio[k] = cand[k] "/" base
			rw[k] = width(ratio[k])
		}
	}
	{
		rows++
		label[rows] = $1
		for (i = 2; i <= 1 + 2 * n; i++) val[rows, i - 1] = $i
		for (k = 1; k <= m; k++) {
			rt = pr[rows, k] = $(1 + 2 * n + k)
			rr = $(1 + n + c[k]) / $(1 + n + b)
			logsum[k] += log(rt)
			rlogsum[k] += log(rr)
			if (rt > maxt[k]) { maxt[k] = rt; maxtw[k] = $1 }
			if (rr > maxr[k]) { maxr[k] = rr; maxrw[k] = $1 }
		}
	}
	END {
		table("s", 0, 1, ".3f")
		printf "\n"
		table("MiB", n, 1024, ".1f")
		printf "\n"
		if (sites) {
			for (r = 1; r <= rows; r++) {
				v = val[r, ht] / val[r, bt16]
				hl += log(v)
				if (!mn || v < mn) { mn = v; mnw = label[r] }
			}
			printf "heaptrack/gcshim-bt16 time geomean %.2f, min %.2f %s (target >= %s: %s)\n",
				exp(hl / rows), mn, mnw, th, (mn >= th ? "met" : "NOT met")
			exit
		}
		# the targets are those of the first candidate (gcshim, no
		# automatic collection); the others are shown against the same
		# baseline, with their RSS geomean
		for (k = 1; k <= m; k++) {
			g = exp(logsum[k] / rows)
			if (k == 1)
				printf "%s time geomean %.3f (overhead %+.1f%%; target <= %s: %s), max time %.3f %s (target <= %s: %s), max RSS %.3f %s (target <= %s: %s)\n",
					ratio[k], g, (g - 1) * 100, tg, verdict(g, tg), maxt[k], maxtw[k], tm,
					verdict(maxt[k], tm), maxr[k], maxrw[k], tr, verdict(maxr[k], tr)
			else
				printf "%s time geomean %.3f, max time %.3f %s; MaxRSS geomean %.3f, max %.3f %s\n",
					ratio[k], g, maxt[k], maxtw[k], exp(rlogsum[k] / rows), maxr[k], maxrw[k]
		}
	}'
}

main() {
	local w
	check_inputs
	for w in "${WORKLOADS[@]}"; do
		run_workload "$w"
	done
	{
		echo "allocation workloads: medians of $ROUNDS rounds; time in seconds ($CLOCK clock), MaxRSS in MiB;"
		echo "time ratios: the median of the rounds' ratios (a round runs every configuration once, seconds apart)"
		echo "gcshim: LD_PRELOAD ${BENCH_GCSHIM_ENV:-(defaults: no automatic collection)}"
		if [[ $SITES == 1 ]]; then
			echo "gcshim-bt8, gcshim-bt16: the same plus GCSHIM_BACKTRACE=8 or 16 (every allocation's stack recorded)"
			echo "heaptrack: $HEAPTRACK -o FILE, its analysis included (wall time of the whole run)"
		else
			echo "gcshim-$THRESHOLD: the same plus GCSHIM_THRESHOLD=$THRESHOLD (a full collection every $THRESHOLD allocated)"
			echo "gcshim-growth: the same plus GCSHIM_GROWTH=on (collections as the heap grows)"
			[[ " $CANDIDATES " != *" boehm "* ]] ||
				echo "boehm: the Boehm collector preloaded in its collecting mode ($BOEHM_PRELOAD)"
		fi
		print_table
	} | tee "$RESULTS"
}

main "$@"
