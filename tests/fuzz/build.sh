#!/bin/bash
# Builds a libFuzzer harness with the shim, or the part of it under test,
# linked in:
#   build.sh OUTPUT HARNESS.c [MORE.c ...] -- LIBRARY SOURCES ...
# The harness and its own sources get AddressSanitizer and UBSan, and call
# malloc from AddressSanitizer's heap.  The library's malloc family is
# renamed (shim.syms), so that it serves only the blocks a harness makes
# through the renamed names.  The files that read memory they do not own
# (stacks and data scanned conservatively, frames walked) are built with
# UBSan only: AddressSanitizer would take every redzone they cross for an
# overflow.  Coverage, which guides the fuzzer, is taken where input is
# parsed and replies are written; the collector's loops over words and
# blocks do not depend on the input and would only slow each run down.
# A harness of one parser adds that parser's file (FUZZ_GUIDED): in the
# protocol's harness the same file would read only what the process holds
# (the maps parser its mappings), and coverage there is noise.  The lists
# name files by their base name, as the objects are named: two sources of
# one base name cannot be linked into one harness.  The C++
# operators are left out: the fuzzer's own new and delete stay
# AddressSanitizer's.
#
# Environment: FUZZ_CC, FUZZ_CXX (clang, clang++), FUZZ_CPPFLAGS (include
# paths and defines), FUZZ_LIBS (jemalloc's archive and system libraries),
# FUZZ_GUIDED (more base names to take coverage in).
set -euo pipefail

out=$1
shift
harness=()
while [ $# -gt 0 ] && [ "$1" != -- ]; do
	harness+=("$1")
	shift
done
shift
here=$(dirname "$0")
objdir=$out.objs
rm -rf "$objdir"
mkdir -p "$objdir"

unpoisoned=" mark markers roots kroots inspect stop stackmemo sites objmap frozen "
guided=" proto options log stats garbage watch api parse ${FUZZ_GUIDED:-} "
flags="-g -O1 -std=gnu11 -fno-omit-frame-pointer -ftls-model=initial-exec -fexceptions
	-fno-sanitize-recover=all -Wno-unknown-attributes"

compile() {   # source, sanitizers, rename the malloc family (0/1)
	local obj
	obj=$objdir/$(basename "$1" .c).o
	# shellcheck disable=SC2086
	${FUZZ_CC:-clang} $FUZZ_CPPFLAGS $flags -fsanitize="$2" -c "$1" -o "$obj"
	[ "$3" = 0 ] || objcopy --redefine-syms="$here/shim.syms" "$obj"
}

for src in "$@"; do
	case $src in
	*.h | */cxx.c) continue ;;
	esac
	name=$(basename "$src" .c)
	if [[ $unpoisoned == *" $name "* ]]; then
		compile "$src" undefined 1
	elif [[ $guided == *" $name "* ]]; then
		compile "$src" fuzzer-no-link,address,undefined 1
	else
		compile "$src" address,undefined 1
	fi
done
for src in "${harness[@]}"; do
	compile "$src" fuzzer-no-link,address,undefined 0
done
# shellcheck disable=SC2086
${FUZZ_CXX:-clang++} -fsanitize=fuzzer,address,undefined "$objdir"/*.o $FUZZ_LIBS -o "$out"
rm -rf "$objdir"
