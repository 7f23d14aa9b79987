/* Verbs whose request goes out as typed, some after a check of their
 * arguments, and whose reply is shown member by member. */
#define _GNU_SOURCE

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "gcctl.h"
#include "parse.h"

/* Verbs whose request goes out as typed and whose reply needs nothing
 * special; verbs gcctl does not know take this path too. */
int cmd_query(struct ctx *cx, int argc, char **argv)
{
	json_t *r = ask(cx, argc, argv);

	if (r)
		print_reply(r);
	json_decref(r);
	return cx->status;
}

int cmd_threshold(struct ctx *cx, int argc, char **argv)
{
	char bytes[32];
	int64_t v;

	if (argc > 1) {
		if (!parse_size_or_off(argv[1], &v))
			return fail_with(cx, EXIT_USAGE,
					 "bad argument '%s' for threshold: expected bytes (like 64M) or -1",
					 argv[1]);
		snprintf(bytes, sizeof(bytes), "%lld", (long long)v);
		argv[1] = bytes;
	}
	return cmd_query(cx, argc, argv);
}

int cmd_set_threshold(struct ctx *cx, int argc, char **argv)
{
	long v;

	for (int i = 1; i < argc; i++)
		if (!arg_long(argv[i], 0, INT32_MAX, &v))
			return fail_with(cx, EXIT_USAGE, "bad argument '%s' for set-threshold: "
					 "expected an integer from 0 to %d", argv[i], INT32_MAX);
	return cmd_query(cx, argc, argv);
}
