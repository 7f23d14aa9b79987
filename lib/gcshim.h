/*
 * gcshim.h - the gc module of a process running under libgcshim.so.
 *
 * Every function here is also reachable from outside the process through
 * gcctl(1).  Link with -lgcshim (pkg-config gcshim), or declare the symbols
 * weak to run with or without the shim: see gcshim(7).
 */
#ifndef GCSHIM_H
#define GCSHIM_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define GCSHIM_VERSION "0.1.0"

/* Debug flags, with CPython's values. */
#define GCSHIM_DEBUG_STATS 1
#define GCSHIM_DEBUG_COLLECTABLE 2
#define GCSHIM_DEBUG_UNCOLLECTABLE 4
#define GCSHIM_DEBUG_SAVEALL 32
#define GCSHIM_DEBUG_LEAK 38

/* gcshim_threshold() argument that reads without changing. */
#define GCSHIM_THRESHOLD_QUERY (-2L)

/* Statistics: X(name, description).  One list feeds struct gcshim_stats,
 * the control socket's JSON and gcctl's table. */
#define GCSHIM_STAT_FIELDS(X)                                                 \
	X(mem_alloc, "bytes held by live blocks (usable sizes)")             \
	X(mem_free, "heap limit minus mem_alloc, -1 without a limit")        \
	X(heap_limit, "heap limit in bytes, 0 for none")                     \
	X(peak_mem_alloc, "highest mem_alloc seen")                          \
	X(live_blocks, "blocks allocated and not yet freed")                 \
	X(allocations, "blocks allocated (malloc family, new)")              \
	X(frees, "blocks freed")                                             \
	X(reallocs, "realloc calls on live blocks")                          \
	X(bytes_allocated, "bytes allocated in total")                       \
	X(bytes_freed, "bytes freed in total")                               \
	X(foreign_frees, "free() of pointers the shim never handed out")     \
	X(invalid_frees, "free() of heap addresses no live block starts at") \
	X(foreign_reallocs, "realloc() of pointers the shim never handed out") \
	X(foreign_sizes, "malloc_usable_size() of foreign pointers")        \
	X(alloc_failures, "allocations that returned NULL")                  \
	X(limit_failures, "allocations refused by the heap limit")           \
	X(threshold_triggers, "times the byte threshold was crossed")        \
	X(count_triggers, "times gen-0 count threshold t0 was crossed")      \
	X(limit_triggers, "times an allocation hit the heap limit")          \
	X(enabled, "1 if automatic collections are enabled")                 \
	X(threshold, "byte threshold, -1 when off")                          \
	X(debug, "debug flags")                                              \
	X(gen_threshold0, "t0: allocations minus frees before gen 0")        \
	X(gen_threshold1, "t1: gen-0 collections before gen 1")              \
	X(gen_threshold2, "t2: gen-1 collections before gen 2")              \
	X(count0, "allocations minus frees since the last collection")       \
	X(count1, "gen-0 collections since the last gen-1 one")              \
	X(count2, "gen-1 collections since the last gen-2 one")              \
	X(threads, "threads that have allocated and are running")            \
	X(arenas, "allocation arenas in use")                                \
	X(heap_reserved, "address space reserved for the heap")              \
	X(jemalloc_allocated, "bytes allocated as jemalloc counts them")     \
	X(jemalloc_active, "bytes in active pages")                          \
	X(jemalloc_resident, "bytes in resident pages, metadata included")  \
	X(jemalloc_mapped, "bytes in mapped extents")                        \
	X(jemalloc_metadata, "bytes of allocator metadata")                  \
	X(rss, "resident set size of the process")                           \
	X(ctl_connections, "control socket connections accepted")            \
	X(ctl_refused, "control socket connections refused (other user)")    \
	X(ctl_bad_requests, "control requests answered with an error") \
	X(collections, "collections run")                                    \
	X(collections_abandoned, "collections given up: a thread did not stop") \
	X(collected_blocks, "unreachable blocks found, in total")           \
	X(collected_bytes, "bytes of unreachable blocks found, in total")   \
	X(garbage_blocks, "blocks kept in the garbage list")                 \
	X(false_garbage, "blocks freed by the program after being found unreachable") \
	X(pause_total_ns, "time the world was stopped, in total")          \
	X(pause_last_ns, "time the world was stopped, last collection")    \
	X(pause_max_ns, "longest stop of the world")                        \
	X(pause_p50_ns, "median stop, last 1024 collections")               \
	X(pause_p99_ns, "99th percentile stop, last 1024 collections")     \
	X(last_stop_ns, "time taken to stop every thread, last collection") \
	X(last_mark_ns, "marking time, last collection")                    \
	X(last_sweep_ns, "time to free what was found, last collection")   \
	X(last_root_bytes, "bytes of roots scanned, last collection")      \
	X(last_heap_bytes, "bytes of heap blocks scanned, last collection") \
	X(last_collected_blocks, "unreachable blocks, last collection")     \
	X(last_collected_bytes, "unreachable bytes, last collection")       \
	X(root_bytes_scanned, "bytes of roots scanned, in total")          \
	X(heap_bytes_scanned, "bytes of heap blocks scanned, in total")

struct gcshim_stats {
	uint32_t size;    /* set by the caller: sizeof(struct gcshim_stats) */
	uint32_t version; /* set by the shim */
#define GCSHIM_STAT_MEMBER(name, desc) int64_t name;
	GCSHIM_STAT_FIELDS(GCSHIM_STAT_MEMBER)
#undef GCSHIM_STAT_MEMBER
};

/* Automatic collections: the MicroPython trio. */
void gcshim_enable(void);
void gcshim_disable(void);
int gcshim_isenabled(void);

/* Runs a collection of generations 0..GENERATION (0, 1 or 2) now, even
 * when automatic collections are disabled.  Returns the number of
 * unreachable blocks found, or -1 with errno: EINVAL for a bad
 * generation, EAGAIN when a thread could not be stopped (nothing freed),
 * ENOSYS when the collector is unavailable. */
long gcshim_collect(int generation);

/* Bytes held by live blocks; bytes left under the heap limit, or -1. */
int64_t gcshim_mem_alloc(void);
int64_t gcshim_mem_free(void);

/* Collect every BYTES allocated (-1: never).  Returns the previous value;
 * GCSHIM_THRESHOLD_QUERY only reads.  Below -2: returns -2, errno EINVAL. */
long gcshim_threshold(long bytes);

/* CPython's generation thresholds; a negative argument keeps its value.
 * Return 0, or -1 with errno set. */
int gcshim_set_threshold(long t0, long t1, long t2);
void gcshim_get_threshold(long thresholds[3]);
void gcshim_get_count(long counts[3]);

int gcshim_set_debug(int flags);
int gcshim_get_debug(void);

/* Fills up to st->size bytes of *st; returns 0, or -1 with errno set. */
int gcshim_get_stats(struct gcshim_stats *st);

/* Pinning (allocation sites and leak reports): the collector never frees
 * a pinned block.  When found unreachable it is counted as uncollectable
 * and kept in the garbage list; leak reports leave it out.  PTR must be
 * the start of a live block; free() and realloc() drop the pin.  Return
 * 0, or -1 with errno EINVAL. */
int gcshim_pin(void *ptr);
int gcshim_unpin(void *ptr);

#ifdef __cplusplus
}
#endif
#endif
