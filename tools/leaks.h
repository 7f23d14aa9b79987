/* gcctl leaks: the reply of the process's leak check, its frames named,
 * suppressions applied, printed as LeakSanitizer prints its report or as
 * one JSON document for scripts. */
#ifndef GCCTL_LEAKS_H
#define GCCTL_LEAKS_H

#include <stdbool.h>
#include <sys/types.h>

#include "json.h"

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

/* Names the groups of the reply of a first "leaks" of process pid and
 * applies the suppressions to them; writes the sites of the suppressed
 * groups into out ("12,57"), for a second check that counts what they
 * lead to as reachable, as LeakSanitizer does.  Returns how many. */
size_t leaks_keep_list(const struct json *reply, pid_t pid, char *out, size_t cap);

/* Prints the report from the reply of "leaks" of process pid (after
 * leaks_keep_list, the reply of the second check); returns
 * the exit status: 0, o->exitcode when leaks are left after suppressions,
 * or -1 when the reply is not a leak report. */
int leaks_print(const struct json *reply, pid_t pid, const struct leaks_options *o);

#endif
