#!/bin/bash
# The MicroPython gc example, made real on a running C process:
#   >>> gc.mem_free(); gc.mem_alloc()
#   >>> x = bytearray(1000); gc.mem_alloc()
#   >>> x = None; gc.mem_alloc()
#   >>> gc.collect(); gc.mem_alloc()
# Each ">>>" line below is a gcctl call against the live process.
set -euo pipefail
top=${top_builddir:-$(cd "$(dirname "$0")/.." && pwd)}
gcctl=$top/gcctl
dir=$(mktemp -d)
trap 'exec 3>&- 2>/dev/null; rm -rf "$dir"' EXIT
export GCSHIM_SOCKET_DIR=$dir

mkfifo "$dir/in" "$dir/out"
"$gcctl" run --heap-limit 64M -- "$top/tools/gcdemo" <"$dir/in" >"$dir/out" &
exec 3>"$dir/in" 4<"$dir/out"
read -r _ pid <&4

if [ -t 1 ]; then bold=$'\033[1m' plain=$'\033[0m'; else bold= plain=; fi
step() { printf '\n%s>>> %s%s    # %s\n' "$bold" "$1" "$plain" "$2"; }
ask() { "$gcctl" -p "$pid" "$@" | sed 's/^/    /'; }
tell() { echo "$1" >&3; read -r reply <&4; echo "    program: $reply"; }

echo "A C program (pid $pid) runs under libgcshim.so with a 64 MiB heap limit."
step "gc.mem_free()" "bytes left under the heap limit"
ask mem-free
step "gc.mem_alloc()" "bytes held by live blocks"
ask mem-alloc
step "x = bytearray(1000)" "the program allocates a 1000-byte block"
tell alloc
step "gc.mem_alloc()" "one block more"
ask mem-alloc
step "x = None" "the program drops its only pointer to the block"
tell drop
step "gc.mem_alloc()" "nothing freed it: the block is still counted"
ask mem-alloc
step "gc.collect()" "a collection finds the unreachable block and frees it"
ask collect
step "gc.mem_alloc()" "back down"
ask mem-alloc
step "gc.mem_free()" "and the room under the limit is back"
ask mem-free
# The program answers nothing to quit: it ends, and its status is the demo's.
echo quit >&3
exec 3>&-
wait
