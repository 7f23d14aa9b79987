/* Layer 4 of 5, introspection (lib/inspect/): inspection of the heap,
 * leak reports, the assembly of statistics.  Calls its own layer and the
 * three below; the surfaces format what it finds. */
/* Inspection of the heap: which block an address lies in, what blocks
 * point to (referents) and what points to them (referrers, roots
 * included and named), the live blocks, and freezing.  Referents and
 * referrers read other threads' memory: they run with the world stopped,
 * one at a time and never during a collection. */
#ifndef GCSHIM_INSPECT_H
#define GCSHIM_INSPECT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "gcshim.h"

#define INSP_MAX_TARGETS 64

bool insp_init(void);

/* is-tracked: 1 and *out, or 0. */
int insp_is_tracked(uintptr_t p, struct gcshim_block *out);

/* Results are handed to emit after the world resumed, one at a time.
 * Returns how many were found (emit sees at most INSP_MAX_RESULTS),
 * or -1 with errno.  from_ctl: the calling thread's stack is left out;
 * else it is scanned from self_sp up. */
#define INSP_MAX_RESULTS 4096
long insp_referents(const uintptr_t *ptrs, size_t n, bool from_ctl, uintptr_t self_sp,
		    void (*emit)(const struct gcshim_block *b, void *arg), void *arg);
long insp_referrers(const uintptr_t *ptrs, size_t n, bool from_ctl, uintptr_t self_sp,
		    void (*emit)(const struct gcshim_referrer *r, void *arg), void *arg);

/* get-objects: live blocks from granule *cursor on, at most cap of them;
 * *cursor moves past the last one returned, to the end when none is left
 * (returns 0 then).  generation -1: any. */
size_t insp_objects(uintptr_t *cursor, int generation, size_t min_size,
		    struct gcshim_block *out, size_t cap);

/* freeze: every live block is left out of collections from now on but
 * still scanned for pointers.  Counts of blocks. */
long insp_freeze(void);
long insp_unfreeze(void);
long insp_freeze_count(void);

void insp_fork_child(void);

#endif
