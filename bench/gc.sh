#!/bin/bash
# Times full collections of GCBench-shaped heaps (bench/gcbench.c) under
# gcshim and under the Boehm collector, at several heap sizes, and prints
# the medians, the gcshim/Boehm ratios and whether the target is met:
# gcshim's collection no slower than Boehm's, one marking thread each, at
# every size.
#
# Environment:
#   GCSHIM_LIB            libgcshim.so to preload                  (required)
#   BENCH_DIR             directory holding gcbench and gcbench-boehm (required)
#   BENCH_ROUNDS          processes per size and collector          (default 5)
#   BENCH_GC_SIZES        live node counts                   (default "1M 4M 16M")
#   BENCH_GC_COLLECTIONS  timed collections in each process         (default 5)
#   BENCH_GCSHIM_ENV      extra NAME=VALUE words for the gcshim runs (optional)
#   BENCH_RESULTS         where the tables are also written (BENCH_DIR/results.txt)
#   BENCH_APPEND          1: append to BENCH_RESULTS instead of replacing it
#
# Without BENCH_DIR/gcbench-boehm (the Boehm collector's development files
# were missing when it would have been built) only gcshim is measured.
set -euo pipefail
BENCH_NAME=gcbench
# shellcheck source=bench/common.sh
source "$(dirname "$0")/common.sh"

: "${GCSHIM_LIB:?GCSHIM_LIB must name libgcshim.so}"
: "${BENCH_DIR:?BENCH_DIR must name the directory of the bench programs}"
ROUNDS=${BENCH_ROUNDS:-5}
SIZES=${BENCH_GC_SIZES:-1M 4M 16M}
COLLECTIONS=${BENCH_GC_COLLECTIONS:-5}
RESULTS=${BENCH_RESULTS:-$BENCH_DIR/results.txt}
GCBENCH=$BENCH_DIR/gcbench
GCBENCH_BOEHM=$BENCH_DIR/gcbench-boehm

# The target: gcshim's pause over Boehm's with one marker, at every size.
TARGET_RATIO=1.0
# gcshim should reclaim at least this share of the garbage each
# collection is given; less means it kept unreachable blocks.
MIN_RECLAIMED=0.9


# Columns: name, then the command; "-" stands between environment words
# and the program.  boehm marks with one thread, as gcshim does;
# boehm-par with the library's default, one marker thread per CPU.
CONFIGS=()
HAVE_BOEHM=0
setup() {
	[[ -f $GCSHIM_LIB ]] || die "missing $GCSHIM_LIB"
	[[ -x $GCBENCH ]] || die "missing $GCBENCH"
	[[ $ROUNDS =~ ^[1-9][0-9]*$ ]] || die "BENCH_ROUNDS must be a positive integer"
	[[ $COLLECTIONS =~ ^[1-9][0-9]*$ ]] || die "BENCH_GC_COLLECTIONS must be a positive integer"
	if [[ -x $GCBENCH_BOEHM ]]; then
		HAVE_BOEHM=1
		CONFIGS+=("boehm|- $GCBENCH_BOEHM -m 1" "boehm-par|- $GCBENCH_BOEHM -m 0")
	fi
	CONFIGS+=("gcshim|LD_PRELOAD=$GCSHIM_LIB ${BENCH_GCSHIM_ENV:-} GCSHIM_MARKERS=1 - $GCBENCH"
		"gcshim-par|LD_PRELOAD=$GCSHIM_LIB ${BENCH_GCSHIM_ENV:-} - $GCBENCH")
}

declare -A SAMPLES   # size|config|key -> values, one per round
declare -A MARKERS   # config -> marker threads the collector reported

# One process; keeps every key=value of its RESULT line.
run_one() {
	local size=$1 name=${2%%|*} spec=${2#*|} out line kv
	out=$(run_spec "$spec" -c "$COLLECTIONS" "$size") || die "$size failed under $name"
	line=$(grep '^RESULT ' <<<"$out") || die "$size under $name printed no result"
	for kv in ${line#RESULT }; do
		SAMPLES[$size|$name|${kv%%=*}]+="${kv#*=} "
	done
	MARKERS[$name]=$(sed -n 's/.* markers=\([0-9]*\).*/\1/p' <<<"$line")
	[[ $line != *markers_used=* ]] ||
		MARKERS[$name]=$(sed -n 's/.* markers_used=\([0-9]*\).*/\1/p' <<<"$line")
}

# Rounds on the outside and a rotating start, so that slow drifts of the
# machine fall on every collector alike.
run_all() {
	local n=${#CONFIGS[@]} r i size
	for ((r = 0; r < ROUNDS; r++)); do
		for size in $SIZES; do
			echo "gcbench: $size live nodes, round $((r + 1))/$ROUNDS" >&2
			for ((i = 0; i < n; i++)); do
				run_one "$size" "${CONFIGS[(i + r) % n]}"
			done
		done
	done
}

# The median of KEY for SIZE under CONFIG, or "-" when not measured.
med() {
	local s=${SAMPLES[$1|$2|$3]:-}
	if [[ -n $s ]]; then median "$s"; else echo -; fi
}

# One line a size: the figures the tables need, in a fixed order.
rows() {
	local size
	for size in $SIZES; do
		echo "$size $(med "$size" gcshim live_nodes) $(med "$size" gcshim live_blocks)" \
			"$(med "$size" gcshim heap_bytes) $(med "$size" gcshim garbage_nodes)" \
			"$(med "$size" boehm pause_ms) $(med "$size" gcshim pause_ms)" \
			"$(med "$size" boehm ns_per_block) $(med "$size" gcshim ns_per_block)" \
			"$(med "$size" boehm mb_s) $(med "$size" gcshim mb_s)" \
			"$(med "$size" boehm-par pause_ms) $(med "$size" boehm mark_ms)" \
			"$(med "$size" gcshim stw_ms) $(med "$size" gcshim mark_ms) $(med "$size" gcshim free_ms)" \
			"$(med "$size" boehm reclaimed) $(med "$size" gcshim reclaimed)" \
			"$(med "$size" gcshim scanned_bytes) $(med "$size" gcshim root_bytes)" \
			"$(med "$size" gcshim-par pause_ms) $(med "$size" gcshim roots_ms)"
	done
}

report() {
	rows | awk -v rounds="$ROUNDS" -v colls="$COLLECTIONS" -v have_boehm="$HAVE_BOEHM" \
		-v par="${MARKERS[boehm-par]:-?}" -v gpar="${MARKERS[gcshim-par]:-?}" -v target="$TARGET_RATIO" -v minrec="$MIN_RECLAIMED" '
	function num(x) { return x != "-" }
	function f(fmt, x) { return num(x) ? sprintf(fmt, x) : sprintf("%" int(substr(fmt, 2)) "s", "-") }
	function ratio(a, b) { return num(a) && num(b) && b > 0 ? a / b : "-" }
	{
		n++
		size[n] = $1; nodes[n] = $2; blocks[n] = $3; heap[n] = $4; garbage[n] = $5
		bp[n] = $6; gp[n] = $7; bns[n] = $8; gns[n] = $9; bmb[n] = $10; gmb[n] = $11
		parp[n] = $12; bmark[n] = $13; gstw[n] = $14; gmark[n] = $15; gfree[n] = $16
		brec[n] = $17; grec[n] = $18; gscan[n] = $19; groot[n] = $20
		gparp[n] = $21; groots[n] = $22
	}
	END {
		printf "\nfull collections of GCBench-shaped heaps: trees of 16-byte nodes, 4 x 16 MiB arrays of\n"
		printf "non-pointer data (allocated like the nodes: malloc / GC_MALLOC, so both collectors scan them),\n"
		printf "1/8 of the live nodes made garbage before each collection; medians of %d processes x %d\n", rounds, colls
		printf "collections; pause = wall time of GC_gcollect() / of gcshim_collect(2) less its freeing\n"
		printf "(which an automatic collection leaves to the sweep, as Boehm leaves its sweep to later\n"
		printf "allocations); ns/block and MB/s over live blocks and live bytes (live nodes x 16 + arrays);\n"
		printf "first table: both with 1 marker thread\n"
		if (!have_boehm)
			printf "Boehm comparison skipped: gcbench-boehm was not built (no pkg-config bdw-gc; install libgc-dev)\n"
		printf "\n%10s | %14s | %15s | %12s | %15s | %15s | %10s | %11s\n", "live nodes",
			"Boehm pause ms", "gcshim pause ms", "gcshim/Boehm", "Boehm ns/block",
			"gcshim ns/block", "Boehm MB/s", "gcshim MB/s"
		for (i = 1; i <= n; i++) {
			r = ratio(gp[i], bp[i])
			printf "%10d | %14s | %15s | %12s | %15s | %15s | %10s | %11s\n", nodes[i],
				f("%14.1f", bp[i]), f("%15.1f", gp[i]), f("%12.3f", r),
				f("%15.1f", bns[i]), f("%15.1f", gns[i]), f("%10.0f", bmb[i]), f("%11.0f", gmb[i])
			if (num(r)) {
				rows++
				if (r > worst) { worst = r; worstn = nodes[i] }
			}
		}
		printf "\nwith the default marker threads (Boehm %s, gcshim %s):\n", par, gpar
		printf "%10s | %15s | %16s | %15s\n", "live nodes", "Boehm pause ms", "gcshim pause ms",
			"gcshim/Boehm"
		for (i = 1; i <= n; i++) {
			r = ratio(gparp[i], parp[i])
			printf "%10d | %15s | %16s | %15s\n", nodes[i], f("%15.1f", parp[i]),
				f("%16.1f", gparp[i]), f("%15.3f", r)
			if (num(r)) {
				prows++
				if (r > pworst) { pworst = r; pworstn = nodes[i] }
			}
		}
		printf "\nwhere the time goes (ms, 1 marker), and what was reclaimed per collection:\n"
		printf "%10s | %13s | %14s | %12s | %14s | %11s | %8s | %8s | %8s | %10s | %9s\n",
			"live nodes", "Boehm mark ms", "gcshim stopped", "gcshim roots",
			"gcshim mark ms", "gcshim free", "garbage", "Boehm~", "gcshim",
			"gcshim MiB", "roots MiB"
		for (i = 1; i <= n; i++) {
			printf "%10d | %13s | %14s | %12s | %14s | %11s | %8d | %8s | %8s | %10s | %9s\n",
				nodes[i], f("%13.1f", bmark[i]), f("%14.1f", gstw[i]),
				f("%12.1f", groots[i]), f("%14.1f", gmark[i]),
				f("%11.1f", gfree[i]), garbage[i], f("%8d", brec[i]), f("%8d", grec[i]),
				f("%10.1f", gscan[i] / 1048576), f("%9.1f", groot[i] / 1048576)
			if (grec[i] < minrec * garbage[i]) {
				kept = kept sprintf(" %d (%d of %d)", nodes[i], grec[i], garbage[i])
			}
		}
		printf "(gcshim stopped: world stopped, marking and finding the unmarked; gcshim free: freeing them\n"
		printf "after the world resumed; Boehm~: bytes Boehm reports reclaimed over its 32-byte node object,\n"
		printf "it sweeps most blocks lazily, later; gcshim MiB: block bytes gcshim scanned; roots MiB: root\n"
		printf "bytes it scanned)\n"
		if (kept != "")
			printf "gcshim reclaimed under %.0f%% of the garbage at:%s\n", minrec * 100, kept
		if (rows)
			printf "gcshim/Boehm pause, 1 marker: worst %.3f at %d live nodes (target <= %s at every size: %s)\n",
				worst, worstn, target, worst <= target && rows == n ? "met" : "NOT met"
		if (prows)
			printf "gcshim/Boehm pause, default markers: worst %.3f at %d live nodes (target <= %s at every size: %s)\n",
				pworst, pworstn, target, pworst <= target && prows == n ? "met" : "NOT met"
		else
			printf "gcshim/Boehm pause: not measured (target <= %s at every size)\n", target
	}'
}

main() {
	setup
	run_all
	publish report
}

main "$@"
