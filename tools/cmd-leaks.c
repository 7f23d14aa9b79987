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

static int64_t member_int(const struct json *o, const char *key)
{
	int64_t v = 0;

	json_int(json_get(o, key), &v);
	return v;
}

/* The reply of "leaks" as LeakSanitizer shapes its report. */
int cmd_leaks(struct ctx *cx, int argc, char **argv)
{
	struct json *r = ask(cx, argc, argv);
	const struct json *sites = json_get(r, "sites");
	struct symbolizer *sym;
	int64_t bytes, blocks;

	if (!r)
		return cx->status;
	if (!sites || sites->type != JSON_ARRAY) {
		json_free(r);
		return fail_with(cx, EXIT_REPLY_ERROR, "the reply of process %d has no \"sites\" array",
				 (int)cx->client.pid);
	}
	bytes = member_int(r, "direct_bytes") + member_int(r, "indirect_bytes");
	blocks = member_int(r, "direct_blocks") + member_int(r, "indirect_blocks");
	sym = symbolizer_open(cx->client.pid);
	if (blocks)
		printf("=================================================================\n"
		       "==%d==gcshim: detected memory leaks\n", (int)cx->client.pid);
	for (size_t i = 0; i < sites->count; i++) {
		const struct json *site = &sites->items[i], *kind = json_get(site, "kind");
		const struct json *frames = json_get(site, "frames");
		bool indirect = kind && kind->type == JSON_STRING && !strcmp(kind->str, "indirect");

		printf("\n%s leak of %lld byte(s) in %lld object(s) allocated from:\n",
		       indirect ? "Indirect" : "Direct", (long long)member_int(site, "bytes"),
		       (long long)member_int(site, "count"));
		if (!frames || frames->type != JSON_ARRAY || !frames->count)
			printf("    <unknown: no backtrace recorded (GCSHIM_BACKTRACE=0, or not sampled)>\n");
		print_frames(sym, frames);
	}
	if (json_get(r, "truncated") && json_get(r, "truncated")->type == JSON_TRUE)
		printf("\n(only the largest %zu of %lld sites fit in the reply)\n", sites->count,
		       (long long)member_int(r, "groups"));
	printf("%sSUMMARY: gcshim: %lld byte(s) leaked in %lld allocation(s).\n", blocks ? "\n" : "",
	       (long long)bytes, (long long)blocks);
	symbolizer_close(sym);
	json_free(r);
	return cx->status;
}

