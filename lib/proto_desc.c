/* The protocol's description as tables, shared by the library and gcctl. */
#include "proto_desc.h"

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "gcshim.h"

const struct proto_verb_desc proto_verbs[PROTO_VERB_COUNT] = {
#define PROTO_VERB_DESC(id, name, min, max, args, help) \
	[PROTO_##id] = { name, min, max, args, help },
	PROTO_VERBS(PROTO_VERB_DESC)
#undef PROTO_VERB_DESC
};

const struct proto_stat_desc proto_stats[] = {
#define PROTO_STAT_DESC(name, unit, kind) { #name, unit, kind },
	PROTO_STAT_UNITS(PROTO_STAT_DESC)
#undef PROTO_STAT_DESC
};

const size_t proto_stat_count = sizeof(proto_stats) / sizeof(*proto_stats);

/* The units list mirrors struct gcshim_stats member for member: a
 * statistic added to one list and not the other stops the build here. */
struct stat_units_mirror {
	uint32_t size, version;
#define PROTO_STAT_MEMBER(name, unit, kind) int64_t name;
	PROTO_STAT_UNITS(PROTO_STAT_MEMBER)
#undef PROTO_STAT_MEMBER
};

_Static_assert(sizeof(struct stat_units_mirror) == sizeof(struct gcshim_stats),
	       "PROTO_STAT_UNITS and GCSHIM_STAT_FIELDS list different statistics");
#define PROTO_STAT_SAME_PLACE(name, unit, kind)                                      \
	_Static_assert(offsetof(struct stat_units_mirror, name) ==                  \
		       offsetof(struct gcshim_stats, name),                         \
		       "PROTO_STAT_UNITS is not in the order of GCSHIM_STAT_FIELDS: " #name);
PROTO_STAT_UNITS(PROTO_STAT_SAME_PLACE)
#undef PROTO_STAT_SAME_PLACE

void proto_verb_normalize(char *verb)
{
	for (; *verb; verb++) {
		if (*verb == '_')
			*verb = '-';
		else if (*verb >= 'A' && *verb <= 'Z')
			*verb = (char)(*verb - 'A' + 'a');
	}
}

enum proto_verb proto_verb_find(const char *name)
{
	for (int v = 0; v < PROTO_VERB_COUNT; v++)
		if (!strcmp(name, proto_verbs[v].name))
			return (enum proto_verb)v;
	return PROTO_UNKNOWN;
}

const struct proto_stat_desc *proto_stat_find(const char *name)
{
	for (size_t i = 0; i < proto_stat_count; i++)
		if (!strcmp(name, proto_stats[i].name))
			return &proto_stats[i];
	return NULL;
}
