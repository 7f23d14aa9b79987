/* The control protocol, described once: the verbs a process answers, their
 * arguments, and the fields of the replies with their units.  The library
 * (proto.c) dispatches and formats from these lists; gcctl builds its verb
 * table, its help and its rendering from them; the build fails when a list
 * and the structure it describes drift apart.  Plain C, no allocation:
 * the library includes it. */
#ifndef GCSHIM_PROTO_DESC_H
#define GCSHIM_PROTO_DESC_H

#include <stdbool.h>
#include <stddef.h>

#define PROTO_VERSION 1
#define PROTO_MAX_REQUEST 1024   /* bytes of a request line, newline included */
#define PROTO_MAX_ARGS 8         /* words of a request, the verb included */

/* X(ID, name, min args, max args, arguments, description) */
#define PROTO_VERBS(X)                                                          \
	X(HELLO, "hello", 1, 1, "PROTOCOL", "open a session (the first request)")   \
	X(MEM_ALLOC, "mem-alloc", 0, 0, "", "bytes held by live blocks")            \
	X(MEM_FREE, "mem-free", 0, 0, "", "bytes left under the heap limit")       \
	X(ENABLE, "enable", 0, 0, "", "allow automatic collections")                \
	X(DISABLE, "disable", 0, 0, "", "stop automatic collections")               \
	X(ISENABLED, "isenabled", 0, 0, "", "whether automatic collections are allowed") \
	X(THRESHOLD, "threshold", 0, 1, "[BYTES|-1]",                               \
	  "show or set the byte threshold (-1: off)")                               \
	X(GROWTH, "growth", 0, 1, "[PERCENT|on|off]",                               \
	  "show or set the growth trigger (percent over the last live heap)")       \
	X(SET_THRESHOLD, "set-threshold", 1, 3, "T0 [T1 [T2]]",                     \
	  "set the generation thresholds")                                          \
	X(GET_THRESHOLD, "get-threshold", 0, 0, "", "show the generation thresholds") \
	X(GET_COUNT, "get-count", 0, 0, "", "show the generation counts")           \
	X(SET_DEBUG, "set-debug", 1, 1, "FLAGS", "set the debug flags (number or names)") \
	X(GET_DEBUG, "get-debug", 0, 0, "", "show the debug flags")                 \
	X(STATS, "stats", 0, 0, "", "show all statistics")                          \
	X(COLLECT, "collect", 0, 1, "[GENERATION]",                                 \
	  "collect generations 0 to GENERATION (0, 1 or 2; default 2)")             \
	X(GET_STATS, "get-stats", 0, 0, "",                                         \
	  "collections and blocks found, per generation")                           \
	X(GARBAGE, "garbage", 0, 1, "[free|BYTES]",                                 \
	  "list the blocks kept by saveall (with their first BYTES), or free them") \
	X(IS_TRACKED, "is-tracked", 1, 1, "ADDR", "whether ADDR lies in a live block") \
	X(GET_REFERENTS, "get-referents", 1, PROTO_MAX_ARGS - 1, "ADDR[,ADDR...]...", \
	  "the blocks the blocks at ADDR point to")                                 \
	X(GET_REFERRERS, "get-referrers", 1, PROTO_MAX_ARGS - 1, "ADDR[,ADDR...]...", \
	  "the blocks and roots that point to the blocks at ADDR")                  \
	X(GET_OBJECTS, "get-objects", 0, 5,                                         \
	  "[--generation G] [--min-size BYTES] [--summary]", "list the live blocks") \
	X(FREEZE, "freeze", 0, 0, "", "leave every live block out of collections")  \
	X(UNFREEZE, "unfreeze", 0, 0, "", "make frozen blocks collectable again")   \
	X(GET_FREEZE_COUNT, "get-freeze-count", 0, 0, "", "how many blocks are frozen") \
	X(WATCH, "watch", 0, 0, "", "show collections as they happen")            \
	X(LEAKS, "leaks", 0, 2, "[--keep SITE[,SITE...]]",                          \
	  "report unreachable blocks by allocation site")                              \
	X(BACKTRACE, "backtrace", 0, 1, "[DEPTH|off]",                              \
	  "record allocation sites from now on, DEPTH frames deep, or stop")

enum proto_verb {
#define PROTO_VERB_ENUM(id, ...) PROTO_##id,
	PROTO_VERBS(PROTO_VERB_ENUM)
#undef PROTO_VERB_ENUM
	PROTO_VERB_COUNT,
	PROTO_UNKNOWN = PROTO_VERB_COUNT
};

struct proto_verb_desc {
	const char *name;
	int min_args, max_args;
	const char *args, *help;
};

extern const struct proto_verb_desc proto_verbs[PROTO_VERB_COUNT];

/* Units of numbers in replies and statistics. */
enum proto_unit {
	UNIT_COUNT,     /* a plain number */
	UNIT_BYTES,
	UNIT_NS,        /* nanoseconds */
	UNIT_GENERATION,
};

/* The reply of "collect": X(field of struct collection, unit, label).
 * Listed in the order gcctl shows them. */
#define PROTO_COLLECTION_FIELDS(X)                    \
	X(collected, UNIT_COUNT, "collected")         \
	X(collected_bytes, UNIT_BYTES, "collected")   \
	X(collected_requested, UNIT_BYTES, "asked for") \
	X(uncollectable, UNIT_COUNT, "uncollectable") \
	X(generation, UNIT_GENERATION, "generation")  \
	X(pause_ns, UNIT_NS, "pause")                 \
	X(stop_ns, UNIT_NS, "stop")                   \
	X(mark_ns, UNIT_NS, "mark")                   \
	X(sweep_ns, UNIT_NS, "sweep")                 \
	X(root_bytes, UNIT_BYTES, "roots scanned")    \
	X(heap_bytes, UNIT_BYTES, "heap scanned")

/* The reply of "get-stats": one object per generation. */
#define PROTO_GEN_STATS_FIELDS(X) \
	X(collections)            \
	X(collected)              \
	X(uncollectable)

/* What each statistic counts, in the order of GCSHIM_STAT_FIELDS
 * (gcshim.h; a static assertion in proto_desc.c keeps both lists
 * identical): X(name, unit, kind).  A counter only grows; a gauge is a
 * value at the moment asked. */
enum proto_stat_kind { STAT_GAUGE, STAT_COUNTER };

#define PROTO_STAT_UNITS(X)                                   \
	X(mem_alloc, UNIT_BYTES, STAT_GAUGE)                  \
	X(mem_free, UNIT_BYTES, STAT_GAUGE)                   \
	X(heap_limit, UNIT_BYTES, STAT_GAUGE)                 \
	X(peak_mem_alloc, UNIT_BYTES, STAT_GAUGE)             \
	X(live_blocks, UNIT_COUNT, STAT_GAUGE)                \
	X(allocations, UNIT_COUNT, STAT_COUNTER)              \
	X(frees, UNIT_COUNT, STAT_COUNTER)                    \
	X(reallocs, UNIT_COUNT, STAT_COUNTER)                 \
	X(bytes_allocated, UNIT_BYTES, STAT_COUNTER)          \
	X(bytes_freed, UNIT_BYTES, STAT_COUNTER)              \
	X(foreign_frees, UNIT_COUNT, STAT_COUNTER)            \
	X(invalid_frees, UNIT_COUNT, STAT_COUNTER)            \
	X(foreign_reallocs, UNIT_COUNT, STAT_COUNTER)         \
	X(foreign_sizes, UNIT_COUNT, STAT_COUNTER)            \
	X(alloc_failures, UNIT_COUNT, STAT_COUNTER)           \
	X(limit_failures, UNIT_COUNT, STAT_COUNTER)           \
	X(threshold_triggers, UNIT_COUNT, STAT_COUNTER)       \
	X(count_triggers, UNIT_COUNT, STAT_COUNTER)           \
	X(limit_triggers, UNIT_COUNT, STAT_COUNTER)           \
	X(enabled, UNIT_COUNT, STAT_GAUGE)                    \
	X(threshold, UNIT_BYTES, STAT_GAUGE)                  \
	X(debug, UNIT_COUNT, STAT_GAUGE)                      \
	X(gen_threshold0, UNIT_COUNT, STAT_GAUGE)             \
	X(gen_threshold1, UNIT_COUNT, STAT_GAUGE)             \
	X(gen_threshold2, UNIT_COUNT, STAT_GAUGE)             \
	X(count0, UNIT_COUNT, STAT_GAUGE)                     \
	X(count1, UNIT_COUNT, STAT_GAUGE)                     \
	X(count2, UNIT_COUNT, STAT_GAUGE)                     \
	X(threads, UNIT_COUNT, STAT_GAUGE)                    \
	X(arenas, UNIT_COUNT, STAT_GAUGE)                     \
	X(heap_reserved, UNIT_BYTES, STAT_GAUGE)              \
	X(jemalloc_allocated, UNIT_BYTES, STAT_GAUGE)         \
	X(jemalloc_active, UNIT_BYTES, STAT_GAUGE)            \
	X(jemalloc_resident, UNIT_BYTES, STAT_GAUGE)          \
	X(jemalloc_mapped, UNIT_BYTES, STAT_GAUGE)            \
	X(jemalloc_metadata, UNIT_BYTES, STAT_GAUGE)          \
	X(rss, UNIT_BYTES, STAT_GAUGE)                        \
	X(ctl_connections, UNIT_COUNT, STAT_COUNTER)          \
	X(ctl_refused, UNIT_COUNT, STAT_COUNTER)              \
	X(ctl_bad_requests, UNIT_COUNT, STAT_COUNTER)         \
	X(collections, UNIT_COUNT, STAT_COUNTER)              \
	X(collections_abandoned, UNIT_COUNT, STAT_COUNTER)    \
	X(collected_blocks, UNIT_COUNT, STAT_COUNTER)         \
	X(collected_bytes, UNIT_BYTES, STAT_COUNTER)          \
	X(garbage_blocks, UNIT_COUNT, STAT_GAUGE)             \
	X(false_garbage, UNIT_COUNT, STAT_COUNTER)            \
	X(pause_total_ns, UNIT_NS, STAT_COUNTER)              \
	X(pause_last_ns, UNIT_NS, STAT_GAUGE)                 \
	X(pause_max_ns, UNIT_NS, STAT_GAUGE)                  \
	X(pause_p50_ns, UNIT_NS, STAT_GAUGE)                  \
	X(pause_p99_ns, UNIT_NS, STAT_GAUGE)                  \
	X(last_stop_ns, UNIT_NS, STAT_GAUGE)                  \
	X(last_mark_ns, UNIT_NS, STAT_GAUGE)                  \
	X(last_sweep_ns, UNIT_NS, STAT_GAUGE)                 \
	X(last_root_bytes, UNIT_BYTES, STAT_GAUGE)            \
	X(last_heap_bytes, UNIT_BYTES, STAT_GAUGE)            \
	X(last_collected_blocks, UNIT_COUNT, STAT_GAUGE)      \
	X(last_collected_bytes, UNIT_BYTES, STAT_GAUGE)       \
	X(root_bytes_scanned, UNIT_BYTES, STAT_COUNTER)       \
	X(heap_bytes_scanned, UNIT_BYTES, STAT_COUNTER)       \
	X(cached_bytes, UNIT_BYTES, STAT_GAUGE)               \
	X(stack_unwinds, UNIT_COUNT, STAT_COUNTER)            \
	X(growth, UNIT_COUNT, STAT_GAUGE)                     \
	X(growth_target, UNIT_BYTES, STAT_GAUGE)              \
	X(growth_triggers, UNIT_COUNT, STAT_COUNTER)          \
	X(markers, UNIT_COUNT, STAT_GAUGE)                    \
	X(last_roots_ns, UNIT_NS, STAT_GAUGE)                 \
	X(sweep_pending_bytes, UNIT_BYTES, STAT_GAUGE)       \
	X(stops_traced, UNIT_COUNT, STAT_COUNTER)             \
	X(stops_signalled, UNIT_COUNT, STAT_COUNTER)          \
	X(calls_restarted, UNIT_COUNT, STAT_COUNTER)          \
	X(collections_minor, UNIT_COUNT, STAT_COUNTER)        \
	X(written_pages, UNIT_COUNT, STAT_COUNTER)            \
	X(last_written_pages, UNIT_COUNT, STAT_GAUGE)         \
	X(write_tracking, UNIT_COUNT, STAT_GAUGE)             \
	X(last_track_ns, UNIT_NS, STAT_GAUGE)                 \
	X(tracked_root_bytes, UNIT_BYTES, STAT_GAUGE)         \
	X(reused_blocks, UNIT_COUNT, STAT_COUNTER)            \
	X(vacant_pages, UNIT_COUNT, STAT_GAUGE)                \
	X(jemalloc_purges, UNIT_COUNT, STAT_COUNTER)          \
	X(crowded_threads, UNIT_COUNT, STAT_COUNTER)          \
	X(prefaulted_pages, UNIT_COUNT, STAT_COUNTER)

struct proto_stat_desc {
	const char *name;
	enum proto_unit unit;
	enum proto_stat_kind kind;
};

extern const struct proto_stat_desc proto_stats[];
extern const size_t proto_stat_count;

/* Verbs take dashes or underscores, in any case: "MEM_ALLOC" becomes
 * "mem-alloc", in place. */
void proto_verb_normalize(char *verb);

/* The verb called name (already normalized), or PROTO_UNKNOWN. */
enum proto_verb proto_verb_find(const char *name);

/* The statistic called name, or NULL. */
const struct proto_stat_desc *proto_stat_find(const char *name);

#endif
