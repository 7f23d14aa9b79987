/* leaks: the leak check of a live process, reported as LeakSanitizer
 * reports (tools/leaks.c names the frames and applies suppressions). */
#define _GNU_SOURCE

#include <stdio.h>
#include <string.h>

#include "gcctl.h"
#include "leaks.h"

static int leaks_options(struct ctx *cx, int argc, char **argv, struct leaks_options *o)
{
	long code;

	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--suppressions") && i + 1 < argc) {
			o->suppressions = argv[++i];
		} else if (!strcmp(argv[i], "--exitcode") && i + 1 < argc) {
			if (!arg_long(argv[++i], 0, 255, &code))
				return fail_with(cx, EXIT_USAGE, "bad argument '%s' for --exitcode: "
						 "expected 0 to 255", argv[i]);
			o->exitcode = (int)code;
		} else {
			return fail_with(cx, EXIT_USAGE, "usage: gcctl leaks [--suppressions FILE] "
					 "[--exitcode N] [--json]");
		}
	}
	return EXIT_OK;
}

/* LEAKS_EXIT_FOUND (or --exitcode) when leaks are left after the
 * suppressions. */
int cmd_leaks(struct ctx *cx, int argc, char **argv)
{
	struct leaks_options o = { .exitcode = LEAKS_EXIT_FOUND, .json = cx->json };
	char *request[] = { argv[0], NULL };
	json_t *r;
	int st = leaks_options(cx, argc, argv, &o);

	if (st != EXIT_OK)
		return st;
	if (!leaks_load_suppressions(&o))
		return EXIT_USAGE;
	cx->json = false;   /* the reply is shown once its frames are named */
	r = ask(cx, 1, request);
	if (!r)
		return cx->status;
	st = leaks_print(r, cx->client.pid, &o);
	json_decref(r);
	if (st < 0)
		return fail_with(cx, EXIT_REPLY_ERROR, "the reply of process %d is not a leak report",
				 (int)cx->client.pid);
	return st;
}
