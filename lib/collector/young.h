/* Minor collections: a collection of generation 0 or 1 that marks only
 * the young blocks, and takes the old ones that the program wrote to
 * since for extra roots; of the roots, it reads the large private
 * mappings only where written since, too (rtrack.h).
 *
 * Young, for generation g, is a block on a page flagged young for g
 * (OM_YOUNG0, or either flag for g = 1) whose age bit is clear (age1 for
 * g = 0, age2 for g = 1), and not frozen.  Everything else is old: never
 * marked, never traced, never freed by a minor collection.  Every
 * collection keeps these rules:
 *   - it moves every block it leaves on the pages it visits up one
 *     generation (generation 0 only, for a collection of generation 0),
 *     and clears those pages' flags, but the generation-1 flag of a page
 *     where blocks just left generation 0; blocks free in the threads'
 *     caches are made young (their pages flagged, their ages cleared),
 *     as taking one from a cache after the collection does not register
 *     it anew;
 *   - registering a block flags its page (objmap.h), after the start bit.
 * So a block young for generation 0 was allocated after the last
 * collection, and one young for generation 1 after the collection before
 * the last of generation 1 or 2: any pointer to it from an old block was
 * written since, to a page the write tracking (wtrack.h) reported since.
 * A block that reads as old too early (one freed to a cache and taken
 * again between two collections, or given again by jemalloc with the age
 * bits of the block before) is only kept longer. */
#ifndef GCSHIM_YOUNG_H
#define GCSHIM_YOUNG_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "frozen.h"
#include "objmap.h"
#include "wtrack.h"

struct young {
	bool on;               /* this collection is minor */
	uint32_t flags;        /* the page flags of its young blocks */
	const uint64_t *aged;  /* set: too old for it */
};

extern struct young yg;

/* Whether the block starting at heap offset off is young for the
 * current minor collection. */
static inline bool young_block(uintptr_t off)
{
	uintptr_t g = off >> OM_GRANULE_LG;

	if (!(atomic_load_explicit(&om.pages[off >> OM_PAGE_LG], memory_order_relaxed) & yg.flags))
		return false;
	return !(((yg.aged[g >> 6] | frozen_word(g >> 6)) >> (g & 63)) & 1);
}

/* Page flags that a collection of generation gen clears. */
static inline uint32_t young_flags_cleared(int gen)
{
	return gen == 0 ? OM_YOUNG0 : OM_YOUNG;
}

bool young_init(void);
/* Before the stop: write tracking is started the first time. */
void young_prepare(void);
void young_fork_child(void);
/* Registers each span with the write tracking, through the task that
 * holds the userfaultfd; ok[i] says whether span i took.  False when
 * that task is not there. */
bool young_register(const struct span *spans, size_t n, bool *ok);
/* Before the stop, with the collection lock held: most written pages
 * listed and protected while the program runs, if the next scan would
 * protect them (see young_scan). */
void young_preclean(int pagemap, uint64_t saved_ns);
/* With the world stopped: the pages written since the last scan, and
 * whether a minor collection of generation gen can run on them.
 * saved_ns: what a minor collection saves the program here (the heap is
 * protected again only if the faults of its writes cost no more). */
bool young_scan(int pagemap, int gen, uint64_t saved_ns);
/* The minor collection's set-up (aged: the age bitmap of its generation)
 * and its extra roots: the old blocks' parts on written pages. */
void young_begin(int gen, const uint64_t *aged);
void young_mark_written(int gen);
/* After the collection: the written pages it has dealt with are
 * forgotten, those generation 1 needs still are kept. */
void young_end(int gen);
bool young_tracking(void);
uint64_t young_last_pages(void);
/* A first write to a page never written, as measured when tracking
 * started; 0 before. */
uint64_t young_touch_ns(void);

#endif
