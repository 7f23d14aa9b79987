/* Leak checks: a collection that frees nothing, its unreachable blocks
 * split into direct leaks (no other unreachable block points to them)
 * and indirect ones, grouped by allocation site and by whether the size
 * the program asked for is known, direct leaks first, then the largest.
 * Shown at exit (report.h) or through the control socket (leaks). */
#ifndef GCSHIM_LEAKS_H
#define GCSHIM_LEAKS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Why a group has a stack or not. */
enum leak_stack {
	LEAK_STACK_RECORDED,
	LEAK_STACK_NOT_SAMPLED,   /* sizes recorded, this stack not sampled */
	LEAK_STACK_BEFORE,        /* allocated before recording was switched on */
	LEAK_STACK_OFF,           /* recording was never on */
};

struct leak_group {
	uint32_t key;          /* the table's own */
	uint32_t site;         /* 0: no stack */
	bool indirect;
	bool unsized;          /* bytes are size classes: no request recorded */
	bool suppressed;       /* the exit report's: a suppression matched */
	int64_t bytes, count;  /* requested bytes (usable when unsized), blocks */
};

/* [0] direct, [1] indirect. */
struct leak_totals {
	int64_t count[2], bytes[2];
	size_t ngroups;
};

/* Runs a leak check; its results stay until leaks_done().  False when
 * the collection failed (errno set). */
bool leaks_check(void);
void leaks_done(void);
size_t leaks_groups(void);
struct leak_group *leaks_group(size_t k);
void leaks_totals(struct leak_totals *t);
enum leak_stack leaks_stack(const struct leak_group *g);

/* A leak check for a caller that formats it: the totals, then each group
 * in order until group() returns false.  -1 with errno when the
 * collection failed. */
struct leak_sink {
	void (*totals)(const struct leak_totals *t, void *arg);
	bool (*group)(const struct leak_group *g, void *arg);
	void *arg;
};

int leaks_report(const struct leak_sink *sink);
void leaks_fork_child(void);

#endif
