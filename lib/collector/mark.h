/* Marking: every word of a root range or a reachable block that points
 * into a live block (its start, inside it, or one past its end) marks
 * that block, whose words are scanned in turn.  Iterative, with an
 * explicit stack; when the stack is full, marked blocks are rescanned
 * from the mark bitmap until nothing new is found.  Pages that are not
 * resident or that still belong to a file are never read: they hold no
 * pointers, and touching them would raise the program's footprint. */
#ifndef GCSHIM_MARK_H
#define GCSHIM_MARK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct mark_stats {
	uint64_t root_bytes, heap_bytes, marked_blocks, overflows;
	uint64_t marked_ns;       /* when the marks were final (os_now_ns) */
	unsigned markers;
};

bool mark_init(void);
/* Maps what `markers` threads marking need; returns how many have it. */
unsigned mark_reserve(unsigned markers);
/* Bytes of the mark bytes, which several markers write, for the part of
 * the heap's range that no marking by several has covered yet. */
size_t mark_bytes_unused(void);
/* markers: as mark_reserve() returned (1: this thread only). */
void mark_begin(int pagemap_fd, unsigned markers);
void mark_range(uintptr_t lo, uintptr_t hi, bool resident_only, bool shared);
void mark_code_range(uintptr_t lo, uintptr_t hi);
/* As mark_range(lo, hi, true, shared), but the range may be scanned by
 * any marker, in mark_finish(): memory nothing writes until then (no
 * thread's stack, thread block or the shim's own). */
void mark_range_by_any(uintptr_t lo, uintptr_t hi, bool shared);
/* A marker: what mark_pages_by_any() hands its page function. */
struct marker;
/* Old heap memory written since the last collection, in a minor one. */
void mark_written(struct marker *m, uintptr_t lo, uintptr_t hi);
/* scan(pg, m) for every page pg whose bit is set in bits[0, words), by
 * whichever marker takes its word first, in mark_finish(); bits stay as
 * they are until then.  With one marker, at once. */
void mark_pages_by_any(const uint64_t *bits, size_t words,
		       void (*scan)(uintptr_t pg, struct marker *m));
/* Marks what the roots reach, then runs then() on every marker thread
 * once the marking is done (it shares its work out itself, and reads
 * the marks through mark_word), and returns when all have returned from
 * it. */
void mark_finish(struct mark_stats *st, void (*then)(void));
/* After the world resumed: working memory beyond cap bytes (or beyond
 * what this collection used) goes back to the system. */
void mark_release(size_t cap);
/* The bitmap itself: all zero between collections. */
uint64_t *mark_bits(void);
/* Word w of it in then(), with what the marking left elsewhere folded in. */
uint64_t mark_word(size_t w);

#endif
