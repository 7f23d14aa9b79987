#!/bin/bash
# Every GCSHIM_* option, set to hostile and to random values, at the
# start-up of a real program (sort) under the shim: the program must run
# and give its usual output, and the shim may say at most one line about
# the value.  OPTIONS_ROUNDS random values per option (default 1; `make
# fuzz` runs 100).  TAP, one result per option.  The program runs under
# timeout, which runs env, which sets the variables and runs sort: only sort
# has the shim.
set -uo pipefail

lib=${GCSHIM_LIB:-.libs/libgcshim.so}
src=${top_srcdir:-.}
rounds=${OPTIONS_ROUNDS:-1}
names=$(sed -n 's/^[[:space:]]*X(\([A-Z_0-9]*\), OPT_.*/\1/p' "$(find "$src/lib" -name options.h | head -1)")
long=$(printf 'x%.0s' $(seq 5000))
hostile=("" "0" "-1" "1" "0x10" "1.5" "1G1" "16E" "99999999999999999999999999"
	"-9223372036854775808" "1,2,3,4" "%n%s%x%p" "SIGKILL" "RTMAX+9" "yes"
	"/nonexistent/dir/file" "/" "$long" $'\xff\xfe\xfd' $'a\nb\x1b[2J')

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mkdir -m 700 "$work/sock"
cd "$work" || exit 1
printf 'pear\napple\nfig\n' >input
printf 'apple\nfig\npear\n' >want

random_value() {
	head -c $((RANDOM % 64 + 1)) /dev/urandom | tr -d '\000'
}

# One run: VALUE for NAME.  Prints what was wrong, if anything.
try() {
	local name=$1 value=$2 status lines
	timeout 60 env GCSHIM_SOCKET_DIR="$work/sock" "GCSHIM_$name=$value" LD_PRELOAD="$lib" \
		sort input >out 2>err
	status=$?
	lines=$(grep -c . err)
	# A heap limit of a few bytes is a limit all the same: the program
	# runs out of memory, as it was asked to.
	if [ "$name" = HEAP_LIMIT ] && [ $status -ne 0 ] && ! grep -q "GCSHIM_$name" err &&
		grep -q 'memory exhausted' err; then
		return 0
	fi
	if [ $status -ne 0 ] || ! cmp -s out want || [ "$lines" -gt 1 ] ||
		{ [ "$lines" -eq 1 ] && ! grep -q '^gcshim' err; }; then
		printf '# GCSHIM_%s=%q: exit %d, %d lines:\n' "$name" "$value" $status "$lines"
		head -c 600 err | sed 's/^/#   /'
		return 1
	fi
	rm -f -- *.report 2>/dev/null
	return 0
}

n=0
echo "1..$(echo "$names" | wc -w)"
for name in $names; do
	n=$((n + 1))
	bad=0 runs=0 said=0
	for value in "${hostile[@]}"; do
		try "$name" "$value" || bad=$((bad + 1))
		runs=$((runs + 1))
		said=$((said + $(grep -c . err)))
	done
	for _ in $(seq "$rounds"); do
		try "$name" "$(random_value)" || bad=$((bad + 1))
		runs=$((runs + 1))
		said=$((said + $(grep -c . err)))
	done
	if [ $bad -eq 0 ]; then
		echo "ok $n - GCSHIM_$name: $runs values, sort ran each time, $said one-line messages"
	else
		echo "not ok $n - GCSHIM_$name: $bad of $runs values broke the run"
	fi
done
