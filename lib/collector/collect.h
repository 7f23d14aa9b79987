/* Layer 3 of 5, the collector (lib/collector/): stopping threads, roots,
 * kernel-held roots, marking and its marker threads, the garbage list,
 * collection events, the sweep, the collection itself.  Calls its own
 * layer and the two below. */
/* A collection: stop the world, mark from the roots, find the unmarked
 * blocks of the collected generations, resume, then free them (or keep
 * them in `garbage` under DEBUG_SAVEALL or verify mode).  One at a time,
 * from any thread, including from inside malloc. */
#ifndef GCSHIM_COLLECT_H
#define GCSHIM_COLLECT_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "account.h"
#include "gcshim.h"

struct gen_stats {
	int64_t collections, collected, uncollectable;
};

struct collection {
	int generation;
	bool minor;                    /* only young blocks were marked */
	uint64_t written_pages;        /* heap pages written since the last scan */
	int64_t collected, collected_bytes, uncollectable;
	int64_t collected_requested;   /* asked-for bytes (usable where not recorded) */
	uint64_t pause_ns, stop_ns, track_ns, roots_ns, mark_ns, sweep_ns;
	uint64_t wait_ns;              /* the caller's, from the start to the end */
	unsigned markers;
	uint64_t root_bytes, heap_bytes;
	int64_t objects[3];
};

extern bool gc_verify;

bool collect_init(void);
long gc_collect(int generation, enum gc_reason why, bool save, struct collection *out);
long gc_find_leaks(void (*fn)(const uintptr_t *dead, size_t n, void *arg), void *arg);
/* Why gc_collect or gc_find_leaks failed, from the errno they set. */
const char *gc_failure_reason(int err);
void collect_lock(void);
void collect_unlock(void);
void collect_get_gen_stats(struct gen_stats out[3]);
void collect_fill_stats(struct gcshim_stats *st);
void garbage_check_free(void *p, size_t usable);

/* inspection */
int collect_generation(uintptr_t start);
void collect_make_oldest(size_t word, uint64_t bits);

#endif
