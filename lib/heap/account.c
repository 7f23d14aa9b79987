#include "account.h"

#include <errno.h>

#include "gcshim.h"
#include "options.h"
#include "events.h"

#define BATCH_BYTES (64 * 1024)
#define BATCH_COUNT 64
#define DEBUG_MASK (GCSHIM_DEBUG_STATS | GCSHIM_DEBUG_LEAK)

_Atomic unsigned gc_mode __attribute__((aligned(64)));

struct gc_state gc = {
	.enabled = 1,
	.threshold = -1,
	.growth = -1,
	.growth_target = INT64_MAX,
	.gen_threshold = { 0, 10, 10 },
	.batch_bytes = BATCH_BYTES,
	.batch_count = BATCH_COUNT,
};

static struct {
	void (*collect_due)(enum gc_reason why);
	bool (*make_room)(void);
	void (*sweep_some)(void);
} collector;

void gc_register_sweeper(void (*sweep_some)(void))
{
	collector.sweep_some = sweep_some;
}

void gc_register_collector(void (*collect_due)(enum gc_reason why), bool (*make_room)(void))
{
	collector.collect_due = collect_due;
	collector.make_room = make_room;
}

static void set_growth_target(void);

static int64_t clamp(int64_t v, int64_t lo, int64_t hi)
{
	return v < lo ? lo : v > hi ? hi : v;
}

/* Deltas are published often enough that a threshold fires within a
 * quarter of its value of the exact point, and at least every 64 KiB so
 * that the peak and the growth trigger stay close.  Blocks are counted
 * towards a publish only for the count threshold t0: without it, a thread
 * of small blocks would touch the shared counters every 64 of them, and
 * two such threads would bounce their cache line between cores. */
static void recompute_batches(void)
{
	int64_t thr = atomic_load(&gc.threshold), t0 = atomic_load(&gc.gen_threshold[0]);

	atomic_store(&gc.batch_bytes, thr >= 0 ? clamp(thr / 4, 1, BATCH_BYTES) : BATCH_BYTES);
	atomic_store(&gc.batch_count, t0 > 0 ? clamp(t0 / 4, 1, BATCH_COUNT) : INT32_MAX);
}

/* New batches: the calling thread takes them at once; the others at their
 * next publish, within 64 KiB. */
static void rebatch(void)
{
	recompute_batches();
	if (thread_self)
		gc_publish(thread_self);
}

void gc_init(void)
{
	const int64_t *t = opt_triple(OPT_GEN_THRESHOLD);

	atomic_store(&gc.enabled, (int)opt_int(OPT_ENABLE));
	atomic_store(&gc.debug, (int)opt_int(OPT_DEBUG));
	atomic_store(&gc.threshold, opt_int(OPT_THRESHOLD));
	gc_set_growth(opt_int(OPT_GROWTH));
	for (int i = 0; i < 3; i++)
		atomic_store(&gc.gen_threshold[i], t[i]);
	gc_set_limit(opt_int(OPT_HEAP_LIMIT));
	recompute_batches();
}

static void update_peak(int64_t live)
{
	int64_t peak = atomic_load_explicit(&gc.peak, memory_order_relaxed);

	while (live > peak &&
	       !atomic_compare_exchange_weak(&gc.peak, &peak, live))
		;
}

/* An exact mem_alloc, read by a caller, raises the peak too: the peak
 * never reads lower than a value reported before. */
int64_t gc_note_peak(int64_t mem_alloc)
{
	update_peak(mem_alloc);
	return atomic_load(&gc.peak);
}

/* The single place where an automatic collection is due.  Only one
 * thread wins a crossing: the counter is taken, not just read. */
static void threshold_crossed(int64_t since)
{
	int64_t thr = atomic_load_explicit(&gc.threshold, memory_order_relaxed);

	if (thr < 0 || since < thr || !atomic_load(&gc.enabled) || !collector.collect_due)
		return;
	if (atomic_exchange(&gc.since, 0) >= thr) {
		stat_inc(EV_threshold_triggers);
		collector.collect_due(GC_THRESHOLD);
	}
}

/* The heap outgrew its target; the collection sets the next one.  The
 * target is only read: of threads crossing it together, the collector's
 * own lock lets one collect, and a crossing that finds a collection (or a
 * fork) under way is made again at the thread's next publish. */
static void growth_crossed(int64_t live)
{
	int64_t target = atomic_load_explicit(&gc.growth_target, memory_order_relaxed);

	if (live < target || !atomic_load(&gc.enabled) || !collector.collect_due)
		return;
	collector.collect_due(GC_GROWTH);
}

static void count_crossed(int64_t count)
{
	int64_t t0 = atomic_load_explicit(&gc.gen_threshold[0], memory_order_relaxed);
	int64_t base = atomic_load(&gc.count_base);

	if (t0 <= 0 || count - base <= t0 || !atomic_load(&gc.enabled) || !collector.collect_due)
		return;
	if (atomic_compare_exchange_strong(&gc.count_base, &base, count)) {
		stat_inc(EV_count_triggers);
		collector.collect_due(GC_COUNT);
	}
}

/* Every block counts at least this many bytes, so a byte point set this
 * many bytes a block ahead is reached no later than the count point. */
#define BLOCK_MIN_BYTES 8

/* Where the fast path next stops: a batch of bytes after the last
 * publish, or sooner if the blocks left before a count batch could take
 * fewer bytes.  The count's own point is not compared on the fast path:
 * without a count threshold it is never near; with one, small blocks
 * reach the byte point in a few halving steps and bigger ones at each
 * block, through gc_due. */
static int64_t byte_point(int64_t pub_bytes, int64_t bytes, int64_t pub_count, int64_t count)
{
	int64_t point = pub_bytes + atomic_load_explicit(&gc.batch_bytes, memory_order_relaxed);
	int64_t left = pub_count + atomic_load_explicit(&gc.batch_count, memory_order_relaxed) - count;

	if (left < (point - bytes) / BLOCK_MIN_BYTES)
		point = bytes + (left > 0 ? left : 0) * BLOCK_MIN_BYTES;
	return point;
}

static void set_next_points(struct thread_rec *t)
{
	t->next_alloc_bytes = byte_point(t->pub_bytes_allocated, atomic_load(&t->bytes_allocated),
					 t->pub_allocations, atomic_load(&t->allocations));
	t->next_free_bytes = byte_point(t->pub_bytes_freed, atomic_load(&t->bytes_freed),
					t->pub_frees, atomic_load(&t->frees));
}

static bool batch_done(int64_t pub_bytes, int64_t bytes, int64_t pub_count, int64_t count)
{
	return bytes - pub_bytes >= atomic_load_explicit(&gc.batch_bytes, memory_order_relaxed) ||
	       count - pub_count >= atomic_load_explicit(&gc.batch_count, memory_order_relaxed);
}

void gc_due(struct thread_rec *t)
{
	if (batch_done(t->pub_bytes_allocated, atomic_load(&t->bytes_allocated),
		       t->pub_allocations, atomic_load(&t->allocations)) ||
	    batch_done(t->pub_bytes_freed, atomic_load(&t->bytes_freed),
		       t->pub_frees, atomic_load(&t->frees)))
		gc_publish(t);
	else
		set_next_points(t);
}

/* A record taken by a new thread: its totals stay, its deltas start. */
void gc_thread_start(struct thread_rec *t)
{
	t->pub_allocations = atomic_load(&t->allocations);
	t->pub_frees = atomic_load(&t->frees);
	t->pub_bytes_allocated = atomic_load(&t->bytes_allocated);
	t->pub_bytes_freed = atomic_load(&t->bytes_freed);
	set_next_points(t);
}

/* Folds what the thread did since its last publish into the global view:
 * mem_alloc (kept by reservations instead under a heap limit), the peak,
 * and the counts the thresholds are checked against. */
void gc_publish(struct thread_rec *t)
{
	int64_t na = atomic_load(&t->allocations), nf = atomic_load(&t->frees);
	int64_t ba = atomic_load(&t->bytes_allocated), bf = atomic_load(&t->bytes_freed);
	int64_t dlive = (ba - t->pub_bytes_allocated) - (bf - t->pub_bytes_freed);
	int64_t dbytes = ba - t->pub_bytes_allocated, dcount = (na - t->pub_allocations) - (nf - t->pub_frees);
	int64_t since, count;

	t->pub_allocations = na;
	t->pub_frees = nf;
	t->pub_bytes_allocated = ba;
	t->pub_bytes_freed = bf;
	set_next_points(t);
	if (dlive && !gc_limited()) {
		int64_t live = atomic_fetch_add(&gc.live, dlive) + dlive;

		update_peak(live);
		if (dlive > 0)
			growth_crossed(live);
	}
	since = atomic_fetch_add(&gc.since, dbytes) + dbytes;
	count = atomic_fetch_add(&gc.count, dcount) + dcount;
	threshold_crossed(since);
	count_crossed(count);
	if (atomic_load_explicit(&gc.sweep_pending, memory_order_relaxed) && collector.sweep_some)
		collector.sweep_some();
}

void gc_set_mode(unsigned bit, bool on)
{
	if (on)
		atomic_fetch_or(&gc_mode, bit);
	else
		atomic_fetch_and(&gc_mode, ~bit);
}

/* With a heap limit, mem_alloc is kept exact: an allocation reserves its
 * bytes before it is made and gives them back if it fails. */
bool gc_reserve(size_t usable)
{
	int64_t limit = atomic_load_explicit(&gc.limit, memory_order_relaxed);
	int64_t live = atomic_load_explicit(&gc.live, memory_order_relaxed);

	do {
		if (live + (int64_t)usable > limit)
			return false;
	} while (!atomic_compare_exchange_weak(&gc.live, &live, live + (int64_t)usable));
	update_peak(live + (int64_t)usable);
	growth_crossed(live + (int64_t)usable);
	return true;
}

/* An allocation that does not fit: a full collection first, when the
 * collector is enabled; the caller then tries once more. */
bool gc_make_room(void)
{
	if (!atomic_load(&gc.enabled) || !collector.make_room)
		return false;
	stat_inc(EV_limit_triggers);
	return collector.make_room();
}

/* Switching to limit mode folds the calling thread's unpublished bytes in
 * first, so that later frees subtract from a total that holds them. */
void gc_set_limit(int64_t bytes)
{
	struct thread_rec *t = thread_self;

	if (t)
		gc_publish(t);
	atomic_store(&gc.limit, bytes);
	gc_set_mode(MODE_LIMITED, bytes != 0);
	set_growth_target();
}

int gc_set_threshold_bytes(int64_t bytes)
{
	if (bytes < -1) {
		errno = EINVAL;
		return -1;
	}
	atomic_store(&gc.threshold, bytes);
	atomic_store(&gc.since, 0);
	rebatch();
	return 0;
}

/* Collections the growth trigger starts that find little dead: the heap
 * grew with data the program keeps (it is building it), or the program
 * frees its own blocks and its live heap only swings.  Collecting again
 * at the same percent would find as little, so a run of such collections
 * doubles the allowance with each one after the first, up to 8
 * times, as the Boehm collector grows its heap instead of collecting when
 * a collection frees little.  The first of a run leaves it: a program
 * that has just built its lasting data (a collection that finds none)
 * and goes on to churn would otherwise take twice the heap it needs, and
 * keep those pages, for one collection fewer.  One that finds a 32nd of
 * its allowance dead ends the run: a program that drops blocks is
 * collected at the percent asked for.  Only the trigger's own collections
 * count. */
#define BOOST_RUN 4   /* the run at which the multiple stops growing, at 8 */
static _Atomic int64_t empty_run;   /* such collections in a row, up to BOOST_RUN */

/* 1, 1, 2, 4, 8 */
static int64_t boost(void)
{
	int64_t n = atomic_load(&empty_run);

	return n <= 1 ? 1 : 1LL << (n - 1);
}

/* Before the collection's live heap replaces the last: the allowance is
 * what the target gave over it. */
static void pace_after(int64_t dead)
{
	int64_t allowance = atomic_load(&gc.growth_target) - atomic_load(&gc.live_after);

	if (dead >= allowance / 32)
		atomic_store(&empty_run, 0);
	else if (atomic_load(&empty_run) < BOOST_RUN)
		atomic_fetch_add(&empty_run, 1);
}

/* The next target: what the last collection left live, plus P percent of
 * what it had to scan (that live heap and the roots), so that the bytes
 * allocated between two collections grow with the work of one, as in Go's
 * pacer; times the boost; at least the floor, at most the heap limit.  A
 * program whose roots dwarf its heap (a compiler with its own arenas) is
 * not collected every time its small heap doubles. */
static void set_growth_target(void)
{
	int64_t p = atomic_load(&gc.growth), base = atomic_load(&gc.live_after);
	int64_t work = base + atomic_load(&gc.roots_after);
	int64_t limit = atomic_load(&gc.limit), target = INT64_MAX;

	if (p > 0) {
		target = base + ((work / 100) * p + (work % 100) * p / 100) * boost();
		if (target < GROWTH_FLOOR)
			target = GROWTH_FLOOR;
		if (limit && target > limit)
			target = limit;
	}
	atomic_store(&gc.growth_target, target);
}

int gc_set_growth(int64_t percent)
{
	if (percent < -1 || percent > 100000) {
		errno = EINVAL;
		return -1;
	}
	atomic_store(&gc.growth, percent > 0 ? percent : -1);
	atomic_store(&empty_run, 0);
	set_growth_target();
	return 0;
}

/* From the collector, once a collection's dead blocks are accounted. */
void gc_collected(int64_t live_after, int64_t root_bytes, int64_t dead, bool by_growth)
{
	if (by_growth)
		pace_after(dead);
	atomic_store(&gc.live_after, live_after);
	atomic_store(&gc.roots_after, root_bytes);
	set_growth_target();
}

int64_t gc_next_allowance(void)
{
	int64_t live = atomic_load(&gc.live_after), target = atomic_load(&gc.growth_target);
	int64_t thr = atomic_load(&gc.threshold), a = INT64_MAX;

	if (target != INT64_MAX)
		a = target > live ? target - live : 0;
	if (thr > 0 && thr < a)
		a = thr;
	return a == INT64_MAX ? live : a;
}

int gc_set_gen_thresholds(const int64_t t[3])
{
	for (int i = 0; i < 3; i++) {
		if (t[i] < 0 || t[i] > INT32_MAX) {
			errno = EINVAL;
			return -1;
		}
	}
	for (int i = 0; i < 3; i++)
		atomic_store(&gc.gen_threshold[i], t[i]);
	rebatch();
	return 0;
}

int gc_set_debug(int64_t flags)
{
	if (flags < 0 || (flags & ~(int64_t)DEBUG_MASK)) {
		errno = EINVAL;
		return -1;
	}
	atomic_store(&gc.debug, (int)flags);
	return 0;
}

int64_t gc_mem_alloc(void)
{
	struct thread_totals tt;

	thread_sum(&tt);
	return tt.bytes_allocated - tt.bytes_freed;
}

void gc_get_counts(int64_t out[3])
{
	struct thread_totals tt;
	int64_t c0;

	thread_sum(&tt);
	c0 = tt.allocations - tt.frees - atomic_load(&gc.count_base);
	out[0] = c0 > 0 ? c0 : 0;
	out[1] = atomic_load(&gc.gen_count[1]);
	out[2] = atomic_load(&gc.gen_count[2]);
}
