/* watch: collections as they happen. */
#define _GNU_SOURCE

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "gcctl.h"

int cmd_watch(struct ctx *cx, int argc, char **argv)
{
	char *req[1] = { argv[0] };
	long limit = -1, seen = 0;
	json_t *r;

	if (argc == 3 && !strcmp(argv[1], "--count")) {
		if (!arg_long(argv[2], 1, LONG_MAX, &limit))
			return fail_with(cx, EXIT_USAGE, "bad argument '%s' for --count", argv[2]);
	} else if (argc != 1) {
		return fail_with(cx, EXIT_USAGE, "usage: gcctl watch [--count N]");
	}
	r = ask_first(cx, 1, req);
	if (!r)
		return cx->status;
	if (!cx->json)
		printf("watching process %d\n", (int)cx->client.pid);
	json_decref(r);
	fflush(stdout);
	while (limit < 0 || seen < limit) {
		const char *event;

		if (client_next(&cx->client, -1, &r) != CLIENT_OK)
			return fail_with(cx, EXIT_UNREACHABLE, "%s", cx->client.error);
		event = str_of(r, "event");
		if (cx->json)
			puts(cx->client.line);
		else if (!strcmp(event, "start"))
			printf("start  generation %lld\n", int_of(r, "generation"));
		else
			printf("stop   generation %lld: %lld collected (%lld bytes), %lld uncollectable, "
			       "pause %.3f ms%s\n", int_of(r, "generation"), int_of(r, "collected"),
			       int_of(r, "collected_bytes"), int_of(r, "uncollectable"),
			       (double)int_of(r, "pause_ns") / 1e6,
			       true_of(r, "completed") ? "" : " (abandoned)");
		if (!cx->json && int_of(r, "dropped"))
			printf("       (%lld events dropped so far)\n", int_of(r, "dropped"));
		if (!strcmp(event, "stop"))
			seen++;
		json_decref(r);
		fflush(stdout);
	}
	return cx->status;
}

