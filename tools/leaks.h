/* gcctl leaks: the reply of the process's leak check, its frames named,
 * suppressions applied, printed as LeakSanitizer prints its report or as
 * one JSON document for scripts. */
#ifndef GCCTL_LEAKS_H
#define GCCTL_LEAKS_H

#include <stdbool.h>
#include <sys/types.h>

#include <jansson.h>

#define LEAKS_EXIT_FOUND 23   /* LeakSanitizer's exitcode */

struct leaks_options {
	const char *suppressions;   /* a LeakSanitizer suppression file, or NULL */
	int exitcode;               /* status when leaks are left */
	bool json;
};

/* Reads the suppression file, before the process is asked anything;
 * false (with a message) when it cannot be read.  Malformed lines are
 * reported one per line and left out. */
bool leaks_load_suppressions(const struct leaks_options *o);

/* Prints the report from the reply of "leaks" of process pid; returns
 * the exit status: 0, o->exitcode when leaks are left after suppressions,
 * or -1 when the reply is not a leak report. */
int leaks_print(const json_t *reply, pid_t pid, const struct leaks_options *o);

#endif
