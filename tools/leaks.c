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

/* A leak group of a reply, its frames named. */
struct group {
	const json_t *j;
	bool indirect;
	bool kept;      /* suppressed, its site kept reachable in the second check */
	long long site, bytes, count;
	size_t nframes;
	uintptr_t *pc;
	struct frame_names *names;
	struct supp_rule *suppressed_by;
};

/* The groups of one check's reply, which they point into. */
struct check {
	json_t *reply;
	struct group *g;
	size_t n;
};

/* A report: the first check and, when suppressions matched, the second
 * one, in which the suppressed sites were kept reachable.  The frames'
 * names belong to the symbolizer. */
struct leaks {
	pid_t pid;
	struct symbolizer *sym;
	struct check first, second;
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
	g->site = int_member(j, "site");
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
		printf("(only the largest %zu of %lld groups fit in the reply)\n\n",
		       json_array_size(json_object_get(reply, "sites")), int_member(reply, "groups"));
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

/* ---- the two checks ----------------------------------------------------------- */

static void free_check(struct check *c)
{
	for (size_t i = 0; c->g && i < c->n; i++) {
		free(c->g[i].pc);
		free(c->g[i].names);
	}
	free(c->g);
	json_decref(c->reply);
	*c = (struct check){ 0 };
}

/* Names the groups of a reply and finds their suppressions; false when
 * it is not a leak report or memory ran out. */
static bool read_check(struct leaks *lk, struct check *c, const json_t *reply)
{
	const json_t *sites = json_object_get(reply, "sites");
	size_t n = sites && json_is_array(sites) ? json_array_size(sites) : 0;

	if (!sites || !json_is_array(sites) || !(c->g = calloc(n + 1, sizeof(*c->g))))
		return false;
	c->reply = json_incref((json_t *)reply);
	if (n && !lk->sym)
		lk->sym = symbolizer_open(lk->pid);
	while (c->n < n) {
		struct group *g = &c->g[c->n++];   /* counted now: freed with the rest */

		if (!name_group(g, json_array_get(sites, c->n - 1), lk->sym))
			return false;
	}
	return true;
}

struct leaks *leaks_first(const json_t *reply, pid_t pid)
{
	struct leaks *lk = calloc(1, sizeof(*lk));

	if (lk)
		lk->pid = pid;
	if (lk && !read_check(lk, &lk->first, reply)) {
		leaks_free(lk);
		return NULL;
	}
	return lk;
}

bool leaks_second(struct leaks *lk, const json_t *reply)
{
	return read_check(lk, &lk->second, reply);
}

void leaks_free(struct leaks *lk)
{
	if (!lk)
		return;
	free_check(&lk->first);
	free_check(&lk->second);
	symbolizer_close(lk->sym);
	free(lk);
}

/* A suppressed group of the first check before g from g's site (a site
 * has a group per kind), or NULL. */
static const struct group *site_seen(const struct leaks *lk, const struct group *g)
{
	for (const struct group *o = lk->first.g; o < g; o++)
		if (o->suppressed_by && o->site == g->site)
			return o;
	return NULL;
}

size_t leaks_keep_list(struct leaks *lk, char *out, size_t cap, size_t *left_out)
{
	size_t len = 0, listed = 0;

	*out = '\0';
	*left_out = 0;
	/* the reply's order, direct leaks first: they hold the others */
	for (size_t i = 0; i < lk->first.n; i++) {
		struct group *g = &lk->first.g[i];
		const struct group *seen;
		int w;

		if (!g->suppressed_by || g->site <= 0)
			continue;
		if ((seen = site_seen(lk, g))) {
			g->kept = seen->kept;
			continue;
		}
		w = snprintf(out + len, cap - len, "%s%lld", len ? "," : "", g->site);
		if (w < 0 || (size_t)w >= cap - len) {
			out[len] = '\0';
			++*left_out;
			continue;
		}
		len += (size_t)w;
		g->kept = true;
		listed++;
	}
	return listed;
}

/* What is reported: the groups of the last check, and, after a second
 * one, the suppressed groups of the first that it kept reachable (the
 * second does not list them).  The rules count what they suppressed
 * there, each group once. */
static struct group *report_groups(struct leaks *lk, size_t *n)
{
	const struct check *last = lk->second.reply ? &lk->second : &lk->first;
	struct group *all = calloc(last->n + lk->first.n + 1, sizeof(*all));

	*n = 0;
	if (!all)
		return NULL;
	for (size_t i = 0; i < last->n; i++)
		all[(*n)++] = last->g[i];
	for (size_t i = 0; last != &lk->first && i < lk->first.n; i++)
		if (lk->first.g[i].kept)
			all[(*n)++] = lk->first.g[i];
	for (size_t i = 0; i < *n; i++)
		if (all[i].suppressed_by) {
			all[i].suppressed_by->count += all[i].count;
			all[i].suppressed_by->bytes += all[i].bytes;
		}
	return all;
}

int leaks_print(struct leaks *lk, const struct leaks_options *o)
{
	const struct check *last = lk->second.reply ? &lk->second : &lk->first;
	const json_t *reply = last->reply;
	struct group *g;
	long long bytes, count;
	size_t n;

	if (!(g = report_groups(lk, &n)))
		return -1;
	/* the totals count the groups that did not fit in the reply too; the
	 * kept groups are not in the second check's */
	bytes = int_member(reply, "direct_bytes") + int_member(reply, "indirect_bytes");
	count = int_member(reply, "direct_blocks") + int_member(reply, "indirect_blocks");
	for (size_t i = 0; i < last->n; i++)
		if (last->g[i].suppressed_by) {
			bytes -= last->g[i].bytes;
			count -= last->g[i].count;
		}
	if (o->json)
		print_json(g, n, lk->pid, bytes, count, reply);
	else
		print_text(g, n, lk->pid, bytes, count, reply);
	free(g);
	return count ? o->exitcode : 0;
}
