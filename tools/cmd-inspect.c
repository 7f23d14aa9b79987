/* is-tracked, get-referents, get-referrers and get-objects: the heap
 * seen block by block. */
#define _GNU_SOURCE

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "gcctl.h"
#include "symbolize.h"

int cmd_is_tracked(struct ctx *cx, int argc, char **argv)
{
	json_t *r = ask(cx, argc, argv);
	const json_t *site;
	char size[48];

	if (!r)
		return cx->status;
	block_size(size, sizeof(size), r);
	if (!true_of(r, "tracked"))
		printf("%s: not in a live block\n", argv[1]);
	else
		printf("%s: in the block at %s, %s bytes, offset %lld, generation %lld%s\n",
		       argv[1], str_of(r, "address"), size, int_of(r, "offset"),
		       int_of(r, "generation"), true_of(r, "frozen") ? ", frozen" : "");
	site = json_object_get(r, "site");
	if (!cx->json && site && json_is_array(site) && json_array_size(site)) {
		struct symbolizer *sym = symbolizer_open(cx->client.pid);

		printf("allocated from:\n");
		print_frames(sym, site);
		symbolizer_close(sym);
	}
	json_decref(r);
	return cx->status;
}

static void print_block_row(struct table *t, const json_t *b)
{
	char size[48], gen[32];

	block_size(size, sizeof(size), b);
	snprintf(gen, sizeof(gen), "%lld%s", int_of(b, "generation"),
		 true_of(b, "frozen") ? " frozen" : "");
	table_add(t, str_of(b, "address"), size, gen);
}

static void print_count_line(const json_t *r, const char *what)
{
	long long count = int_of(r, "count"), shown = int_of(r, "shown");

	if (count > shown)
		printf("%lld %s, %lld shown\n", count, what, shown);
	else
		printf("%lld %s\n", count, what);
}

int cmd_get_referents(struct ctx *cx, int argc, char **argv)
{
	json_t *r = ask(cx, argc, argv);
	const json_t *list = json_object_get(r, "referents");
	struct table t = { .cols = 3, .right = { false, true, false } };

	if (!r)
		return cx->status;
	table_add(&t, "ADDRESS", "SIZE", "GENERATION");
	for (size_t i = 0; list && i < json_array_size(list); i++)
		print_block_row(&t, json_array_get(list, i));
	if (list && json_array_size(list))
		table_print(&t);
	else
		free(t.cell);
	print_count_line(r, "referents");
	json_decref(r);
	return cx->status;
}

/* "stack of thread 1234", "data of /usr/lib/libfoo.so+0x4020", ... */
static void describe_referrer(char *buf, size_t cap, const json_t *f)
{
	const char *kind = str_of(f, "kind");

	if (!strcmp(kind, "block"))
		snprintf(buf, cap, "block %s (%lld bytes) at offset %lld", str_of(f, "block"),
			 int_of(f, "size"), int_of(f, "offset"));
	else if (!strcmp(kind, "stack"))
		snprintf(buf, cap, "stack of thread %lld", int_of(f, "tid"));
	else if (!strcmp(kind, "data"))
		snprintf(buf, cap, "data of %s+0x%llx", str_of(f, "path"), int_of(f, "offset"));
	else if (!strcmp(kind, "mmap"))
		snprintf(buf, cap, "mapping %s-%s%s%s", str_of(f, "start"), str_of(f, "end"),
			 json_object_get(f, "path") ? " " : "", json_object_get(f, "path") ? str_of(f, "path") : "");
	else if (!strcmp(kind, "epoll"))
		snprintf(buf, cap, "epoll registration data");
	else if (!strcmp(kind, "garbage"))
		snprintf(buf, cap, "the garbage list");
	else
		snprintf(buf, cap, "%s", kind);
}

int cmd_get_referrers(struct ctx *cx, int argc, char **argv)
{
	json_t *r = ask(cx, argc, argv);
	const json_t *list = json_object_get(r, "referrers");
	struct table t = { .cols = 3 };

	if (!r)
		return cx->status;
	table_add(&t, "TARGET", "WHERE", "REFERRER");
	for (size_t i = 0; list && i < json_array_size(list); i++) {
		char what[512];

		describe_referrer(what, sizeof(what), json_array_get(list, i));
		table_add(&t, str_of(json_array_get(list, i), "target"), str_of(json_array_get(list, i), "where"),
			  what);
	}
	if (list && json_array_size(list))
		table_print(&t);
	else
		free(t.cell);
	print_count_line(r, "referrers");
	json_decref(r);
	return cx->status;
}

/* The bytes the program asked for, and how many blocks count with their
 * size class because their request was not recorded. */
static void summary_bytes(char *buf, size_t cap, const json_t *o)
{
	long long unsized = int_of(o, "unsized");
	long long req = json_object_get(o, "requested") ? int_of(o, "requested") : int_of(o, "bytes");

	if (unsized)
		snprintf(buf, cap, "%lld byte(s) requested (%lld block(s) counted by size class)",
			 req, unsized);
	else
		snprintf(buf, cap, "%lld byte(s) requested", req);
}

/* get-objects --summary: blocks per size class, then per allocation site
 * (largest first, frames named as in leaks). */
static int get_objects_summary(struct ctx *cx, json_t *r)
{
	const json_t *classes = json_object_get(r, "classes"), *sites = json_object_get(r, "sites");
	struct table t = { .cols = 3, .right = { true, true, true } };
	struct symbolizer *sym = NULL;
	char total[96];

	table_add(&t, "SIZE", "BLOCKS", "BYTES");
	for (size_t i = 0; classes && i < json_array_size(classes); i++) {
		char size[32], count[32], bytes[32];
		const json_t *c = json_array_get(classes, i);

		snprintf(size, sizeof(size), "%lld", int_of(c, "size"));
		snprintf(count, sizeof(count), "%lld", int_of(c, "count"));
		human_size(bytes, sizeof(bytes), int_of(c, "bytes"));
		table_add(&t, size, count, bytes);
	}
	table_print(&t);
	for (size_t i = 0; sites && json_is_array(sites) && i < json_array_size(sites); i++) {
		const json_t *s = json_array_get(sites, i), *frames = json_object_get(s, "frames");
		char bytes[96];

		if (!sym)
			sym = symbolizer_open(cx->client.pid);
		summary_bytes(bytes, sizeof(bytes), s);
		printf("\n%lld blocks, %s, allocated from:\n", int_of(s, "count"), bytes);
		if (!frames || !json_is_array(frames) || !json_array_size(frames))
			printf("    <no backtrace recorded>\n");
		else
			print_frames(sym, frames);
	}
	symbolizer_close(sym);
	summary_bytes(total, sizeof(total), r);
	printf("%s%lld blocks, %s\n", sites && json_array_size(sites) ? "\n" : "", int_of(r, "count"), total);
	return EXIT_OK;
}


/* A streamed reply: lines until one says "done" (or fails). */
int cmd_get_objects(struct ctx *cx, int argc, char **argv)
{
	json_t *r;
	struct table t = { .cols = 3, .right = { false, true, false } };
	bool header = false;

	for (int i = 1; i < argc; i++)
		if (strcmp(argv[i], "--summary") && strcmp(argv[i], "--generation") &&
		    strcmp(argv[i], "--min-size") && (i == 1 || (strcmp(argv[i - 1], "--generation") &&
							     strcmp(argv[i - 1], "--min-size"))))
			return fail_with(cx, EXIT_USAGE, "bad argument '%s' for get-objects", argv[i]);
	r = ask_first(cx, argc, argv);
	if (!r)
		return cx->status;
	if (json_object_get(r, "classes")) {
		if (!cx->json)
			get_objects_summary(cx, r);
		json_decref(r);
		return cx->status;
	}
	for (;;) {
		const json_t *list;
		json_t *line = r;
		bool done;

		r = NULL;
		if (json_object_get(line, "ok") && !json_is_true(json_object_get(line, "ok"))) {
			if (!cx->json)
				complain("%s", reply_error(line));
			json_decref(line);
			cx->status = EXIT_REPLY_ERROR;
			break;
		}
		list = json_object_get(line, "objects");
		if (!cx->json) {
			if (!header)
				table_add(&t, "ADDRESS", "SIZE", "GENERATION");
			header = true;
			for (size_t i = 0; list && i < json_array_size(list); i++)
				print_block_row(&t, json_array_get(list, i));
		}
		done = true_of(line, "done");
		if (done && !cx->json) {
			table_print(&t);
			printf("%lld blocks, %lld bytes\n", int_of(line, "count"), int_of(line, "bytes"));
		}
		json_decref(line);
		if (done)
			break;
		if (client_next(&cx->client, client_timeout_ms, &r) != CLIENT_OK)
			return fail_with(cx, EXIT_UNREACHABLE, "%s", cx->client.error);
		if (cx->json)
			puts(cx->client.line);
	}
	return cx->status;
}

/* Events until interrupted, or --count N collections. */
