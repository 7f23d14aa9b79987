/* stats and ps: every statistic of one process, one line per process. */
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

/* MEM_ALLOC of one process for ps, or "?" if it does not answer. */
static void ps_mem_alloc(pid_t pid, char *buf, size_t cap)
{
	struct client c;
	json_t *r = NULL;
	int64_t v;

	snprintf(buf, cap, "?");
	if (client_open(&c, pid) != CLIENT_OK)
		return;
	if (client_request(&c, "mem-alloc", &r) == CLIENT_OK &&
	    json_int_of(json_object_get(r, "mem_alloc"), &v))
		human_size(buf, cap, v);
	json_decref(r);
	client_close(&c);
}

int cmd_ps(struct ctx *cx, int argc, char **argv)
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

