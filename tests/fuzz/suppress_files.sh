#!/bin/bash
# Every file of the suppression corpus (tests/fuzz/corpus/suppress: CRLF,
# NULs, long lines, other sanitizers' types, malformed lines) given to
# real processes: as GCSHIM_SUPPRESSIONS to the exit report of sort, and
# to `gcctl leaks --suppressions` against a live process.  sort must give
# its usual output with its own status or the leak status (23); gcctl
# must exit 0 or 23; every message is one line of the shim's or gcctl's,
# at most one per line of the file.  TAP, one result per way in.
set -uo pipefail

lib=${GCSHIM_LIB:-.libs/libgcshim.so}
src=${top_srcdir:-.}
gcctl=${top_builddir:-.}/gcctl
files=("$src"/tests/fuzz/corpus/suppress/*)

work=$(mktemp -d)
sleeper=
trap '[ -n "$sleeper" ] && kill "$sleeper" 2>/dev/null; rm -rf "$work"' EXIT
mkdir -m 700 "$work/sock"
printf 'pear\napple\nfig\n' >"$work/input"
printf 'apple\nfig\npear\n' >"$work/want"

lines_of() {   # a last line without a newline counts
	echo $(($(wc -l <"$1") + $(tail -c1 "$1" | wc -l | awk '{ print !$1 }')))
}

# messages: a file of them, the prefix each must start with, the bound
messages_ok() {
	local n
	n=$(grep -c '' "$1")
	[ "$n" -le "$3" ] && ! grep -qv "^$2" "$1"
}

echo 1..2
bad=0
for f in "${files[@]}"; do
	rm -f "$work/log"
	timeout 60 env GCSHIM_SOCKET_DIR="$work/sock" GCSHIM_REPORT=exit \
		GCSHIM_SUPPRESSIONS="$f" GCSHIM_LOG="$work/log" LD_PRELOAD="$lib" \
		sort "$work/input" >"$work/out" 2>"$work/err"
	status=$?
	touch "$work/log"
	if { [ $status -ne 0 ] && [ $status -ne 23 ]; } || ! cmp -s "$work/out" "$work/want" ||
		! messages_ok "$work/log" 'gcshim\[' "$(lines_of "$f")"; then
		printf '# %s: exit %d; log:\n' "$(basename "$f")" $status
		head -c 600 "$work/log" | sed 's/^/#   /'
		bad=$((bad + 1))
	fi
done
if [ $bad -eq 0 ]; then
	echo "ok 1 - ${#files[@]} suppression files at sort's exit report"
else
	echo "not ok 1 - $bad of ${#files[@]} suppression files broke sort's exit report"
fi

env GCSHIM_SOCKET_DIR="$work/sock" LD_PRELOAD="$lib" sleep 120 &
sleeper=$!
for _ in $(seq 200); do   # up to 20 s for its socket: a deadline against hangs
	"$gcctl" -p $sleeper mem-alloc >/dev/null 2>&1 && break
	sleep 0.1
done
bad=0
for f in "${files[@]}"; do
	"$gcctl" -p $sleeper leaks --suppressions "$f" >"$work/out" 2>"$work/err"
	status=$?
	if { [ $status -ne 0 ] && [ $status -ne 23 ]; } ||
		! messages_ok "$work/err" 'gcctl: ' "$(lines_of "$f")"; then
		printf '# %s: exit %d:\n' "$(basename "$f")" $status
		head -c 600 "$work/err" | sed 's/^/#   /'
		bad=$((bad + 1))
	fi
done
if [ $bad -eq 0 ]; then
	echo "ok 2 - ${#files[@]} suppression files through gcctl leaks --suppressions"
else
	echo "not ok 2 - $bad of ${#files[@]} suppression files broke gcctl leaks --suppressions"
fi
