/*
 * gcctl - control processes running under libgcshim.so.
 *
 * gcctl [-p PID] [--json] VERB [ARGS...] sends one request to a process's
 * control socket and shows the reply; gcctl ps lists the processes and
 * gcctl run starts one.  The verbs are those of the protocol's description
 * (proto_desc.h), plus the ones gcctl answers itself.  Verbs gcctl does
 * not know are still sent: the process decides, so a newer library works
 * with an older gcctl.
 */
#define _GNU_SOURCE
#include "config.h"

#include <getopt.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gcctl.h"
#include "proto_desc.h"

/* Verbs gcctl answers without asking a process. */
static const struct verb local_verbs[] = {
	{ "ps", "", 0, 0, cmd_ps, true, "list your processes running under gcshim" },
	{ "run", "[OPTIONS] PROG [ARGS...]", 0, INT_MAX, cmd_run, true,
	  "run PROG under gcshim (gcctl run --help lists OPTIONS)" },
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
	[PROTO_LEAKS] = { cmd_leaks },
};

/* The local verbs, then every protocol verb but hello, which gcctl sends itself. */
static struct verb verbs[N_LOCAL + PROTO_VERB_COUNT];
static size_t n_verbs;

static struct verb protocol_verb(enum proto_verb id)
{
	const struct proto_verb_desc *d = &proto_verbs[id];
	const struct remote_verb *r = &remote_verbs[id];
	struct verb v = { d->name, d->args, d->min_args, d->max_args, cmd_query, false, d->help };

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

/* Any verb not in the table goes to the process as it is. */
static const struct verb unknown_verb = { NULL, "", 0, INT_MAX, cmd_query, false, NULL };

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
	       "3 no such process or no answer, 4 permission denied.  See gcctl(1).\n");
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
			if (!arg_long(optarg, 1, INT_MAX, &pid))
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
	int st;

	build_verbs();
	st = parse_options(&cx, argc, argv);
	if (st != EXIT_OK)
		return st;
	argc -= optind;
	argv += optind;
	proto_verb_normalize(argv[0]);
	v = find_verb(argv[0]);
	st = check_usage(&cx, v, argc);
	if (st == EXIT_OK)
		st = v->run(&cx, argc, argv);
	if (cx.connected)
		client_close(&cx.client);
	return st;
}
