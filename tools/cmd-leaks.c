/* leaks: the leak report of a live process, as LeakSanitizer shapes it. */
#define _GNU_SOURCE

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "gcctl.h"
#include "symbolize.h"

static int64_t member_int(const json_t *o, const char *key)
{
	int64_t v = 0;

	json_int_of(json_object_get(o, key), &v);
	return v;
}

/* The reply of "leaks" as LeakSanitizer shapes its report. */
int cmd_leaks(struct ctx *cx, int argc, char **argv)
{
	json_t *r = ask(cx, argc, argv);
	const json_t *sites = json_object_get(r, "sites");
	struct symbolizer *sym;
	int64_t bytes, blocks;

	if (!r)
		return cx->status;
	if (!sites || !json_is_array(sites)) {
		json_decref(r);
		return fail_with(cx, EXIT_REPLY_ERROR, "the reply of process %d has no \"sites\" array",
				 (int)cx->client.pid);
	}
	bytes = member_int(r, "direct_bytes") + member_int(r, "indirect_bytes");
	blocks = member_int(r, "direct_blocks") + member_int(r, "indirect_blocks");
	sym = symbolizer_open(cx->client.pid);
	if (blocks)
		printf("=================================================================\n"
		       "==%d==gcshim: detected memory leaks\n", (int)cx->client.pid);
	for (size_t i = 0; i < json_array_size(sites); i++) {
		const json_t *site = json_array_get(sites, i), *kind = json_object_get(site, "kind");
		const json_t *frames = json_object_get(site, "frames");
		bool indirect = kind && json_is_string(kind) && !strcmp(json_string_value(kind), "indirect");

		printf("\n%s leak of %lld byte(s) in %lld object(s) allocated from:\n",
		       indirect ? "Indirect" : "Direct", (long long)member_int(site, "bytes"),
		       (long long)member_int(site, "count"));
		if (!frames || !json_is_array(frames) || !json_array_size(frames))
			printf("    <unknown: no backtrace recorded (GCSHIM_BACKTRACE=0, or not sampled)>\n");
		print_frames(sym, frames);
	}
	if (json_object_get(r, "truncated") && json_is_true(json_object_get(r, "truncated")))
		printf("\n(only the largest %zu of %lld sites fit in the reply)\n", json_array_size(sites),
		       (long long)member_int(r, "groups"));
	printf("%sSUMMARY: gcshim: %lld byte(s) leaked in %lld allocation(s).\n", blocks ? "\n" : "",
	       (long long)bytes, (long long)blocks);
	symbolizer_close(sym);
	json_decref(r);
	return cx->status;
}

