# What the bench scripts share; sourced, after they set BENCH_NAME (the
# prefix of their messages) and, for publish, RESULTS.

die() {
	echo "$BENCH_NAME: $*" >&2
	exit 1
}

# The median of the numbers in $1, separated by blanks.
median() {
	tr ' ' '\n' <<<"$1" | grep . | sort -g |
		awk '{ v[NR] = $1 } END { print NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}

# Runs the command given (a report) and shows its output, which also goes
# to $RESULTS: appended to it with BENCH_APPEND=1, in place of it otherwise.
publish() {
	if [[ ${BENCH_APPEND:-0} == 1 ]]; then
		"$@" | tee -a "$RESULTS"
	else
		"$@" | tee "$RESULTS"
	fi
}

# Runs a configuration's SPEC: NAME=VALUE words for env, then "-", then
# the command's words, with the further arguments given; prints what the
# command printed, and fails when it does.
run_spec() {
	local spec=$1 env=() cmd=() in_env=1 word
	shift
	for word in $spec; do
		if ((in_env)); then
			[[ $word == - ]] && { in_env=0; continue; }
			env+=("$word")
		else
			cmd+=("$word")
		fi
	done
	env "${env[@]}" "${cmd[@]}" "$@"
}
