#include "options.h"

#include <string.h>

#include "gcshim.h"
#include "log.h"

const struct opt_def opt_defs[OPT_COUNT] = {
#define OPT_DEF(id, kind, def, min, max, dtext, help) \
	[OPT_##id] = { "GCSHIM_" #id, kind, def, min, max, dtext, help },
	GCSHIM_OPTIONS(OPT_DEF)
#undef OPT_DEF
};

static int64_t values[OPT_COUNT];
static const char *strings[OPT_COUNT];
static int64_t triples[OPT_COUNT][3];

static const char *env_lookup(char **envp, const char *name)
{
	size_t len = strlen(name);

	for (; envp && *envp; envp++)
		if (!strncmp(*envp, name, len) && (*envp)[len] == '=')
			return *envp + len + 1;
	return NULL;
}

static bool parse_value(enum opt_id id, const char *s)
{
	const struct opt_def *d = &opt_defs[id];

	switch (d->kind) {
	case OPT_PATH:
		strings[id] = s;
		return true;
	case OPT_TRIPLE:
		return parse_triple(s, triples[id]);
	default:
		return parse_kind(d->kind, s, d->min, d->max, &values[id]);
	}
}

static void set_defaults(void)
{
	for (int id = 0; id < OPT_COUNT; id++) {
		values[id] = opt_defs[id].def;
		strings[id] = NULL;
	}
	triples[OPT_GEN_THRESHOLD][0] = 0;
	triples[OPT_GEN_THRESHOLD][1] = 10;
	triples[OPT_GEN_THRESHOLD][2] = 10;
}

/* Variables of gcshim's that are not options of the library. */
static const char *const other_names[] = {
	"GCSHIM_LIB",   /* gcctl run: which libgcshim.so to preload */
};

#define NAME_MAX_LEN 40

static bool known_name(const char *name, size_t len)
{
	for (int id = 0; id < OPT_COUNT; id++)
		if (strlen(opt_defs[id].env) == len && !strncmp(opt_defs[id].env, name, len))
			return true;
	for (size_t i = 0; i < sizeof(other_names) / sizeof(*other_names); i++)
		if (strlen(other_names[i]) == len && !strncmp(other_names[i], name, len))
			return true;
	return false;
}

/* The option whose name is within two edits of name, or NULL; a short
 * name must be closer (GCSHIM_FOO is no GCSHIM_LOG). */
static const char *closest_option(const char *name, size_t len)
{
	const char *best = NULL;
	size_t best_d = 3;

	if (len > NAME_MAX_LEN)
		return NULL;
	for (int id = 0; id < OPT_COUNT; id++) {
		const char *env = opt_defs[id].env;
		size_t d = parse_distance(name, len, env, strlen(env));

		if (d < best_d && d * 3 <= len - 7) {
			best_d = d;
			best = env;
		}
	}
	return best;
}

/* A misspelt variable would be ignored without a word: each GCSHIM_* name
 * that is no option is reported, with the option it most resembles. */
static void warn_unknown_names(char **envp)
{
	for (; envp && *envp; envp++) {
		const char *e = *envp, *eq = strchr(e, '='), *near;
		size_t len = eq ? (size_t)(eq - e) : strlen(e);
		char name[NAME_MAX_LEN + 1];

		if (strncmp(e, "GCSHIM_", 7) || known_name(e, len))
			continue;
		near = closest_option(e, len);
		memcpy(name, e, len < NAME_MAX_LEN ? len : NAME_MAX_LEN);
		name[len < NAME_MAX_LEN ? len : NAME_MAX_LEN] = '\0';
		if (near)
			log_msg("%s is not an option; did you mean %s? (see gcshim(7))", name, near);
		else
			log_msg("%s is not an option; ignored (see gcshim(7))", name);
	}
}

/* A bad value never stops the program: one line names the variable, the
 * value and the default that is used instead. */
void options_load(char **envp)
{
	const char *logpath = env_lookup(envp, opt_defs[OPT_LOG].env);

	set_defaults();
	if (logpath && *logpath) {
		strings[OPT_LOG] = logpath;
		log_open(logpath);
	}
	for (int id = 0; id < OPT_COUNT; id++) {
		const struct opt_def *d = &opt_defs[id];
		const char *s = env_lookup(envp, d->env);

		if (!s || id == OPT_LOG)
			continue;
		if (!*s || !parse_value(id, s))
			log_msg("%s='%s' is not %s in range; using the default %s",
				d->env, s, parse_kind_expects(d->kind), d->def_text);
	}
	warn_unknown_names(envp);
}

int64_t opt_int(enum opt_id id)
{
	return values[id];
}

const char *opt_str(enum opt_id id)
{
	return strings[id];
}

const int64_t *opt_triple(enum opt_id id)
{
	return triples[id];
}
