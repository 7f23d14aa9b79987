#define _GNU_SOURCE
#include "inspect.h"
#include "sites.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <sched.h>
#include <string.h>
#include <unistd.h>

#include "bcache.h"
#include "collect.h"
#include "frozen.h"
#include "garbage.h"
#include "account.h"
#include "heap.h"
#include "kroots.h"
#include "mark.h"
#include "objmap.h"
#include "options.h"
#include "os.h"
#include "roots.h"
#include "spin.h"
#include "stop.h"

#define SCAN_CHECK_PAGES (64 * 1024)

struct target {
	uintptr_t start;
	size_t size;
};

/* Working memory of one query: the shim's own pages (never roots), used
 * while the world is stopped, so filled without allocating. */
static atomic_flag query_busy = ATOMIC_FLAG_INIT;

static struct insp_state {
	struct target targets[INSP_MAX_TARGETS];
	size_t ntargets;
	uintptr_t lo, hi;                 /* span of the targets */
	struct gcshim_referrer *refs;     /* INSP_MAX_RESULTS */
	struct gcshim_block *blocks;      /* INSP_MAX_RESULTS */
	size_t nfound, nkept;
	int pagemap;
	const struct root_desc *root;     /* the root being scanned, or NULL */
	uintptr_t block, block_size;      /* the block being scanned */
} *iq;

static void root_each_frozen(void);

bool insp_init(void)
{
	iq = os_map(sizeof(*iq));
	if (!iq)
		return false;
	iq->refs = os_map(INSP_MAX_RESULTS * sizeof(*iq->refs));
	iq->blocks = os_map(INSP_MAX_RESULTS * sizeof(*iq->blocks));
	if (!frozen_init() || !iq->refs || !iq->blocks)
		return false;
	roots_add_extra(root_each_frozen);
	roots_add_described(ROOT_GARBAGE, garbage_each_root);
	roots_add_described(ROOT_EPOLL, kroots_each_root);
	return true;
}

static void query_lock(void)
{
	spin_lock_yield(&query_busy);
}

static void query_unlock(void)
{
	spin_unlock(&query_busy);
}

/* A query of a thread that does not exist in a forked child is over. */
void insp_fork_child(void)
{
	query_unlock();
}

static size_t heap_words(void)
{
	return (heap_top() - om.base) >> (OM_GRANULE_LG + 6);
}

static void describe_block(uintptr_t start, size_t size, struct gcshim_block *out)
{
	out->start = (void *)start;
	out->size = size;
	out->generation = collect_generation(start);
	out->frozen = frozen_at(start);
	out->site = sites_of(start);
	out->requested = sites_request(start, size);
}

int insp_is_tracked(uintptr_t p, struct gcshim_block *out)
{
	uintptr_t start;
	size_t size;

	if (!om_in_heap((void *)p) || !om_find(p, &start, &size) || bcache_holds((void *)start))
		return 0;
	if (out)
		describe_block(start, size, out);
	return 1;
}

/* ---- scanning memory, world stopped ---------------------------------------- */

typedef void (*word_fn)(uintptr_t where, uintptr_t value);

static void scan_words(uintptr_t lo, uintptr_t hi, word_fn fn)
{
	const uintptr_t *p = (const uintptr_t *)((lo + 7) & ~(uintptr_t)7);
	const uintptr_t *end = (const uintptr_t *)(hi & ~(uintptr_t)7);

	for (; p < end; p++)
		fn((uintptr_t)p, *p);
}

static void scan_bytes(uintptr_t lo, uintptr_t hi, word_fn fn)
{
	for (uintptr_t p = lo; p + sizeof(uintptr_t) <= hi; p++) {
		uintptr_t w;

		memcpy(&w, (const void *)p, sizeof(w));
		fn(p, w);
	}
}

struct run_scan {
	bool code;
	word_fn fn;
};

static void scan_run(uintptr_t a, uintptr_t b, void *arg)
{
	const struct run_scan *rs = arg;

	if (rs->code)
		scan_bytes(a, b, rs->fn);
	else
		scan_words(a, b, rs->fn);
}

/* As the marker reads memory: only pages the program wrote. */
static void scan_range(uintptr_t lo, uintptr_t hi, bool resident_only, bool shared, bool code,
		       word_fn fn)
{
	struct run_scan rs = { code, fn };

	if (!resident_only || iq->pagemap < 0)
		scan_words(lo, hi, fn);
	else
		os_written_runs(iq->pagemap, lo, hi, shared, scan_run, &rs);
}

static void scan_block(uintptr_t start, size_t size, word_fn fn)
{
	scan_range(start, start + size, size >= SCAN_CHECK_PAGES, false, false, fn);
}

/* Every live block, in address order. */
static void each_live_block(void (*fn)(uintptr_t start, size_t size))
{
	size_t words = heap_words();

	for (size_t w = 0; w < words; w++) {
		uint64_t live = atomic_load_explicit(&om.starts[w], memory_order_relaxed);

		while (live) {
			uintptr_t g = (w << 6) + (uintptr_t)__builtin_ctzll(live);
			uintptr_t off = g << OM_GRANULE_LG;
			size_t size = om_size_at(off);

			live &= live - 1;
			if (size)
				fn(om.base + off, size);
		}
	}
}

/* Runs `work` with every other thread stopped, under the collector's lock:
 * no collection moves blocks or bitmaps meanwhile. */
static bool with_world_stopped(bool from_ctl, uintptr_t self_sp, void (*work)(const struct world *, bool))
{
	struct world w;
	bool ok;

	collect_lock();
	iq->pagemap = open("/proc/self/pagemap", O_RDONLY | O_CLOEXEC);
	roots_prepare();
	w.self_sp = self_sp ? self_sp : (uintptr_t)__builtin_frame_address(0);
	w.self_tp = (uintptr_t)pthread_self();
	ok = stop_world(&w);
	if (ok) {
		work(&w, from_ctl);
		resume_world(&w);
	}
	if (iq->pagemap >= 0)
		os_close(iq->pagemap);
	collect_unlock();
	if (!ok)
		errno = EAGAIN;
	return ok;
}

/* Targets: the live blocks containing the given addresses, sorted. */
static bool set_targets(const uintptr_t *ptrs, size_t n)
{
	iq->ntargets = 0;
	iq->lo = UINTPTR_MAX;
	iq->hi = 0;
	for (size_t i = 0; i < n && iq->ntargets < INSP_MAX_TARGETS; i++) {
		uintptr_t start;
		size_t size, j;

		if (!om_in_heap((void *)ptrs[i]) || !om_find(ptrs[i], &start, &size))
			continue;
		for (j = 0; j < iq->ntargets && iq->targets[j].start != start; j++)
			;
		if (j < iq->ntargets)
			continue;
		for (j = iq->ntargets; j > 0 && iq->targets[j - 1].start > start; j--)
			iq->targets[j] = iq->targets[j - 1];
		iq->targets[j] = (struct target){ start, size };
		iq->ntargets++;
		if (start < iq->lo)
			iq->lo = start;
		if (start + size > iq->hi)
			iq->hi = start + size;
	}
	return iq->ntargets > 0;
}

/* The target a word points into: its start, inside it, or one past its
 * end when no block starts there (the marker's rule). */
static const struct target *target_of(uintptr_t v)
{
	if (v < iq->lo || v > iq->hi)
		return NULL;
	for (size_t i = 0; i < iq->ntargets; i++) {
		const struct target *t = &iq->targets[i];

		if (v >= t->start && v < t->start + t->size)
			return t;
		if (v == t->start + t->size && !om_usable((void *)v))
			return t;
	}
	return NULL;
}

/* ---- referents ---------------------------------------------------------------- */

static void note_referent(uintptr_t where, uintptr_t v)
{
	uintptr_t start;
	size_t size;

	(void)where;
	if (v - om.base >= om.size || !om_find(v, &start, &size))
		return;
	for (size_t i = 0; i < iq->nkept; i++)
		if (iq->blocks[i].start == (void *)start)
			return;
	iq->nfound++;
	if (iq->nkept < INSP_MAX_RESULTS)
		describe_block(start, size, &iq->blocks[iq->nkept++]);
}

static void referents_work(const struct world *w, bool from_ctl)
{
	(void)w, (void)from_ctl;
	for (size_t i = 0; i < iq->ntargets; i++)
		scan_block(iq->targets[i].start, iq->targets[i].size, note_referent);
}

long insp_referents(const uintptr_t *ptrs, size_t n, bool from_ctl, uintptr_t self_sp,
		    void (*emit)(const struct gcshim_block *b, void *arg), void *arg)
{
	long found;

	query_lock();
	iq->nfound = iq->nkept = 0;
	if (set_targets(ptrs, n) && !with_world_stopped(from_ctl, self_sp, referents_work)) {
		query_unlock();
		return -1;
	}
	for (size_t i = 0; i < iq->nkept; i++)
		emit(&iq->blocks[i], arg);
	found = (long)iq->nfound;
	query_unlock();
	return found;
}

/* ---- referrers -------------------------------------------------------------------- */

static void copy_path(char *dst, size_t cap, const char *src, size_t n)
{
	if (n >= cap)
		n = cap - 1;
	memcpy(dst, src, n);
	dst[n] = '\0';
}

static void note_referrer(uintptr_t where, uintptr_t v)
{
	const struct target *t = target_of(v);
	struct gcshim_referrer *r;

	if (!t)
		return;
	iq->nfound++;
	if (iq->nkept == INSP_MAX_RESULTS)
		return;
	r = &iq->refs[iq->nkept++];
	memset(r, 0, sizeof(*r));
	r->where = (void *)where;
	r->target = (void *)t->start;
	if (!iq->root) {
		r->kind = GCSHIM_REF_BLOCK;
		r->block = r->region_start = (void *)iq->block;
		r->size = iq->block_size;
		r->region_end = (void *)(iq->block + iq->block_size);
		return;
	}
	r->region_start = (void *)iq->root->map_lo;
	r->region_end = (void *)iq->root->map_hi;
	switch (iq->root->kind) {
	case ROOT_STACK:
		r->kind = GCSHIM_REF_STACK;
		r->tid = iq->root->tid;
		break;
	case ROOT_DATA:
		r->kind = GCSHIM_REF_DATA;
		r->offset = where - iq->root->base;
		copy_path(r->path, sizeof(r->path), iq->root->path, iq->root->path_len);
		break;
	case ROOT_EPOLL:
		r->kind = GCSHIM_REF_EPOLL;
		break;
	case ROOT_GARBAGE:
		r->kind = GCSHIM_REF_GARBAGE;
		break;
	default:
		r->kind = GCSHIM_REF_MMAP;
		if (iq->root->path)
			copy_path(r->path, sizeof(r->path), iq->root->path, iq->root->path_len);
		break;
	}
}

static void scan_root(const struct root_desc *d, void *arg)
{
	(void)arg;
	iq->root = d;
	scan_range(d->lo, d->hi, d->resident_only, d->shared, d->code, note_referrer);
	iq->root = NULL;
}

static void scan_heap_block(uintptr_t start, size_t size)
{
	iq->block = start;
	iq->block_size = size;
	scan_block(start, size, note_referrer);
}

static void referrers_work(const struct world *w, bool from_ctl)
{
	iq->root = NULL;
	each_live_block(scan_heap_block);
	roots_enumerate(w, (enum roots_mode)opt_int(OPT_ROOTS), from_ctl, scan_root, NULL);
}

long insp_referrers(const uintptr_t *ptrs, size_t n, bool from_ctl, uintptr_t self_sp,
		    void (*emit)(const struct gcshim_referrer *r, void *arg), void *arg)
{
	long found;

	query_lock();
	iq->nfound = iq->nkept = 0;
	if (set_targets(ptrs, n) && !with_world_stopped(from_ctl, self_sp, referrers_work)) {
		query_unlock();
		return -1;
	}
	for (size_t i = 0; i < iq->nkept; i++)
		emit(&iq->refs[i], arg);
	found = (long)iq->nfound;
	query_unlock();
	return found;
}

/* ---- objects ------------------------------------------------------------------------ */

size_t insp_objects(uintptr_t *cursor, int generation, size_t min_size,
		    struct gcshim_block *out, size_t cap)
{
	uintptr_t end = heap_words() << 6, g = *cursor;
	size_t n = 0;

	while (g < end && n < cap) {
		uint64_t live = atomic_load_explicit(&om.starts[g >> 6], memory_order_relaxed) &
				(~0ULL << (g & 63));

		if (!live) {
			g = (g | 63) + 1;
			continue;
		}
		g = (g & ~(uintptr_t)63) + (uintptr_t)__builtin_ctzll(live);
		{
			uintptr_t start = om.base + (g << OM_GRANULE_LG);
			size_t size = om_size_at(g << OM_GRANULE_LG);

			g++;
			if (!size || size < min_size || bcache_holds((void *)start))
				continue;
			describe_block(start, size, &out[n]);
			if (generation >= 0 && out[n].generation != generation)
				continue;
			n++;
		}
	}
	*cursor = g;
	return n;
}

/* ---- freezing ------------------------------------------------------------------------- */

/* Frozen blocks are roots: what they point to stays alive. */
static void mark_frozen_block(uintptr_t start, size_t size)
{
	if (frozen_at(start))
		mark_range(start, start + size, size >= SCAN_CHECK_PAGES, false);
}

static void root_each_frozen(void)
{
	if (atomic_load(&frozen_any))
		each_live_block(mark_frozen_block);
}

long insp_freeze(void)
{
	size_t words;
	long n = 0;

	collect_lock();
	gc_set_mode(MODE_FROZEN, true);
	atomic_store(&frozen_any, true);
	words = heap_words();
	for (size_t w = 0; w < words; w++) {
		uint64_t live = atomic_load_explicit(&om.starts[w], memory_order_relaxed);

		if (live)
			atomic_fetch_or_explicit(&frozen_bits[w], live,
						 memory_order_relaxed);
	}
	/* Cached blocks are registered but free.  None is added while this
	 * runs: with MODE_FROZEN set, free() bypasses the caches. */
	bcache_each(frozen_forget);
	collect_unlock();
	n = insp_freeze_count();
	return n;
}

long insp_unfreeze(void)
{
	size_t words;
	long n = 0;

	collect_lock();
	words = heap_words();
	for (size_t w = 0; w < words; w++) {
		uint64_t f = atomic_load_explicit(&frozen_bits[w], memory_order_relaxed);

		if (!f)
			continue;
		f &= atomic_load_explicit(&om.starts[w], memory_order_relaxed);
		n += __builtin_popcountll(f);
		collect_make_oldest(w, f);
		atomic_store_explicit(&frozen_bits[w], 0, memory_order_relaxed);
	}
	atomic_store(&frozen_any, false);
	gc_set_mode(MODE_FROZEN, false);
	collect_unlock();
	return n;
}

long insp_freeze_count(void)
{
	size_t words = heap_words();
	long n = 0;

	if (!atomic_load(&frozen_any))
		return 0;
	for (size_t w = 0; w < words; w++)
		n += __builtin_popcountll(frozen_word(w) &
					  atomic_load_explicit(&om.starts[w], memory_order_relaxed));
	return n;
}
