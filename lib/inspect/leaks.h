/* Leak reports: a collection that frees nothing, its unreachable blocks
 * split into direct leaks (no other unreachable block points to them)
 * and indirect ones, grouped by allocation site, largest first.  Shown
 * at exit (GCSHIM_REPORT=exit) or through the control socket (leaks). */
#ifndef GCSHIM_LEAKS_H
#define GCSHIM_LEAKS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* The GCSHIM_REPORT option, read in the constructor. */
void leaks_init(void);

/* From the library's destructor: the report; returns the status the
 * process is to exit with (GCSHIM_REPORT_EXITCODE when something leaked),
 * or 0 to exit as it meant to. */
int leaks_at_exit(void);

/* A leak check for a caller that formats it: the totals, then each group,
 * largest first, until group() returns false.  [0] direct, [1] indirect.
 * -1 with errno when the collection failed. */
struct leak_totals {
	int64_t count[2], bytes[2];
	size_t ngroups;
};

struct leak_group {
	bool indirect;
	uint32_t site;
	int64_t bytes, count;
};

struct leak_sink {
	void (*totals)(const struct leak_totals *t, void *arg);
	bool (*group)(const struct leak_group *g, void *arg);
	void *arg;
};

int leaks_report(const struct leak_sink *sink);
void leaks_fork_child(void);

#endif
