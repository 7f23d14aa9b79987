/* Leak reports: a collection that frees nothing, its unreachable blocks
 * split into direct leaks (no other unreachable block points to them)
 * and indirect ones, grouped by allocation site, largest first.  Shown
 * at exit (GCSHIM_REPORT=exit) or through the control socket (leaks). */
#ifndef GCSHIM_LEAKS_H
#define GCSHIM_LEAKS_H

#include "proto.h"

/* The GCSHIM_REPORT option, read in the constructor. */
void leaks_init(void);

/* From the library's destructor: the report, then _exit with
 * GCSHIM_REPORT_EXITCODE when something leaked. */
void leaks_at_exit(void);

/* The leaks request: JSON members after "ok"; -1 when the collection
 * failed (errno set). */
int leaks_json(struct reply *r);
void leaks_fork_child(void);

#endif
