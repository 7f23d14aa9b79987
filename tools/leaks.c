#define _GNU_SOURCE
#include "leaks.h"

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gcctl.h"
#include "suppress.h"
#include "symbolize.h"

#define MAX_RULES 4096

static struct {
	char *text;
	struct supp_rule rules[MAX_RULES];
	struct supp_list list;
	const char *path;
} sp = { .list = { sp.rules, 0, MAX_RULES } };

/* A leak group of the reply, its frames named. */
struct group {
	const json_t *j;
	bool indirect;
	long long bytes, count;
	size_t nframes;
	uintptr_t *pc;
	struct frame_names *names;
	struct supp_rule *suppressed_by;
};

static void bad_line(int line, const char *why, void *arg)
{
	(void)arg;
	fprintf(stderr, "gcctl: %s: line %d: %s; line ignored\n", sp.path, line, why);
}

bool leaks_load_suppressions(const struct leaks_options *o)
{
	FILE *f;
	size_t len = 0, cap = 0, n;

	if (!o->suppressions)
		return true;
	sp.path = o->suppressions;
	if (!(f = fopen(sp.path, "r"))) {
		fprintf(stderr, "gcctl: cannot read suppressions %s: %s\n", sp.path, strerror(errno));
		return false;
	}
	do {
		if (len == cap && !(sp.text = realloc(sp.text, cap = cap ? 2 * cap : 4096))) {
			fprintf(stderr, "gcctl: out of memory\n");
			fclose(f);
			return false;
		}
		n = fread(sp.text + len, 1, cap - len, f);
		len += n;
	} while (n);
	if (ferror(f)) {
		fprintf(stderr, "gcctl: cannot read suppressions %s: %s\n", sp.path, strerror(errno));
		fclose(f);
		return false;
	}
	fclose(f);
	supp_parse(&sp.list, sp.text ? sp.text : "", len, bad_line, NULL);
	return true;
}

static long long int_member(const json_t *o, const char *key)
{
	int64_t v = 0;

	json_int_of(json_object_get(o, key), &v);
	return (long long)v;
}

static const char *str_member(const json_t *o, const char *key)
{
	const json_t *v = json_object_get(o, key);

	return v && json_is_string(v) ? json_string_value(v) : "";
}

/* The shim's own frames (a thread's start) are not the program's: left
 * out, as LeakSanitizer leaves out its interceptors. */
static bool shim_frame(const struct frame_names *n)
{
	const char *base = n->module ? strrchr(n->module, '/') : NULL;

	return base && !strcmp(base + 1, "libgcshim.so");
}

static bool name_group(struct group *g, const json_t *j, struct symbolizer *sym)
{
	const json_t *frames = json_object_get(j, "frames");
	size_t n = frames && json_is_array(frames) ? json_array_size(frames) : 0;

	g->j = j;
	g->indirect = !strcmp(str_member(j, "kind"), "indirect");
	g->bytes = int_member(j, "bytes");
	g->count = int_member(j, "count");
	g->pc = calloc(n + 1, sizeof(*g->pc));
	g->names = calloc(n + 1, sizeof(*g->names));
	if (!g->pc || !g->names)
		return false;
	for (size_t i = 0; i < n; i++) {
		const json_t *a = json_array_get(frames, i);
		struct frame_names *fn = &g->names[g->nframes];

		g->pc[g->nframes] = json_is_string(a) ? (uintptr_t)strtoull(json_string_value(a), NULL, 16) : 0;
		symbolize_names(sym, g->pc[g->nframes], fn);
		if (shim_frame(fn))
			continue;
		g->nframes++;
		if (!g->suppressed_by)
			g->suppressed_by = supp_find(&sp.list, fn->function, fn->file, fn->module);
	}
	if (g->suppressed_by) {
		g->suppressed_by->count += g->count;
		g->suppressed_by->bytes += g->bytes;
	}
	return true;
}

static const char *no_stack_note(const char *why)
{
	if (!strcmp(why, "not_sampled"))
		return "<no stack: not sampled (GCSHIM_BACKTRACE_SAMPLE) or not unwound>";
	if (!strcmp(why, "before_recording"))
		return "<allocated before allocation sites were recorded>";
	return "<no stack: allocation sites not recorded (gcctl backtrace 16 records them)>";
}

/* ---- text, in LeakSanitizer's shape ---------------------------------------- */

static void print_frame(size_t i, uintptr_t pc, const struct frame_names *n)
{
	printf("    #%zu 0x%lx", i, (unsigned long)pc);
	if (n->function)
		printf(" in %s", n->function);
	if (n->file && n->line > 0)
		printf(" %s:%d\n", n->file, n->line);
	else if (n->module)
		printf(" (%s+0x%lx)\n", n->module, (unsigned long)n->offset);
	else
		printf("\n");
}

static void print_group(const struct group *g)
{
	printf("\n%s leak of %lld byte(s)%s in %lld object(s) allocated from:\n",
	       g->indirect ? "Indirect" : "Direct", g->bytes,
	       json_object_get(g->j, "size_class") && json_is_true(json_object_get(g->j, "size_class")) ?
	       " (size class)" : "", g->count);
	if (!g->nframes)
		printf("    %s\n", no_stack_note(str_member(g->j, "stack")));
	for (size_t i = 0; i < g->nframes; i++)
		print_frame(i, g->pc[i], &g->names[i]);
}

static void print_suppressions(void)
{
	static const char rule[] = "-----------------------------------------------------";
	bool any = false;

	for (size_t i = 0; i < sp.list.n; i++)
		any = any || sp.list.rules[i].count;
	if (!any)
		return;
	printf("%s\nSuppressions used:\n  count      bytes template\n", rule);
	for (size_t i = 0; i < sp.list.n; i++) {
		const struct supp_rule *r = &sp.list.rules[i];

		if (r->count)
			printf("%7lld %10lld %.*s\n", (long long)r->count, (long long)r->bytes,
			       (int)r->len, r->pattern);
	}
	printf("%s\n\n", rule);
}

static void print_text(const struct group *g, size_t n, pid_t pid, long long bytes,
		       long long count, const json_t *reply)
{
	bool any_stack = false;

	if (count) {
		printf("=================================================================\n"
		       "==%d==gcshim: detected memory leaks\n", (int)pid);
		for (size_t i = 0; i < n; i++)
			if (!g[i].suppressed_by)
				print_group(&g[i]);
		printf("\n");
	}
	for (size_t i = 0; i < n; i++)
		any_stack = any_stack || g[i].nframes;
	if (json_object_get(reply, "truncated") && json_is_true(json_object_get(reply, "truncated")))
		printf("(only the largest %zu of %lld groups fit in the reply)\n\n", n,
		       int_member(reply, "groups"));
	print_suppressions();
	printf("SUMMARY: gcshim: %lld byte(s) leaked in %lld allocation(s).\n", bytes, count);
	if (count && !any_stack && int_member(reply, "backtrace") == 0)
		fprintf(stderr, "gcctl: process %d records no allocation sites: 'gcctl -p %d "
			"backtrace 16' records them for the blocks allocated from then on\n",
			(int)pid, (int)pid);
}

/* ---- JSON ------------------------------------------------------------------ */

static void print_json_frame(uintptr_t pc, const struct frame_names *n)
{
	printf("{\"pc\":\"0x%lx\",\"function\":", (unsigned long)pc);
	put_json_string(stdout, n->function);
	printf(",\"file\":");
	put_json_string(stdout, n->file);
	printf(",\"line\":%d,\"module\":", n->line);
	put_json_string(stdout, n->module);
	printf(",\"offset\":\"0x%lx\"}", (unsigned long)n->offset);
}

static void print_json_pattern(const struct supp_rule *r)
{
	char *p = strndup(r->pattern, r->len);

	put_json_string(stdout, p ? p : "");
	free(p);
}

static void print_json_group(const struct group *g)
{
	const json_t *sc = json_object_get(g->j, "size_class");

	printf("{\"kind\":\"%s\",\"bytes\":%lld,\"count\":%lld,\"size_class\":%s,\"stack\":",
	       g->indirect ? "indirect" : "direct", g->bytes, g->count,
	       sc && json_is_true(sc) ? "true" : "false");
	put_json_string(stdout, str_member(g->j, "stack"));
	printf(",\"suppressed\":");
	if (g->suppressed_by)
		print_json_pattern(g->suppressed_by);
	else
		printf("null");
	printf(",\"frames\":[");
	for (size_t i = 0; i < g->nframes; i++) {
		printf("%s", i ? "," : "");
		print_json_frame(g->pc[i], &g->names[i]);
	}
	printf("]}");
}

static void print_json(const struct group *g, size_t n, pid_t pid, long long bytes,
		       long long count, const json_t *reply)
{
	bool first = true;

	printf("{\"pid\":%d,\"leaked_bytes\":%lld,\"leaked_blocks\":%lld,\"backtrace\":%lld,"
	       "\"truncated\":%s,\"leaks\":[", (int)pid, bytes, count,
	       int_member(reply, "backtrace"),
	       json_object_get(reply, "truncated") && json_is_true(json_object_get(reply, "truncated")) ?
	       "true" : "false");
	for (size_t i = 0; i < n; i++) {
		printf("%s", i ? "," : "");
		print_json_group(&g[i]);
	}
	printf("],\"suppressions\":[");
	for (size_t i = 0; i < sp.list.n; i++) {
		const struct supp_rule *r = &sp.list.rules[i];

		if (!r->count)
			continue;
		printf("%s{\"template\":", first ? "" : ",");
		print_json_pattern(r);
		printf(",\"line\":%d,\"count\":%lld,\"bytes\":%lld}", r->line, (long long)r->count,
		       (long long)r->bytes);
		first = false;
	}
	printf("]}\n");
}

int leaks_print(const json_t *reply, pid_t pid, const struct leaks_options *o)
{
	const json_t *sites = json_object_get(reply, "sites");
	struct symbolizer *sym;
	struct group *g;
	long long bytes = 0, count = 0;
	size_t n;

	if (!sites || !json_is_array(sites))
		return -1;
	n = json_array_size(sites);
	if (!(g = calloc(n + 1, sizeof(*g))))
		return -1;
	sym = n ? symbolizer_open(pid) : NULL;
	/* the totals count the groups that did not fit in the reply too */
	bytes = int_member(reply, "direct_bytes") + int_member(reply, "indirect_bytes");
	count = int_member(reply, "direct_blocks") + int_member(reply, "indirect_blocks");
	for (size_t i = 0; i < n; i++) {
		if (!name_group(&g[i], json_array_get(sites, i), sym)) {
			n = i;
			break;
		}
		if (g[i].suppressed_by) {
			bytes -= g[i].bytes;
			count -= g[i].count;
		}
	}
	if (o->json)
		print_json(g, n, pid, bytes, count, reply);
	else
		print_text(g, n, pid, bytes, count, reply);
	for (size_t i = 0; i < json_array_size(sites); i++) {
		free(g[i].pc);
		free(g[i].names);
	}
	free(g);
	symbolizer_close(sym);
	return count ? o->exitcode : 0;
}
