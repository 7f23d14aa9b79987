/* Which heap pages the program wrote, for the marking of blocks that span
 * several pages.  A program that allocates a 20 KiB block and writes only
 * its head leaves the rest unpopulated; reading it would populate it (on
 * some kernels with real pages, not the shared zero page) and fault once
 * a page.  The page map is read a 2 MiB chunk at a time, the first time
 * a block in the chunk needs it in a collection, and kept until the next
 * one: a page read once per chunk rather than once per block. */
#ifndef GCSHIM_RESIDENT_H
#define GCSHIM_RESIDENT_H

#include <stdbool.h>
#include <stdint.h>

bool resident_init(void);
/* A new collection, the world stopped: what was read before is stale. */
void resident_begin(int pagemap_fd);
/* Calls fn on each part of the heap range [lo, hi) on a written page; on
 * all of it where the page map cannot be read. */
void resident_runs(uintptr_t lo, uintptr_t hi, void (*fn)(uintptr_t a, uintptr_t b, void *arg),
		   void *arg);

#endif
