/* gcctl leaks: the replies of the process's leak checks, their frames
 * named, suppressions applied (a second check keeps what suppressed leaks
 * point to out of the report), printed as LeakSanitizer prints its report
 * or as one JSON document for scripts. */
#ifndef GCCTL_LEAKS_H
#define GCCTL_LEAKS_H

#include <stdbool.h>
#include <stddef.h>
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

/* A report being made: the replies of the process's leak checks, their
 * frames named, the suppressions applied. */
struct leaks;

/* From the reply of "leaks" of process pid; NULL when the reply is not a
 * leak report or memory ran out. */
struct leaks *leaks_first(const json_t *reply, pid_t pid);

/* The allocation sites of the first check's suppressed groups, as the
 * argument of "leaks --keep" ("12,57"), into out (cap bytes), direct
 * leaks first; returns how many.  Those that do not fit are counted in
 * *left_out: they stay suppressed, but what only they point to is
 * reported. */
size_t leaks_keep_list(struct leaks *lk, char *out, size_t cap, size_t *left_out);

/* The reply of "leaks --keep" with that list: as LeakSanitizer does, what
 * suppressed leaks lead to is not a leak.  False when it is not a leak
 * report. */
bool leaks_second(struct leaks *lk, const json_t *reply);

/* Prints the report, from the second check when there was one; returns
 * the exit status: 0, o->exitcode when leaks are left after the
 * suppressions, or -1 when memory ran out. */
int leaks_print(struct leaks *lk, const struct leaks_options *o);
void leaks_free(struct leaks *lk);

#endif
