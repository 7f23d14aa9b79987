/* ps: one line per process of the user under gcshim. */
#define _GNU_SOURCE

#include <stdio.h>
#include <stdlib.h>

#include "gcctl.h"

/* mem_alloc of one process, or -1 if it does not answer. */
static int64_t ps_mem_alloc(pid_t pid)
{
	json_t *stats = fetch_stats(pid, NULL, 0);
	int64_t v = -1;

	if (stats)
		json_int_of(json_object_get(stats, "mem_alloc"), &v);
	json_decref(stats);
	return v;
}

static void ps_json(const pid_t *pids, size_t n)
{
	json_t *list = json_array(), *o;

	for (size_t i = 0; i < n; i++) {
		char cmd[256];
		int64_t mem = ps_mem_alloc(pids[i]);

		command_line(pids[i], cmd, sizeof(cmd));
		json_array_append_new(list, json_pack("{s:i,s:s,s:o}", "pid", (int)pids[i],
						      "command", cmd, "mem_alloc",
						      mem < 0 ? json_null() : json_integer(mem)));
	}
	o = json_pack("{s:b,s:o}", "ok", 1, "processes", list);
	json_dumpf(o, stdout, JSON_COMPACT);
	putchar('\n');
	json_decref(o);
}

int cmd_ps(struct ctx *cx, int argc, char **argv)
{
	struct table t = { .cols = 3, .right = { true, false, true } };
	pid_t *pids;
	size_t n;

	if (client_find_all(&pids, &n) < 0)
		return fail_with(cx, EXIT_UNREACHABLE, "out of memory");
	if (cx->json) {
		ps_json(pids, n);
		free(pids);
		return EXIT_OK;
	}
	table_add(&t, "PID", "COMMAND", "MEM_ALLOC");
	for (size_t i = 0; i < n; i++) {
		char pid[16], cmd[256], mem[32] = "?";
		int64_t v = ps_mem_alloc(pids[i]);

		snprintf(pid, sizeof(pid), "%d", (int)pids[i]);
		command_line(pids[i], cmd, sizeof(cmd));
		truncate_text(cmd, 48);
		if (v >= 0)
			human_size(mem, sizeof(mem), v);
		table_add(&t, pid, cmd, mem);
	}
	table_print(&t);
	free(pids);
	return EXIT_OK;
}
