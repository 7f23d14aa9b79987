/* run: a program started under the shim, its options given as flags.
 * Every option of the library's table (options.h) is a flag named after
 * its variable: GCSHIM_HEAP_LIMIT is --heap-limit, checked here with the
 * library's own parsers before the program starts. */
#define _GNU_SOURCE
#include "config.h"

#include <errno.h>
#include <getopt.h>
#include <libgen.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "gcctl.h"
#include "options.h"

struct run_option {
	char name[32];     /* the variable's name, lower case, dashes */
	const char *env;
	enum opt_kind kind;
	int64_t min, max;
	const char *help;
};

static struct run_option run_options[] = {
#define RUN_OPTION(id, kind, def, min, max, dtext, help) \
	{ "", "GCSHIM_" #id, kind, min, max, help },
	GCSHIM_OPTIONS(RUN_OPTION)
#undef RUN_OPTION
};

#define N_RUN_OPTIONS (sizeof(run_options) / sizeof(*run_options))

/* Switches: shorthands for the values most often given. */
static const struct run_switch {
	const char *name, *env, *value, *help;
} run_switches[] = {
	{ "disable", "GCSHIM_ENABLE", "0", "start with automatic collections off" },
	{ "no-socket", "GCSHIM_SOCKET", "0", "serve no control socket" },
	{ "report", "GCSHIM_REPORT", "exit", "report leaked blocks by allocation site at exit" },
};

#define N_RUN_SWITCHES (sizeof(run_switches) / sizeof(*run_switches))
/* getopt values of the tables' entries, out of the range of characters. */
#define RUN_OPTION_BASE 256
#define RUN_SWITCH_BASE 512

/* GCSHIM_HEAP_LIMIT -> heap-limit */
static void name_options(void)
{
	for (size_t i = 0; i < N_RUN_OPTIONS; i++) {
		struct run_option *o = &run_options[i];
		size_t n = 0;

		for (const char *e = o->env + 7; *e && n + 1 < sizeof(o->name); e++)
			o->name[n++] = *e == '_' ? '-' : (char)(*e >= 'A' && *e <= 'Z' ? *e + 32 : *e);
		o->name[n] = '\0';
	}
}

static const char *arg_name(enum opt_kind kind)
{
	switch (kind) {
	case OPT_BOOL: return "BOOL";
	case OPT_SIZE: return "SIZE";
	case OPT_SIZE_OR_OFF: return "SIZE|-1";
	case OPT_INT: return "N";
	case OPT_FLAGS: return "FLAGS";
	case OPT_TRIPLE: return "T0,T1,T2";
	case OPT_PATH: return "PATH";
	case OPT_SIGNO: return "SIGNAL";
	case OPT_ROOTSET: return "all|minimal";
	case OPT_PERCENT_OR_ON: return "PERCENT|on|off";
	}
	return "VALUE";
}

static bool valid_value(const struct run_option *o, const char *arg)
{
	int64_t v, t[3] = { 0, 0, 0 };

	if (o->kind == OPT_PATH)
		return true;
	if (o->kind == OPT_TRIPLE)
		return parse_triple(arg, t);
	return parse_kind(o->kind, arg, o->min, o->max, &v);
}

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
	if (!*arg)
		return fail_with(cx, EXIT_USAGE, "bad argument: --%s needs a value", o->name);
	if (!valid_value(o, arg))
		return fail_with(cx, EXIT_USAGE, "bad argument '%s' for --%s: expected %s in range",
				 arg, o->name, parse_kind_expects(o->kind));
	if (o->kind == OPT_PATH)
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

/* A switch takes the name of an option it stands for (--report). */
static bool is_switch(const char *name)
{
	for (size_t i = 0; i < N_RUN_SWITCHES; i++)
		if (!strcmp(name, run_switches[i].name))
			return true;
	return false;
}

void run_help(void)
{
	name_options();
	printf("usage: gcctl run [OPTIONS] [--] PROG [ARGS...]\n\n");
	for (size_t i = 0; i < N_RUN_SWITCHES; i++)
		printf("  --%-26s %s (%s=%s)\n", run_switches[i].name, run_switches[i].help,
		       run_switches[i].env, run_switches[i].value);
	for (size_t i = 0; i < N_RUN_OPTIONS; i++) {
		const struct run_option *o = &run_options[i];
		char opt[sizeof(o->name) + 16];

		if (is_switch(o->name))
			continue;
		snprintf(opt, sizeof(opt), "--%.31s %.11s", o->name, arg_name(o->kind));
		printf("  %-28s %s (%s)\n", opt, o->help, o->env);
	}
	printf("  %-28s %s\n", "-e, --env GCSHIM_NAME=VALUE", "set any GCSHIM_* variable");
}

static void fill_longopts(struct option *longopts)
{
	size_t n = 0;

	longopts[n++] = (struct option){ "env", required_argument, NULL, 'e' };
	longopts[n++] = (struct option){ "help", no_argument, NULL, 'h' };
	for (size_t i = 0; i < N_RUN_SWITCHES; i++)
		longopts[n++] = (struct option){ run_switches[i].name, no_argument, NULL,
						 RUN_SWITCH_BASE + (int)i };
	name_options();
	for (size_t i = 0; i < N_RUN_OPTIONS; i++)
		if (!is_switch(run_options[i].name))
			longopts[n++] = (struct option){ run_options[i].name, required_argument,
							 NULL, RUN_OPTION_BASE + (int)i };
	longopts[n] = (struct option){ NULL, 0, NULL, 0 };
}

static int parse_run_options(struct ctx *cx, int argc, char **argv)
{
	struct option longopts[N_RUN_OPTIONS + N_RUN_SWITCHES + 3];
	int c, st = EXIT_OK;

	fill_longopts(longopts);
	optind = 0;
	opterr = 0;
	while (st == EXIT_OK && (c = getopt_long(argc, argv, "+:e:h", longopts, NULL)) != -1) {
		if (c >= RUN_SWITCH_BASE)
			st = set_env(run_switches[c - RUN_SWITCH_BASE].env,
				     run_switches[c - RUN_SWITCH_BASE].value) ? EXIT_OK : EXIT_USAGE;
		else if (c >= RUN_OPTION_BASE)
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

int cmd_run(struct ctx *cx, int argc, char **argv)
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

