/*
 * gcctl - control processes running under libgcshim.so.
 *
 * gcctl [-p PID] [--json] VERB [ARGS...] sends one request to a process's
 * control socket and shows the reply; gcctl ps lists the processes and
 * gcctl run starts one.  Verbs gcctl does not know are still sent: the
 * process decides, so a newer library works with an older gcctl.
 */
#define _GNU_SOURCE
#include "config.h"

#include <errno.h>
#include <getopt.h>
#include <libgen.h>
#include <limits.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "client.h"
#include "gcshim.h"
#include "json.h"
#include "leaks.h"
#include "symbolize.h"

enum exit_code {
	EXIT_OK = 0,
	EXIT_REPLY_ERROR = 1, /* the process answered with an error */
	EXIT_USAGE = 2,
	EXIT_UNREACHABLE = 3, /* no such process, no socket, no answer */
	EXIT_DENIED = 4,
	EXIT_CANNOT_EXEC = 126,
	EXIT_NOT_FOUND = 127,
};

struct ctx {
	pid_t pid; /* from -p; 0 to pick the only process there is */
	bool json;
	bool connected;
	struct client client;
	int status;
};

struct verb {
	const char *name;
	const char *args;
	int min_args, max_args;
	int (*run)(struct ctx *cx, int argc, char **argv);
	bool local; /* needs no process: takes neither -p nor --json */
	const char *help;
};

/* An option of gcctl run and the GCSHIM_* variable it sets. */
struct run_option {
	const char *name;
	const char *arg;   /* NULL for a switch */
	const char *env;
	const char *value; /* what a switch sets */
	bool (*valid)(const char *arg);
	const char *expects; /* what valid accepts, for the error message */
	bool path;         /* made absolute: gcctl may later run elsewhere */
	const char *help;
};

/* ---- messages ---------------------------------------------------------- */

static void vcomplain(const char *fmt, va_list ap)
{
	fputs("gcctl: ", stderr);
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
}

static void complain(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static void complain(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vcomplain(fmt, ap);
	va_end(ap);
}

static int fail_with(struct ctx *cx, int status, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* Reports an error and records how gcctl ends. */
static int fail_with(struct ctx *cx, int status, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vcomplain(fmt, ap);
	va_end(ap);
	cx->status = status;
	return status;
}

static int client_exit(enum client_status st)
{
	return st == CLIENT_DENIED ? EXIT_DENIED : EXIT_UNREACHABLE;
}

/* ---- sizes --------------------------------------------------------------- */

static int digit_value(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if ((c | 0x20) >= 'a' && (c | 0x20) <= 'f')
		return (c | 0x20) - 'a' + 10;
	return -1;
}

/* The library's size syntax: decimal digits or 0x hex, an optional binary
 * suffix K, M, G or T (also KiB, KB...), an optional B. */
static bool parse_size(const char *s, int64_t *out)
{
	static const char units[] = "kmgt";
	unsigned long long v = 0, mul = 1;
	const char *digits, *unit;
	int base = 10, d;

	if (s[0] == '0' && (s[1] | 0x20) == 'x') {
		base = 16;
		s += 2;
	}
	for (digits = s; (d = digit_value(*s)) >= 0 && d < base; s++) {
		if (v > (ULLONG_MAX - (unsigned)d) / (unsigned)base)
			return false;
		v = v * (unsigned)base + (unsigned)d;
	}
	if (s == digits)
		return false;
	if (*s && (unit = strchr(units, *s | 0x20))) {
		mul = 1ULL << (10 * (unit - units + 1));
		s++;
		if (*s == 'i' || *s == 'I')
			s++;
	}
	if (*s == 'b' || *s == 'B')
		s++;
	if (*s || v > (unsigned long long)INT64_MAX / mul)
		return false;
	*out = (int64_t)(v * mul);
	return true;
}

static bool parse_size_or_off(const char *s, int64_t *out)
{
	if (!strcmp(s, "-1") || !strcasecmp(s, "off")) {
		*out = -1;
		return true;
	}
	return parse_size(s, out);
}

static bool parse_long(const char *s, long min, long max, long *out)
{
	char *end;
	long v;

	if (*s != '-' && (*s < '0' || *s > '9'))
		return false;
	errno = 0;
	v = strtol(s, &end, 10);
	if (errno || *end || v < min || v > max)
		return false;
	*out = v;
	return true;
}

static bool valid_size(const char *s)
{
	int64_t v;

	return parse_size(s, &v);
}

static bool valid_size_or_off(const char *s)
{
	int64_t v;

	return parse_size_or_off(s, &v);
}

/* "T0[,T1[,T2]]", each from 0 to INT32_MAX, as GCSHIM_GEN_THRESHOLD wants. */
static bool valid_triple(const char *s)
{
	for (int i = 0; i < 3; i++) {
		size_t len = strcspn(s, ",");
		char part[16];
		long v;

		if (len == 0 || len >= sizeof(part))
			return false;
		memcpy(part, s, len);
		part[len] = '\0';
		if (!parse_long(part, 0, INT32_MAX, &v))
			return false;
		s += len;
		if (!*s++)
			return true;
	}
	return false;
}

/* 13656 -> "13.3K": ls -h style, binary units, no suffix below 1K. */
static void human_size(char *buf, size_t cap, int64_t v)
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
static void human_duration(char *buf, size_t cap, int64_t ns)
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

/* ---- tables -------------------------------------------------------------- */

#define MAX_COLS 4

/* Rows of text printed in aligned columns, two spaces apart. */
struct table {
	size_t cols, rows, cap;
	char *(*cell)[MAX_COLS];
	bool right[MAX_COLS];
};

static void table_add(struct table *t, ...)
{
	va_list ap;

	if (t->rows == t->cap) {
		size_t cap = t->cap ? t->cap * 2 : 64;
		void *more = realloc(t->cell, cap * sizeof(*t->cell));

		if (!more) {
			complain("out of memory");
			exit(EXIT_FAILURE);
		}
		t->cell = more;
		t->cap = cap;
	}
	va_start(ap, t);
	for (size_t c = 0; c < t->cols; c++)
		t->cell[t->rows][c] = strdup(va_arg(ap, const char *));
	va_end(ap);
	t->rows++;
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

static void table_print(struct table *t)
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

/* ---- showing replies ---------------------------------------------------- */

/* "1.4K (1424 bytes)"; below 1K the exact number alone says it all. */
static void show_bytes(char *buf, size_t cap, int64_t v)
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
static void show_duration(char *buf, size_t cap, int64_t v)
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
static void show_blocks(char *buf, size_t cap, int64_t blocks, int64_t bytes)
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

static void show_value(char *buf, size_t cap, const char *key, const struct json *v)
{
	size_t n = 0;

	switch (v->type) {
	case JSON_NULL: snprintf(buf, cap, "null"); return;
	case JSON_TRUE: snprintf(buf, cap, "true"); return;
	case JSON_FALSE: snprintf(buf, cap, "false"); return;
	case JSON_STRING: snprintf(buf, cap, "%s", v->str); return;
	case JSON_INT:
		for (size_t i = 0; i < sizeof(shown_as) / sizeof(*shown_as); i++)
			if (!strcmp(key, shown_as[i].key))
				return shown_as[i].show(buf, cap, v->num);
		snprintf(buf, cap, "%lld", (long long)v->num);
		return;
	case JSON_ARRAY:
	case JSON_OBJECT:
		/* Arrays: "700 10 10".  Nested objects are flattened before this. */
		buf[0] = '\0';
		for (size_t i = 0; i < v->count && n < cap; i++) {
			char item[256];

			show_value(item, sizeof(item), "", &v->items[i]);
			n += (size_t)snprintf(buf + n, cap - n, "%s%s", i ? " " : "", item);
		}
		return;
	}
}

/* One row per member, nested objects as "outer.inner". */
static void add_members(struct table *t, const char *prefix, const struct json *obj)
{
	for (size_t i = 0; i < obj->count; i++) {
		char key[256], value[1024];

		if (!*prefix && !strcmp(obj->keys[i], "ok"))
			continue;
		snprintf(key, sizeof(key), "%s%s%s", prefix, *prefix ? "." : "", obj->keys[i]);
		if (obj->items[i].type == JSON_OBJECT) {
			add_members(t, key, &obj->items[i]);
			continue;
		}
		show_value(value, sizeof(value), obj->keys[i], &obj->items[i]);
		table_add(t, key, value);
	}
}

static void print_reply(const struct json *r)
{
	struct table t = { .cols = 2 };

	add_members(&t, "", r);
	table_print(&t);
}

/* ---- talking to the process --------------------------------------------- */

/* The command line of pid, arguments joined by spaces, for a listing.
 * The program is shown by its name, as ps(1) does: its directory would
 * fill the column. */
static void command_line(pid_t pid, char *buf, size_t cap)
{
	char path[64];
	size_t n = 0, dir;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/cmdline", (int)pid);
	f = fopen(path, "re");
	if (f) {
		n = fread(buf, 1, cap - 1, f);
		fclose(f);
	}
	buf[n] = '\0';
	for (dir = strlen(buf); dir && buf[dir - 1] != '/'; dir--)
		;
	memmove(buf, buf + dir, n - dir);
	n -= dir;
	while (n && buf[n - 1] == '\0')
		n--;
	buf[n] = '\0';
	for (size_t i = 0; i < n; i++)
		if (buf[i] == '\0')
			buf[i] = ' ';
		else if ((unsigned char)buf[i] < 0x20 || buf[i] == 0x7f)
			buf[i] = '?';
	if (!n)
		snprintf(buf, cap, "?");
}

/* Cuts s to at most max bytes, ending in "..." when cut, never inside a
 * UTF-8 character. */
static void truncate_text(char *s, size_t max)
{
	size_t n;

	if (strlen(s) <= max)
		return;
	n = max - 3;
	while (n && ((unsigned char)s[n] & 0xc0) == 0x80)
		n--;
	strcpy(s + n, "...");
}

/* Without -p: the only process there is, else an error. */
static pid_t the_only_process(struct ctx *cx)
{
	pid_t *pids;
	char list[2048] = "", cmd[64];
	size_t n, len = 0;
	pid_t pid;

	if (client_find_all(&pids, &n) < 0)
		return fail_with(cx, EXIT_UNREACHABLE, "out of memory"), 0;
	if (n == 0) {
		free(pids);
		return fail_with(cx, EXIT_UNREACHABLE, "no process is running under gcshim"), 0;
	}
	pid = pids[0];
	for (size_t i = 0; n > 1 && i < n && len < sizeof(list); i++) {
		command_line(pids[i], cmd, sizeof(cmd));
		truncate_text(cmd, 30);
		len += (size_t)snprintf(list + len, sizeof(list) - len, "%s%d (%s)", i ? ", " : "",
					(int)pids[i], cmd);
	}
	free(pids);
	if (n > 1)
		return fail_with(cx, EXIT_USAGE,
				 "%zu processes are running under gcshim: %s; choose one with -p PID",
				 n, list), 0;
	return pid;
}

static bool connect_target(struct ctx *cx)
{
	pid_t pid = cx->pid ? cx->pid : the_only_process(cx);
	enum client_status st;

	if (!pid)
		return false;
	st = client_open(&cx->client, pid);
	if (st != CLIENT_OK) {
		fail_with(cx, client_exit(st), "%s", cx->client.error);
		return false;
	}
	cx->connected = true;
	return true;
}

/* Arguments become one line of words: no white space inside them, no
 * control characters, and the line must fit the library's buffer. */
static bool build_request(struct ctx *cx, char *line, size_t cap, int argc, char **argv)
{
	size_t n = 0;

	for (int i = 0; i < argc; i++) {
		const char *a = argv[i];

		if (!*a || strpbrk(a, " \t\r\n"))
			return fail_with(cx, EXIT_USAGE, "bad argument '%s': empty or with spaces", a), false;
		for (const char *p = a; *p; p++)
			if ((unsigned char)*p < 0x20 || *p == 0x7f)
				return fail_with(cx, EXIT_USAGE,
						 "bad argument: control character in '%s'", a), false;
		if (n + strlen(a) + 2 > cap)
			return fail_with(cx, EXIT_USAGE, "bad argument: request longer than %zu bytes",
					 cap - 1), false;
		n += (size_t)snprintf(line + n, cap - n, "%s%s", i ? " " : "", a);
	}
	return true;
}

static const char *reply_error(const struct json *r)
{
	const struct json *e = json_get(r, "error");

	return e && e->type == JSON_STRING ? e->str : "the process reported an error";
}

/* Sends argv as one request.  Returns the reply when it is a success to be
 * shown to a person; otherwise the reply (raw, with --json) or the failure
 * has been reported already and cx->status says how gcctl ends. */
static struct json *ask(struct ctx *cx, int argc, char **argv)
{
	char line[CLIENT_MAX_REQUEST];
	enum client_status st;
	struct json *r;

	if (!build_request(cx, line, sizeof(line), argc, argv) ||
	    (!cx->connected && !connect_target(cx)))
		return NULL;
	st = client_request(&cx->client, line, &r);
	if (st != CLIENT_OK)
		return fail_with(cx, client_exit(st), "%s", cx->client.error), NULL;
	if (cx->json)
		puts(cx->client.line);
	if (json_get(r, "ok")->type != JSON_TRUE) {
		cx->status = EXIT_REPLY_ERROR;
		if (!cx->json)
			complain("%s", reply_error(r));
	}
	if (cx->json || cx->status != EXIT_OK) {
		json_free(r);
		return NULL;
	}
	return r;
}

/* ---- verbs ----------------------------------------------------------------- */

/* Verbs whose request goes out as typed and whose reply needs nothing
 * special; verbs gcctl does not know take this path too. */
static int query(struct ctx *cx, int argc, char **argv)
{
	struct json *r = ask(cx, argc, argv);

	if (r)
		print_reply(r);
	json_free(r);
	return cx->status;
}

static int verb_threshold(struct ctx *cx, int argc, char **argv)
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
	return query(cx, argc, argv);
}

static int verb_set_threshold(struct ctx *cx, int argc, char **argv)
{
	long v;

	for (int i = 1; i < argc; i++)
		if (!parse_long(argv[i], 0, INT32_MAX, &v))
			return fail_with(cx, EXIT_USAGE, "bad argument '%s' for set-threshold: "
					 "expected an integer from 0 to %d", argv[i], INT32_MAX);
	return query(cx, argc, argv);
}

/* The integer members keys[0..n) of a reply, or an error: the reply is
 * not what this version of gcctl understands. */
static bool reply_ints(struct ctx *cx, const struct json *r, const char *const *keys,
		       int64_t *out, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (!json_int(json_get(r, keys[i]), &out[i]))
			return fail_with(cx, EXIT_REPLY_ERROR,
					 "the reply of process %d has no integer \"%s\"",
					 (int)cx->client.pid, keys[i]), false;
	return true;
}

static int verb_collect(struct ctx *cx, int argc, char **argv)
{
	enum { GEN, COLLECTED, BYTES, UNCOLLECTABLE, PAUSE, STOP, MARK, SWEEP, ROOTS, HEAP, N };
	static const char *const keys[N] = {
		"generation", "collected", "collected_bytes", "uncollectable", "pause_ns",
		"stop_ns", "mark_ns", "sweep_ns", "root_bytes", "heap_bytes",
	};
	struct table t = { .cols = 2 };
	struct json *r;
	int64_t v[N];
	char buf[64];
	long gen;

	if (argc > 1 && !parse_long(argv[1], 0, 2, &gen))
		return fail_with(cx, EXIT_USAGE, "invalid generation %s (must be 0, 1 or 2)", argv[1]);
	r = ask(cx, argc, argv);
	if (r && reply_ints(cx, r, keys, v, N)) {
		show_blocks(buf, sizeof(buf), v[COLLECTED], v[BYTES]);
		table_add(&t, "collected", buf);
		snprintf(buf, sizeof(buf), "%lld", (long long)v[UNCOLLECTABLE]);
		table_add(&t, "uncollectable", buf);
		snprintf(buf, sizeof(buf), "%lld", (long long)v[GEN]);
		table_add(&t, "generation", buf);
		for (int i = PAUSE; i <= SWEEP; i++) {
			human_duration(buf, sizeof(buf), v[i]);
			table_add(&t, (const char *[]){ "pause", "stop", "mark", "sweep" }[i - PAUSE], buf);
		}
		show_bytes(buf, sizeof(buf), v[ROOTS]);
		table_add(&t, "roots scanned", buf);
		show_bytes(buf, sizeof(buf), v[HEAP]);
		table_add(&t, "heap scanned", buf);
		table_print(&t);
	}
	json_free(r);
	return cx->status;
}

static int verb_get_stats(struct ctx *cx, int argc, char **argv)
{
	static const char *const keys[] = { "collections", "collected", "uncollectable" };
	struct table t = { .cols = 4, .right = { true, true, true, true } };
	struct json *r = ask(cx, argc, argv);
	const struct json *gens = json_get(r, "generations");

	if (r && (!gens || gens->type != JSON_ARRAY))
		fail_with(cx, EXIT_REPLY_ERROR, "the reply of process %d has no \"generations\" array",
			  (int)cx->client.pid);
	else if (r) {
		table_add(&t, "GENERATION", "COLLECTIONS", "COLLECTED", "UNCOLLECTABLE");
		for (size_t g = 0; g < gens->count; g++) {
			char cell[4][24];
			int64_t v[3];

			if (!reply_ints(cx, &gens->items[g], keys, v, 3))
				break;
			snprintf(cell[0], sizeof(cell[0]), "%zu", g);
			for (int i = 0; i < 3; i++)
				snprintf(cell[i + 1], sizeof(cell[i + 1]), "%lld", (long long)v[i]);
			table_add(&t, cell[0], cell[1], cell[2], cell[3]);
		}
		if (cx->status == EXIT_OK)
			table_print(&t);
	}
	json_free(r);
	return cx->status;
}

/* garbage: the blocks kept by DEBUG_SAVEALL; --free releases them,
 * --hexdump N shows the first N bytes of each. */
static int verb_garbage(struct ctx *cx, int argc, char **argv)
{
	static const struct json none = { .type = JSON_ARRAY };
	struct table t = { .cols = 3, .right = { false, true, false } };
	char *request[] = { argv[0], NULL };
	const struct json *blocks;
	struct json *r;
	bool freeing = argc == 2 && (!strcmp(argv[1], "--free") || !strcmp(argv[1], "free"));
	long bytes = 0;
	int64_t n;

	if (argc == 3 && !strcmp(argv[1], "--hexdump")) {
		if (!parse_long(argv[2], 1, 256, &bytes))
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
		blocks = json_get(r, "blocks");
		if (!blocks || blocks->type != JSON_ARRAY)
			blocks = &none;
		if ((int64_t)blocks->count < n)
			printf("count  %lld (the first %zu listed)\n", (long long)n, blocks->count);
		else
			printf("count  %lld\n", (long long)n);
		if (blocks->count)
			table_add(&t, "ADDRESS", "SIZE", bytes ? "BYTES" : "");
		for (size_t i = 0; i < blocks->count; i++) {
			const struct json *a = json_get(&blocks->items[i], "address");
			const struct json *hex = json_get(&blocks->items[i], "hex");
			int64_t size;
			char sz[48];

			/* what the program asked for, when the process recorded it */
			if (json_int(json_get(&blocks->items[i], "requested"), &size))
				snprintf(sz, sizeof(sz), "%lld", (long long)size);
			else if (json_int(json_get(&blocks->items[i], "size"), &size))
				snprintf(sz, sizeof(sz), "%lld (size class)", (long long)size);
			else
				snprintf(sz, sizeof(sz), "?");
			table_add(&t, a && a->type == JSON_STRING ? a->str : "?", sz,
				  hex && hex->type == JSON_STRING ? hex->str : "");
		}
		table_print(&t);
	}
	json_free(r);
	return cx->status;
}

static bool ends_with(const char *s, const char *suffix)
{
	size_t n = strlen(s), k = strlen(suffix);

	return n >= k && !strcmp(s + n - k, suffix);
}

/* Sizes read best as sizes; the names say which fields hold bytes. */
static bool is_byte_field(const char *name)
{
	static const char *const prefixes[] = { "mem_", "peak_", "bytes_", "heap_", "jemalloc_" };
	static const char *const names[] = { "rss", "threshold" };

	if (ends_with(name, "_bytes") || strstr(name, "_bytes_"))
		return true;
	for (size_t i = 0; i < sizeof(prefixes) / sizeof(*prefixes); i++)
		if (!strncmp(name, prefixes[i], strlen(prefixes[i])))
			return true;
	for (size_t i = 0; i < sizeof(names) / sizeof(*names); i++)
		if (!strcmp(name, names[i]))
			return true;
	return false;
}

static const char *stat_description(const char *name)
{
#define STAT_DESC(field, desc) if (!strcmp(name, #field)) return desc;
	GCSHIM_STAT_FIELDS(STAT_DESC)
#undef STAT_DESC
	return "";
}

static int verb_stats(struct ctx *cx, int argc, char **argv)
{
	struct json *r = ask(cx, argc, argv);
	const struct json *stats = json_get(r, "stats");
	struct table t = { .cols = 3, .right = { false, true, false } };

	if (r && (!stats || stats->type != JSON_OBJECT))
		fail_with(cx, EXIT_REPLY_ERROR, "the reply of process %d has no \"stats\" object",
			  (int)cx->client.pid);
	else if (r) {
		for (size_t i = 0; i < stats->count; i++) {
			const char *name = stats->keys[i];
			const struct json *v = &stats->items[i];
			char value[64];

			if (v->type == JSON_INT && v->num >= 0 && ends_with(name, "_ns"))
				show_duration(value, sizeof(value), v->num);
			else if (v->type == JSON_INT && v->num >= 0 && is_byte_field(name))
				human_size(value, sizeof(value), v->num);
			else
				show_value(value, sizeof(value), "", v);
			table_add(&t, name, value, stat_description(name));
		}
		table_print(&t);
	}
	json_free(r);
	return cx->status;
}

/* MEM_ALLOC of one process for ps, or "?" if it does not answer. */
static void ps_mem_alloc(pid_t pid, char *buf, size_t cap)
{
	struct client c;
	struct json *r = NULL;
	int64_t v;

	snprintf(buf, cap, "?");
	if (client_open(&c, pid) != CLIENT_OK)
		return;
	if (client_request(&c, "mem-alloc", &r) == CLIENT_OK &&
	    json_int(json_get(r, "mem_alloc"), &v))
		human_size(buf, cap, v);
	json_free(r);
	client_close(&c);
}

static int verb_ps(struct ctx *cx, int argc, char **argv)
{
	struct table t = { .cols = 3, .right = { true, false, true } };
	pid_t *pids;
	size_t n;

	if (client_find_all(&pids, &n) < 0)
		return fail_with(cx, EXIT_UNREACHABLE, "out of memory");
	table_add(&t, "PID", "COMMAND", "MEM_ALLOC");
	for (size_t i = 0; i < n; i++) {
		char pid[16], cmd[256], mem[32];

		snprintf(pid, sizeof(pid), "%d", (int)pids[i]);
		command_line(pids[i], cmd, sizeof(cmd));
		truncate_text(cmd, 48);
		ps_mem_alloc(pids[i], mem, sizeof(mem));
		table_add(&t, pid, cmd, mem);
	}
	table_print(&t);
	free(pids);
	return EXIT_OK;
}

/* ---- inspection -------------------------------------------------------------- */

static const char *str_of(const struct json *obj, const char *key)
{
	const struct json *v = json_get(obj, key);

	return v && v->type == JSON_STRING ? v->str : "?";
}

static long long int_of(const struct json *obj, const char *key)
{
	int64_t v = 0;

	json_int(json_get(obj, key), &v);
	return (long long)v;
}

static bool true_of(const struct json *obj, const char *key)
{
	const struct json *v = json_get(obj, key);

	return v && v->type == JSON_TRUE;
}

/* The frames of an allocation site as LeakSanitizer prints them:
 * "#N 0xPC in func file:line". */
static void print_frames(struct symbolizer *sym, const struct json *frames)
{
	for (size_t f = 0; frames && frames->type == JSON_ARRAY && f < frames->count; f++) {
		const struct json *a = &frames->items[f];
		uintptr_t pc = a->type == JSON_STRING ? (uintptr_t)strtoull(a->str, NULL, 16) : 0;
		char where[1024];

		symbolize(sym, pc, where, sizeof(where));
		printf("    #%zu 0x%lx%s%s\n", f, (unsigned long)pc, *where ? " " : "", where);
	}
}

/* The size the program asked for, or the usable size said to be one. */
static void block_size(char *buf, size_t cap, const struct json *b)
{
	if (json_get(b, "requested"))
		snprintf(buf, cap, "%lld", int_of(b, "requested"));
	else
		snprintf(buf, cap, "%lld (size class)", int_of(b, "size"));
}

/* is-tracked: the block and, when recorded, where it was allocated. */
static int verb_is_tracked(struct ctx *cx, int argc, char **argv)
{
	struct json *r = ask(cx, argc, argv);
	const struct json *site;
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
	site = json_get(r, "site");
	if (!cx->json && site && site->type == JSON_ARRAY && site->count) {
		struct symbolizer *sym = symbolizer_open(cx->client.pid);

		printf("allocated from:\n");
		print_frames(sym, site);
		symbolizer_close(sym);
	}
	json_free(r);
	return cx->status;
}

static void print_block_row(struct table *t, const struct json *b)
{
	char size[48], gen[32];

	block_size(size, sizeof(size), b);
	snprintf(gen, sizeof(gen), "%lld%s", int_of(b, "generation"),
		 true_of(b, "frozen") ? " frozen" : "");
	table_add(t, str_of(b, "address"), size, gen);
}

static void print_count_line(const struct json *r, const char *what)
{
	long long count = int_of(r, "count"), shown = int_of(r, "shown");

	if (count > shown)
		printf("%lld %s, %lld shown\n", count, what, shown);
	else
		printf("%lld %s\n", count, what);
}

static int verb_get_referents(struct ctx *cx, int argc, char **argv)
{
	struct json *r = ask(cx, argc, argv);
	const struct json *list = json_get(r, "referents");
	struct table t = { .cols = 3, .right = { false, true, false } };

	if (!r)
		return cx->status;
	table_add(&t, "ADDRESS", "SIZE", "GENERATION");
	for (size_t i = 0; list && i < list->count; i++)
		print_block_row(&t, &list->items[i]);
	if (list && list->count)
		table_print(&t);
	else
		free(t.cell);
	print_count_line(r, "referents");
	json_free(r);
	return cx->status;
}

/* "stack of thread 1234", "data of /usr/lib/libfoo.so+0x4020", ... */
static void describe_referrer(char *buf, size_t cap, const struct json *f)
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
			 json_get(f, "path") ? " " : "", json_get(f, "path") ? str_of(f, "path") : "");
	else if (!strcmp(kind, "epoll"))
		snprintf(buf, cap, "epoll registration data");
	else if (!strcmp(kind, "garbage"))
		snprintf(buf, cap, "the garbage list");
	else
		snprintf(buf, cap, "%s", kind);
}

static int verb_get_referrers(struct ctx *cx, int argc, char **argv)
{
	struct json *r = ask(cx, argc, argv);
	const struct json *list = json_get(r, "referrers");
	struct table t = { .cols = 3 };

	if (!r)
		return cx->status;
	table_add(&t, "TARGET", "WHERE", "REFERRER");
	for (size_t i = 0; list && i < list->count; i++) {
		char what[512];

		describe_referrer(what, sizeof(what), &list->items[i]);
		table_add(&t, str_of(&list->items[i], "target"), str_of(&list->items[i], "where"),
			  what);
	}
	if (list && list->count)
		table_print(&t);
	else
		free(t.cell);
	print_count_line(r, "referrers");
	json_free(r);
	return cx->status;
}

/* The bytes the program asked for, and how many blocks count with their
 * size class because their request was not recorded. */
static void summary_bytes(char *buf, size_t cap, const struct json *o)
{
	long long unsized = int_of(o, "unsized");
	long long req = json_get(o, "requested") ? int_of(o, "requested") : int_of(o, "bytes");

	if (unsized)
		snprintf(buf, cap, "%lld byte(s) requested (%lld block(s) counted by size class)",
			 req, unsized);
	else
		snprintf(buf, cap, "%lld byte(s) requested", req);
}

/* get-objects --summary: blocks per size class, then per allocation site
 * (largest first, frames named as in leaks). */
static int get_objects_summary(struct ctx *cx, struct json *r)
{
	const struct json *classes = json_get(r, "classes"), *sites = json_get(r, "sites");
	struct table t = { .cols = 3, .right = { true, true, true } };
	struct symbolizer *sym = NULL;
	char total[96];

	table_add(&t, "SIZE", "BLOCKS", "BYTES");
	for (size_t i = 0; classes && i < classes->count; i++) {
		char size[32], count[32], bytes[32];
		const struct json *c = &classes->items[i];

		snprintf(size, sizeof(size), "%lld", int_of(c, "size"));
		snprintf(count, sizeof(count), "%lld", int_of(c, "count"));
		human_size(bytes, sizeof(bytes), int_of(c, "bytes"));
		table_add(&t, size, count, bytes);
	}
	table_print(&t);
	for (size_t i = 0; sites && sites->type == JSON_ARRAY && i < sites->count; i++) {
		const struct json *s = &sites->items[i], *frames = json_get(s, "frames");
		char bytes[96];

		if (!sym)
			sym = symbolizer_open(cx->client.pid);
		summary_bytes(bytes, sizeof(bytes), s);
		printf("\n%lld blocks, %s, allocated from:\n", int_of(s, "count"), bytes);
		if (!frames || frames->type != JSON_ARRAY || !frames->count)
			printf("    <no backtrace recorded>\n");
		else
			print_frames(sym, frames);
	}
	symbolizer_close(sym);
	summary_bytes(total, sizeof(total), r);
	printf("%s%lld blocks, %s\n", sites && sites->count ? "\n" : "", int_of(r, "count"), total);
	return EXIT_OK;
}

/* The first line of a reply that goes on: parsed even with --json,
 * which prints it as it is. */
static struct json *ask_first(struct ctx *cx, int argc, char **argv)
{
	bool json = cx->json;
	struct json *r;

	cx->json = false;
	r = ask(cx, argc, argv);
	cx->json = json;
	if (r && json)
		puts(cx->client.line);
	return r;
}

/* A streamed reply: lines until one says "done" (or fails). */
static int verb_get_objects(struct ctx *cx, int argc, char **argv)
{
	struct json *r;
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
	if (json_get(r, "classes")) {
		if (!cx->json)
			get_objects_summary(cx, r);
		json_free(r);
		return cx->status;
	}
	for (;;) {
		const struct json *list;
		struct json *line = r;
		bool done;

		r = NULL;
		if (json_get(line, "ok") && json_get(line, "ok")->type != JSON_TRUE) {
			if (!cx->json)
				complain("%s", reply_error(line));
			json_free(line);
			cx->status = EXIT_REPLY_ERROR;
			break;
		}
		list = json_get(line, "objects");
		if (!cx->json) {
			if (!header)
				table_add(&t, "ADDRESS", "SIZE", "GENERATION");
			header = true;
			for (size_t i = 0; list && i < list->count; i++)
				print_block_row(&t, &list->items[i]);
		}
		done = true_of(line, "done");
		if (done && !cx->json) {
			table_print(&t);
			printf("%lld blocks, %lld bytes\n", int_of(line, "count"), int_of(line, "bytes"));
		}
		json_free(line);
		if (done)
			break;
		if (client_next(&cx->client, CLIENT_TIMEOUT_MS, &r) != CLIENT_OK)
			return fail_with(cx, EXIT_UNREACHABLE, "%s", cx->client.error);
		if (cx->json)
			puts(cx->client.line);
	}
	return cx->status;
}

/* Events until interrupted, or --count N collections. */
static int verb_watch(struct ctx *cx, int argc, char **argv)
{
	char *req[1] = { argv[0] };
	long limit = -1, seen = 0;
	struct json *r;

	if (argc == 3 && !strcmp(argv[1], "--count")) {
		if (!parse_long(argv[2], 1, LONG_MAX, &limit))
			return fail_with(cx, EXIT_USAGE, "bad argument '%s' for --count", argv[2]);
	} else if (argc != 1) {
		return fail_with(cx, EXIT_USAGE, "usage: gcctl watch [--count N]");
	}
	r = ask_first(cx, 1, req);
	if (!r)
		return cx->status;
	if (!cx->json)
		printf("watching process %d\n", (int)cx->client.pid);
	json_free(r);
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
			printf("stop   generation %lld: %lld collected (%lld bytes, %lld asked for), "
			       "%lld uncollectable, pause %.3f ms%s\n", int_of(r, "generation"),
			       int_of(r, "collected"), int_of(r, "collected_bytes"),
			       int_of(r, "collected_requested"), int_of(r, "uncollectable"),
			       (double)int_of(r, "pause_ns") / 1e6,
			       true_of(r, "completed") ? "" : " (abandoned)");
		if (!cx->json && int_of(r, "dropped"))
			printf("       (%lld events dropped so far)\n", int_of(r, "dropped"));
		if (!strcmp(event, "stop"))
			seen++;
		json_free(r);
		fflush(stdout);
	}
	return cx->status;
}

/* ---- allocation sites and leak reports ------------------------------------ */

static int leaks_options(struct ctx *cx, int argc, char **argv, struct leaks_options *o)
{
	long code;

	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--json")) {
			o->json = true;
		} else if (!strcmp(argv[i], "--suppressions") && i + 1 < argc) {
			o->suppressions = argv[++i];
		} else if (!strcmp(argv[i], "--exitcode") && i + 1 < argc) {
			if (!parse_long(argv[++i], 0, 255, &code))
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

/* The leak check of the process, reported as LeakSanitizer reports:
 * LEAKS_EXIT_FOUND (or --exitcode) when leaks are left after the
 * suppressions. */
static int verb_leaks(struct ctx *cx, int argc, char **argv)
{
	struct leaks_options o = { .exitcode = LEAKS_EXIT_FOUND, .json = cx->json };
	char *request[] = { argv[0], NULL };
	struct json *r;
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
	json_free(r);
	if (st < 0)
		return fail_with(cx, EXIT_REPLY_ERROR, "the reply of process %d is not a leak report",
				 (int)cx->client.pid);
	return st;
}

/* ---- gcctl run ------------------------------------------------------------ */

static const struct run_option run_options[] = {
	{ "heap-limit", "SIZE", "GCSHIM_HEAP_LIMIT", NULL, valid_size, "a size like 512M", false,
	  "fail allocations beyond SIZE bytes of live blocks" },
	{ "threshold", "SIZE", "GCSHIM_THRESHOLD", NULL, valid_size_or_off, "a size like 64M or -1",
	  false, "collect after every SIZE bytes allocated, -1 never" },
	{ "gen-threshold", "T0,T1,T2", "GCSHIM_GEN_THRESHOLD", NULL, valid_triple,
	  "up to three integers from 0 to 2147483647, like 700,10,10", false,
	  "generation thresholds, T0 = 0 turns them off" },
	/* Flag names belong to the library: it judges them. */
	{ "debug", "FLAGS", "GCSHIM_DEBUG", NULL, NULL, NULL, false,
	  "debug flags, a number or names like stats,saveall" },
	{ "disable", NULL, "GCSHIM_ENABLE", "0", NULL, NULL, false,
	  "start with automatic collections off" },
	{ "no-socket", NULL, "GCSHIM_SOCKET", "0", NULL, NULL, false,
	  "serve no control socket" },
	{ "log", "FILE", "GCSHIM_LOG", NULL, NULL, NULL, true,
	  "write the library's messages to FILE" },
	{ "socket-dir", "DIR", "GCSHIM_SOCKET_DIR", NULL, NULL, NULL, true,
	  "put the control socket in DIR" },
	/* allocation sites and leak reports */
	{ "report", NULL, "GCSHIM_REPORT", "exit", NULL, NULL, false,
	  "report leaked blocks by allocation site at exit" },
};

#define N_RUN_OPTIONS (sizeof(run_options) / sizeof(*run_options))
/* getopt values of the table's options, out of the range of characters. */
#define RUN_OPTION_BASE 256

static bool exists(const char *path)
{
	return access(path, R_OK) == 0;
}

/* $GCSHIM_LIB; else the build tree gcctl lives in; else the installed one. */
static bool find_library(char *out)
{
	static const char *const near_exe[] = {
		"%s/.libs/libgcshim.so", "%s/../.libs/libgcshim.so", "%s/../lib/libgcshim.so",
	};
	const char *env = getenv("GCSHIM_LIB");
	char exe[PATH_MAX], path[PATH_MAX + 32];
	ssize_t n;

	if (env && *env)
		return realpath(env, out) != NULL;
	n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
	if (n > 0) {
		const char *dir;

		exe[n] = '\0';
		dir = dirname(exe);
		for (size_t i = 0; i < sizeof(near_exe) / sizeof(*near_exe); i++) {
			snprintf(path, sizeof(path), near_exe[i], dir);
			if (exists(path))
				return realpath(path, out) != NULL;
		}
	}
	return exists(LIBDIR "/libgcshim.so") && realpath(LIBDIR "/libgcshim.so", out);
}

static bool set_env(const char *name, const char *value)
{
	if (setenv(name, value, 1) == 0)
		return true;
	complain("cannot set %s: %s", name, strerror(errno));
	return false;
}

static bool set_path_env(const char *name, const char *path)
{
	char cwd[PATH_MAX], abs[2 * PATH_MAX];

	if (path[0] == '/' || !getcwd(cwd, sizeof(cwd)))
		return set_env(name, path);
	snprintf(abs, sizeof(abs), "%s/%s", cwd, path);
	return set_env(name, abs);
}

static int apply_run_option(struct ctx *cx, const struct run_option *o, const char *arg)
{
	if (!o->arg)
		return set_env(o->env, o->value) ? EXIT_OK : EXIT_USAGE;
	if (!*arg)
		return fail_with(cx, EXIT_USAGE, "bad argument: --%s needs a value", o->name);
	if (o->valid && !o->valid(arg))
		return fail_with(cx, EXIT_USAGE, "bad argument '%s' for --%s: expected %s", arg,
				 o->name, o->expects);
	if (o->path)
		return set_path_env(o->env, arg) ? EXIT_OK : EXIT_USAGE;
	return set_env(o->env, arg) ? EXIT_OK : EXIT_USAGE;
}

/* -e NAME=VALUE, for any GCSHIM_* variable, also ones without an option. */
static int apply_env_option(struct ctx *cx, char *arg)
{
	char *eq = strchr(arg, '=');
	size_t name_len = eq ? (size_t)(eq - arg) : 0;

	if (!eq || strncmp(arg, "GCSHIM_", 7) || name_len == 7 ||
	    strspn(arg, "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_") != name_len)
		return fail_with(cx, EXIT_USAGE, "bad argument '%s' for -e: expected GCSHIM_NAME=VALUE",
				 arg);
	*eq = '\0';
	return set_env(arg, eq + 1) ? EXIT_OK : EXIT_USAGE;
}

/* The library goes first: it must be the malloc every other object sees. */
static int preload(struct ctx *cx)
{
	const char *old = getenv("LD_PRELOAD");
	char lib[PATH_MAX], *value;
	bool ok;

	if (!find_library(lib))
		return fail_with(cx, EXIT_NOT_FOUND, "cannot find libgcshim.so (set GCSHIM_LIB to its path)");
	if (!old || !*old)
		return set_env("LD_PRELOAD", lib) ? EXIT_OK : EXIT_USAGE;
	if (asprintf(&value, "%s:%s", lib, old) < 0)
		return fail_with(cx, EXIT_USAGE, "out of memory");
	ok = set_env("LD_PRELOAD", value);
	free(value);
	return ok ? EXIT_OK : EXIT_USAGE;
}

static void run_help(void)
{
	printf("usage: gcctl run [OPTIONS] [--] PROG [ARGS...]\n\n");
	for (size_t i = 0; i < N_RUN_OPTIONS; i++) {
		const struct run_option *o = &run_options[i];
		char opt[64];

		snprintf(opt, sizeof(opt), "--%s%s%s", o->name, o->arg ? " " : "", o->arg ? o->arg : "");
		printf("  %-28s %s (%s)\n", opt, o->help, o->env);
	}
	printf("  %-28s %s\n", "-e, --env GCSHIM_NAME=VALUE", "set any GCSHIM_* variable");
}

static int parse_run_options(struct ctx *cx, int argc, char **argv)
{
	struct option longopts[N_RUN_OPTIONS + 3] = {
		{ "env", required_argument, NULL, 'e' },
		{ "help", no_argument, NULL, 'h' },
	};
	int c, st = EXIT_OK;

	for (size_t i = 0; i < N_RUN_OPTIONS; i++)
		longopts[i + 2] = (struct option){ run_options[i].name,
			run_options[i].arg ? required_argument : no_argument, NULL,
			RUN_OPTION_BASE + (int)i };
	optind = 0;
	opterr = 0;
	while (st == EXIT_OK && (c = getopt_long(argc, argv, "+:e:h", longopts, NULL)) != -1) {
		if (c >= RUN_OPTION_BASE)
			st = apply_run_option(cx, &run_options[c - RUN_OPTION_BASE], optarg);
		else if (c == 'e')
			st = apply_env_option(cx, optarg);
		else if (c == 'h')
			run_help(), exit(EXIT_OK);
		else if (c == ':')
			st = fail_with(cx, EXIT_USAGE, "option %s needs an argument", argv[optind - 1]);
		else
			st = fail_with(cx, EXIT_USAGE, "unknown option '%s' for run (see gcctl run --help)",
				       argv[optind - 1]);
	}
	return st;
}

static int verb_run(struct ctx *cx, int argc, char **argv)
{
	int st = parse_run_options(cx, argc, argv);

	if (st != EXIT_OK)
		return st;
	if (optind >= argc)
		return fail_with(cx, EXIT_USAGE, "run needs a program: gcctl run [OPTIONS] -- PROG [ARGS...]");
	st = preload(cx);
	if (st != EXIT_OK)
		return st;
	execvp(argv[optind], argv + optind);
	return fail_with(cx, errno == ENOENT ? EXIT_NOT_FOUND : EXIT_CANNOT_EXEC, "cannot run %s: %s",
			 argv[optind], strerror(errno));
}

/* ---- the command line ------------------------------------------------------- */

static const struct verb verbs[] = {
	{ "ps", "", 0, 0, verb_ps, true, "list your processes running under gcshim" },
	{ "run", "[OPTIONS] PROG [ARGS...]", 0, INT_MAX, verb_run, true,
	  "run PROG under gcshim (gcctl run --help lists OPTIONS)" },
	{ "mem-alloc", "", 0, 0, query, false, "bytes held by live blocks" },
	{ "mem-free", "", 0, 0, query, false, "bytes left under the heap limit" },
	{ "enable", "", 0, 0, query, false, "allow automatic collections" },
	{ "disable", "", 0, 0, query, false, "stop automatic collections" },
	{ "isenabled", "", 0, 0, query, false, "whether automatic collections are allowed" },
	{ "threshold", "[BYTES|-1]", 0, 1, verb_threshold, false,
	  "show or set the byte threshold (-1: off)" },
	{ "set-threshold", "T0 [T1 [T2]]", 1, 3, verb_set_threshold, false,
	  "set the generation thresholds" },
	{ "get-threshold", "", 0, 0, query, false, "show the generation thresholds" },
	{ "get-count", "", 0, 0, query, false, "show the generation counts" },
	{ "set-debug", "FLAGS", 1, 1, query, false, "set the debug flags (number or names)" },
	{ "get-debug", "", 0, 0, query, false, "show the debug flags" },
	{ "stats", "", 0, 0, verb_stats, false, "show all statistics" },
	{ "collect", "[GEN]", 0, 1, verb_collect, false,
	  "collect generations 0 to GEN (0, 1 or 2; default 2)" },
	{ "get-stats", "", 0, 0, verb_get_stats, false, "collections and blocks found, per generation" },
	{ "garbage", "[--free | --hexdump N]", 0, 2, verb_garbage, false,
	  "list the blocks kept by saveall (with their first N bytes), or free them" },
	/* inspection */
	{ "is-tracked", "ADDR", 1, 1, verb_is_tracked, false, "whether ADDR lies in a live block" },
	{ "get-referents", "ADDR...", 1, 7, verb_get_referents, false,
	  "the blocks the blocks at ADDR point to" },
	{ "get-referrers", "ADDR...", 1, 7, verb_get_referrers, false,
	  "the blocks and roots that point to the blocks at ADDR" },
	{ "get-objects", "[--generation G] [--min-size N] [--summary]", 0, 5, verb_get_objects,
	  false, "list the live blocks" },
	{ "freeze", "", 0, 0, query, false, "leave every live block out of collections" },
	{ "unfreeze", "", 0, 0, query, false, "make frozen blocks collectable again" },
	{ "get-freeze-count", "", 0, 0, query, false, "how many blocks are frozen" },
	{ "watch", "[--count N]", 0, 2, verb_watch, false,
	  "show collections as they happen" },
	/* allocation sites and leak reports */
	{ "leaks", "[--suppressions FILE] [--exitcode N] [--json]", 0, 5, verb_leaks, false,
	  "report unreachable blocks by allocation site (status 23 when leaks are found)" },
	{ "backtrace", "[DEPTH|off]", 0, 1, query, false,
	  "record allocation sites from now on, DEPTH frames deep, or stop" },
};

static const size_t n_verbs = sizeof(verbs) / sizeof(*verbs);

/* Any verb not in the table goes to the process as it is. */
static const struct verb unknown_verb = { NULL, "", 0, INT_MAX, query, false, NULL };

static void help(void)
{
	printf("usage: gcctl [-p PID] [--json] VERB [ARGS...]\n"
	       "       gcctl ps\n"
	       "       gcctl run [OPTIONS] [--] PROG [ARGS...]\n\n"
	       "Control processes running under libgcshim.so.\n\n"
	       "options:\n"
	       "  -p, --pid PID   the process to ask (default: the only one there is)\n"
	       "  -j, --json      print the process's reply as it is, one JSON line\n"
	       "  -h, --help      show this help\n"
	       "  -V, --version   show the version\n\n"
	       "verbs (dashes or underscores):\n");
	for (size_t i = 0; i < n_verbs; i++) {
		char use[64];

		snprintf(use, sizeof(use), "%s%s%s", verbs[i].name, *verbs[i].args ? " " : "",
			 verbs[i].args);
		printf("  %-28s %s\n", use, verbs[i].help);
	}
	printf("\nexit status: 0 ok, 1 the process answered with an error, 2 bad usage,\n"
	       "3 no such process or no answer, 4 permission denied, 23 leaks found.\n"
	       "See gcctl(1).\n");
}

/* Verbs take dashes or underscores, in any case, as the library does. */
static void normalize(char *verb)
{
	for (; *verb; verb++)
		*verb = *verb == '_' ? '-' : (char)(*verb >= 'A' && *verb <= 'Z' ? *verb + 32 : *verb);
}

static const struct verb *find_verb(const char *name)
{
	for (size_t i = 0; i < n_verbs; i++)
		if (!strcmp(name, verbs[i].name))
			return &verbs[i];
	return &unknown_verb;
}

static int parse_options(struct ctx *cx, int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "pid", required_argument, NULL, 'p' },
		{ "json", no_argument, NULL, 'j' },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
		{ NULL, 0, NULL, 0 },
	};
	long pid;
	int c;

	opterr = 0;
	while ((c = getopt_long(argc, argv, "+:p:jhV", longopts, NULL)) != -1) {
		switch (c) {
		case 'p':
			if (!parse_long(optarg, 1, INT_MAX, &pid))
				return fail_with(cx, EXIT_USAGE, "bad argument '%s' for -p: expected a process ID",
						 optarg);
			cx->pid = (pid_t)pid;
			break;
		case 'j':
			cx->json = true;
			break;
		case 'h':
			help();
			exit(EXIT_OK);
		case 'V':
			printf("gcctl (gcshim) %s\n", PACKAGE_VERSION);
			exit(EXIT_OK);
		case ':':
			return fail_with(cx, EXIT_USAGE, "option %s needs an argument", argv[optind - 1]);
		default:
			return fail_with(cx, EXIT_USAGE, "unknown option '%s' (see gcctl --help)",
					 argv[optind - 1]);
		}
	}
	if (optind >= argc)
		return fail_with(cx, EXIT_USAGE, "no verb given (see gcctl --help)");
	return EXIT_OK;
}

static int check_usage(struct ctx *cx, const struct verb *v, int argc)
{
	if (v->local && (cx->pid || cx->json))
		return fail_with(cx, EXIT_USAGE, "%s takes neither -p nor --json", v->name);
	if (argc - 1 < v->min_args || argc - 1 > v->max_args)
		return fail_with(cx, EXIT_USAGE, "usage: gcctl %s%s%s%s",
				 v->local ? "" : "[-p PID] [--json] ", v->name, *v->args ? " " : "",
				 v->args);
	return EXIT_OK;
}

int main(int argc, char **argv)
{
	struct ctx cx = { .client = { .fd = -1 } };
	const struct verb *v;
	int st = parse_options(&cx, argc, argv);

	if (st != EXIT_OK)
		return st;
	argc -= optind;
	argv += optind;
	normalize(argv[0]);
	v = find_verb(argv[0]);
	st = check_usage(&cx, v, argc);
	if (st == EXIT_OK)
		st = v->run(&cx, argc, argv);
	if (cx.connected)
		client_close(&cx.client);
	return st;
}
