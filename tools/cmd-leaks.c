/* leaks: the leak check of a live process, reported as LeakSanitizer
 * reports (tools/leaks.c names the frames and applies suppressions); when
 * suppressions matched, a second check keeps the suppressed sites
 * reachable, so that what only they point to is not reported. */
#define _GNU_SOURCE

#include <stdio.h>
#include <string.h>

#include "gcctl.h"
#include "leaks.h"
#include "proto_desc.h"

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

/* Asks again with the suppressed groups' sites kept reachable. */
static bool second_check(struct ctx *cx, struct leaks *lk, char *verb)
{
	char keep[PROTO_MAX_REQUEST];
	char *request[] = { verb, "--keep", keep, NULL };
	/* the request's line holds the verb, " --keep ", the list and a newline */
	size_t left_out, cap = sizeof(keep) - strlen(verb) - sizeof(" --keep ");
	json_t *r;
	bool ok;

	if (!leaks_keep_list(lk, keep, cap, &left_out))
		return true;
	if (left_out)
		complain("%zu suppressed allocation site(s) do not fit in one request: "
			 "blocks only they point to are reported as leaks", left_out);
	if (!(r = ask(cx, 3, request)))
		return false;
	ok = leaks_second(lk, r);
	json_decref(r);
	if (!ok)
		fail_with(cx, EXIT_REPLY_ERROR, "the reply of process %d is not a leak report",
			  (int)cx->client.pid);
	return ok;
}

/* LEAKS_EXIT_FOUND (or --exitcode) when leaks are left after the
 * suppressions. */
int cmd_leaks(struct ctx *cx, int argc, char **argv)
{
	struct leaks_options o = { .exitcode = LEAKS_EXIT_FOUND, .json = cx->json };
	char *request[] = { argv[0], NULL };
	struct leaks *lk;
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
	lk = leaks_first(r, cx->client.pid);
	json_decref(r);
	if (!lk)
		return fail_with(cx, EXIT_REPLY_ERROR, "the reply of process %d is not a leak report",
				 (int)cx->client.pid);
	if (second_check(cx, lk, argv[0]))
		st = leaks_print(lk, &o);
	else
		st = cx->status;
	leaks_free(lk);
	if (st < 0)
		return fail_with(cx, EXIT_REPLY_ERROR, "out of memory");
	return st;
}
