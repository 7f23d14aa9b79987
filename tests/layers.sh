#!/bin/sh
# The library's layers, bottom to top: a file may call only into its own
# folder and the folders below it.  Checked on the objects the library is
# linked from, so that a call hidden behind a macro or an inline function
# counts too.  Prints TAP: one result per object file.
objdir=${top_builddir:-.}/lib
layers="platform heap collector inspect ."

rank() {
	i=0
	for l in $layers; do
		[ "$l" = "$1" ] && { echo $i; return; }
		i=$((i + 1))
	done
	echo 99
}

objects=$(find "$objdir" -path '*/.libs/libgcshim_la-*.o' | sort)
[ -n "$objects" ] || { echo "1..0 # SKIP library objects not built"; exit 0; }

defs=$(mktemp) && trap 'rm -f "$defs"' EXIT
for o in $objects; do
	layer=$(basename "$(dirname "$(dirname "$o")")")
	[ "$layer" = lib ] && layer=.
	nm --defined-only "$o" | awk -v f="$o" -v l="$layer" \
		'$2 ~ /^[TDBRVW]$/ { print $3, l, f }'
done > "$defs"

n=0
echo "1..$(echo "$objects" | wc -l)"
for o in $objects; do
	n=$((n + 1))
	layer=$(basename "$(dirname "$(dirname "$o")")")
	[ "$layer" = lib ] && layer=.
	me=$(rank "$layer")
	name=$(basename "$o" .o | sed 's/^libgcshim_la-//')
	up=$(nm -u "$o" | awk '{ print $2 }' | while read -r sym; do
		grep -m1 "^$sym " "$defs" | while read -r _ l f; do
			[ "$(rank "$l")" -gt "$me" ] &&
				echo "$sym ($(basename "$f" .o | sed 's/^libgcshim_la-//'), $l)"
		done
	done)
	if [ -z "$up" ]; then
		echo "ok $n - $layer/$name calls nothing above its layer"
	else
		echo "not ok $n - $layer/$name calls up: $(echo $up)"
	fi
done
