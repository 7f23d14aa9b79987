#include "bcache.h"

#include <string.h>
#include <sys/auxv.h>

#include "events.h"
#include "heap.h"
#include "objmap.h"
#include "os.h"
#include "spin.h"
#include "thread.h"

#define BC_BUDGET (32 * 1024)
/* Classes of 10 KiB and more hold 4 blocks, over the budget (56 KiB at
 * 14 KiB): with 2, every other free of a program that allocates them and
 * frees them in turn would overflow, and half of them go through
 * jemalloc and the object map. */
#define BC_MIN_SLOTS 4
#define DEPOT_SLOTS 1024
#define DEPOT_BUDGET (128 * 1024)

/* Crowded threads.  A thread cache pays for the memory it holds when its
 * thread runs often; a program with many more threads alive than CPUs
 * (a thread per connection) has most of them waiting at any moment, and
 * caches as large in each hold the program's working set many times
 * over: a thousand threads serving requests of a few dozen blocks held
 * 390 MiB where the program never had 60 MiB live.  So a thread that
 * starts while more than CROWD_PER_CPU threads a CPU (CROWD_MIN at
 * least) are alive caches an eighth of a class's share, and goes to
 * jemalloc without jemalloc's own thread cache (heap_thread_cache), as
 * TCMalloc bounds the sum of its thread caches.  One that turns out busy,
 * going to jemalloc CROWD_PROMOTE times, gets both back in full. */
#define CROWD_PER_CPU 8
#define CROWD_MIN 16
#define CROWD_SHARE 8
#define CROWD_PROMOTE 1024

/* Blocks on their way from threads that free more of a class than they
 * allocate to threads that allocate more than they free (a producer and
 * a consumer): half a thread cache moves in one copy, and jemalloc is not
 * involved.  A depot is only ever tried, never waited for: a thread that
 * finds it busy goes to jemalloc instead, so no thread can block another
 * here, whether it was stopped by the collector, interrupted by a signal
 * or left behind by fork.
 *
 * Blocks move between a depot and a cache by being claimed by the
 * receiver before the giver lets go: stopped at any point, every cached
 * block is counted by one holder or both. */
struct depot {
	atomic_flag busy;
	_Atomic unsigned count;
	/* The cache that put blocks here last: they may go back to it
	 * whatever its trend.  With own, they are the overflow of a thread
	 * that allocates the class as much as it frees it, which no other
	 * thread takes (bcache_overflow). */
	const struct bcache *giver;
	bool own;
	uint64_t hid[DEPOT_SLOTS / 64];   /* as in struct bcache */
	void *slot[DEPOT_SLOTS];
} __attribute__((aligned(64)));

uint16_t bc_limit[BC_CLASSES];
uint16_t bc_crowd_limit[BC_CLASSES];
uint16_t bc_base[BC_CLASSES];
/* Blocks a depot holds at most: enough that a program whose working set
 * of a class swings by a thousand blocks (allocates a structure, frees
 * it, builds the next) finds them here, registered, rather than going
 * through jemalloc and the object map's atomics twice a block; bounded in
 * bytes, since what a depot holds is free but not returned. */
static uint16_t depot_limit[BC_CLASSES];
uint64_t bc_key;
static unsigned crowd_threads;
/* Mapped by os_map(), like the thread records that hold the caches: the
 * collector does not take the stale addresses in their slots for roots. */
static struct depot *depot;

/* Even, as every limit: an overflow moves half. */
static uint16_t crowd_limit(uint16_t limit)
{
	unsigned n = (limit / CROWD_SHARE) & ~1u;

	return (uint16_t)(n < 2 ? 2 : n);
}

bool bcache_init(void)
{
	/* the kernel's 16 random bytes are not aligned for a uint64_t */
	const unsigned char *random = (const unsigned char *)getauxval(AT_RANDOM);
	uint64_t seed = (uint64_t)os_now_ns() * 0x9e3779b97f4a7c15ULL;

	depot = os_map(BC_CLASSES * sizeof(*depot));
	if (!depot)
		return false;
	for (unsigned i = 0, base = 1; i < BC_CLASSES; i++) {
		size_t n = BC_BUDGET / sc_sizes[i];

		n = n < BC_MIN_SLOTS ? BC_MIN_SLOTS : n > BC_SLOTS ? BC_SLOTS : n;
		bc_limit[i] = (uint16_t)(n & ~(size_t)1);
		bc_crowd_limit[i] = crowd_limit(bc_limit[i]);
		bc_base[i] = (uint16_t)base;
		base += bc_limit[i] + 1u;   /* and the next class's NULL slot */
		if (base > BC_ALL_SLOTS)   /* BC_ALL_SLOTS too small for the classes */
			return false;
		n = DEPOT_BUDGET / sc_sizes[i];
		n = n < 2u * bc_limit[i] ? 2u * bc_limit[i] : n > DEPOT_SLOTS ? DEPOT_SLOTS : n;
		depot_limit[i] = (uint16_t)n;
	}
	crowd_threads = (unsigned)os_ncpus() * CROWD_PER_CPU;
	if (crowd_threads < CROWD_MIN)
		crowd_threads = CROWD_MIN;
	/* Odd, so never mistaken for a pointer to a block. */
	if (random)
		memcpy(&seed, random + 8, sizeof(seed));
	bc_key = seed | 1;
	return true;
}

static bool depot_enter(struct depot *d)
{
	return spin_trylock(&d->busy);
}

static void depot_leave(struct depot *d)
{
	spin_unlock(&d->busy);
}

/* Puts n blocks of cache c (NULL: blocks the thread never allocated)
 * into the depot.  Own blocks (own) go only into a depot that is empty or
 * holds c's blocks; blocks for other threads, into one that holds no other
 * thread's own. */
static bool depot_put(unsigned idx, void **s, unsigned n, const struct bcache *c, bool own)
{
	struct depot *d = &depot[idx];
	unsigned have;
	bool ok;

	if (!depot_enter(d))
		return false;
	have = atomic_load_explicit(&d->count, memory_order_relaxed);
	if (d->giver == c && !own)
		d->own = false;   /* c gives now: what it kept for itself too */
	ok = have + n <= depot_limit[idx] && (!have || d->giver == c || (!own && !d->own));
	if (ok) {
		memcpy(d->slot + have, s, n * sizeof(*s));
		atomic_store_explicit(&d->count, have + n, memory_order_relaxed);
		d->giver = c;
		d->own = own;
	}
	depot_leave(d);
	return ok;
}

/* Each overflow moves a class's trend an eighth of the way to +64, each
 * time it runs empty an eighth of the way to -64.  A thread that frees
 * what others allocate overflows time after time and its trend passes
 * TREND_GIVE after about ten overflows.  A thread that allocates and
 * frees alike (most threads, most of the time) overflows and runs empty
 * in turn as if by coin flips, and its trend stays near 0, nearly three
 * standard deviations (17) below TREND_GIVE: its blocks stay with it,
 * through jemalloc, rather than being handed by the depot to another
 * thread, which would then write into cache lines this one still writes. */
#define TREND_GIVE 48

static void trend_up(struct bcache *c, unsigned idx)
{
	c->trend[idx] = (int8_t)(c->trend[idx] + ((64 - c->trend[idx]) >> 3));
}

static void trend_down(struct bcache *c, unsigned idx)
{
	c->trend[idx] = (int8_t)(c->trend[idx] - ((64 + c->trend[idx]) >> 3));
}

/* A thread takes from the depot only once it has run empty about three
 * times more than it overflowed: a thread that runs empty once, or now
 * and then, fills from jemalloc, and does not receive blocks that other
 * threads wrote last, maybe beside blocks they are writing still. */
#define TREND_TAKE (-20)

/* Refills an empty class of the cache from the depot; false if the depot
 * had nothing for it (or was busy). */
bool bcache_refill(struct bcache *c, unsigned idx)
{
	struct depot *d = &depot[idx];
	unsigned have, take;

	trend_down(c, idx);
	if ((c->trend[idx] > TREND_TAKE && d->giver != c) ||
	    !atomic_load_explicit(&d->count, memory_order_relaxed) || !depot_enter(d))
		return false;
	if (d->giver != c && d->own) {
		depot_leave(d);
		return false;
	}
	have = atomic_load_explicit(&d->count, memory_order_relaxed);
	take = have < bcache_limit(c, idx) / 2u ? have : bcache_limit(c, idx) / 2u;
	memcpy(bcache_slots(c, idx), d->slot + have - take, take * sizeof(void *));
	bcache_set_count(c, idx, take);
	atomic_signal_fence(memory_order_seq_cst);
	atomic_store_explicit(&d->count, have - take, memory_order_relaxed);
	depot_leave(d);
	return take != 0;
}

/* A block straight from jemalloc; NULL if it has none, or gave one
 * outside the heap (not from our arenas), which goes back. */
static void *take_fresh(unsigned idx)
{
	void *p = gsje_malloc(sc_sizes[idx]);

	if (p && !om_in_heap(p)) {
		heap_free(p);
		p = NULL;
	}
	return p;
}

/* The end of a fill: the n blocks in the class's first slots (keyed, in
 * the order they are to come out) are counted, then registered with the
 * caller's block, which is left past the count. */
static void *fill_register(struct bcache *c, unsigned idx, void *first, unsigned n)
{
	void **s = bcache_slots(c, idx);

	bcache_set_count(c, idx, n);
	s[n] = first;   /* past the count: registered with the rest, not cached */
	atomic_signal_fence(memory_order_seq_cst);
	om_insert_small_batch(s, n + 1, idx);
	return first;
}

/* How many blocks a fill from jemalloc takes besides the caller's.  Each
 * block taken is written (the key), so its page becomes resident: a
 * thread that allocates a class once or twice must not take half a cache
 * of it.  A program with thousands of threads, each touching a few blocks
 * of many classes, held 360 KiB a thread that way, eight times what plain
 * jemalloc held, and spent most of its time faulting those pages in.  So
 * the first fill of a class takes one block, and each fill after it
 * twice as many, up to half the cache: a class the thread uses much is at
 * full fills after a few of them. */
static unsigned fill_size(struct bcache *c, unsigned idx)
{
	unsigned most = bcache_limit(c, idx) / 2u, want = 1u << c->fill_lg[idx];

	if (want >= most)
		return most;
	c->fill_lg[idx]++;
	return want;
}

/* Crowded or not, with the classes that follow from it, which the fast
 * paths compare against. */
static void set_crowded(struct bcache *c, bool crowded)
{
	unsigned n = crowded ? BC_CROWD_CLASSES : BC_CLASSES;

	c->crowded = crowded;
	c->classes = (uint8_t)n;
	c->max_request = (uint16_t)sc_sizes[n - 1];
}

/* A crowded thread that keeps going to jemalloc is a busy one: its
 * caches, ours and jemalloc's, are given their full size. */
static void went_to_jemalloc(struct bcache *c)
{
	if (__builtin_expect(!c->crowded, 1) || ++c->misses < CROWD_PROMOTE)
		return;
	set_crowded(c, false);
	for (unsigned idx = 0; idx < BC_CLASSES; idx++)
		if (bcache_limit(c, idx))
			bcache_allocating(c, idx);
	heap_thread_cache(true);
}

/* Refills an empty class from jemalloc (fill_size) and returns one more
 * block for the caller; NULL when jemalloc has none.  The slots
 * are filled from the top down, so that the blocks come out in the order
 * jemalloc gave them (mostly ascending addresses, as without the cache).
 * They carry the key and are counted before any is registered: a thread
 * stopped anywhere in here has every registered block of the batch in its
 * cache, but the caller's, which is in its hands (a register), and no
 * array of the new blocks is left on the stack to be taken for roots. */
void *bcache_fill(struct bcache *c, unsigned idx)
{
	void **s = bcache_slots(c, idx), *first = take_fresh(idx);
	unsigned want = fill_size(c, idx), n = 0;
	uintptr_t lo, hi;

	if (!first)
		return NULL;
	went_to_jemalloc(c);
	lo = hi = (uintptr_t)first;
	for (; n < want; n++) {
		void *p = take_fresh(idx);

		if (!p)
			break;
		s[want - 1 - n] = p;
		lo = (uintptr_t)p < lo ? (uintptr_t)p : lo;
		hi = (uintptr_t)p > hi ? (uintptr_t)p : hi;
	}
	/* Blocks of a page or less are written whole soon enough; of bigger
	 * ones programs often write the head only, and the key takes the
	 * first page of each: the rest stays unpopulated, as jemalloc left it. */
	if (sc_sizes[idx] <= OS_PAGE)
		heap_populate_fresh(lo, hi + sc_sizes[idx]);
	for (unsigned i = 0; i < n; i++)
		memcpy(s[want - 1 - i], &bc_key, sizeof(bc_key));
	if (n < want)
		memmove(s, s + want - n, n * sizeof(*s));
	return fill_register(c, idx, first, n);
}

/* As bcache_fill, from n blocks that jemalloc counts as allocated but
 * no map registers (dead blocks a collection unregistered), at most half
 * a cache and one. */
void *bcache_fill_from(struct bcache *c, unsigned idx, const uintptr_t *blocks, unsigned n)
{
	void **s = bcache_slots(c, idx);
	unsigned k = n - 1;

	for (unsigned i = 0; i < k; i++) {
		void *p = (void *)blocks[1 + i];

		memcpy(p, &bc_key, sizeof(bc_key));
		s[k - 1 - i] = p;
	}
	return fill_register(c, idx, (void *)blocks[0], k);
}

/* Blocks leave a cache for jemalloc in three steps, each safe to stop
 * after: they are unregistered (a hidden block is only one still
 * registered), the cache lets go of them, and only then does jemalloc get
 * them back, when no cache names them any more: were jemalloc to hand one
 * to another thread first, hiding the stale slot would hide a live block. */
static void unregister(void *const *s, unsigned n, void **out, unsigned *nout)
{
	*nout += om_remove_small_batch(s, n, out + *nout);
}

static void release(void *const *out, unsigned n, unsigned idx)
{
	for (unsigned i = 0; i < n; i++)
		heap_free_sized(out[i], sc_sizes[idx]);
}

/* A full class gives its older half away, to the depot if the thread
 * mostly frees this class and the depot has room, else to jemalloc, and
 * keeps the blocks freed last, whose lines are the likeliest still in
 * the CPU cache.  The limit is even, so the halves do not overlap and
 * the move never has a block in no slot at all.
 *
 * A thread whose working set of a class swings by more than its cache
 * holds (it builds a structure of a thousand blocks, frees it, builds the
 * next) would send each half through jemalloc and the object map and
 * take it back the same way a moment later: so it also puts its half into
 * a depot that is empty or holds its own blocks only, and takes them back
 * from there whatever its trend.  No other thread takes them, and they go
 * back to jemalloc when the thread ends. */
void bcache_overflow(struct bcache *c, unsigned idx)
{
	unsigned n = bcache_count(c, idx), half = n / 2, nout = 0;
	void **s = bcache_slots(c, idx), *out[BC_SLOTS / 2];

	trend_up(c, idx);
	if (!depot_put(idx, s, half, c, c->trend[idx] < TREND_GIVE))
		unregister(s, half, out, &nout);
	memcpy(s, s + half, (n - half) * sizeof(*s));
	atomic_signal_fence(memory_order_seq_cst);
	bcache_set_count(c, idx, n - half);
	atomic_signal_fence(memory_order_seq_cst);
	release(out, nout, idx);
	if (nout)
		went_to_jemalloc(c);
}

/* Empties depot idx into jemalloc, if it is free and holds c's own blocks
 * (c NULL: whatever it holds).  Its blocks are unregistered under the
 * depot's lock and given back after it. */
static void drain_depot(unsigned idx, const struct bcache *c)
{
	struct depot *d = &depot[idx];
	void *out[DEPOT_SLOTS];
	unsigned nout = 0;

	if (!depot_enter(d))
		return;
	if (!c || (d->giver == c && d->own)) {
		unregister(d->slot, atomic_load_explicit(&d->count, memory_order_relaxed), out,
			   &nout);
		atomic_store_explicit(&d->count, 0, memory_order_relaxed);
		d->giver = NULL;
	}
	depot_leave(d);
	release(out, nout, idx);
}

/* The depots that hold a thread's own blocks, when it ends: no other
 * thread is to have them.  A busy depot keeps them, for the thread that
 * takes the record next. */
static void drain_own(const struct bcache *c)
{
	for (unsigned idx = 0; idx < BC_CLASSES; idx++)
		if (depot[idx].giver == c && depot[idx].own)
			drain_depot(idx, c);
}

void bcache_drain(struct bcache *c)
{
	for (unsigned idx = 0; idx < BC_CLASSES; idx++) {
		void *out[BC_SLOTS];
		unsigned nout = 0;

		unregister(bcache_slots(c, idx), bcache_count(c, idx), out, &nout);
		bcache_set_count(c, idx, 0);
		atomic_signal_fence(memory_order_seq_cst);
		release(out, nout, idx);
	}
	drain_own(c);
}

/* What the depots hold goes back to jemalloc (a trim).  A busy depot is
 * left for the next trim. */
void bcache_drain_depots(void)
{
	for (unsigned idx = 0; idx < BC_CLASSES; idx++)
		drain_depot(idx, NULL);
}

/* Hoard's passive false sharing: a thread given a block by the thread
 * that allocated it, beside blocks that thread or others go on writing,
 * frees it and allocates the same size.  Were the block cached by the
 * freeing thread, its next allocation would be that block, and two cores
 * would write one cache line from then on.  So a thread's frees of a
 * class it never allocated from go to the depot, from where threads that
 * consume more than they free take them; the thread's own allocations
 * come from jemalloc, away from the blocks of others.  As in
 * bcache_put(), the block is in c->freeing until the depot holds it.
 * False when the depot is busy or full: the caller caches the block and
 * the thread counts as allocating from the class from then on. */
bool bcache_give_away(struct bcache *c, unsigned idx, void *p)
{
	bool given;

	atomic_store_explicit(&c->freeing, p, memory_order_relaxed);
	atomic_signal_fence(memory_order_seq_cst);
	memcpy(p, &bc_key, sizeof(bc_key));
	given = depot_put(idx, &p, 1, NULL, false);
	atomic_signal_fence(memory_order_seq_cst);
	if (!given)
		bcache_allocating(c, idx);
	atomic_store_explicit(&c->freeing, NULL, memory_order_relaxed);
	return given;
}

bool bcache_crowded(unsigned live)
{
	return live > crowd_threads;
}

/* A record's cache as the record is made, before any thread can see it:
 * empty, with no room in any class. */
void bcache_new(struct bcache *c)
{
	for (unsigned idx = 0; idx < BC_CLASSES; idx++)
		c->top[idx] = c->end[idx] = bc_base[idx];
	set_crowded(c, false);
}

/* A thread record taken by a new thread: no class allocated from yet
 * (the thread that had it emptied its cache as it ended). */
void bcache_start(struct bcache *c, bool crowded)
{
	for (unsigned idx = 0; idx < BC_CLASSES; idx++)
		c->end[idx] = bc_base[idx];
	memset(c->fill_lg, 0, sizeof(c->fill_lg));
	memset(c->trend, 0, sizeof(c->trend));
	set_crowded(c, crowded);
	c->misses = 0;
	if (crowded)
		stat_inc(EV_crowded_threads);
}

/* The thread that held a depot at fork does not exist in the child. */
void bcache_fork_child(void)
{
	for (unsigned idx = 0; idx < BC_CLASSES; idx++)
		depot_leave(&depot[idx]);
}

static bool slots_hold(void *const *s, unsigned n, const void *p)
{
	for (unsigned i = 0; i < n; i++)
		if (s[i] == p)
			return true;
	return false;
}

static bool cache_holds(const struct bcache *c, unsigned idx, const void *p)
{
	return atomic_load_explicit(&c->freeing, memory_order_relaxed) == p ||
	       slots_hold(c->slots + bc_base[idx], bcache_count(c, idx), p);
}

/* Whether the registered block at p is in a cache or a depot, i.e. free.
 * Only a block that carries the key is searched for; one whose program
 * stored the key there itself is found in no cache and counts as live. */
bool bcache_holds(const void *p)
{
	uintptr_t off = (uintptr_t)p - om.base;
	unsigned v = om_class_at(off), idx = v - 1;
	struct thread_rec *self = thread_self;

	if (idx >= BC_CLASSES || !bcache_marked(p))
		return false;
	if (self && cache_holds(&self->cache, idx, p))
		return true;
	if (slots_hold(depot[idx].slot, atomic_load(&depot[idx].count), p))
		return true;
	for (struct thread_rec *r = thread_first(); r; r = r->next)
		if (r != self && cache_holds(&r->cache, idx, p))
			return true;
	return false;
}

/* Calls fn on every array of cached blocks, each thread's classes and then
 * the depots, with its index, its count and its hidden-slot mask.  Counts
 * read while their owners run are never above the arrays' sizes. */
typedef void slots_fn(void **s, unsigned n, uint64_t *hid, unsigned idx, void *arg);

static void each_array(slots_fn *fn, void *arg)
{
	for (struct thread_rec *r = thread_first(); r; r = r->next)
		for (unsigned idx = 0; idx < BC_CLASSES; idx++) {
			unsigned n = bcache_count(&r->cache, idx);

			fn(bcache_slots(&r->cache, idx), n < bc_limit[idx] ? n : bc_limit[idx],
			   r->cache.hid[idx], idx, arg);
		}
	for (unsigned idx = 0; idx < BC_CLASSES; idx++) {
		unsigned n = atomic_load_explicit(&depot[idx].count, memory_order_relaxed);

		fn(depot[idx].slot, n < DEPOT_SLOTS ? n : DEPOT_SLOTS, depot[idx].hid, idx, arg);
	}
}

struct each_block {
	void (*fn)(void *p);
};

static void call_each(void **s, unsigned n, uint64_t *hid, unsigned idx, void *arg)
{
	const struct each_block *e = arg;

	(void)hid, (void)idx;
	for (unsigned i = 0; i < n; i++)
		e->fn(s[i]);
}

/* Calls fn for every block in a cache or depot, while the owners run: a
 * block may be taken meanwhile, so fn must be harmless on a live one. */
void bcache_each(void (*fn)(void *p))
{
	struct each_block e = { fn };

	each_array(call_each, &e);
}

static void add_bytes(void **s, unsigned n, uint64_t *hid, unsigned idx, void *arg)
{
	(void)s, (void)hid;
	*(size_t *)arg += n * sc_sizes[idx];
}

/* Bytes of the blocks in caches and depots, read while their owners run. */
size_t bcache_bytes(void)
{
	size_t n = 0;

	each_array(add_bytes, &n);
	return n;
}

/* ---- hiding cached blocks from a stopped world ------------------------------
 *
 * The caches do not change while the world is stopped, so the slots a hide
 * cleared are the slots an unhide sets again; which ones is remembered in
 * the caches themselves, memory the collector does not scan or allocate.
 * A slot whose bit was already clear (a block on its way back to jemalloc)
 * is left so. */

static bool hide_block(void *p)
{
	uintptr_t off = (uintptr_t)p - om.base;

	return off < om.size && om_clear_start(off);
}

static void unhide_block(void *p)
{
	om_set_start((uintptr_t)p - om.base);
}

static void hide_slots(void **s, unsigned n, uint64_t *hid, unsigned idx, void *arg)
{
	(void)idx, (void)arg;
	for (unsigned i = 0; i < n; i++)
		if (hide_block(s[i]))
			hid[i / 64] |= 1ULL << (i % 64);
}

static void unhide_slots(void **s, unsigned n, uint64_t *hid, unsigned idx, void *arg)
{
	(void)idx, (void)arg;
	for (unsigned w = 0; w < (n + 63) / 64; w++) {
		for (uint64_t m = hid[w]; m; m &= m - 1)
			unhide_block(s[w * 64 + (unsigned)__builtin_ctzll(m)]);
		hid[w] = 0;
	}
}

/* With every other thread stopped: clears the start bits of the blocks in
 * caches and depots, so that the object map shows live blocks only. */
void bcache_hide(void)
{
	for (struct thread_rec *r = thread_first(); r; r = r->next) {
		void *f = atomic_load_explicit(&r->cache.freeing, memory_order_relaxed);

		r->cache.hid_freeing = f && hide_block(f);
	}
	each_array(hide_slots, NULL);
}

/* Before the world resumes: the hidden blocks are registered again. */
void bcache_unhide(void)
{
	for (struct thread_rec *r = thread_first(); r; r = r->next) {
		if (r->cache.hid_freeing)
			unhide_block(atomic_load_explicit(&r->cache.freeing, memory_order_relaxed));
		r->cache.hid_freeing = false;
	}
	each_array(unhide_slots, NULL);
}
