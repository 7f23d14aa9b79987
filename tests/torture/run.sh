#!/bin/bash
# The torture test: tests/torture/torture under libgcshim.so in verify
# mode, collecting by threshold, for TORTURE_SECONDS (default 20), while
# gcctl clients ask for stats, collections, listings, leak reports,
# freezes and events all at once, and hostile clients connect without
# reading, send garbage and hang up in the middle of replies.
#
# Passes when the program ends by itself within its time plus a margin
# (no deadlock) and exits 0 (no crash, no false garbage, every block
# intact, mem_alloc equal to its own count), every gcctl call is answered
# or refused (or, queued behind collections on a busy machine, outlasts
# gcctl's own 5 s wait; those are counted), every hostile client's reply
# is valid and comes within 30 s, the
# resident set stays under TORTURE_MAX_RSS_MB (default 1024) and the shim
# logged nothing but its collections.  Prints the figures.
#
# Environment: GCSHIM_LIB, top_builddir, top_srcdir (as `make check` sets
# them); TORTURE_MODE=reclaim collects for real instead of verifying.
set -uo pipefail

seconds=${TORTURE_SECONDS:-20}
max_rss_mb=${TORTURE_MAX_RSS_MB:-1024}
build=${top_builddir:-.}
here=${top_srcdir:-.}/tests/torture
gcctl=$build/gcctl
verify=1
[ "${TORTURE_MODE:-verify}" = reclaim ] && verify=0

work=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null; rm -rf "$work"' EXIT
mkdir -m 700 "$work/sock"
export GCSHIM_SOCKET_DIR=$work/sock

# The hostile clients first: on a busy machine the interpreter takes a
# while to start, and the program's time should not go by meanwhile.
for mode in silent garbage hangup; do
	python3 "$here/clients.py" $mode "$work" >"$work/$mode.count" 2>&1 &
done
for _ in $(seq 1200); do
	[ -e "$work/silent.ready" ] && [ -e "$work/garbage.ready" ] && [ -e "$work/hangup.ready" ] &&
		break
	sleep 0.1
done
GCSHIM_VERIFY=$verify GCSHIM_THRESHOLD=16M GCSHIM_LOG=$work/shim.log \
	LD_PRELOAD=$GCSHIM_LIB "$build/tests/torture/torture" "$seconds" >"$work/out" 2>&1 &
pid=$!
echo $pid >"$work/pid.new" && mv "$work/pid.new" "$work/pid"
for _ in $(seq 100); do
	[ -S "$work/sock/$pid.sock" ] && break
	sleep 0.1
done
[ -S "$work/sock/$pid.sock" ] || { echo "the control socket never appeared"; exit 1; }

# Whether the program still runs: an exited one stays a zombie, which
# kill -0 still finds, until this shell reaps it.
running() {
	local st
	st=$(sed 's/.*) //' "/proc/$pid/stat" 2>/dev/null | cut -d' ' -f1)
	[ -n "$st" ] && [ "$st" != Z ] && [ "$st" != X ]
}

# One gcctl client: VERB... in a loop until the program ends.  A call
# must end within 30 s, answered (exit 0) or refused with a reason.  The
# program removes its socket as it exits, a moment before it is gone.
client() {
	local name=$1 ok=0 refused=0 late=0 bad=0 status
	shift
	while running; do
		timeout 30 "$gcctl" -p $pid "$@" >"$work/$name.last" 2>&1
		status=$?
		if [ $status -eq 0 ]; then
			ok=$((ok + 1))
		elif grep -q 'too many clients' "$work/$name.last"; then
			refused=$((refused + 1))
		elif grep -q 'did not answer within' "$work/$name.last"; then
			late=$((late + 1))   # queued behind collections: gcctl stops waiting
		elif ! running || { grep -q 'no control socket' "$work/$name.last" &&
				    sleep 1 && ! running; }; then
			break   # the program ended while it was asked
		else
			bad=$((bad + 1))
			{ echo "gcctl $* (exit $status):"; head -5 "$work/$name.last"; } >>"$work/bad"
		fi
	done
	echo "$name $ok $refused $late $bad" >"$work/$name.count"
}

client stats stats &
client collect collect &
client collect0 collect 0 &
client objects get-objects --min-size 64K &
client summary get-objects --summary &
client leaks leaks &
{ while running; do
	timeout 30 "$gcctl" -p $pid freeze >/dev/null 2>&1 || true
	timeout 30 "$gcctl" -p $pid unfreeze >/dev/null 2>&1 || true
  done; } &
{ timeout $((seconds + 60)) "$gcctl" -p $pid watch >"$work/watch" 2>&1; } &

max_rss=0
deadline=$((SECONDS + seconds + 120))
while running && [ $SECONDS -lt $deadline ]; do
	rss=$(awk '/^VmRSS/ { print int($2 / 1024) }' /proc/$pid/status 2>/dev/null || echo 0)
	[ "${rss:-0}" -gt $max_rss ] && max_rss=$rss
	sleep 0.5
done
fail=0
if running; then
	echo "the program did not end $((seconds + 120)) s after it started: deadlock?"
	kill -ABRT $pid
	fail=1
fi
wait $pid
status=$?
wait
# after the wait: every client has ended
cat "$work/out"
[ $status -eq 0 ] || { echo "the program exited with status $status"; fail=1; }
requests=0 refused=0 late=0 hostile=0
for f in "$work"/*.count; do
	case $(basename "$f") in
	silent.count | garbage.count | hangup.count)
		cat "$f"
		grep -q '^[a-z]*: [1-9][0-9]* connections' "$f" ||
			{ echo "$(basename "$f" .count): the client did not connect even once"; fail=1; }
		hostile=$((hostile + $(sed -n 's/.* \([0-9]*\) replies.*/\1/p' "$f" | head -1)0 / 10)) ;;
	*)
		read -r name ok ref lt bad <"$f"
		requests=$((requests + ok))
		refused=$((refused + ref))
		late=$((late + lt))
		[ "$bad" -eq 0 ] || fail=1 ;;
	esac
done
events=$(grep -c . "$work/watch")
echo "requests: $((requests + hostile)) answered ($requests from gcctl, $hostile to hostile clients)"
echo "gcctl: $requests requests answered, $refused refused, $late answered after gcctl's 5 s, $(cat "$work/bad" 2>/dev/null | grep -c '^gcctl') failed; watch: $events lines"
[ -f "$work/bad" ] && cat "$work/bad"
echo "max RSS: $max_rss MiB (bound $max_rss_mb MiB)"
[ $max_rss -le $max_rss_mb ] || { echo "RSS over its bound"; fail=1; }
if grep -v 'gc: ' "$work/shim.log" 2>/dev/null | grep -q .; then
	echo "the shim logged:"
	head -20 "$work/shim.log"
	fail=1
fi
[ $fail -eq 0 ] && echo "torture: passed" || echo "torture: FAILED"
exit $fail
