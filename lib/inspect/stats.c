#include "stats.h"

#include "bcache.h"
#include "collect.h"
#include "account.h"
#include "heap.h"
#include "log.h"
#include "os.h"
#include "thread.h"

#define STATS_VERSION 5

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
	st->enabled = atomic_load(&gc.enabled);
	st->threshold = atomic_load(&gc.threshold);
	st->growth = atomic_load(&gc.growth);
	st->growth_target = st->growth > 0 ? atomic_load(&gc.growth_target) : -1;
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
	st->jemalloc_purges = hs.purges;
	st->rss = (int64_t)os_rss();
	st->cached_bytes = (int64_t)bcache_bytes();
	collect_fill_stats(st);
#define STAT_FROM_EVENT(name) st->name = stat_event(EV_##name);
	STAT_EVENTS(STAT_FROM_EVENT)
#undef STAT_FROM_EVENT
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
