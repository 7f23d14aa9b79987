#!/bin/bash
# Real programs with automatic collection turned on the way a user turns it
# on (GCSHIM_GROWTH=on), against their plain run in the same minutes:
# wall time (median of BENCH_ROUNDS interleaved runs), collections run, and
# a run in verify mode that must find no false garbage.
#
# Environment:
#   GCSHIM_LIB     libgcshim.so to preload                     (required)
#   BENCH_DIR      directory holding measure                   (required)
#   BENCH_ROUNDS   runs per program and configuration          (default 3)
#   BENCH_RESULTS  where the table is also written (BENCH_DIR/results-programs.txt)
set -euo pipefail
BENCH_NAME=programs
# shellcheck source=bench/common.sh
source "$(dirname "$0")/common.sh"

: "${GCSHIM_LIB:?GCSHIM_LIB must name libgcshim.so}"
: "${BENCH_DIR:?BENCH_DIR must name the directory of the bench programs}"
ROUNDS=${BENCH_ROUNDS:-3}
RESULTS=${BENCH_RESULTS:-$BENCH_DIR/results-programs.txt}
MEASURE=$BENCH_DIR/measure
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
TARGET=1.25


# Inputs, made once.
make_inputs() {
	local i
	awk 'BEGIN { x = 12345
		for (i = 0; i < 1500000; i++) {
			x = (x * 1103515245 + 12345) % 2147483648
			printf "%010d %d line of text number %d\n", x, i % 977, x % 100000 } }' \
		>"$WORK/sort.txt"
	{
		echo '#include <stdio.h>'
		echo '#include <string.h>'
		for ((i = 0; i < 3000; i++)); do
			echo "struct s$i { int a[8]; char name[32]; struct s$i *next; };"
			echo "int f$i(struct s$i *p, int n) { int t = 0; for (int k = 0; k < n; k++)"
			echo "  { t += p->a[k % 8] * $i; if (t > $i) t -= strlen(p->name); p = p->next ? p->next : p; }"
			echo "  return t; }"
		done
		echo 'int main(void) { return 0; }'
	} >"$WORK/big.c"
	{
		echo '#include <map>'
		echo '#include <string>'
		echo '#include <vector>'
		echo '#include <algorithm>'
		for ((i = 0; i < 250; i++)); do
			echo "struct K$i { int v; bool operator<(const K$i &o) const { return v < o.v; } };"
			echo "std::vector<std::string> g$i(const std::map<K$i, std::string> &m) {"
			echo "  std::vector<std::string> out; for (auto &kv : m) out.push_back(kv.second + \"$i\");"
			echo "  std::sort(out.begin(), out.end()); return out; }"
		done
		echo 'int main() { return 0; }'
	} >"$WORK/big.cc"
}

PERL_HASH='my %h; for my $i (1 .. 1500000) { $h{"key$i"} = [$i, "v" x 24] }
for my $i (1 .. 1500000) { delete $h{"key$i"} if $i % 3 }
my $n = 0; $n += $_->[0] for values %h; print scalar(keys %h), " $n\n";'

# Rows: label, then the command (run in $WORK).
programs() {
	PROGRAMS=(
		"perl-hash|perl -e $(printf %q "$PERL_HASH")"
		"gcc -O2|gcc -O2 -c -o big.o big.c"
		"g++ -O2|g++ -O2 -c -o bigxx.o big.cc"
		"sort|sort --parallel=2 -S 64M -o sorted.txt sort.txt"
		"python tests|python3 -m test -q test_json test_re test_dict test_set test_list test_collections test_string"
	)
}

# One run; prints "SECONDS COLLECTIONS FALSE_GARBAGE".
run_one() {
	local cmd=$1 env=$2 log=$WORK/log t
	rm -f "$log"
	t=$(cd "$WORK" && eval "$MEASURE $env GCSHIM_LOG=$log GCSHIM_DEBUG=stats $cmd") ||
		die "failed: $env $cmd"
	echo "${t%% *} $(grep -c 'gc: collecting generation' "$log" 2>/dev/null || true)" \
		"$(grep -c 'false garbage' "$log" 2>/dev/null || true)"
}

main() {
	local row label cmd r plain growth colls fg out worst=0 met=1
	[[ -x $MEASURE ]] || die "missing $MEASURE"
	make_inputs
	programs
	{
		echo
		echo "real programs: plain, and with GCSHIM_GROWTH=on; medians of $ROUNDS interleaved runs;"
		echo "collections: in the last growth run (every process of the program); verify: false garbage"
		echo "reported by one more run with GCSHIM_VERIFY=1"
		printf "%-14s | %9s | %10s | %8s | %11s | %6s\n" program "plain s" "growth s" ratio collections verify
	} | tee "$RESULTS"
	for row in "${PROGRAMS[@]}"; do
		label=${row%%|*}
		cmd=${row#*|}
		plain="" growth=""
		for ((r = 0; r < ROUNDS; r++)); do
			out=$(run_one "$cmd" "")
			plain+="${out%% *} "
			out=$(run_one "$cmd" "LD_PRELOAD=$GCSHIM_LIB GCSHIM_GROWTH=on")
			growth+="${out%% *} "
			colls=$(cut -d' ' -f2 <<<"$out")
		done
		out=$(run_one "$cmd" "LD_PRELOAD=$GCSHIM_LIB GCSHIM_GROWTH=on GCSHIM_VERIFY=1")
		fg=$(cut -d' ' -f3 <<<"$out")
		plain=$(median "$plain")
		growth=$(median "$growth")
		awk -v l="$label" -v p="$plain" -v g="$growth" -v c="$colls" -v f="$fg" \
			'BEGIN { printf "%-14s | %9.2f | %10.2f | %8.3f | %11d | %6d\n", l, p, g, g / p, c, f }' |
			tee -a "$RESULTS"
		if awk -v p="$plain" -v g="$growth" -v t="$TARGET" 'BEGIN { exit !(g / p > t) }' ||
			[[ $colls -lt 1 || $fg -ne 0 ]]; then
			met=0
		fi
	done
	echo "target: every program within ${TARGET}x of its plain run, at least one collection, no" \
		"false garbage: $( ((met)) && echo met || echo NOT met)" | tee -a "$RESULTS"
}

main "$@"
