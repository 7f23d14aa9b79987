/*
 * gcctl - control processes running under libgcshim.so.
 *
 * gcctl [-p PID] [--json] [--timeout T] VERB [ARGS...] sends one request to
 * a process's control socket and shows the reply.  The verbs are those of
 * the protocol's description (proto_desc.h), plus the ones gcctl answers
 * itself (help, ps, run, metrics...).  A verb gcctl does not know is
 * refused before any process is asked, with the closest verb as a hint;
 * gcctl send passes any request as it is, for a library newer than gcctl.
 */
#define _GNU_SOURCE
#include "config.h"

#include <getopt.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gcctl.h"
#include "parse.h"
#include "proto_desc.h"

static int cmd_help(struct ctx *cx, int argc, char **argv);
static int cmd_version(struct ctx *cx, int argc, char **argv);
static int cmd_send(struct ctx *cx, int argc, char **argv);

/* Verbs gcctl answers without the protocol's table. */
static const struct verb local_verbs[] = {
	{ "help", "[VERB]", 0, 1, cmd_help, 0, "show the verbs, or what VERB does", NULL },
	{ "version", "", 0, 0, cmd_version, 0, "show gcctl's version", NULL },
	{ "ps", "", 0, 0, cmd_ps, VERB_JSON | VERB_TIMEOUT,
	  "list your processes running under gcshim", NULL },
	{ "run", "[OPTIONS] PROG [ARGS...]", 0, INT_MAX, cmd_run, 0,
	  "run PROG under gcshim (gcctl run --help lists OPTIONS)", NULL },
	{ "send", "REQUEST [ARGS...]", 1, PROTO_MAX_ARGS, cmd_send, VERB_REMOTE,
	  "send a request as it is, also one this gcctl does not know", NULL },
	{ "metrics", "[--all]", 0, 1, cmd_metrics, VERB_PID | VERB_TIMEOUT,
	  "statistics in Prometheus' text format, of one process or --all",
	  "  --all              every process of the user under gcshim\n" },
	{ "exporter", "--listen ADDR:PORT", 2, 2, cmd_exporter, VERB_TIMEOUT,
	  "serve the metrics of every process over HTTP at /metrics",
	  "  --listen ADDR:PORT  where to listen, like 127.0.0.1:9464 or [::]:9464\n" },
	{ "record", "[--interval T] [-o FILE]", 0, 4, cmd_record, VERB_PID | VERB_TIMEOUT,
	  "sample a process until it ends or is interrupted (JSON lines)",
	  "  --interval T       time between samples (default 100ms)\n"
	  "  -o FILE            write the samples to FILE instead of standard output\n" },
	{ "plot", "FILE -o SVG", 3, 3, cmd_plot, 0,
	  "draw a recording as a standalone SVG picture",
	  "  -o SVG             the picture to write\n" },
	{ "top", "[--plain] [--sort KEY] [--interval T] [--count N]", 0, 7, cmd_top,
	  VERB_TIMEOUT, "a refreshing view of every process under gcshim",
	  "  --plain            text for a pipe: one table per refresh\n"
	  "  --sort KEY         pid, mem, rss, rate or pause (default mem)\n"
	  "  --interval T       time between refreshes (default 1s)\n"
	  "  --count N          stop after N refreshes\n" },
};

#define N_LOCAL (sizeof(local_verbs) / sizeof(*local_verbs))

/* How gcctl treats a protocol verb when it does more than send the
 * request as typed and show the reply; args, when set, replace the
 * protocol's own, with their counts and help. */
struct remote_verb {
	int (*run)(struct ctx *cx, int argc, char **argv);
	const char *args;
	int min_args, max_args;
	const char *help;
};

static const struct remote_verb remote_verbs[PROTO_VERB_COUNT] = {
	[PROTO_THRESHOLD] = { cmd_threshold },
	[PROTO_SET_THRESHOLD] = { cmd_set_threshold },
	[PROTO_STATS] = { cmd_stats },
	[PROTO_COLLECT] = { cmd_collect },
	[PROTO_GET_STATS] = { cmd_get_stats },
	[PROTO_GARBAGE] = { cmd_garbage, "[--free | --hexdump N]", 0, 2,
			    "list the blocks kept by saveall (with their first N bytes), or free them" },
	[PROTO_IS_TRACKED] = { cmd_is_tracked },
	[PROTO_GET_REFERENTS] = { cmd_get_referents },
	[PROTO_GET_REFERRERS] = { cmd_get_referrers },
	[PROTO_GET_OBJECTS] = { cmd_get_objects },
	[PROTO_WATCH] = { cmd_watch, "[--count N]", 0, 2, NULL },
	[PROTO_LEAKS] = { cmd_leaks, "[--suppressions FILE] [--exitcode N]", 0, 4,
			  "report unreachable blocks by allocation site (status 23 when leaks are found)" },
};

/* The local verbs, then every protocol verb but hello, which gcctl sends itself. */
static struct verb verbs[N_LOCAL + PROTO_VERB_COUNT];
static size_t n_verbs;

static struct verb protocol_verb(enum proto_verb id)
{
	const struct proto_verb_desc *d = &proto_verbs[id];
	const struct remote_verb *r = &remote_verbs[id];
	struct verb v = { d->name, d->args, d->min_args, d->max_args, cmd_query, VERB_REMOTE,
			  d->help, NULL };

	if (r->run)
		v.run = r->run;
	if (r->args) {
		v.args = r->args;
		v.min_args = r->min_args;
		v.max_args = r->max_args;
	}
	if (r->help)
		v.help = r->help;
	return v;
}

static void build_verbs(void)
{
	for (size_t i = 0; i < N_LOCAL; i++)
		verbs[n_verbs++] = local_verbs[i];
	for (int id = 0; id < PROTO_VERB_COUNT; id++)
		if (id != PROTO_HELLO)
			verbs[n_verbs++] = protocol_verb((enum proto_verb)id);
}

static const struct verb *find_verb(const char *name)
{
	for (size_t i = 0; i < n_verbs; i++)
		if (!strcmp(name, verbs[i].name))
			return &verbs[i];
	return NULL;
}

/* The verb closest to a misspelt one, or NULL when none is close. */
static const char *closest_verb(const char *name)
{
	const char *best = NULL;
	size_t best_d = 3;

	for (size_t i = 0; i < n_verbs; i++) {
		size_t d = parse_distance(name, strlen(name), verbs[i].name, strlen(verbs[i].name));

		if (d < best_d && d * 3 <= strlen(verbs[i].name)) {
			best_d = d;
			best = verbs[i].name;
		}
	}
	return best;
}

static int unknown_verb(struct ctx *cx, const char *name)
{
	const char *near = closest_verb(name);

	if (near)
		return fail_with(cx, EXIT_USAGE, "unknown verb '%s'; did you mean '%s'?", name, near);
	return fail_with(cx, EXIT_USAGE, "unknown verb '%s' (gcctl help lists them; gcctl send "
			 "passes any request to the process)", name);
}

static void print_usage_line(FILE *f, const struct verb *v)
{
	fprintf(f, "usage: gcctl %s%s%s%s%s%s\n", v->flags & VERB_PID ? "[-p PID] " : "",
		v->flags & VERB_JSON ? "[--json] " : "", v->flags & VERB_TIMEOUT ? "[--timeout T] " : "",
		v->name, *v->args ? " " : "", v->args);
}

static void verb_help(const struct verb *v)
{
	if (v->run == cmd_run) {
		run_help();
		return;
	}
	print_usage_line(stdout, v);
	printf("\n%s.\n", v->help);
	if (v->options)
		printf("\noptions:\n%s", v->options);
	printf("\nSee gcctl(1).\n");
}

static void help(void)
{
	printf("usage: gcctl [-p PID] [--json] [--timeout T] VERB [ARGS...]\n"
	       "       gcctl help [VERB]\n\n"
	       "Control processes running under libgcshim.so.\n\n"
	       "options (before or after the verb):\n"
	       "  -p, --pid PID   the process to ask (default: the only one there is)\n"
	       "  -j, --json      print replies, and errors, as JSON objects\n"
	       "  -t, --timeout T how long to wait for each answer (default 5s; 500ms, 2m)\n"
	       "  -h, --help      show this help, or with a verb, the verb's\n"
	       "  -V, --version   show the version\n\n"
	       "verbs (dashes or underscores):\n");
	for (size_t i = 0; i < n_verbs; i++) {
		char use[80];

		snprintf(use, sizeof(use), "%s%s%s", verbs[i].name, *verbs[i].args ? " " : "",
			 verbs[i].args);
		if (strlen(use) > 28)
			printf("  %s\n  %-28s %s\n", use, "", verbs[i].help);
		else
			printf("  %-28s %s\n", use, verbs[i].help);
	}
	printf("\nexit status: 0 ok, 1 the process answered with an error, 2 bad usage,\n"
	       "3 no such process or no answer, 4 permission denied.  See gcctl(1).\n");
}

static int cmd_help(struct ctx *cx, int argc, char **argv)
{
	const struct verb *v;

	if (argc == 1) {
		help();
		return EXIT_OK;
	}
	proto_verb_normalize(argv[1]);
	v = find_verb(argv[1]);
	if (!v)
		return unknown_verb(cx, argv[1]);
	verb_help(v);
	return EXIT_OK;
}

static int cmd_version(struct ctx *cx, int argc, char **argv)
{
	printf("gcctl (gcshim) %s\n", PACKAGE_VERSION);
	return EXIT_OK;
}

/* The request as typed, for verbs this gcctl does not know. */
static int cmd_send(struct ctx *cx, int argc, char **argv)
{
	return cmd_query(cx, argc - 1, argv + 1);
}

/* "5", "5s", "250ms", "2m": a duration in milliseconds, at least 1 ms. */
bool parse_duration_ms(const char *s, long *out)
{
	static const struct { const char *suffix; long ms; } units[] = {
		{ "ms", 1 }, { "s", 1000 }, { "m", 60000 }, { "", 1000 },
	};
	char *end;
	double v = strtod(s, &end);

	if (end == s || v < 0)
		return false;
	for (size_t i = 0; i < sizeof(units) / sizeof(*units); i++)
		if (!strcmp(end, units[i].suffix)) {
			double ms = v * (double)units[i].ms;

			if (!(ms >= 1 && ms <= (double)INT_MAX))   /* NaN too */
				return false;
			*out = (long)ms;
			return true;
		}
	return false;
}

/* One option of those every verb may take; returns how many words it
 * used (0: not one of them), or -1 after an error. */
static int global_option(struct ctx *cx, int argc, char **argv, int i)
{
	const char *a = argv[i], *val = NULL;
	int used = 1;
	long n;

	if (!strcmp(a, "-j") || !strcmp(a, "--json")) {
		cx->json = true;
		return 1;
	}
	if (!strcmp(a, "-p") || !strcmp(a, "--pid") || !strcmp(a, "-t") || !strcmp(a, "--timeout")) {
		if (i + 1 >= argc)
			return fail_with(cx, EXIT_USAGE, "option %s needs an argument", a), -1;
		val = argv[i + 1];
		used = 2;
	} else if (!strncmp(a, "--pid=", 6) || !strncmp(a, "--timeout=", 10)) {
		val = strchr(a, '=') + 1;
	} else {
		return 0;
	}
	if (a[1] == 'p' || a[2] == 'p') {
		if (!arg_long(val, 1, INT_MAX, &n))
			return fail_with(cx, EXIT_USAGE,
					 "bad argument '%s' for -p: expected a process ID", val), -1;
		cx->pid = (pid_t)n;
	} else {
		if (!parse_duration_ms(val, &n))
			return fail_with(cx, EXIT_USAGE, "bad argument '%s' for --timeout: expected "
					 "a duration like 30s or 500ms", val), -1;
		client_timeout_ms = (int)n;
	}
	return used;
}

static int parse_options(struct ctx *cx, int argc, char **argv)
{
	int i = 1;

	while (i < argc && argv[i][0] == '-' && strcmp(argv[i], "--")) {
		int used = global_option(cx, argc, argv, i);

		if (used < 0)
			return -1;
		if (used) {
			i += used;
			continue;
		}
		if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help"))
			help(), exit(EXIT_OK);
		if (!strcmp(argv[i], "-V") || !strcmp(argv[i], "--version"))
			exit(cmd_version(cx, 0, NULL));
		return fail_with(cx, EXIT_USAGE, "unknown option '%s' (see gcctl help)", argv[i]), -1;
	}
	if (i < argc && !strcmp(argv[i], "--"))
		i++;
	if (i >= argc)
		return fail_with(cx, EXIT_USAGE, "no verb given (see gcctl help)"), -1;
	return i;
}

/* Options after the verb (gcctl mem-alloc --json) are taken out of its
 * arguments, up to a "--"; run's arguments belong to its program. */
static int take_late_options(struct ctx *cx, const struct verb *v, int *argc, char **argv)
{
	int out = 1;

	for (int i = 1; i < *argc;) {
		int used;

		if (!strcmp(argv[i], "--")) {
			while (i < *argc)
				argv[out++] = argv[i++];
			break;
		}
		if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help"))
			verb_help(v), exit(EXIT_OK);
		used = global_option(cx, *argc, argv, i);
		if (used < 0)
			return -1;
		if (!used)
			argv[out++] = argv[i++];
		i += used;
	}
	*argc = out;
	return 0;
}

static int check_usage(struct ctx *cx, const struct verb *v, int argc)
{
	if ((cx->pid && !(v->flags & VERB_PID)) || (cx->json && !(v->flags & VERB_JSON))) {
		bool pid = cx->pid && !(v->flags & VERB_PID);

		cx->json = cx->json && (v->flags & VERB_JSON);
		return fail_with(cx, EXIT_USAGE, "%s does not take %s", v->name, pid ? "-p" : "--json");
	}
	if (argc - 1 < v->min_args || argc - 1 > v->max_args) {
		char use[256];

		snprintf(use, sizeof(use), "gcctl %s%s%s", v->name, *v->args ? " " : "", v->args);
		return fail_with(cx, EXIT_USAGE, "usage: %s (gcctl help %s)", use, v->name);
	}
	return EXIT_OK;
}

int main(int argc, char **argv)
{
	struct ctx cx = { .client = { .fd = -1 } };
	const struct verb *v;
	int first, st;

	build_verbs();
	first = parse_options(&cx, argc, argv);
	if (first < 0)
		return cx.status;
	argc -= first;
	argv += first;
	proto_verb_normalize(argv[0]);
	v = find_verb(argv[0]);
	if (!v)
		return unknown_verb(&cx, argv[0]);
	if (v->run != cmd_run && take_late_options(&cx, v, &argc, argv) < 0)
		return cx.status;
	st = check_usage(&cx, v, argc);
	if (st == EXIT_OK)
		st = v->run(&cx, argc, argv);
	if (cx.connected)
		client_close(&cx.client);
	return st;
}
