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

# The median of the ratios of the numbers in $1 to those in $2, taken
# pair by pair (both one per round, in round order); - unless both hold
# as many.  A round runs every configuration once, seconds apart: a ratio
# taken within a round is spared the machine's drift between rounds,
# which a ratio of two medians taken configuration by configuration is
# not (a busy minute on a shared host slows some configurations' runs and
# not others').
paired_median() {
	local -a a b
	local i ratios=""
	read -ra a <<<"$1"
	read -ra b <<<"$2"
	((${#a[@]} && ${#a[@]} == ${#b[@]})) || { echo -; return; }
	for ((i = 0; i < ${#a[@]}; i++)); do
		ratios+="$(awk -v x="${a[i]}" -v y="${b[i]}" 'BEGIN { printf "%.6f", (y > 0 ? x / y : 0) }') "
	done
	median "$ratios"
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
