#!/bin/bash
# The torture test for TORTURE_SECONDS (default 20), in verify mode, then
# as long again collecting for real; `make torture` runs it for minutes.
here=$(dirname "$0")
n=0

echo 1..2
for mode in verify reclaim; do
	n=$((n + 1))
	if out=$(TORTURE_MODE=$mode TORTURE_SECONDS=${TORTURE_SECONDS:-20} bash "$here/run.sh" 2>&1); then
		printf '%s\n' "$out" | sed 's/^/# /'
		echo "ok $n - torture, $mode mode"
	else
		printf '%s\n' "$out" | sed 's/^/# /'
		echo "not ok $n - torture, $mode mode"
	fi
done
