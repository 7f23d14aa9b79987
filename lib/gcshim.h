/*
 * gcshim.h - the gc module of a process running under libgcshim.so.
 *
 * Every function here is also reachable from outside the process through
 * gcctl(1).  Link with -lgcshim (pkg-config gcshim), or declare the symbols
 * weak to run with or without the shim: see libgcshim(3), and gcshim(7)
 * for the shim itself.
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
	X(heap_bytes_scanned, "bytes of heap blocks scanned, in total")     \
	X(cached_bytes, "freed small blocks kept by thread caches for reuse") \
	X(stack_unwinds, "allocation stacks unwound, the others found in a memo") \
	X(growth, "growth trigger: percent over the last live heap, -1 when off") \
	X(growth_target, "mem_alloc at which the growth trigger fires, -1 when off") \
	X(growth_triggers, "collections started by the growth target")      \
	X(markers, "threads that marked, last collection")                  \
	X(last_roots_ns, "time scanning roots before the markers, last collection") \
	X(sweep_pending_bytes, "bytes found dead, not yet given back to the allocator") \
	X(stops_traced, "stops of the world held by ptrace: no call interrupted") \
	X(stops_signalled, "stops of the world made with the stop signal") \
	X(calls_restarted, "epoll waits resumed after a stop ended them with EINTR") \
	X(collections_minor, "collections that marked only young blocks")   \
	X(written_pages, "heap pages written between collections, in total") \
	X(last_written_pages, "heap pages written before the last collection") \
	X(write_tracking, "1 when the kernel reports the heap's written pages") \
	X(last_track_ns, "time listing and protecting written pages, last pause") \
	X(tracked_root_bytes, "bytes of root mappings whose written pages are reported") \
	X(reused_blocks, "dead blocks taken straight back into use, in total") \
	X(vacant_pages, "heap pages with no block at the last collection, left unprotected") \
	X(jemalloc_purges, "times jemalloc gave free pages back to the system") \
	X(crowded_threads, "threads started with small caches among many, in total") \
	X(prefaulted_pages, "pages of the collector's tables made resident before a stop")

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

/* Collect every BYTES allocated (-1 or 0: never).  Returns the previous value;
 * GCSHIM_THRESHOLD_QUERY only reads.  Below -2: returns -2, errno EINVAL. */
long gcshim_threshold(long bytes);

/* Collect when mem_alloc has grown by PERCENT over what the last
 * collection left live (-1 or 0: off; GCSHIM_GROWTH_ON: the default
 * percent, as GCSHIM_GROWTH=on).  Returns the previous percent (-1: off);
 * GCSHIM_GROWTH_QUERY only reads.  A bad value: -2, errno EINVAL. */
#define GCSHIM_GROWTH_QUERY (-2L)
#define GCSHIM_GROWTH_ON (-3L)
long gcshim_growth(long percent);

/* CPython's generation thresholds; a negative argument keeps its value.
 * Return 0, or -1 with errno set. */
int gcshim_set_threshold(long t0, long t1, long t2);
void gcshim_get_threshold(long thresholds[3]);
void gcshim_get_count(long counts[3]);

int gcshim_set_debug(int flags);
int gcshim_get_debug(void);

/* Fills up to st->size bytes of *st; returns 0, or -1 with errno set. */
int gcshim_get_stats(struct gcshim_stats *st);


/* ---- inspection ----------------------------------------------------------
 * The heap's blocks and who points to them, freezing, and collection
 * callbacks (CPython's gc.is_tracked, get_referents, get_referrers,
 * get_objects, freeze, unfreeze, get_freeze_count, garbage, callbacks). */

/* A live block. */
struct gcshim_block {
	void *start;
	size_t size;          /* usable size */
	int generation;       /* 0, 1 or 2: collections survived, capped */
	int frozen;           /* 1 after gcshim_freeze() */
	uint32_t site;        /* allocation site when recorded, else 0 */
	size_t requested;     /* the size the program asked for when recorded
				 (GCSHIM_BACKTRACE, gcshim_backtrace()), else 0 */
};

/* Where a pointer to one of the blocks asked about is kept. */
enum gcshim_ref_kind {
	GCSHIM_REF_BLOCK,     /* inside another live block */
	GCSHIM_REF_STACK,     /* on a thread's stack */
	GCSHIM_REF_DATA,      /* in the data or bss of a loaded object */
	GCSHIM_REF_MMAP,      /* in another mapping: brk heap, mmap, shared memory */
	GCSHIM_REF_EPOLL,     /* data registered with epoll_ctl */
	GCSHIM_REF_GARBAGE,   /* the garbage list */
};

struct gcshim_referrer {
	int kind;             /* enum gcshim_ref_kind */
	void *where;          /* address of the word holding the pointer */
	void *target;         /* start of the block pointed into */
	void *block;          /* GCSHIM_REF_BLOCK: the referring block */
	size_t size;          /* GCSHIM_REF_BLOCK: its size */
	int tid;              /* GCSHIM_REF_STACK: the thread */
	void *region_start;   /* the mapping (or range) holding `where` */
	void *region_end;
	size_t offset;        /* GCSHIM_REF_DATA: where - load base of the object */
	char path[256];       /* GCSHIM_REF_DATA, _MMAP: the object or mapping name */
};

/* 1 and *out filled when p lies in a live block (its start or inside it),
 * 0 when not, -1 with errno ENOSYS without the collector.  out may be NULL. */
int gcshim_is_tracked(const void *p, struct gcshim_block *out);

/* The distinct live blocks the words of the blocks containing ptrs[0..n)
 * point into.  Fills up to cap of out; returns how many there are (may
 * exceed cap), or -1 with errno (EAGAIN: a thread would not stop). */
long gcshim_get_referents(void *const *ptrs, size_t n, struct gcshim_block *out, size_t cap);

/* Every word in a live block or a root that points into a block
 * containing one of ptrs[0..n).  Same return convention. */
long gcshim_get_referrers(void *const *ptrs, size_t n, struct gcshim_referrer *out, size_t cap);

/* Calls fn for every live block of GENERATION (-1: any) of at least
 * MIN_SIZE bytes, until fn returns nonzero.  Returns the number of calls,
 * or -1 with errno. */
typedef int (*gcshim_block_fn)(const struct gcshim_block *b, void *arg);
long gcshim_get_objects(int generation, size_t min_size, gcshim_block_fn fn, void *arg);

/* Every live block is frozen: never collected, still scanned for
 * pointers.  Returns how many were frozen, or -1. */
long gcshim_freeze(void);
/* Frozen blocks become ordinary (oldest generation) again; returns how many. */
long gcshim_unfreeze(void);
long gcshim_get_freeze_count(void);

/* The blocks of the garbage list: fills up to cap, returns how many there are. */
long gcshim_garbage(void **out, size_t cap);

/* Collection callbacks, called in the collecting thread: "start" before
 * the world stops, "stop" after it resumed and the dead were freed. */
enum gcshim_phase { GCSHIM_PHASE_START, GCSHIM_PHASE_STOP };

struct gcshim_collection_info {
	int generation;
	long collected;       /* stop: unreachable blocks found */
	long uncollectable;   /* stop: always 0 (no finalizers) */
	uint64_t pause_ns;    /* stop: time the world was stopped */
	int ok;               /* stop: 0 when the collection was abandoned */
};

typedef void (*gcshim_callback_fn)(int phase, const struct gcshim_collection_info *info,
				   void *arg);
/* 0, or -1 with errno: ENOSPC (16 at most), EINVAL (NULL fn). */
int gcshim_callback_add(gcshim_callback_fn fn, void *arg);
/* 0, or -1 with errno ENOENT when (fn, arg) was not registered. */
int gcshim_callback_remove(gcshim_callback_fn fn, void *arg);

/* Pinning (allocation sites and leak reports): the collector never frees
 * a pinned block.  When found unreachable it is counted as uncollectable
 * and kept in the garbage list; leak reports leave it out.  PTR must be
 * the start of a live block; free() and realloc() drop the pin.  Return
 * 0, or -1 with errno EINVAL. */
int gcshim_pin(void *ptr);

/* Allocation sites recorded from now on, DEPTH frames deep (1 to 64), or
 * no more (0: requested sizes go on being recorded); -1 only asks.
 * Blocks allocated before have no site; leak reports group them under
 * one entry.  Returns the depth before the call, or -1 with errno EINVAL
 * (DEPTH above 64) or ENOSYS (libunwind cannot be loaded). */
int gcshim_set_backtrace(int depth);

/* The return addresses of allocation site SITE (struct gcshim_block's
 * site), innermost first: at most CAP of them into FRAMES; returns how
 * many the site has, 0 for none. */
size_t gcshim_site_frames(uint32_t site, void **frames, size_t cap);
int gcshim_unpin(void *ptr);

#ifdef __cplusplus
}
#endif
#endif
