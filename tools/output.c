/* Showing replies as people read them: sizes and durations in human
 * units, aligned tables, allocation sites with their frames. */
#define _GNU_SOURCE

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "gcctl.h"
#include "gcshim.h"
#include "symbolize.h"


/* 13656 -> "13.3K": ls -h style, binary units, no suffix below 1K. */
void human_size(char *buf, size_t cap, int64_t v)
{
	static const char units[] = "KMGTPE";
	double d = (double)v;
	int u = -1;

	if (v < 1024) {
		snprintf(buf, cap, "%lld", (long long)v);
		return;
	}
	while (d >= 1023.5 && u < 5) {
		d /= 1024;
		u++;
	}
	if (d < 99.95 && (long long)(d * 10 + 0.5) % 10)
		snprintf(buf, cap, "%.1f%c", d, units[u]);
	else
		snprintf(buf, cap, "%.0f%c", d, units[u]);
}

/* 3215000 -> "3.2 ms": the largest of ns, µs, ms and s that keeps the
 * number at least 1, with the precision of human_size. */
void human_duration(char *buf, size_t cap, int64_t ns)
{
	static const char *const units[] = { "ns", "\u00b5s", "ms", "s" };
	double d = (double)ns;
	int u = 0;

	while (d >= 999.5 && u < 3) {
		d /= 1000;
		u++;
	}
	if (u == 0)
		snprintf(buf, cap, "%lld ns", (long long)ns);
	else if (d < 99.95 && (long long)(d * 10 + 0.5) % 10)
		snprintf(buf, cap, "%.1f %s", d, units[u]);
	else
		snprintf(buf, cap, "%.0f %s", d, units[u]);
}

static void table_grow(struct table *t)
{
	size_t cap;
	void *more;

	if (t->rows < t->cap)
		return;
	cap = t->cap ? t->cap * 2 : 64;
	more = realloc(t->cell, cap * sizeof(*t->cell));
	if (!more) {
		complain("out of memory");
		exit(EXIT_FAILURE);
	}
	t->cell = more;
	t->cap = cap;
}

void table_add_row(struct table *t, const char *const *cells)
{
	table_grow(t);
	for (size_t c = 0; c < t->cols; c++)
		t->cell[t->rows][c] = strdup(cells[c]);
	t->rows++;
}

void table_add(struct table *t, ...)
{
	const char *cells[MAX_COLS];
	va_list ap;

	va_start(ap, t);
	for (size_t c = 0; c < t->cols; c++)
		cells[c] = va_arg(ap, const char *);
	va_end(ap);
	table_add_row(t, cells);
}

/* Columns taken by UTF-8 text: one per character ("µs" is two). */
static size_t text_width(const char *s)
{
	size_t n = 0;

	for (; *s; s++)
		n += ((unsigned char)*s & 0xc0) != 0x80;
	return n;
}

static void pad(size_t n)
{
	while (n--)
		putchar(' ');
}

void table_print(struct table *t)
{
	size_t width[MAX_COLS] = { 0 };

	for (size_t r = 0; r < t->rows; r++)
		for (size_t c = 0; c < t->cols; c++)
			if (t->cell[r][c] && text_width(t->cell[r][c]) > width[c])
				width[c] = text_width(t->cell[r][c]);
	for (size_t r = 0; r < t->rows; r++) {
		for (size_t c = 0; c < t->cols; c++) {
			const char *s = t->cell[r][c] ? t->cell[r][c] : "?";
			bool last = c + 1 == t->cols;

			if (t->right[c])
				pad(width[c] - text_width(s));
			fputs(s, stdout);
			if (!t->right[c] && !last)
				pad(width[c] - text_width(s));
			fputs(last ? "\n" : "  ", stdout);
			free(t->cell[r][c]);
		}
	}
	free(t->cell);
}



/* "1.4K (1424 bytes)"; below 1K the exact number alone says it all. */
void show_bytes(char *buf, size_t cap, int64_t v)
{
	char h[32];

	if (v < 1024) {
		snprintf(buf, cap, "%lld bytes", (long long)v);
		return;
	}
	human_size(h, sizeof(h), v);
	snprintf(buf, cap, "%s (%lld bytes)", h, (long long)v);
}

/* "3.2 ms (3215000 ns)"; below 1 µs the exact number alone. */
void show_duration(char *buf, size_t cap, int64_t v)
{
	char h[32];

	if (v < 1000) {
		snprintf(buf, cap, "%lld ns", (long long)v);
		return;
	}
	human_duration(h, sizeof(h), v);
	snprintf(buf, cap, "%s (%lld ns)", h, (long long)v);
}

/* "1052 blocks (118.4K)": a count of blocks and the bytes they hold. */
void show_blocks(char *buf, size_t cap, int64_t blocks, int64_t bytes)
{
	char h[32];

	if (bytes < 1024)
		snprintf(h, sizeof(h), "%lld bytes", (long long)bytes);
	else
		human_size(h, sizeof(h), bytes);
	snprintf(buf, cap, "%lld block%s (%s)", (long long)blocks, blocks == 1 ? "" : "s", h);
}

static void show_mem_free(char *buf, size_t cap, int64_t v)
{
	if (v < 0)
		snprintf(buf, cap, "unlimited (no heap limit)");
	else
		show_bytes(buf, cap, v);
}

static void show_threshold(char *buf, size_t cap, int64_t v)
{
	if (v < 0)
		snprintf(buf, cap, "off (-1)");
	else
		show_bytes(buf, cap, v);
}

/* 33 -> "33 (stats|saveall)"; bits without a name stay in hex. */
static void show_debug(char *buf, size_t cap, int64_t v)
{
	static const struct { const char *name; int64_t bit; } flags[] = {
		{ "stats", GCSHIM_DEBUG_STATS },
		{ "collectable", GCSHIM_DEBUG_COLLECTABLE },
		{ "uncollectable", GCSHIM_DEBUG_UNCOLLECTABLE },
		{ "saveall", GCSHIM_DEBUG_SAVEALL },
	};
	size_t n = (size_t)snprintf(buf, cap, "%lld (", (long long)v);
	const char *sep = "";

	for (size_t i = 0; i < sizeof(flags) / sizeof(*flags) && n < cap; i++) {
		if (!(v & flags[i].bit))
			continue;
		n += (size_t)snprintf(buf + n, cap - n, "%s%s", sep, flags[i].name);
		v &= ~flags[i].bit;
		sep = "|";
	}
	if (n < cap && v)
		n += (size_t)snprintf(buf + n, cap - n, "%s0x%llx", sep, (long long)v);
	else if (n < cap && !*sep)
		n += (size_t)snprintf(buf + n, cap - n, "none");
	if (n < cap)
		snprintf(buf + n, cap - n, ")");
}

/* Integer members whose meaning gcctl knows; others are shown as they are. */
static const struct {
	const char *key;
	void (*show)(char *buf, size_t cap, int64_t v);
} shown_as[] = {
	{ "mem_alloc", show_bytes },
	{ "mem_free", show_mem_free },
	{ "threshold", show_threshold },
	{ "previous", show_threshold },
	{ "debug", show_debug },
};

void show_value(char *buf, size_t cap, const char *key, const json_t *v)
{
	size_t n = 0, i;
	const json_t *item;

	switch (json_typeof(v)) {
	case JSON_NULL: snprintf(buf, cap, "null"); return;
	case JSON_TRUE: snprintf(buf, cap, "true"); return;
	case JSON_FALSE: snprintf(buf, cap, "false"); return;
	case JSON_STRING: snprintf(buf, cap, "%s", json_string_value(v)); return;
	case JSON_REAL: snprintf(buf, cap, "%g", json_real_value(v)); return;
	case JSON_INTEGER:
		for (i = 0; i < sizeof(shown_as) / sizeof(*shown_as); i++)
			if (!strcmp(key, shown_as[i].key))
				return shown_as[i].show(buf, cap, json_integer_value(v));
		snprintf(buf, cap, "%lld", (long long)json_integer_value(v));
		return;
	case JSON_ARRAY:
	case JSON_OBJECT:
		/* Arrays: "700 10 10".  Nested objects are flattened before this. */
		buf[0] = '\0';
		json_array_foreach(v, i, item) {
			char text[256];

			if (n >= cap)
				break;
			show_value(text, sizeof(text), "", item);
			n += (size_t)snprintf(buf + n, cap - n, "%s%s", i ? " " : "", text);
		}
		return;
	}
}

/* One row per member, nested objects as "outer.inner". */
static void add_members(struct table *t, const char *prefix, const json_t *obj)
{
	const char *name;
	json_t *v;

	json_object_foreach((json_t *)obj, name, v) {
		char key[256], value[1024];

		if (!*prefix && !strcmp(name, "ok"))
			continue;
		snprintf(key, sizeof(key), "%s%s%s", prefix, *prefix ? "." : "", name);
		if (json_is_object(v)) {
			add_members(t, key, v);
			continue;
		}
		show_value(value, sizeof(value), name, v);
		table_add(t, key, value);
	}
}

void print_reply(const json_t *r)
{
	struct table t = { .cols = 2 };

	add_members(&t, "", r);
	table_print(&t);
}


/* The frames of an allocation site as LeakSanitizer prints them:
 * "#N 0xPC in func file:line". */
void print_frames(struct symbolizer *sym, const json_t *frames)
{
	for (size_t f = 0; frames && json_is_array(frames) && f < json_array_size(frames); f++) {
		const json_t *a = json_array_get(frames, f);
		uintptr_t pc = json_is_string(a) ? (uintptr_t)strtoull(json_string_value(a), NULL, 16) : 0;
		char where[1024];

		symbolize(sym, pc, where, sizeof(where));
		printf("    #%zu 0x%lx%s%s\n", f, (unsigned long)pc, *where ? " " : "", where);
	}
}

/* is-tracked: the block and, when recorded, where it was allocated. */

void put_json_string(FILE *f, const char *s)
{
	json_t *v = json_string(s ? s : "");

	if (v)
		json_dumpf(v, f, JSON_ENCODE_ANY);
	else
		fputs("\"\"", f);
	json_decref(v);
}

void block_size(char *buf, size_t cap, const json_t *b)
{
	if (json_object_get(b, "requested"))
		snprintf(buf, cap, "%lld", int_of(b, "requested"));
	else
		snprintf(buf, cap, "%lld (size class)", int_of(b, "size"));
}
