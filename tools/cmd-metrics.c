/* metrics: the statistics of processes under gcshim in Prometheus' text
 * exposition format, for node_exporter's textfile collector or, through
 * gcctl exporter, for a scrape.  Names follow Prometheus' conventions:
 * base units (bytes, seconds), _total on counters, a gcshim_ prefix; the
 * per-generation counters mirror python_gc_*, the pause summary
 * go_gc_duration_seconds.  Every process is asked at the same time, each
 * within --timeout: one that does not answer shows as gcshim_up 0. */
#define _GNU_SOURCE

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gcctl.h"
#include "gcshim.h"
#include "proto_desc.h"

struct proc_stats {
	pid_t pid;
	char comm[64];
	json_t *stats, *gens;
	pthread_t thread;
	bool started;
};

/* The statistics the pause summary reports, left out of the plain list. */
static const char *const in_summary[] = { "pause_total_ns", "pause_p50_ns", "pause_p99_ns" };

static void read_comm(pid_t pid, char *buf, size_t cap)
{
	char path[64];
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/comm", (int)pid);
	buf[0] = '\0';
	f = fopen(path, "re");
	if (f) {
		if (!fgets(buf, (int)cap, f))
			buf[0] = '\0';
		fclose(f);
	}
	buf[strcspn(buf, "\n")] = '\0';
}

static void *gather_one(void *arg)
{
	struct proc_stats *p = arg;
	struct client c;
	json_t *r = NULL;

	if (client_open(&c, p->pid) != CLIENT_OK)
		return NULL;
	if (client_request(&c, "stats", &r) == CLIENT_OK)
		p->stats = json_incref(json_object_get(r, "stats"));
	json_decref(r);
	r = NULL;
	if (p->stats && client_request(&c, "get-stats", &r) == CLIENT_OK)
		p->gens = json_incref(json_object_get(r, "generations"));
	json_decref(r);
	client_close(&c);
	return NULL;
}

/* Asks every process at once: a process that does not answer costs the
 * timeout once, not once per process. */
static void gather(struct proc_stats *p, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		read_comm(p[i].pid, p[i].comm, sizeof(p[i].comm));
		p[i].started = pthread_create(&p[i].thread, NULL, gather_one, &p[i]) == 0;
		if (!p[i].started)
			gather_one(&p[i]);
	}
	for (size_t i = 0; i < n; i++)
		if (p[i].started)
			pthread_join(p[i].thread, NULL);
}

/* A label value: backslash, double quote and newline escaped. */
static void put_label(FILE *f, const char *s)
{
	for (; *s; s++) {
		if (*s == '\\' || *s == '"')
			fputc('\\', f);
		if (*s == '\n')
			fputs("\\n", f);
		else
			fputc(*s, f);
	}
}

static void put_labels(FILE *f, const struct proc_stats *p, const char *extra)
{
	fprintf(f, "{pid=\"%d\",comm=\"", (int)p->pid);
	put_label(f, p->comm);
	fprintf(f, "\"%s}", extra);
}

/* "bytes_allocated" -> "allocated_bytes", "pause_max_ns" -> "pause_max_seconds",
 * counters with "_total": the name Prometheus expects for a statistic. */
static void metric_name(char *out, size_t cap, const struct proto_stat_desc *d)
{
	char base[64];
	size_t n = strlen(d->name);
	char *p;

	snprintf(base, sizeof(base), "%s", d->name);
	if (d->unit == UNIT_NS && n > 3)
		base[n - 3] = '\0';
	if (d->unit == UNIT_BYTES && (p = strstr(base, "bytes")) != NULL) {
		size_t len = strlen("bytes") + (p[5] == '_' ? 1 : 0);

		if (p > base && p[-1] == '_' && p[5] != '_')
			p--, len++;
		memmove(p, p + len, strlen(p + len) + 1);
	}
	if ((p = strstr(base, "_total")) != NULL)
		memmove(p, p + 6, strlen(p + 6) + 1);
	snprintf(out, cap, "gcshim_%s%s%s", base,
		 d->unit == UNIT_BYTES ? "_bytes" : d->unit == UNIT_NS ? "_seconds" : "",
		 d->kind == STAT_COUNTER ? "_total" : "");
}

static const char *stat_help(const char *name)
{
#define STAT_HELP(field, desc) if (!strcmp(name, #field)) return desc;
	GCSHIM_STAT_FIELDS(STAT_HELP)
#undef STAT_HELP
	return "";
}

static void put_value(FILE *f, const json_t *v, enum proto_unit unit)
{
	json_int_t n = json_integer_value(v);

	if (unit == UNIT_NS)
		fprintf(f, " %.9f\n", (double)n / 1e9);
	else
		fprintf(f, " %lld\n", (long long)n);
}

static void family(FILE *f, const char *name, const char *type, const char *help)
{
	fprintf(f, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

static bool summarized(const char *name)
{
	for (size_t i = 0; i < sizeof(in_summary) / sizeof(*in_summary); i++)
		if (!strcmp(name, in_summary[i]))
			return true;
	return false;
}

static void put_stat(FILE *f, const struct proto_stat_desc *d, const struct proc_stats *p,
		     size_t n)
{
	char name[96];
	bool any = false;

	metric_name(name, sizeof(name), d);
	for (size_t i = 0; i < n; i++) {
		const json_t *v = json_object_get(p[i].stats, d->name);

		if (!json_is_integer(v))
			continue;
		if (!any)
			family(f, name, d->kind == STAT_COUNTER ? "counter" : "gauge", stat_help(d->name));
		any = true;
		fputs(name, f);
		put_labels(f, &p[i], "");
		put_value(f, v, d->unit);
	}
}

/* Stop-the-world pauses as go_gc_duration_seconds shows them. */
static void put_pause_summary(FILE *f, const struct proc_stats *p, size_t n)
{
	static const char *const name = "gcshim_gc_duration_seconds";

	family(f, name, "summary", "stop-the-world pauses of collections (median and 99th "
	       "percentile of the last 1024)");
	for (size_t i = 0; i < n; i++) {
		const json_t *s = p[i].stats;

		if (!s)
			continue;
		fputs(name, f);
		put_labels(f, &p[i], ",quantile=\"0.5\"");
		put_value(f, json_object_get(s, "pause_p50_ns"), UNIT_NS);
		fputs(name, f);
		put_labels(f, &p[i], ",quantile=\"0.99\"");
		put_value(f, json_object_get(s, "pause_p99_ns"), UNIT_NS);
		fprintf(f, "%s_sum", name);
		put_labels(f, &p[i], "");
		put_value(f, json_object_get(s, "pause_total_ns"), UNIT_NS);
		fprintf(f, "%s_count", name);
		put_labels(f, &p[i], "");
		put_value(f, json_object_get(s, "collections"), UNIT_COUNT);
	}
}

/* Per generation, as python_gc_collections_total{generation} and friends. */
static void put_generations(FILE *f, const struct proc_stats *p, size_t n)
{
	static const struct { const char *key, *name, *help; } fields[] = {
		{ "collections", "gcshim_gc_collections_total", "collections of each generation" },
		{ "collected", "gcshim_gc_objects_collected_total",
		  "unreachable blocks found by collections of each generation" },
		{ "uncollectable", "gcshim_gc_objects_uncollectable_total",
		  "unreachable blocks kept (saveall, verify) by each generation" },
	};

	for (size_t k = 0; k < sizeof(fields) / sizeof(*fields); k++) {
		family(f, fields[k].name, "counter", fields[k].help);
		for (size_t i = 0; i < n; i++) {
			size_t g;
			json_t *gen;

			json_array_foreach(p[i].gens, g, gen) {
				char label[48];

				snprintf(label, sizeof(label), ",generation=\"%zu\"", g);
				fputs(fields[k].name, f);
				put_labels(f, &p[i], label);
				put_value(f, json_object_get(gen, fields[k].key), UNIT_COUNT);
			}
		}
	}
}

static void put_metrics(FILE *f, const struct proc_stats *p, size_t n)
{
	family(f, "gcshim_up", "gauge", "1 if the process answered, 0 if it did not in time");
	for (size_t i = 0; i < n; i++) {
		fputs("gcshim_up", f);
		put_labels(f, &p[i], "");
		fprintf(f, " %d\n", p[i].stats ? 1 : 0);
	}
	for (size_t s = 0; s < proto_stat_count; s++)
		if (!summarized(proto_stats[s].name))
			put_stat(f, &proto_stats[s], p, n);
	put_pause_summary(f, p, n);
	put_generations(f, p, n);
}

char *metrics_text(const pid_t *pids, size_t n, size_t *len)
{
	struct proc_stats *p = calloc(n ? n : 1, sizeof(*p));
	char *text = NULL;
	FILE *f;

	if (!p)
		return NULL;
	for (size_t i = 0; i < n; i++)
		p[i].pid = pids[i];
	gather(p, n);
	f = open_memstream(&text, len);
	if (f) {
		put_metrics(f, p, n);
		fclose(f);
	}
	for (size_t i = 0; i < n; i++) {
		json_decref(p[i].stats);
		json_decref(p[i].gens);
	}
	free(p);
	return text;
}

int cmd_metrics(struct ctx *cx, int argc, char **argv)
{
	bool all = argc == 2 && !strcmp(argv[1], "--all");
	pid_t *pids = NULL, one;
	size_t n = 1, len;
	char *text;

	if (argc == 2 && !all)
		return fail_with(cx, EXIT_USAGE, "bad argument '%s' for metrics: expected --all", argv[1]);
	if (all && cx->pid)
		return fail_with(cx, EXIT_USAGE, "metrics takes -p PID or --all, not both");
	if (all && client_find_all(&pids, &n) < 0)
		return fail_with(cx, EXIT_UNREACHABLE, "out of memory");
	if (!all) {
		one = cx->pid ? cx->pid : the_only_process(cx);
		if (!one)
			return cx->status;
	}
	text = metrics_text(all ? pids : &one, n, &len);
	free(pids);
	if (!text)
		return fail_with(cx, EXIT_UNREACHABLE, "out of memory");
	fwrite(text, 1, len, stdout);
	free(text);
	return EXIT_OK;
}
