#include "stats.h"

#include "bcache.h"
#include "collect.h"
#include "gc.h"
#include "heap.h"
#include "log.h"
#include "os.h"
#include "thread.h"

_Atomic int64_t stat_events[EV_COUNT];

#define STATS_VERSION 4

static int64_t ev(enum stat_event e)
{
	return atomic_load_explicit(&stat_events[e], memory_order_relaxed);
}

void stats_read(struct gcshim_stats *st)
{
	struct thread_totals tt;
	struct heap_stats hs;
	int64_t counts[3];

	thread_sum(&tt);
	heap_read_stats(&hs);
	gc_get_counts(counts);
	st->version = STATS_VERSION;
	st->mem_alloc = tt.bytes_allocated - tt.bytes_freed;
	st->heap_limit = atomic_load(&gc.limit);
	st->mem_free = st->heap_limit ? st->heap_limit - st->mem_alloc : -1;
	if (st->heap_limit && st->mem_free < 0)
		st->mem_free = 0;
	st->peak_mem_alloc = gc_note_peak(st->mem_alloc);
	st->live_blocks = tt.allocations - tt.frees;
	st->allocations = tt.allocations;
	st->frees = tt.frees;
	st->reallocs = tt.reallocs;
	st->bytes_allocated = tt.bytes_allocated;
	st->bytes_freed = tt.bytes_freed;
	st->foreign_frees = ev(EV_foreign_frees);
	st->invalid_frees = ev(EV_invalid_frees);
	st->foreign_reallocs = ev(EV_foreign_reallocs);
	st->foreign_sizes = ev(EV_foreign_sizes);
	st->alloc_failures = ev(EV_alloc_failures);
	st->limit_failures = ev(EV_limit_failures);
	st->threshold_triggers = ev(EV_threshold_triggers);
	st->count_triggers = ev(EV_count_triggers);
	st->limit_triggers = ev(EV_limit_triggers);
	st->enabled = atomic_load(&gc.enabled);
	st->threshold = atomic_load(&gc.threshold);
	st->debug = atomic_load(&gc.debug);
	st->gen_threshold0 = atomic_load(&gc.gen_threshold[0]);
	st->gen_threshold1 = atomic_load(&gc.gen_threshold[1]);
	st->gen_threshold2 = atomic_load(&gc.gen_threshold[2]);
	st->count0 = counts[0];
	st->count1 = counts[1];
	st->count2 = counts[2];
	st->threads = tt.threads;
	st->arenas = heap_arenas();
	st->heap_reserved = (int64_t)heap_reserved();
	st->jemalloc_allocated = hs.allocated;
	st->jemalloc_active = hs.active;
	st->jemalloc_resident = hs.resident;
	st->jemalloc_mapped = hs.mapped;
	st->jemalloc_metadata = hs.metadata;
	st->rss = (int64_t)os_rss();
	st->cached_bytes = (int64_t)bcache_bytes();
	st->stack_unwinds = ev(EV_stack_unwinds);
	collect_fill_stats(st);
	st->false_garbage = ev(EV_false_garbage);
	st->ctl_connections = ev(EV_ctl_connections);
	st->ctl_refused = ev(EV_ctl_refused);
	st->ctl_bad_requests = ev(EV_ctl_bad_requests);
	st->stops_traced = ev(EV_stops_traced);
	st->stops_signalled = ev(EV_stops_signalled);
	st->calls_restarted = ev(EV_calls_restarted);
}

/* The stats object of the control protocol, fields in declaration order. */
size_t stats_json(char *buf, size_t cap)
{
	struct gcshim_stats st = { .size = sizeof(st) };
	size_t n = 0;
	const char *sep = "{";

	stats_read(&st);
#define STAT_JSON(name, desc)                                                  \
	n += fmt_s(buf + (n < cap ? n : cap), n < cap ? cap - n : 0,           \
		   "%s\"" #name "\":%ld", sep, (long)st.name);                 \
	sep = ",";
	GCSHIM_STAT_FIELDS(STAT_JSON)
#undef STAT_JSON
	n += fmt_s(buf + (n < cap ? n : cap), n < cap ? cap - n : 0, "}");
	return n;
}
