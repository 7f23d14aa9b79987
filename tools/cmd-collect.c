/* collect, get-stats and garbage: collections and what they found. */
#define _GNU_SOURCE

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "gcctl.h"
#include "proto_desc.h"

static const struct collection_field {
	const char *key;
	enum proto_unit unit;
	const char *label;
} collection_fields[] = {
#define COLLECTION_FIELD(field, unit, label) { #field, unit, label },
	PROTO_COLLECTION_FIELDS(COLLECTION_FIELD)
#undef COLLECTION_FIELD
};

#define N_COLLECTION_FIELDS (sizeof(collection_fields) / sizeof(*collection_fields))

static void show_field(char *buf, size_t cap, enum proto_unit unit, int64_t v)
{
	if (unit == UNIT_NS)
		human_duration(buf, cap, v);
	else if (unit == UNIT_BYTES)
		show_bytes(buf, cap, v);
	else
		snprintf(buf, cap, "%lld", (long long)v);
}

/* One row per label: a count of blocks and the bytes that follow it
 * under the same label read "12 blocks (1.4K)". */
static void show_collection(const int64_t *v)
{
	struct table t = { .cols = 2 };
	char buf[64];

	for (size_t i = 0; i < N_COLLECTION_FIELDS; i++) {
		const struct collection_field *f = &collection_fields[i];

		if (i + 1 < N_COLLECTION_FIELDS && !strcmp(f->label, collection_fields[i + 1].label)) {
			show_blocks(buf, sizeof(buf), v[i], v[i + 1]);
			i++;
		} else {
			show_field(buf, sizeof(buf), f->unit, v[i]);
		}
		table_add(&t, f->label, buf);
	}
	table_print(&t);
}

int cmd_collect(struct ctx *cx, int argc, char **argv)
{
	const char *keys[N_COLLECTION_FIELDS];
	int64_t v[N_COLLECTION_FIELDS];
	json_t *r;
	long gen;

	if (argc > 1 && !arg_long(argv[1], 0, 2, &gen))
		return fail_with(cx, EXIT_USAGE, "invalid generation %s (must be 0, 1 or 2)", argv[1]);
	for (size_t i = 0; i < N_COLLECTION_FIELDS; i++)
		keys[i] = collection_fields[i].key;
	r = ask(cx, argc, argv);
	if (r && reply_ints(cx, r, keys, v, N_COLLECTION_FIELDS))
		show_collection(v);
	json_decref(r);
	return cx->status;
}

int cmd_get_stats(struct ctx *cx, int argc, char **argv)
{
	static const char *const keys[] = {
#define GEN_STATS_KEY(field) #field,
		PROTO_GEN_STATS_FIELDS(GEN_STATS_KEY)
#undef GEN_STATS_KEY
	};
	struct table t = { .cols = 4, .right = { true, true, true, true } };
	json_t *r = ask(cx, argc, argv);
	const json_t *gens = json_object_get(r, "generations");

	if (r && (!gens || !json_is_array(gens)))
		fail_with(cx, EXIT_REPLY_ERROR, "the reply of process %d has no \"generations\" array",
			  (int)cx->client.pid);
	else if (r) {
		table_add(&t, "GENERATION", "COLLECTIONS", "COLLECTED", "UNCOLLECTABLE");
		for (size_t g = 0; g < json_array_size(gens); g++) {
			char cell[4][24];
			int64_t v[3];

			if (!reply_ints(cx, json_array_get(gens, g), keys, v, 3))
				break;
			snprintf(cell[0], sizeof(cell[0]), "%zu", g);
			for (int i = 0; i < 3; i++)
				snprintf(cell[i + 1], sizeof(cell[i + 1]), "%lld", (long long)v[i]);
			table_add(&t, cell[0], cell[1], cell[2], cell[3]);
		}
		if (cx->status == EXIT_OK)
			table_print(&t);
	}
	json_decref(r);
	return cx->status;
}

/* garbage: the blocks kept by DEBUG_SAVEALL; --free releases them,
 * --hexdump N shows the first N bytes of each. */
int cmd_garbage(struct ctx *cx, int argc, char **argv)
{
	struct table t = { .cols = 3, .right = { false, true, false } };
	char *request[] = { argv[0], NULL };
	const json_t *blocks;
	json_t *r;
	bool freeing = argc == 2 && (!strcmp(argv[1], "--free") || !strcmp(argv[1], "free"));
	long bytes = 0;
	int64_t n;

	if (argc == 3 && !strcmp(argv[1], "--hexdump")) {
		if (!arg_long(argv[2], 1, 256, &bytes))
			return fail_with(cx, EXIT_USAGE, "bad argument '%s' for --hexdump: "
					 "expected a byte count from 1 to 256", argv[2]);
		request[1] = argv[2];
	} else if (freeing) {
		request[1] = "free";
	} else if (argc != 1) {
		return fail_with(cx, EXIT_USAGE, "bad argument '%s' for garbage: expected "
				 "--free or --hexdump N", argv[1]);
	}
	r = ask(cx, request[1] ? 2 : 1, request);
	if (r && freeing && reply_ints(cx, r, (const char *[]){ "freed" }, &n, 1))
		printf("freed  %lld block%s\n", (long long)n, n == 1 ? "" : "s");
	else if (r && !freeing && reply_ints(cx, r, (const char *[]){ "count" }, &n, 1)) {
		blocks = json_object_get(r, "blocks");   /* none: an empty list */
		if ((int64_t)json_array_size(blocks) < n)
			printf("count  %lld (the first %zu listed)\n", (long long)n, json_array_size(blocks));
		else
			printf("count  %lld\n", (long long)n);
		if (json_array_size(blocks))
			table_add(&t, "ADDRESS", "SIZE", bytes ? "BYTES" : "");
		for (size_t i = 0; i < json_array_size(blocks); i++) {
			const json_t *a = json_object_get(json_array_get(blocks, i), "address");
			const json_t *hex = json_object_get(json_array_get(blocks, i), "hex");
			char sz[48];

			block_size(sz, sizeof(sz), json_array_get(blocks, i));
			table_add(&t, a && json_is_string(a) ? json_string_value(a) : "?", sz,
				  hex && json_is_string(hex) ? json_string_value(hex) : "");
		}
		table_print(&t);
	}
	json_decref(r);
	return cx->status;
}

