/* Vacant pages: heap pages that held no block at all when the last
 * collection ended, left out of the write tracking.
 *
 * Every block on such a page was registered after that collection, so it
 * is young for any minor collection until the next one ends (young.h),
 * and is marked by tracing, never as an extra root: what the program
 * writes there need not be reported.  Leaving the pages unprotected
 * spares the program a fault a page where it allocates again in what a
 * collection freed, which on a program that drops whole structures (the
 * common case of garbage) is nearly every page it writes.
 *
 * Each collection recomputes the set from the pages its sweep emptied and
 * the set before, with the world stopped.  A page that leaves the set (a
 * block on it survived, and is old from now on) is not protected: being
 * unprotected, it counts as written at the next scan, which protects it,
 * so what the program writes there meanwhile is reported all the same.
 * Only runs of a few pages are kept, so that the scans, which skip the
 * set, stay a few system calls. */
#ifndef GCSHIM_VACANT_H
#define GCSHIM_VACANT_H

#include <stdbool.h>
#include <stdint.h>

bool vacant_init(void);
/* From the sweep: page pg has no block left (with the world stopped). */
void vacant_page_emptied(uintptr_t pg);
/* With the world stopped, after the sweep: vacant_begin computes the new
 * set, vacant_keep takes out the pages of a block the sweep does not see
 * (one in a thread's cache), vacant_end clears the ages on the pages
 * entering the set and makes it the current one.  While the heap is not
 * protected (tracking is off or paused) the set is kept empty: the scan
 * that protects it again then protects every written page. */
void vacant_begin(bool tracking);
void vacant_keep(const void *p);
void vacant_end(uint64_t *age1, uint64_t *age2);
/* wtrack_scan over the heap but its vacant pages. */
bool vacant_scan_heap(int pagemap, bool protect, void (*fn)(uintptr_t a, uintptr_t b, void *arg));
/* The set is emptied: after fork, or when nothing is tracked. */
void vacant_forget(void);
uint64_t vacant_count(void);

#endif
