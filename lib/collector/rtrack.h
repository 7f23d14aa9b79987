/* Write tracking of the roots that are not stacks, for minor collections.
 *
 * The program's private writable mappings (data and bss, anonymous
 * mmap: the arenas of a runtime's own allocator), less the shim's own
 * regions, in pieces of RTRACK_MIN bytes or more, are registered with the userfaultfd like the heap, and
 * protected again at every collection while the heap's tracking is on
 * (young.h).  A minor collection then reads of such a mapping only the
 * pages written since the collection its generation needs: for
 * generation 0 the last one, for generation 1 the one before the last
 * of generation 1 or 2.  Their runs are kept in sorted lists: the
 * preclean's, the stopped scan's, and the older ones generation 1 needs.
 *
 * Nothing is assumed: a mapping counts as tracked for a collection only
 * when the scan that protected it in that pause succeeded, and every
 * scan since the collection its generation needs did too; the scan fails
 * on a mapping the program replaced (wtrack.h).  Otherwise, or when a
 * list overflowed, the mapping is read whole, as without tracking, and a
 * replaced one is registered anew.  Stacks and mappings holding a
 * thread's pointer are never tracked. */
#ifndef GCSHIM_RTRACK_H
#define GCSHIM_RTRACK_H

#include <stdbool.h>
#include <stdint.h>

#define RTRACK_MIN (256u << 10)

bool rtrack_init(void);
void rtrack_fork_child(void);
/* Before the stop, with the collection lock: new large mappings are
 * registered, and with pagemap, the registered ones protected while the
 * program runs (the preclean).  Returns the pages reported that were
 * protected: faults the program took. */
void rtrack_prepare(void);
uint64_t rtrack_preclean(int pagemap);
/* In the stopped world: the collection's pagemap and generation, and
 * whether the mappings are protected again this time. */
void rtrack_begin(int pagemap, int gen, bool active);
/* From the roots scan, for [lo, hi), part of a private mapping that is
 * no stack: protects it again, and when the collection is minor, reads
 * the pages its generation needs.  False: the caller reads it whole. */
bool rtrack_piece(uintptr_t lo, uintptr_t hi);
/* Bytes of the mappings registered. */
uint64_t rtrack_bytes(void);
/* After the collection: its pages kept for generation 1. */
void rtrack_end(int gen);

#endif
