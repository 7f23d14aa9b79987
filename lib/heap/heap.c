#define _GNU_SOURCE
#include "heap.h"

#include <errno.h>
#include <jemalloc/jemalloc.h>
#include <stdatomic.h>
#include <sys/mman.h>

#include "log.h"
#include "objmap.h"
#include "os.h"
#include "spin.h"
#include "thread.h"

/* jemalloc's API under the names the build gave it (lib/jemalloc.syms). */
void gsje_free(void *);
void *gsje_mallocx(size_t, int);
size_t gsje_xallocx(void *, size_t, size_t, int);
size_t gsje_sallocx(const void *, int);
size_t gsje_nallocx(size_t, int);
int gsje_mallctl(const char *, void *, size_t *, void *, size_t);

/* Options for the embedded jemalloc.  No huge arena: it would take large
 * blocks out of the reserved range.  One automatic arena: only jemalloc's
 * own metadata lives there.  Freed extents in one contiguous range merge
 * into large ones, which jemalloc would not reuse for requests more than
 * 64 times smaller: allow 1024 times, or the heap keeps growing. */
const char *gsje_malloc_conf = "oversize_threshold:0,narenas:1,lg_extent_max_active_fit:10";

#define MAX_ARENAS 256

static uintptr_t range_end;
static _Atomic uintptr_t range_top;
static unsigned narenas;
static _Atomic unsigned arena_ids[MAX_ARENAS];
static _Atomic unsigned next_slot;
static atomic_flag arena_lock = ATOMIC_FLAG_INIT;
static __thread unsigned thread_arena __attribute__((tls_model("initial-exec")));

/* A heap that grows takes a page fault for each page it first writes, 10
 * us or more on a virtual machine; one call that faults in 16 pages cost
 * half as much a page here.  jemalloc carves the slabs of a growing heap
 * from the bottom of the extent it grew by last, up: the blocks a cache
 * takes from there, and POPULATE_AHEAD past them, are faulted in at once.
 * Each arena keeps its last extent and how far up it was populated (the
 * frontier): a heap that reuses its memory, or takes it from older
 * extents, makes no call, and no more than POPULATE_AHEAD past what
 * jemalloc handed out is ever brought in.  The three are page numbers in
 * the heap's range, not addresses: the shim's data is scanned for roots,
 * and an address there would keep the block that starts at it alive. */
#define POPULATE_AHEAD_PAGES 16

static struct fresh_extent {
	_Atomic size_t start, frontier, end;
} fresh[MAX_ARENAS];

static void fresh_extent_grown(unsigned ind, uintptr_t start, size_t size)
{
	struct fresh_extent *f = &fresh[ind % MAX_ARENAS];
	size_t pg = (start - om.base) / OS_PAGE;

	atomic_store_explicit(&f->end, pg, memory_order_relaxed);   /* empty meanwhile */
	atomic_store_explicit(&f->start, pg, memory_order_relaxed);
	atomic_store_explicit(&f->frontier, pg, memory_order_relaxed);
	atomic_store_explicit(&f->end, pg + size / OS_PAGE, memory_order_release);
}

/* Extents are carved from the reserved range by a bump pointer.  jemalloc
 * retains what it no longer uses (dalloc opts out) and purges its pages,
 * so the range is only ever consumed as the heap's high-water mark grows. */
static void *ext_alloc(extent_hooks_t *h, void *new_addr, size_t size,
		       size_t align, bool *zero, bool *commit, unsigned ind)
{
	uintptr_t top = atomic_load(&range_top), start;

	(void)h;
	do {
		start = (top + align - 1) & ~(uintptr_t)(align - 1);
		if (new_addr && (uintptr_t)new_addr != start)
			return NULL;
		if (start + size > range_end || start + size < start)
			return NULL;
	} while (!atomic_compare_exchange_weak(&range_top, &top, start + size));
	if (!os_commit((void *)start, size))
		return NULL;
	fresh_extent_grown(ind, start, size);
	*zero = true;
	*commit = true;
	return (void *)start;
}

static bool ext_dalloc(extent_hooks_t *h, void *addr, size_t size, bool committed,
		       unsigned ind)
{
	(void)h, (void)addr, (void)size, (void)committed, (void)ind;
	return true;
}

static void ext_destroy(extent_hooks_t *h, void *addr, size_t size,
			bool committed, unsigned ind)
{
	(void)h, (void)committed, (void)ind;
	os_decommit(addr, size);
}

static bool ext_commit(extent_hooks_t *h, void *addr, size_t size, size_t off,
		       size_t len, unsigned ind)
{
	(void)h, (void)size, (void)ind;
	return !os_commit((char *)addr + off, len);
}

/* Decommitting takes the protection away as well as the pages, and that
 * matters to the write tracking: with decommit opted out (jemalloc's own
 * hooks do so where the kernel overcommits, and purge only), minor
 * collections of bench/minor.sh listed three times as many written
 * pages, at twice the pause. */
static bool ext_decommit(extent_hooks_t *h, void *addr, size_t size, size_t off,
			 size_t len, unsigned ind)
{
	(void)h, (void)size, (void)ind;
	return !os_decommit((char *)addr + off, len);
}

static bool ext_purge_lazy(extent_hooks_t *h, void *addr, size_t size,
			   size_t off, size_t len, unsigned ind)
{
	(void)h, (void)size, (void)ind;
	return !os_purge((char *)addr + off, len, false);
}

static bool ext_purge_forced(extent_hooks_t *h, void *addr, size_t size,
			     size_t off, size_t len, unsigned ind)
{
	(void)h, (void)size, (void)ind;
	return !os_purge((char *)addr + off, len, true);
}

static bool ext_split(extent_hooks_t *h, void *addr, size_t size, size_t a,
		      size_t b, bool committed, unsigned ind)
{
	(void)h, (void)addr, (void)size, (void)a, (void)b, (void)committed, (void)ind;
	return false;
}

static bool ext_merge(extent_hooks_t *h, void *a, size_t asz, void *b,
		      size_t bsz, bool committed, unsigned ind)
{
	(void)h, (void)a, (void)asz, (void)b, (void)bsz, (void)committed, (void)ind;
	return false;
}

static extent_hooks_t hooks = {
	ext_alloc, ext_dalloc, ext_destroy, ext_commit, ext_decommit,
	ext_purge_lazy, ext_purge_forced, ext_split, ext_merge,
};

/* ---- arena 0: jemalloc's own metadata, outside the range ---------------
 *
 * Each thread's cache is allocated zeroed from arena 0, usually from the
 * cache of a thread that ended.  jemalloc zeroes a recycled extent of its
 * default hooks with madvise(MADV_DONTNEED), and that flushes the TLB of
 * every CPU the process runs on: an interrupt to each, at every thread
 * start, which made a program that starts threads by the thousand twice
 * as slow.  With hooks of our own it zeroes with memset instead.  They
 * map, give back and purge as its defaults do. */

static void *meta_alloc(extent_hooks_t *h, void *new_addr, size_t size,
			size_t align, bool *zero, bool *commit, unsigned ind)
{
	size_t span = new_addr || align <= OS_PAGE ? size : size + align - OS_PAGE;
	char *p = mmap(new_addr, span, PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	char *start, *end;

	(void)h, (void)ind;
	if (p == MAP_FAILED)
		return NULL;
	if (new_addr && p != new_addr) {
		munmap(p, span);
		return NULL;
	}
	start = (char *)(((uintptr_t)p + align - 1) & ~(uintptr_t)(align - 1));
	end = start + size;
	if (start > p)
		munmap(p, (size_t)(start - p));
	if (p + span > end)
		munmap(end, (size_t)(p + span - end));
	*zero = true;
	*commit = true;
	return start;
}

static void meta_destroy(extent_hooks_t *h, void *addr, size_t size, bool committed,
			 unsigned ind)
{
	(void)h, (void)committed, (void)ind;
	munmap(addr, size);
}

/* Commit and decommit are left out: the extents are always committed. */
static extent_hooks_t meta_hooks = {
	meta_alloc, ext_dalloc, meta_destroy, NULL, NULL,
	ext_purge_lazy, ext_purge_forced, ext_split, ext_merge,
};

static void meta_hooks_install(void)
{
	extent_hooks_t *hp = &meta_hooks;

	if (gsje_mallctl("arena.0.extent_hooks", NULL, NULL, &hp, sizeof(hp)) != 0)
		log_msg("cannot set jemalloc's metadata hooks: thread starts purge memory");
}

/* jemalloc alone wants four arenas a CPU to keep threads off each other's
 * locks.  In front of it here, the thread caches and depots (bcache.h)
 * take most of the traffic, and every arena more lets blocks wander
 * between arenas through the caches and grows the heap.  But threads that
 * share an arena share its slabs: their blocks lie side by side, and two
 * threads running at once write the same cache lines (glibc's
 * malloc-thread benchmark with two threads took 1.5 times jemalloc's time
 * with one arena for every four CPUs), and take turns at its locks for
 * the blocks above the caches' classes.  One arena a CPU keeps the
 * threads that run at once apart. */
static unsigned default_arenas(void)
{
	return (unsigned)os_ncpus();
}

bool heap_init(size_t reserve, unsigned want_arenas)
{
	void *base = os_reserve(&reserve);

	if (!base) {
		log_msg("cannot reserve address space for the heap");
		return false;
	}
	if (!om_init((uintptr_t)base, reserve)) {
		log_msg("cannot map the object map");
		return false;
	}
	range_top = (uintptr_t)base;
	range_end = (uintptr_t)base + reserve;
	narenas = want_arenas ? want_arenas : default_arenas();
	if (narenas > MAX_ARENAS)
		narenas = MAX_ARENAS;
	meta_hooks_install();
	return true;
}

size_t heap_reserved(void)
{
	return om.size;
}

/* End of the part of the range handed to jemalloc so far. */
uintptr_t heap_top(void)
{
	return atomic_load_explicit(&range_top, memory_order_acquire);
}

void heap_populate_fresh(uintptr_t lo, uintptr_t hi)
{
	struct fresh_extent *f = &fresh[thread_arena % MAX_ARENAS];
	size_t end = atomic_load_explicit(&f->end, memory_order_acquire);
	size_t start = atomic_load_explicit(&f->start, memory_order_relaxed);
	size_t front = atomic_load_explicit(&f->frontier, memory_order_relaxed);
	size_t from = (lo - om.base) / OS_PAGE, last = (hi - om.base + OS_PAGE - 1) / OS_PAGE, to;

	if (last <= front || last > end)
		return;
	if (from < start)
		from = start;
	/* Blocks that carry on from the frontier take the pages up to them;
	 * past a gap (jemalloc put a large block there), the gap is left
	 * alone; blocks of slabs far apart are no run to follow. */
	if (from <= front + POPULATE_AHEAD_PAGES)
		from = front;
	if (last - from > 2 * POPULATE_AHEAD_PAGES)
		return;
	to = last + POPULATE_AHEAD_PAGES < end ? last + POPULATE_AHEAD_PAGES : end;
	if (!atomic_compare_exchange_strong_explicit(&f->frontier, &front, to, memory_order_relaxed,
						     memory_order_relaxed))
		return;   /* another thread of the arena is populating past it */
	os_populate((void *)(om.base + from * OS_PAGE), (to - from) * OS_PAGE);
}

/* Held across fork so that the child never inherits it taken. */
void heap_lock(void)
{
	spin_lock(&arena_lock);
}

void heap_unlock(void)
{
	spin_unlock(&arena_lock);
}

/* Arenas are created on first use, so a short-lived single-threaded
 * program pays for one. */
static unsigned arena_for_slot(unsigned slot)
{
	unsigned ind = atomic_load_explicit(&arena_ids[slot], memory_order_acquire);
	extent_hooks_t *hp = &hooks;
	size_t sz = sizeof(ind);

	if (ind)
		return ind;
	heap_lock();
	ind = atomic_load_explicit(&arena_ids[slot], memory_order_relaxed);
	if (!ind && gsje_mallctl("arenas.create", &ind, &sz, &hp, sizeof(hp)) == 0)
		atomic_store_explicit(&arena_ids[slot], ind, memory_order_release);
	heap_unlock();
	return ind;
}

unsigned heap_arenas(void)
{
	unsigned n = 0;

	for (unsigned i = 0; i < narenas; i++)
		n += atomic_load_explicit(&arena_ids[i], memory_order_relaxed) != 0;
	return n;
}

/* jemalloc empties an arena of all its free pages at once whenever the
 * last thread bound to it leaves: as a thread moves to its arena here
 * (from the metadata arena, where jemalloc puts every thread first) and
 * as a thread ends.  In a program that runs short threads that is a purge
 * of pages the next thread writes again, and a TLB flush on every CPU,
 * at every thread's start and end.  The first is left to decay, as
 * jemalloc's purges are at any other time; so is the second when the
 * thread freed little (KEEP_DIRTY_FREED), while a thread that freed much
 * leaves its arena purged, as plain jemalloc does: no thread may come to
 * use that arena again.  The build renames jemalloc's own arena_decay,
 * where it is defined, so that its other parts call this one
 * (Makefile.am). */
#define KEEP_DIRTY_FREED (1L << 20)

/* While set, a purge of a whole arena by this thread is a decay step. */
static __thread bool decay_only __attribute__((tls_model("initial-exec")));
static __thread int64_t freed_at_start __attribute__((tls_model("initial-exec")));

struct arena_s;
struct tsdn_s;
void gsje_arena_decay(struct tsdn_s *tsdn, struct arena_s *arena,
		      bool is_background_thread, bool all);
void je_arena_decay(struct tsdn_s *tsdn, struct arena_s *arena,
		    bool is_background_thread, bool all);

void je_arena_decay(struct tsdn_s *tsdn, struct arena_s *arena,
		    bool is_background_thread, bool all)
{
	gsje_arena_decay(tsdn, arena, is_background_thread, all && !decay_only);
}

/* jemalloc's own cache for the calling thread, behind ours: a crowded
 * thread (bcache.h) goes without it until it shows itself busy. */
void heap_thread_cache(bool on)
{
	gsje_mallctl("thread.tcache.enabled", NULL, NULL, &on, sizeof(on));
}

/* Binds the calling thread to one of our arenas: jemalloc's fast path and
 * thread cache then serve it from the reserved range. */
bool heap_thread_init(bool crowded)
{
	unsigned slot = atomic_fetch_add(&next_slot, 1) % narenas;
	unsigned ind = arena_for_slot(slot);
	bool ok;

	if (!ind)
		return false;
	thread_arena = ind;
	freed_at_start = thread_self ? atomic_load(&thread_self->bytes_freed) : 0;
	decay_only = true;
	ok = gsje_mallctl("thread.arena", NULL, NULL, &ind, sizeof(ind)) == 0;
	decay_only = false;
	if (crowded)
		heap_thread_cache(false);
	return ok;
}

void heap_thread_leaving(void)
{
	decay_only = !thread_self ||
		     atomic_load(&thread_self->bytes_freed) - freed_at_start < KEEP_DIRTY_FREED;
}

/* A block outside the range means jemalloc did not use the bound arena
 * (e.g. a MALLOC_CONF in the environment changed its arena selection):
 * give it back and ask our arena explicitly. */
static void *in_range(void *p, size_t n, int flags)
{
	if (__builtin_expect(p == NULL || om_in_heap(p), 1))
		return p;
	gsje_free(p);
	log_once(warned, "jemalloc ignored the arena binding; using explicit arenas");
	p = gsje_mallocx(n ? n : 1, flags | MALLOCX_ARENA(thread_arena));
	if (p && !om_in_heap(p)) {
		gsje_free(p);
		errno = ENOMEM;
		return NULL;
	}
	return p;
}

void *heap_alloc(size_t n)
{
	return in_range(gsje_malloc(n), n, 0);
}

void *heap_alloc_zeroed(size_t n)
{
	return in_range(gsje_calloc(1, n), n, MALLOCX_ZERO);
}

void *heap_alloc_aligned(size_t n, size_t align, size_t *usable)
{
	int flags = MALLOCX_ALIGN(align);
	void *p = in_range(gsje_mallocx(n ? n : 1, flags), n, flags);

	if (p)
		*usable = gsje_sallocx(p, 0);
	return p;
}

size_t heap_usable_for(size_t n, size_t align)
{
	return gsje_nallocx(n ? n : 1, MALLOCX_ALIGN(align));
}

void heap_free(void *p)
{
	gsje_free(p);
}

/* Grows or shrinks a large block without moving it; returns the new usable
 * size, which is only meaningful when it fits n. */
size_t heap_resize_in_place(void *p, size_t n)
{
	return gsje_xallocx(p, n, 0, 0);
}

#define QUOTE_(x) #x
#define QUOTE(x) QUOTE_(x)
#define ALL_ARENAS "stats.arenas." QUOTE(MALLCTL_ARENAS_ALL)   /* their sums */

static int64_t ctl_u64(const char *name)
{
	size_t v = 0, sz = sizeof(v);

	return gsje_mallctl(name, &v, &sz, NULL, 0) == 0 ? (int64_t)v : -1;
}

void heap_read_stats(struct heap_stats *st)
{
	int64_t muzzy;
	uint64_t epoch = 1;
	size_t sz = sizeof(epoch);

	gsje_mallctl("epoch", &epoch, &sz, &epoch, sz);
	st->allocated = ctl_u64("stats.allocated");
	st->active = ctl_u64("stats.active");
	st->resident = ctl_u64("stats.resident");
	st->mapped = ctl_u64("stats.mapped");
	st->metadata = ctl_u64("stats.metadata");
	st->purges = ctl_u64(ALL_ARENAS ".dirty_nmadvise");
	muzzy = ctl_u64(ALL_ARENAS ".muzzy_nmadvise");
	if (st->purges >= 0 && muzzy > 0)
		st->purges += muzzy;
}

/* jemalloc starts a large block at a random cache line of its first page
 * (cache-oblivious placement): only the whole pages inside it go.  The
 * program's errno is kept, as free() must. */
void heap_purge_block(void *p, size_t usable)
{
	uintptr_t from = ((uintptr_t)p + OS_PAGE - 1) & ~(uintptr_t)(OS_PAGE - 1);
	uintptr_t to = ((uintptr_t)p + usable) & ~(uintptr_t)(OS_PAGE - 1);
	int saved = errno;

	if (to > from)
		os_purge((void *)from, to - from, true);
	errno = saved;
}

/* jemalloc's free memory back to the system now instead of after decay. */
void heap_release_memory(void)
{
	char name[64];

	gsje_mallctl("thread.tcache.flush", NULL, NULL, NULL, 0);
	fmt_s(name, sizeof(name), "arena.%u.purge", (unsigned)MALLCTL_ARENAS_ALL);
	gsje_mallctl(name, NULL, NULL, NULL, 0);
}
