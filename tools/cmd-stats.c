/* stats: every statistic of one process, with its unit and description. */
#define _GNU_SOURCE

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "gcctl.h"
#include "gcshim.h"
#include "proto_desc.h"

/* Sizes read best as sizes, times as times: the protocol's description
 * gives each statistic's unit. */
static enum proto_unit stat_unit(const char *name)
{
	const struct proto_stat_desc *d = proto_stat_find(name);

	return d ? d->unit : UNIT_COUNT;
}

static const char *stat_description(const char *name)
{
#define STAT_DESC(field, desc) if (!strcmp(name, #field)) return desc;
	GCSHIM_STAT_FIELDS(STAT_DESC)
#undef STAT_DESC
	return "";
}

int cmd_stats(struct ctx *cx, int argc, char **argv)
{
	json_t *r = ask(cx, argc, argv);
	const json_t *stats = json_object_get(r, "stats");
	struct table t = { .cols = 3, .right = { false, true, false } };

	if (r && (!stats || !json_is_object(stats)))
		fail_with(cx, EXIT_REPLY_ERROR, "the reply of process %d has no \"stats\" object",
			  (int)cx->client.pid);
	else if (r) {
		const char *name;
		json_t *v;

		json_object_foreach((json_t *)stats, name, v) {
			json_int_t n = json_is_integer(v) ? json_integer_value(v) : -1;
			char value[64];

			if (n >= 0 && stat_unit(name) == UNIT_NS)
				show_duration(value, sizeof(value), n);
			else if (n >= 0 && stat_unit(name) == UNIT_BYTES)
				human_size(value, sizeof(value), n);
			else
				show_value(value, sizeof(value), "", v);
			table_add(&t, name, value, stat_description(name));
		}
		table_print(&t);
	}
	json_decref(r);
	return cx->status;
}
