#!/bin/bash
# Minor collections (bench/minorbench.c): a process with a large old heap
# of 32-byte nodes and churning threads that allocate small blocks, drop
# them, and now and then store one into a random old node.  Two kinds of
# process, both under LD_PRELOAD=$GCSHIM_LIB GCSHIM_SOCKET=0:
#
#   pause runs (GCSHIM_MINOR=1): gcshim_collect(0) every 20 ms for
#     BENCH_MINOR_SECONDS, then a few gcshim_collect(2) on the same heap.
#     Targets: every generation-0 pause, median and max, within 0.5 ms +
#     3 us per page written before that collection (last_written_pages),
#     and the median below 5% of the full collection's.
#   cost runs, GCSHIM_MINOR=1 and GCSHIM_MINOR=0 in alternation: a fixed
#     number of allocations per churner under the same schedule; the
#     churners' own processor time per allocation (CLOCK_THREAD_CPUTIME_ID)
#     of the one over the other is what the write tracking costs them.
#     Then one write to each of BENCH_MINOR_PAGES distinct old pages right
#     after a collection: the cost of a first write to a protected page.
#
# Environment:
#   GCSHIM_LIB              libgcshim.so to preload                  (required)
#   BENCH_DIR               directory holding minorbench              (required)
#   BENCH_ROUNDS            pause runs, and pairs of cost runs         (default 3)
#   BENCH_MINOR_NODES       old nodes, a number or with K or M        (default 16M)
#   BENCH_MINOR_THREADS     churner threads                            (default 2)
#   BENCH_MINOR_SECONDS     churn of a pause run, seconds              (default 4)
#   BENCH_MINOR_ITERATIONS  allocations per churner in a cost run  (default 500K)
#   BENCH_MINOR_PAGES       old pages written once in a cost run   (default 10000)
#   BENCH_GCSHIM_ENV        extra NAME=VALUE words for every run       (optional)
#   BENCH_RESULTS           where the report is also written (BENCH_DIR/results.txt)
#   BENCH_APPEND            1: append to BENCH_RESULTS instead of replacing it
#
# The figures are reported, never asserted: the script fails only when a
# process does.
set -euo pipefail
BENCH_NAME=minorbench
# shellcheck source=bench/common.sh
source "$(dirname "$0")/common.sh"

: "${GCSHIM_LIB:?GCSHIM_LIB must name libgcshim.so}"
: "${BENCH_DIR:?BENCH_DIR must name the directory of the bench programs}"
ROUNDS=${BENCH_ROUNDS:-3}
NODES=${BENCH_MINOR_NODES:-16M}
THREADS=${BENCH_MINOR_THREADS:-2}
SECONDS_CHURN=${BENCH_MINOR_SECONDS:-4}
ITERATIONS=${BENCH_MINOR_ITERATIONS:-500K}
PAGES=${BENCH_MINOR_PAGES:-10000}
RESULTS=${BENCH_RESULTS:-$BENCH_DIR/results.txt}
MINORBENCH=$BENCH_DIR/minorbench
# Fixed by the targets and by minorbench's defaults, printed in the report.
INTERVAL_MS=20
FULLS=3
WRITE_EVERY=64

WORK=

setup() {
	[[ -f $GCSHIM_LIB ]] || die "missing $GCSHIM_LIB"
	[[ -x $MINORBENCH ]] || die "missing $MINORBENCH"
	[[ $ROUNDS =~ ^[1-9][0-9]*$ ]] || die "BENCH_ROUNDS must be a positive integer"
	[[ $NODES =~ ^[1-9][0-9]*[KkMm]?$ ]] || die "BENCH_MINOR_NODES must be a count (1M, 16M, ...)"
	[[ $THREADS =~ ^[1-9][0-9]*$ ]] || die "BENCH_MINOR_THREADS must be a positive integer"
	[[ $ITERATIONS =~ ^[1-9][0-9]*[KkMm]?$ ]] || die "BENCH_MINOR_ITERATIONS must be a count"
	[[ $PAGES =~ ^[0-9]+$ ]] || die "BENCH_MINOR_PAGES must be a number"
	[[ $SECONDS_CHURN =~ ^[0-9]*\.?[0-9]+$ ]] || die "BENCH_MINOR_SECONDS must be a number"
	WORK=$(mktemp -d "${TMPDIR:-/tmp}/minorbench.XXXXXX")
	trap 'rm -rf "$WORK"' EXIT
}

# One process: its output is kept in $WORK/$1.out.  ${BENCH_GCSHIM_ENV}
# is split into words on purpose: NAME=VALUE words for env.
run() {
	local name=$1 minor=$2
	shift 2
	# shellcheck disable=SC2086
	env LD_PRELOAD="$GCSHIM_LIB" GCSHIM_SOCKET=0 GCSHIM_MINOR="$minor" ${BENCH_GCSHIM_ENV:-} \
		"$MINORBENCH" -t "$THREADS" -i "$INTERVAL_MS" -w "$WRITE_EVERY" "$@" "$NODES" \
		>"$WORK/$name.out" || die "$name failed (GCSHIM_MINOR=$minor)"
	grep -q '^RESULT ' "$WORK/$name.out" || die "$name printed no result"
}

# The value of key in the RESULT line of a run.
result() {
	sed -n "s/^RESULT.* $2=\([^ ]*\).*/\1/p" "$WORK/$1.out"
}

# Every sample line of one kind from a run, its values only.
samples() {
	sed -n "s/^$2 //p" "$WORK/$1.out" | sed 's/[a-z_]*=//g'
}

pause_run() {
	local r=$1
	echo "minorbench: pause run $r/$ROUNDS, $NODES nodes" >&2
	run "pause$r" 1 -s "$SECONDS_CHURN" -f "$FULLS" -p 0
	samples "pause$r" MINOR >>"$WORK/minor.samples"
	samples "pause$r" FULL >>"$WORK/full.samples"
	echo "$(result "pause$r" write_tracking) $(result "pause$r" abandoned)" \
		"$(result "pause$r" automatic) $(result "pause$r" nodes)" >>"$WORK/pause.results"
}

# A pair of cost runs, the first of the pair alternating between rounds so
# that slow drifts of the machine fall on both alike.
cost_pair() {
	local r=$1 m order=(1 0)
	((r % 2)) || order=(0 1)
	for m in "${order[@]}"; do
		echo "minorbench: cost run $r/$ROUNDS, GCSHIM_MINOR=$m" >&2
		run "cost$r.$m" "$m" -n "$ITERATIONS" -f 0 -p "$PAGES"
		echo "$r $m $(result "cost$r.$m" cpu_ns_per_iter) $(result "cost$r.$m" write_ns)" \
			"$(result "cost$r.$m" write_pages) $(result "cost$r.$m" write_reported)" \
			"$(result "cost$r.$m" pause_med_ns) $(result "cost$r.$m" write_tracking)" \
			"$(result "cost$r.$m" iterations)" >>"$WORK/cost.results"
	done
}

run_all() {
	local r
	: >"$WORK/minor.samples"
	: >"$WORK/full.samples"
	: >"$WORK/pause.results"
	: >"$WORK/cost.results"
	for ((r = 1; r <= ROUNDS; r++)); do
		pause_run "$r"
		cost_pair "$r"
	done
}

# The pause runs' figures.  minor.samples: pause pages minor stop track
# roots mark (ns) root_bytes heap_bytes; full.samples: pause mark;
# pause.results: write_tracking abandoned automatic nodes.
report_pauses() {
	awk -v threads="$THREADS" -v secs="$SECONDS_CHURN" -v rounds="$ROUNDS" \
		-v interval="$INTERVAL_MS" -v fulls="$FULLS" -v every="$WRITE_EVERY" '
	function median(a, n,    i, j, t) {
		for (i = 2; i <= n; i++)
			for (j = i; j > 1 && a[j - 1] > a[j]; j--) { t = a[j]; a[j] = a[j - 1]; a[j - 1] = t }
		return n ? (n % 2 ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2) : 0
	}
	function allow(pages) { return 500000 + 3000 * pages }
	FILENAME ~ /minor.samples$/ {
		n++; p[n] = $1; pg[n] = $2; minor += $3; st[n] = $4; tr[n] = $5; rt[n] = $6
		mk[n] = $7; rb[n] = $8; hb[n] = $9
		rest[n] = $1 - $4 - $5 - $6 - $7
		if ($1 > max) { max = $1; maxpg = $2 }
		if ($1 > allow($2)) over++
		next
	}
	FILENAME ~ /full.samples$/ { nf++; f[nf] = $1; next }
	{ runs++; if ($1 != 1) notrack++; abandoned += $2; automatic += $3; nodes = $4 }
	END {
		pmed = median(p, n); pgmed = median(pg, n); fmed = median(f, nf)
		printf "\nminor collections: %d old nodes of 32 bytes (a tree), %d churner threads allocating\n", nodes, threads
		printf "16-256-byte blocks and dropping them, one allocation in %d followed by a store into a\n", every
		printf "random old node; gcshim_collect(0) every %d ms for %s s, then %d x gcshim_collect(2) on\n", interval, secs, fulls
		printf "the same heap, in each of %d processes with GCSHIM_MINOR=1; a pause is the time the world\n", rounds
		printf "was stopped (pause_last_ns)\n\n"
		printf "  nodes                              %d\n", nodes
		printf "  churner threads                    %d\n", threads
		printf "  write tracking                     %s\n", notrack ? "0 in " notrack " of " runs " processes" : "1"
		printf "  generation-0 collections           %d, %d of them minor (%d abandoned, %d automatic)\n", n, minor, abandoned, automatic
		for (i = 1; i <= n; i++) sorted[i] = p[i]
		median(sorted, n)
		p90 = n ? sorted[int(0.9 * (n - 1)) + 1] : 0
		printf "  minor pause median / p90 / max     %.3f / %.3f / %.3f ms\n", pmed / 1e6, p90 / 1e6, max / 1e6
		printf "  written pages median / at the max  %d / %d\n", pgmed, maxpg
		printf "  allowance 0.5 ms + 3 us x pages    %.3f ms at the median pages, %.3f ms at the max'"'"'s\n", allow(pgmed) / 1e6, allow(maxpg) / 1e6
		printf "  over their own allowance           %d of %d collections\n", over, n
		printf "  full pause median                  %.3f ms (%d collections)\n", fmed / 1e6, nf
		printf "  minor / full pause (medians)       %.4f\n", fmed ? pmed / fmed : 0
		printf "  a minor pause, medians (ms)        stopping %.3f; listing and protecting the pages\n", median(st, n) / 1e6
		printf "                                     written since the preclean (PAGEMAP_SCAN) %.3f;\n", median(tr, n) / 1e6
		printf "                                     roots and written pages %.3f; marking (with the\n", median(rt, n) / 1e6
		printf "                                     root mappings markers share) %.3f;\n", median(mk, n) / 1e6
		printf "                                     the rest (finding the dead, resuming) %.3f\n", median(rest, n) / 1e6
		printf "  scanned by a minor collection      roots %.0f KiB, heap blocks %.0f KiB (medians)\n", median(rb, n) / 1024, median(hb, n) / 1024
		why = notrack ? " (no write tracking: the collections marked the whole heap)" : ""
		ok1 = n && !notrack && pmed <= allow(pgmed) && max <= allow(maxpg)
		ok2 = n && !notrack && fmed && pmed < 0.05 * fmed
		printf "target: minor pause <= 0.5 ms + 3 us per written page, median and max: %s%s\n", ok1 ? "met" : "NOT met", why
		printf "target: minor pause below 5%% of the full pause (medians): %s%s\n", ok2 ? "met" : "NOT met", why
	}' "$WORK/minor.samples" "$WORK/full.samples" "$WORK/pause.results"
}

# The cost runs' figures.  cost.results: round minor cpu_ns_per_iter
# write_ns write_pages write_reported pause_med_ns write_tracking
# iterations.
report_costs() {
	awk -v iters="$ITERATIONS" -v threads="$THREADS" '
	function median(a, n,    i, j, t) {
		for (i = 2; i <= n; i++)
			for (j = i; j > 1 && a[j - 1] > a[j]; j--) { t = a[j]; a[j] = a[j - 1]; a[j - 1] = t }
		return n ? (n % 2 ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2) : 0
	}
	{
		m = $2; k = ++n[m]
		cpu[m, k] = $3; w[m, k] = $4; pause[m, k] = $7; bycpu[$1, m] = $3
		if (m == 1) { pages = $5; reported = $6; if ($8 != 1) notrack++ }
		if ($1 > pairs) pairs = $1
	}
	END {
		for (m = 0; m <= 1; m++) {
			for (k = 1; k <= n[m]; k++) { a[k] = cpu[m, k]; b[k] = w[m, k]; c[k] = pause[m, k] }
			mcpu[m] = median(a, n[m]); mw[m] = median(b, n[m]); mp[m] = median(c, n[m])
		}
		for (r = 1; r <= pairs; r++)
			list = list sprintf(" %.2f", bycpu[r, 0] ? bycpu[r, 1] / bycpu[r, 0] : 0)
		printf "\nwhat the write tracking costs the churners: GCSHIM_MINOR=1 against GCSHIM_MINOR=0, the same\n"
		printf "schedule, %s allocations a churner, %d pairs of processes in alternation; medians%s\n", iters, pairs,
			notrack ? sprintf(" (write tracking off in %d MINOR=1 runs)", notrack) : ""
		printf "  churner CPU per allocation         %.1f ns against %.1f ns: ratio %.2f (pairs:%s)\n",
			mcpu[1], mcpu[0], mcpu[0] ? mcpu[1] / mcpu[0] : 0, list
		if (mw[1] > 0 && mw[0] > 0)
			printf "  first write to an old page         %.2f us against %.3f us: %.2f us more a page, ratio %.0f\n", mw[1] / 1e3, mw[0] / 1e3, (mw[1] - mw[0]) / 1e3, mw[1] / mw[0]
		printf "                                     (%d distinct pages after a collection; the next one\n", pages
		printf "                                     reported %d written with MINOR=1)\n", reported
		printf "  generation-0 pause, MINOR=0        median %.3f ms (the whole heap marked)\n", mp[0] / 1e6
	}' "$WORK/cost.results"
}

report() {
	report_pauses
	report_costs
}

main() {
	setup
	run_all
	publish report
}

main "$@"
