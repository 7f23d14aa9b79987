#!/bin/bash
# The fuzz harnesses of the parsers (suppression files, option values,
# /proc/PID/maps lines), each for a bounded number of inputs over its
# corpus (FUZZ_TEST_RUNS, default 20000; `make fuzz` runs millions).
here=$(dirname "$0")
names="suppress parse maps"

echo "1..$(echo $names | wc -w)"
n=0
for name in $names; do
	n=$((n + 1))
	bin=${top_builddir:-.}/tests/fuzz/fuzz_$name
	if [ ! -x "$bin" ]; then
		echo "ok $n # SKIP clang was not found: fuzz_$name was not built"
		continue
	fi
	found=$(mktemp -d)
	if out=$(FUZZ_RUNS=${FUZZ_TEST_RUNS:-20000} FUZZ_FOUND=$found/new \
		bash "$here/run.sh" "$bin"); then
		echo "ok $n - $out"
	else
		printf '%s\n' "$out" | sed 's/^/# /'
		echo "not ok $n - the fuzz harness of $name failed"
	fi
	rm -rf "$found"
done
