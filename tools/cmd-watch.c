/* watch: collections as they happen, each with the wall-clock time it
 * started and ended and mem_alloc before and after. */
#define _GNU_SOURCE

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "gcctl.h"

/* "14:03:27.512" from a wall-clock time in ns, local time. */
static void clock_text(char *buf, size_t cap, long long ns)
{
	time_t t = (time_t)(ns / 1000000000);
	struct tm tm;

	if (!ns || !localtime_r(&t, &tm)) {
		snprintf(buf, cap, "--:--:--.---");
		return;
	}
	snprintf(buf, cap, "%02d:%02d:%02d.%03lld", tm.tm_hour, tm.tm_min, tm.tm_sec,
		 ns % 1000000000 / 1000000);
}

static void print_event(const json_t *r)
{
	char when[32], before[32], after[32];

	clock_text(when, sizeof(when), int_of(r, "time_ns"));
	if (!strcmp(str_of(r, "event"), "start")) {
		human_size(before, sizeof(before), int_of(r, "mem_alloc"));
		printf("%s  start  generation %lld, mem_alloc %s\n", when, int_of(r, "generation"),
		       before);
		return;
	}
	human_size(before, sizeof(before), int_of(r, "mem_alloc_before"));
	human_size(after, sizeof(after), int_of(r, "mem_alloc_after"));
	printf("%s  stop   generation %lld: %lld collected (%lld bytes, %lld asked for), "
	       "%lld uncollectable, pause %.3f ms, mem_alloc %s -> %s%s\n", when,
	       int_of(r, "generation"), int_of(r, "collected"), int_of(r, "collected_bytes"),
	       int_of(r, "collected_requested"), int_of(r, "uncollectable"),
	       (double)int_of(r, "pause_ns") / 1e6, before, after,
	       true_of(r, "completed") ? "" : " (abandoned)");
}

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
		else
			print_event(r);
		if (!cx->json && int_of(r, "dropped"))
			printf("       (%lld events dropped so far)\n", int_of(r, "dropped"));
		if (!strcmp(event, "stop"))
			seen++;
		json_decref(r);
		fflush(stdout);
	}
	return cx->status;
}

