#!/bin/bash
# The control protocol's fuzz harness for a bounded number of inputs over
# its corpus (FUZZ_TEST_RUNS, default 20000; `make fuzz` runs millions).
here=$(dirname "$0")
bin=${top_builddir:-.}/tests/fuzz/fuzz_proto

echo 1..1
if [ ! -x "$bin" ]; then
	echo "ok 1 # SKIP clang was not found: the fuzz harness was not built"
	exit 0
fi
found=$(mktemp -d)
trap 'rm -rf "$found"' EXIT
if out=$(FUZZ_RUNS=${FUZZ_TEST_RUNS:-20000} FUZZ_FOUND=$found/new \
	bash "$here/run.sh" "$bin"); then
	echo "ok 1 - $out"
else
	printf '%s\n' "$out" | sed 's/^/# /'
	echo "not ok 1 - the control protocol's fuzz harness failed"
fi
