#define _GNU_SOURCE
#include "collect.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdlib.h>
#include <sched.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "bcache.h"
#include "garbage.h"
#include "account.h"
#include "gcshim.h"
#include "heap.h"
#include "frozen.h"
#include "kroots.h"
#include "log.h"
#include "mark.h"
#include "markers.h"
#include "objmap.h"
#include "prefault.h"
#include "options.h"
#include "os.h"
#include "release.h"
#include "thread.h"
#include "roots.h"
#include "sites.h"
#include "events.h"
#include "spin.h"
#include "stop.h"
#include "sweep.h"
#include "watch.h"
#include "wtrack.h"
#include "rtrack.h"
#include "vacant.h"
#include "young.h"
#include "probes.h"

/* 512 MiB of address space, committed as used; less under an address-space
 * limit, as what does not fit waits for the next collection. */
#define DEAD_ENTRIES (1u << 26)
#define DEAD_ENTRIES_MIN (1u << 17)
#define PAUSES 1024

bool gc_verify;

static struct {
	bool ready;
	atomic_flag busy;
	uint64_t *age1, *age2;       /* survived one / two collections */
	uintptr_t *dead;
	size_t ndead, dead_cap;
	struct os_scratch dead_mem;  /* co.dead's pages */
	uint32_t number;             /* collections run so far */
	uint32_t minors;             /* of them, minor ones (young.h) */
	uint64_t total_written_pages;
	int64_t live_full;           /* mem_alloc the last generation-2 one left */
	/* What the caller of the last full and the last minor one waited:
	 * the pause, and the listing and protecting before it. */
	uint64_t full_wait_ns, minor_wait_ns;
	uint64_t minor_saves_ns;     /* for this one (young.h), UINT64_MAX if asked */
	/* Half the marking of the collections marked alone for fear of the
	 * mark bytes' first writes since several markers last marked (what
	 * a second marker would have saved), and whether this one is. */
	uint64_t forgone_ns;
	bool alone_for_faults;
	uint64_t rate[2];            /* marking ns per MiB: one marker, several */
	uint64_t faults_ns;          /* of the mark bytes' first writes, foreseen */
	uint32_t free_choices;       /* collections the rates chose for */
	struct gen_stats gens[3];
	struct collection last, max;
	uint64_t pauses[PAUSES];
	uint64_t total_pause_ns, total_root_bytes, total_heap_bytes;
	int64_t total_collected, total_collected_bytes, abandoned;
	enum roots_mode roots;
	bool dry;                    /* a leak check: nothing changes */
	bool unregister;             /* dead blocks leave the object map at once */
	unsigned markers;            /* of the next stop, with their memory mapped */
} co = { .busy = ATOMIC_FLAG_INIT };

static void collect_auto(enum gc_reason why);
static bool collect_for_room(void);

bool collect_init(void)
{
	size_t bitmap = om.size >> (OM_GRANULE_LG + 3);
	size_t dead_bytes = DEAD_ENTRIES * sizeof(*co.dead);

	co.age1 = os_map(bitmap);
	co.age2 = os_map(bitmap);
	co.dead = os_map_some(&dead_bytes, DEAD_ENTRIES_MIN * sizeof(*co.dead));
	co.dead_cap = dead_bytes / sizeof(*co.dead);
	co.dead_mem.base = co.dead;
	co.roots = (enum roots_mode)opt_int(OPT_ROOTS);
	gc_verify = opt_int(OPT_VERIFY) != 0;
	if (!co.age1 || !co.age2 || !co.dead || !mark_init() || !roots_init() || !young_init() ||
	    !garbage_init() || !stop_init((int)opt_int(OPT_SIGNAL), (int)opt_int(OPT_STOP_TIMEOUT),
			       opt_int(OPT_TRACE) != 0))
		return false;
	prefault_add(co.age1, OM_GRANULE_LG + 3);
	prefault_add(co.age2, OM_GRANULE_LG + 3);
	prefault_add(mark_bits(), OM_GRANULE_LG + 3);
	kroots_init();
	sweep_init();
	gc_register_collector(collect_auto, collect_for_room);
	roots_add_extra(garbage_scan_root);
	roots_add_extra(kroots_scan);
	if (!watch_init())
		return false;
	co.ready = true;
	return true;
}

void collect_lock(void)
{
	spin_lock_yield(&co.busy);
}

void collect_unlock(void)
{
	spin_unlock(&co.busy);
}

/* In a dead block's entry, with its generation: the block was taken out
 * of the object map while the world was stopped. */
#define DEAD_UNREGISTERED 4

/* The collector's working memory (the mark stacks, the list of dead
 * blocks) keeps what a collection used resident for the next, up to 1/16
 * of the live heap's size each: a program that collects at a steady rate
 * needs as much again, and faulting it in would be part of the pause. */
static size_t scratch_cap(void)
{
	int64_t live = atomic_load(&gc.live_after);

	return live > 0 ? (size_t)live / 16 : 0;
}

/* The dead list is filled again by the next collection, with about as
 * many entries when the program runs as before: its pages are kept, up to
 * half the live heap, as a page fault each to bring them back costs more
 * than the rest of finding the dead blocks.  (A collection that finds as
 * many bytes dead as stay live, in blocks of 16 bytes, lists half the
 * live heap's size.)  Those an earlier collection filled are kept as well:
 * the dead counts of a program's collections go up and down.  The peak it
 * reached in the collection is not raised by keeping them. */
static void trim_dead_list(void)
{
	int64_t live = atomic_load(&gc.live_after);
	size_t used = co.ndead * sizeof(*co.dead);

	if (used < co.dead_mem.resident)
		used = co.dead_mem.resident;
	os_scratch_trim(&co.dead_mem, used, live > 0 ? (size_t)live / 2 : 0);
}

/* Finding the dead blocks is shared by the marker threads, after the
 * marking (mark_finish runs find_dead_share on each): they take the
 * heap's pages FIND_PAGES at a time, count the dead blocks of a batch,
 * reserve that many entries of the list with one atomic addition, then
 * fill them.  Nothing else changes the bitmaps while the world is
 * stopped, and each word is read and written by one marker only. */
#define FIND_PAGES 256

static struct {
	int gen;
	uint32_t need;               /* page flags of the pages to visit, 0: all */
	uint32_t clear;              /* page flags cleared on the pages visited */
	bool count;                  /* blocks per generation, for DEBUG_STATS */
	bool alone;                  /* one marker: no count before the fill */
	bool pins;                   /* blocks were ever pinned: ask each dead one */
	struct collection *c;
	size_t pages;
	_Atomic size_t next_page, reserved;
	bool vacancy;                /* pages left empty are noted (vacant.h) */
	/* every entry written is a block unregistered, and per sweep bucket
	 * how many and their bytes: the hand-over need not look at each
	 * block again (reclaim) */
	bool all_unregistered;
	struct sweep_counts counts;
} fd;

/* A batch's share of the list: entries beyond co.dead_cap are not
 * written, and their blocks stay for the next collection. */
struct dead_out {
	uintptr_t *at;
	size_t left;
	int64_t objects[3];
	struct sweep_counts counts;
};

static bool note_dead(struct dead_out *o, uintptr_t block)
{
	if (!o->left)
		return false;
	*o->at++ = block;
	o->left--;
	return true;
}

/* One word of the bitmaps: 64 granules. */
struct word_bits {
	uint64_t live, a1, a2, dead, surv;
};

/* Unmarked live blocks of the collected generations are dead; marked
 * ones of those generations survive. */
static inline struct word_bits read_word(size_t w, int gen)
{
	uint64_t live = atomic_load_explicit(&om.starts[w], memory_order_relaxed);
	uint64_t m = mark_word(w), a1 = co.age1[w] & live, a2 = co.age2[w] & live;
	uint64_t eligible = gen >= 2 ? ~0ULL : gen == 1 ? ~a2 : ~a1;

	return (struct word_bits){ live, a1, a2, live & ~m & eligible & ~frozen_word(w),
				   live & m & eligible };
}

/* Without a popcount instruction assumed: the shim runs on any x86-64. */
static inline size_t bits_set(uint64_t x)
{
	x -= (x >> 1) & 0x5555555555555555ULL;
	x = (x & 0x3333333333333333ULL) + ((x >> 2) & 0x3333333333333333ULL);
	x = (x + (x >> 4)) & 0x0f0f0f0f0f0f0f0fULL;
	return (size_t)((x * 0x0101010101010101ULL) >> 56);
}

/* The common case of the loop below, every dead block unregistered: each
 * entry written once, with its flags; returns the blocks noted. */
static inline uint64_t note_unregistered(size_t w, struct word_bits b, struct dead_out *o)
{
	uintptr_t *at = o->at, base = om.base + ((w << 6) << OM_GRANULE_LG);
	size_t left = o->left;
	uint64_t dead = b.dead, noted = 0;

	for (; dead && left; dead &= dead - 1, left--) {
		unsigned i = (unsigned)__builtin_ctzll(dead);

		/* the block's generation rides in the low bits of its address */
		*at++ = (base + ((uintptr_t)i << OM_GRANULE_LG)) |
			((b.a2 >> i) & 1 ? 2 : (b.a1 >> i) & 1) | DEAD_UNREGISTERED;
		noted |= 1ULL << i;
	}
	o->at = at;
	o->left = left;
	return noted;
}

/* The dead blocks go to the list; mark bits are cleared for the next
 * collection; every block left moves up one generation, frozen ones too
 * (young.h says why each must).  Returns the blocks still young for a
 * collection of generation 1: those that were in generation 0. */
static uint64_t sweep_word(size_t w, struct word_bits b, struct dead_out *o)
{
	uint64_t dead = b.dead, gone = 0, left = b.live & ~b.dead;
	uint64_t age2 = fd.gen == 0 ? b.a2 & left : (b.a2 | b.a1) & left;

	os_store_if_changed(&mark_bits()[w], 0);
	if (co.dry) {   /* a leak check: the ages stay as they are */
		for (; dead; dead &= dead - 1) {
			uintptr_t g = (w << 6) + (uintptr_t)__builtin_ctzll(dead);

			note_dead(o, om.base + (g << OM_GRANULE_LG));
		}
		return 0;
	}
	if (fd.count) {
		o->objects[0] += (int64_t)bits_set(b.live & ~b.a1);
		o->objects[1] += (int64_t)bits_set(b.a1 & ~b.a2);
		o->objects[2] += (int64_t)bits_set(b.a2);
	}
	os_store_if_changed(&co.age2[w], age2);
	os_store_if_changed(&co.age1[w], left);
	if (fd.all_unregistered)
		gone = note_unregistered(w, b, o);
	else
		for (; dead; dead &= dead - 1) {
			unsigned i = (unsigned)__builtin_ctzll(dead);
			uintptr_t g = (w << 6) + i, p = om.base + (g << OM_GRANULE_LG);

			/* the block's generation rides in its address's low bits */
			if (!note_dead(o, p | ((b.a2 >> i) & 1 ? 2 : (b.a1 >> i) & 1)))
				break;
			if (co.unregister && !(fd.pins && sites_pinned(p))) {
				o->at[-1] |= DEAD_UNREGISTERED;
				gone |= 1ULL << i;
			}
		}
	/* one store for the word, not an atomic operation a block */
	if (gone)
		atomic_store_explicit(&om.starts[w], b.live & ~gone, memory_order_relaxed);
	return left & ~age2;
}

/* The pages a collection visits: all where blocks start, or in a minor
 * one those flagged young. */
static bool visits(size_t pg)
{
	return om_page_has_starts(pg) && (!fd.need || om_page_flags(pg) & fd.need);
}

#define PAGE_WORDS(w, pg)                                                       \
	for (size_t w = (pg) * OM_WORDS_PER_PAGE; w < ((pg) + 1) * OM_WORDS_PER_PAGE; w++)

static size_t count_dead(size_t pg, size_t end)
{
	size_t n = 0;

	for (; pg < end; pg++)
		if (visits(pg))
			PAGE_WORDS(w, pg)
				n += bits_set(read_word(w, fd.gen).dead);
	return n;
}

/* A page keeps its generation-1 flag while blocks on it are still young
 * for generation 1. */
static void sweep_page(size_t pg, struct dead_out *o)
{
	const uintptr_t *was = o->at;
	uint64_t young1 = 0;

	PAGE_WORDS(w, pg)
		young1 |= sweep_word(w, read_word(w, fd.gen), o);
	if (o->at != was)
		sweep_count(&o->counts, om.base + (pg << OM_PAGE_LG), (size_t)(o->at - was));
	if (fd.vacancy && om_page_unstarted(pg))
		vacant_page_emptied(pg);
	if (fd.clear)
		om_page_clear_flags(pg, young1 ? fd.clear & ~OM_YOUNG1 : fd.clear);
}

/* A batch's entries follow the last batch's when one marker finds them
 * all; with several, the batch reserves as many as it will fill. */
static void find_in(size_t pg, size_t end)
{
	size_t at = fd.alone ? fd.reserved : 0, n = co.dead_cap - at;
	struct dead_out o = { 0 };

	if (!fd.alone) {
		n = count_dead(pg, end);
		at = atomic_fetch_add_explicit(&fd.reserved, n, memory_order_relaxed);
	}
	if (at < co.dead_cap) {
		o.at = co.dead + at;
		o.left = n < co.dead_cap - at ? n : co.dead_cap - at;
	}
	for (; pg < end; pg++)
		if (visits(pg))
			sweep_page(pg, &o);
	if (fd.alone && o.at)
		fd.reserved = (size_t)(o.at - co.dead);
	for (int g = 0; fd.count && g < 3; g++)
		__atomic_fetch_add(&fd.c->objects[g], o.objects[g], __ATOMIC_RELAXED);
	sweep_counts_add(&fd.counts, &o.counts);
}

static void find_dead_share(void)
{
	size_t pg, end;

	while (om_claim_pages(&fd.next_page, fd.pages, FIND_PAGES, &pg, &end))
		find_in(pg, end);
}

static void find_prepare(int gen, struct collection *c, bool count, bool alone, bool minor,
			 bool vacancy)
{
	fd.alone = alone;
	fd.gen = gen;
	fd.need = minor ? yg.flags : 0;
	fd.clear = co.dry ? 0 : young_flags_cleared(gen);
	fd.count = count;
	fd.pins = gc_mode_now() & MODE_PINNED;
	fd.c = c;
	fd.pages = (heap_top() - om.base) >> OM_PAGE_LG;
	fd.next_page = 0;
	fd.reserved = 0;
	fd.vacancy = vacancy && !co.dry;
	fd.all_unregistered = co.unregister && !fd.pins && !co.dry;
	memset(&fd.counts, 0, sizeof(fd.counts));
}

#define LOG_FRAMES 12

/* One line per block: address, requested size (the size class when no
 * request was recorded), generation, allocation site (raw return
 * addresses, innermost first) and the first bytes. */
static void log_block(const char *what, uintptr_t p, size_t size, int gen)
{
	const unsigned char *b = (const unsigned char *)p;
	const uintptr_t *f = NULL;
	size_t depth = sites_frames(sites_of(p), &f), len = 0;
	char hex[3 * 16 + 1], site[LOG_FRAMES * 20 + 16];
	size_t n = size < 16 ? size : 16, asked = sites_request(p, size);

	for (size_t i = 0; i < n; i++)
		fmt_s(hex + 3 * i, 4, "%c%c ", "0123456789abcdef"[b[i] >> 4],
		      "0123456789abcdef"[b[i] & 15]);
	hex[3 * n] = '\0';
	if (!depth)
		fmt_s(site, sizeof(site), "unknown");
	for (size_t i = 0; i < depth && i < LOG_FRAMES; i++)
		len += fmt_s(site + len, sizeof(site) - len, "%s%p", i ? " " : "", (void *)f[i]);
	log_msg("gc: %s %p size %zu%s gen %d site %s: %s", what, (void *)p, asked ? asked : size,
		asked ? "" : " (size class)", gen, site, hex);
}

/* The common case of reclaim(), kept apart from the rest because it
 * runs once per dead block of every automatic collection: a block the
 * stop unregistered, no debug log, no recorded request sizes to look up.
 * Counted, and moved to the front of the list for the sweep; true when
 * the list is done, false at the first entry that needs more. */
static bool hand_over_plain(struct collection *c, size_t *i, size_t *handed, int64_t *bytes)
{
	int64_t n = 0, sum = 0;
	size_t k = *i;

	for (; k < co.ndead && co.dead[k] & DEAD_UNREGISTERED; k++) {
		uintptr_t p = co.dead[k] & ~(uintptr_t)7;
		size_t size = om_size_at(p - om.base);

		co.dead[*handed + (size_t)n++] = p;
		sum += (int64_t)size;
	}
	c->collected += n;
	c->collected_bytes += sum;
	c->collected_requested += sum;
	*handed += (size_t)n;
	*bytes += sum;
	*i = k;
	return k == co.ndead;
}

/* The common case whole: every entry a block the stop unregistered, and
 * the counts the finding of them kept, so that no block is looked at
 * again before the sweep sorts them. */
static bool hand_over_counted(struct collection *c, struct thread_rec *t)
{
	int64_t bytes = sweep_counts_bytes(&fd.counts);

	c->collected += (int64_t)co.ndead;
	c->collected_bytes += bytes;
	c->collected_requested += bytes;
	release_count(t, co.ndead, bytes);
	sweep_hand_over_counted(co.dead, co.ndead, &fd.counts, trim_dead_list);
	if (t)
		gc_publish(t);
	return true;
}

/* After the world resumed: free the dead blocks, or keep them.  later:
 * the blocks the stop unregistered are counted as freed now and handed
 * to the sweep (their entries moved to the front of the list); true when
 * any were. */
static bool reclaim(struct collection *c, bool save, bool later)
{
	int debug = atomic_load(&gc.debug);
	struct thread_rec *t = thread_get();
	size_t handed = 0;
	int64_t handed_bytes = 0;
	bool plain = later && !save && !(debug & GCSHIM_DEBUG_COLLECTABLE) &&
		     !sites_sizes_recorded();

	if (plain && co.ndead && fd.all_unregistered)
		return hand_over_counted(c, t);

	for (size_t i = 0; i < co.ndead; i++) {
		uintptr_t p;
		int gen;
		bool ours;
		size_t size;

		if (plain && hand_over_plain(c, &i, &handed, &handed_bytes))
			break;
		p = co.dead[i] & ~(uintptr_t)7;
		gen = (int)(co.dead[i] & 3);
		ours = co.dead[i] & DEAD_UNREGISTERED;
		size = ours ? om_size_at(p - om.base) : om_usable((void *)p);
		/* A block left registered may have been freed since, through a
		 * disguised pointer: then it waits in a cache, or is gone. */
		if (!ours && (!size || bcache_holds((void *)p)))
			continue;
		if (!ours && sites_pinned(p)) {   /* gcshim_pin: uncollectable, kept */
			c->uncollectable++;
			if (debug & GCSHIM_DEBUG_UNCOLLECTABLE)
				log_block("uncollectable", p, size, gen);
			garbage_add(p, co.number);
			gc_set_mode(MODE_GARBAGE, true);
			continue;
		}
		c->collected++;
		c->collected_bytes += (int64_t)size;
		c->collected_requested += (int64_t)(sites_request(p, size) ?: size);
		if (debug & GCSHIM_DEBUG_COLLECTABLE)
			log_block("collectable", p, size, gen);
		if (save) {
			garbage_add(p, co.number);
			gc_set_mode(MODE_GARBAGE, true);
		} else if (ours && later) {
			co.dead[handed++] = p;
			handed_bytes += (int64_t)size;
		} else if (ours) {
			release_unregistered(t, p, size);
		} else {
			release_block(t, (void *)p);   /* unpinned since */
		}
	}
	release_count(t, handed, handed_bytes);
	sweep_hand_over(co.dead, handed, handed_bytes, trim_dead_list);
	if (t)
		gc_publish(t);
	return handed != 0;
}

static void log_start(int gen)
{
	log_msg("gc: collecting generation %d...", gen);
}

static void log_done(const struct collection *c)
{
	uint64_t tenths_ms = (c->pause_ns + c->sweep_ns) / 100000;
	char frac[8];

	/* CPython prints "%.4fs"; the log formatter has no widths */
	fmt_s(frac, sizeof(frac), "%lu", (unsigned long)(10000 + tenths_ms % 10000));
	log_msg("gc: objects in each generation: %ld %ld %ld", (long)c->objects[0],
		(long)c->objects[1], (long)c->objects[2]);
	log_msg("gc: done, %ld unreachable, %ld uncollectable, %lu.%ss elapsed",
		(long)c->collected, (long)c->uncollectable,
		(unsigned long)(tenths_ms / 10000), frac + 1);
	if (co.number == 1)   /* the first collection started the tracking */
		log_msg("gc: write tracking: %s", wtrack_state_name(wtrack_state()));
}

/* Marker threads pay off on a heap that takes a while to mark.  Below
 * this much scanned (under a millisecond of marking) a second marker
 * saves less of the pause than it costs in processor time (starting,
 * sharing, folding the mark bytes, waiting at the end).  Above it, the
 * saving adds up in a program collected often: one that keeps 10 MiB of
 * trees and collects a hundred times ran in 0.84 of its time with two
 * markers instead of one. */
#define PARALLEL_MIN_BYTES (4u << 20)

/* Several markers must mark a MiB in this share of the time one takes:
 * besides their processor time, they cost what the pause does not show
 * (threads started and ended in the program's address space, mark bytes
 * to fold), and a heap of blocks with few pointers each (a leaky
 * program's strings) marks hardly faster with two, where one of trees
 * marks in 0.6 of the time.  The way not taken is measured again every
 * TRY_AGAIN collections, as a heap and the machine change. */
#define SEVERAL_SHARE 85
#define TRY_AGAIN 8

/* Smoothed over the last collections; only those that read enough for
 * the time to mean something, less the faults of mark bytes written for
 * the first time, which are weighed apart (first_writes_cost_more). */
static void note_rate(const struct collection *c)
{
	uint64_t bytes = c->heap_bytes + c->root_bytes, ns = c->roots_ns + c->mark_ns;
	uint64_t *r = &co.rate[c->markers > 1], v;

	if (bytes < PARALLEL_MIN_BYTES)
		return;
	if (c->markers > 1)
		ns = ns > co.faults_ns ? ns - co.faults_ns : 0;
	v = ns / (bytes >> 20) + 1;   /* never 0, which means unknown */
	*r = *r ? (*r + v) / 2 : v;
}

static bool several_mark_faster(void)
{
	bool several = !co.rate[0] || !co.rate[1] ||
		       co.rate[1] * 100 <= co.rate[0] * SEVERAL_SHARE;

	return ++co.free_choices % TRY_AGAIN ? several : !several;
}

/* CPython's bookkeeping: collecting generation g resets the counts of
 * generations up to g and adds one to the next generation's count. */
static void account(const struct collection *c, enum gc_reason why)
{
	int g = c->generation;
	struct thread_totals tt;

	thread_sum(&tt);
	co.gens[g].collections++;
	co.minors += c->minor;
	if (c->minor)
		co.minor_wait_ns = c->wait_ns;
	else
		co.full_wait_ns = c->wait_ns;
	co.total_written_pages += c->written_pages;
	if (g == 2)
		co.live_full = tt.bytes_allocated - tt.bytes_freed;
	co.gens[g].collected += c->collected;
	co.gens[g].uncollectable += c->uncollectable;
	atomic_store(&gc.count_base, tt.allocations - tt.frees);
	gc_collected(tt.bytes_allocated - tt.bytes_freed, (int64_t)c->root_bytes, c->collected_bytes,
		     why == GC_GROWTH);
	atomic_store(&gc.since, 0);
	for (int i = 1; i <= g; i++)
		atomic_store(&gc.gen_count[i], 0);
	if (g < 2)
		atomic_fetch_add(&gc.gen_count[g + 1], 1);
	co.pauses[co.number % PAUSES] = c->pause_ns;
	co.number++;
	co.total_pause_ns += c->pause_ns;
	co.total_root_bytes += c->root_bytes;
	co.total_heap_bytes += c->heap_bytes;
	co.total_collected += c->collected;
	co.total_collected_bytes += c->collected_bytes;
	co.last = *c;
	if (c->markers > 1)
		co.forgone_ns = 0;
	else if (co.alone_for_faults)
		co.forgone_ns += c->mark_ns / 2;
	note_rate(c);
	if (c->pause_ns > co.max.pause_ns)
		co.max = *c;
}

/* The last marking's time, grown with the heap since: a program still
 * building its data keeps what it allocates, and the heap a collection
 * marks has grown by as much (up to 8 times, past which the last marking
 * says little). */
static uint64_t predicted_mark_ns(void)
{
	int64_t live = atomic_load(&gc.live), after = atomic_load(&gc.live_after);
	uint64_t ns = co.last.mark_ns;

	if (after <= 0 || live <= after)
		return ns;
	return live / after >= 8 ? ns * 8 : (uint64_t)((double)ns * (double)live / (double)after);
}

/* Several markers write mark bytes, a 16th of the heap's range.  On a
 * heap that grew since they last did, each page of them for the new part
 * faults in as it is first written, unless made resident before the stop
 * (prefault.h, on kernels that can): where a fault costs as much as on
 * some virtual machines (10 us), a heap that grows as fast as it is
 * marked (a program still building its data) can pay more in those
 * faults than a second marker saves, about half the marking.  The faults
 * are paid once, and each collection marked alone forgoes its saving: as
 * one rents skis until the rent would have bought them, the faults are
 * taken once the savings forgone since several markers last marked would
 * have paid for them.  A heap that stopped growing is then marked by
 * several for good, and one still growing pays at most twice the least
 * it could. */
static bool first_writes_cost_more(void)
{
	if (prefault_possible())
		return false;   /* they are made before the stop (prefault.h) */
	co.faults_ns = mark_bytes_unused() / OS_PAGE * young_touch_ns();
	return co.faults_ns > predicted_mark_ns() / 2 + co.forgone_ns;
}

/* The roots count with the heap: the markers share big root mappings
 * too (mark.h), which in a program with arenas of its own (an
 * interpreter's, a compiler's) are most of what a collection reads. */
static unsigned markers_for_heap(void)
{
	int64_t work = co.number ? (int64_t)(co.last.heap_bytes + co.last.root_bytes) :
				   atomic_load(&gc.live);

	co.alone_for_faults = false;
	co.faults_ns = 0;
	if (markers_chosen())
		return markers_wanted();
	if (work < PARALLEL_MIN_BYTES)
		return 1;
	co.alone_for_faults = first_writes_cost_more();
	return !co.alone_for_faults && several_mark_faster() ? markers_wanted() : 1;
}

static int open_pagemap(void)
{
	return open("/proc/self/pagemap", O_RDONLY | O_CLOEXEC);
}

/* What an automatic minor collection saves the program: what it waits
 * for a full one, less what it waits for a minor one, whose preclean
 * (young.h) runs in the caller too. */
static uint64_t minor_saving(void)
{
	return co.full_wait_ns > co.minor_wait_ns ? co.full_wait_ns - co.minor_wait_ns : 0;
}

/* What the stop needs that cannot be had once the world is stopped: the
 * markers' memory, then the list of the shim's memory that is no root. */
static void prepare_stop(void)
{
	co.markers = mark_reserve(markers_for_heap());
	prefault_tables();
	if (!co.dry)
		young_prepare();
	roots_prepare();
}

const char *gc_failure_reason(int err)
{
	switch (err) {
	case ENOSYS: return "the collector is not available in this process";
	case EBUSY: return "a collection callback is running";
	case EOVERFLOW: return "epoll registrations overflowed their table";
	case EAGAIN: return "a thread could not be stopped in time";
	case EIO: return "/proc/self/maps could not be read";
	default: return "/proc/self/pagemap cannot be read";
	}
}

/* A block free in a cache now is allocated after this collection, but
 * taking it from the cache does not register it anew, which is what
 * flags a page young: it is made young here, its page flagged and its
 * age bits cleared, as registering it after the collection would.  Any
 * pointer to it the program stores is written after this collection
 * (young.h).  The other blocks of its page keep their ages. */
static void make_young(void *p)
{
	uintptr_t off = (uintptr_t)p - om.base, g = off >> OM_GRANULE_LG;

	co.age1[g >> 6] &= ~(1ULL << (g & 63));
	co.age2[g >> 6] &= ~(1ULL << (g & 63));
	om_page_set_flags(off >> OM_PAGE_LG, OM_YOUNG);
	vacant_keep(p);
}

static void make_cached_young(void)
{
	bcache_each(make_young);
	for (struct thread_rec *r = thread_first(); r; r = r->next) {
		void *f = atomic_load_explicit(&r->cache.freeing, memory_order_relaxed);

		if (f && om_in_heap(f))
			make_young(f);
	}
}

/* The stopped-world part: nothing here allocates or takes a lock that
 * another thread may hold.  Inlined into both callers: as a frame of its
 * own it leaves slots of earlier calls unwritten in the collecting
 * thread's scanned stack, and a stale pointer there keeps a block alive. */
static inline __attribute__((always_inline)) bool
stopped_phase(int gen, struct collection *c, int pagemap, bool count)
{
	struct world w;
	struct mark_stats ms;
	volatile uintptr_t here = 0;
	uint64_t t0, t1;
	unsigned markers;

	__builtin_unwind_init();
	w.self_sp = (uintptr_t)&here;
	w.self_tp = (uintptr_t)pthread_self();
	t0 = os_now_ns();
	if (!stop_world(&w)) {
		errno = EAGAIN;
		return false;
	}
	t1 = os_now_ns();
	markers = co.markers;
	c->minor = !co.dry && young_scan(pagemap, gen, co.minor_saves_ns);
	c->written_pages = young_last_pages();
	c->track_ns = os_now_ns() - t1;
	mark_begin(pagemap, markers);
	if (c->minor)
		young_begin(gen, gen == 0 ? co.age1 : co.age2);
	if (!roots_scan(&w, co.roots)) {
		yg.on = false;
		resume_world(&w);   /* without every root, nothing may be freed */
		errno = EIO;
		return false;
	}
	if (c->minor)
		young_mark_written(gen);
	c->roots_ns = os_now_ns() - t1 - c->track_ns;
	find_prepare(gen, c, count, markers == 1, c->minor, young_tracking());
	mark_finish(&ms, find_dead_share);
	yg.on = false;
	if (!co.dry) {
		vacant_begin(fd.vacancy);
		make_cached_young();
		vacant_end(co.age1, co.age2);
	}
	co.ndead = fd.reserved < co.dead_cap ? fd.reserved : co.dead_cap;
	c->mark_ns = ms.marked_ns - t1 - c->track_ns - c->roots_ns;
	c->markers = ms.markers;
	resume_world(&w);
	c->stop_ns = w.stop_ns;
	c->pause_ns = w.released_at - t0;
	c->root_bytes = ms.root_bytes;
	c->heap_bytes = ms.heap_bytes;
	return true;
}

/* The stopped-world part and what it needs first, inlined like it; errno
 * says what failed: the pagemap's own error, EOVERFLOW (epoll
 * registrations overflowed their table), EAGAIN (a thread did not stop in
 * time) or EIO (the mappings could not be read). */
static inline __attribute__((always_inline)) bool
run_stopped(int gen, struct collection *c, int pagemap, bool count)
{
	if (pagemap < 0)
		return false;
	if (!kroots_complete()) {
		errno = EOVERFLOW;
		return false;
	}
	return stopped_phase(gen, c, pagemap, count);
}

long gc_collect(int gen, enum gc_reason why, bool save, struct collection *out)
{
	struct collection c = { .generation = gen };
	int debug = atomic_load(&gc.debug), pagemap, err;
	uint64_t t, t2, start;
	bool ok;

	if (gen < 0 || gen > 2) {
		errno = EINVAL;
		return -1;
	}
	if (!co.ready || stop_in_handler()) {
		errno = ENOSYS;
		return -1;
	}
	if (watch_in_callback()) {
		errno = EBUSY;   /* from a collection callback: one is under way */
		return -1;
	}
	if (why == GC_MANUAL || why == GC_LIMIT)
		collect_lock();
	else if (!spin_trylock(&co.busy))
		return 0;   /* a collection is under way: it serves this trigger */
	if (why == GC_GROWTH)   /* counted here: every publish past the target calls */
		stat_inc(EV_growth_triggers);
	sweep_finish();   /* the list is about to be filled again */
	start = os_now_ns();
	watch_collection_start(gen);
	PROBE(gc__start, gen);
	if (debug & GCSHIM_DEBUG_STATS)
		log_start(gen);
	save = save || gc_verify || (debug & GCSHIM_DEBUG_SAVEALL);
	pagemap = open_pagemap();
	prepare_stop();
	/* one asked for of generation 0 or 1 wants the next to be minor; a
	 * full one asked for weighs the tracking as automatic ones do */
	co.minor_saves_ns = why == GC_MANUAL && gen < 2 ? UINT64_MAX : minor_saving();
	young_preclean(pagemap, co.minor_saves_ns);
	co.unregister = !save;
	ok = run_stopped(gen, &c, pagemap, debug & GCSHIM_DEBUG_STATS);
	err = errno;
	co.unregister = false;
	if (ok)
		young_end(gen);
	if (pagemap >= 0)
		os_close(pagemap);
	mark_release(scratch_cap());
	if (!ok) {
		co.abandoned++;
		PROBE(gc__abandoned, gen);
		watch_collection_stop(&c, false);
		collect_unlock();
		log_msg("gc: %s; collection abandoned, nothing freed", gc_failure_reason(err));
		errno = err;
		return -1;
	}
	t = os_now_ns();
	/* the program waits on an automatic collection: its blocks are given
	 * back by the sweep; one asked for returns with the memory back */
	if (!reclaim(&c, save, why != GC_MANUAL && why != GC_LIMIT)) {
		trim_dead_list();
		if (!save && c.collected &&
		    (why == GC_MANUAL || why == GC_LIMIT || sweep_gives_back(c.collected_bytes)))
			release_free_memory();
	}
	t2 = os_now_ns();
	c.sweep_ns = t2 - t;
	c.wait_ns = t2 - start;
	account(&c, why);
	if (debug & GCSHIM_DEBUG_STATS)
		log_done(&c);
	PROBE(gc__done, c.generation, (long)c.collected, (long)c.collected_bytes, c.pause_ns);
	watch_collection_stop(&c, true);
	collect_unlock();
	if (out)
		*out = c;
	return c.collected;
}

/* A leak check: a full collection that frees nothing and leaves every
 * block's generation as it was.  fn sees the unreachable blocks after
 * the world resumed, while no other collection can run. */
long gc_find_leaks(void (*fn)(const uintptr_t *dead, size_t n, void *arg), void *arg)
{
	struct collection c = { .generation = 2 };
	int pagemap, err;
	bool ok;

	if (!co.ready || stop_in_handler()) {
		errno = ENOSYS;
		return -1;
	}
	collect_lock();
	sweep_finish();
	pagemap = open_pagemap();
	prepare_stop();
	co.dry = true;
	ok = run_stopped(2, &c, pagemap, false);
	err = errno;
	co.dry = false;
	if (pagemap >= 0)
		os_close(pagemap);
	mark_release(scratch_cap());
	if (!ok) {
		collect_unlock();
		errno = err;
		return -1;
	}
	fn(co.dead, co.ndead, arg);
	trim_dead_list();
	collect_unlock();
	return (long)co.ndead;
}

/* The generation CPython would collect: the oldest whose count exceeds
 * its threshold. */
static int generation_due(void)
{
	for (int g = 2; g >= 1; g--)
		if (atomic_load(&gc.gen_count[g]) > atomic_load(&gc.gen_threshold[g]))
			return g;
	return 0;
}

/* Minor collections leave the old generation's dead blocks where they
 * are: a collection of generation 2 runs once the heap they leave live
 * has grown by the growth percent (100 without that trigger) over what
 * the last one of generation 2 left. */
static bool full_due(void)
{
	int64_t p = atomic_load(&gc.growth), live = atomic_load(&gc.live_after);

	if (!young_tracking())
		return true;   /* a minor one would mark everything anyway */
	if (p <= 0)
		p = 100;
	return live - co.live_full > co.live_full / 100 * p;
}

/* The byte triggers collect generations 0 and 1, so that a block has two
 * collections to die in before it is old, and the whole heap when it is
 * due; the heap limit and a failed allocation always the whole. */
static int generation_for(enum gc_reason why)
{
	switch (why) {
	case GC_COUNT:
		return generation_due();
	case GC_THRESHOLD:
	case GC_GROWTH:
		return full_due() ? 2 : 1;
	default:
		return 2;
	}
}

static void collect_auto(enum gc_reason why)
{
	int saved = errno;

	gc_collect(generation_for(why), why, false, NULL);
	errno = saved;
}

static bool collect_for_room(void)
{
	return gc_collect(2, GC_LIMIT, false, NULL) > 0;
}

void collect_get_gen_stats(struct gen_stats out[3])
{
	memcpy(out, co.gens, sizeof(co.gens));
}

/* The k-th smallest of v[0..n), found in place in linear time on
 * average: stats are read every second by some monitors, and sorting
 * every pause kept would cost them a quarter of a million steps. */
static uint64_t select_kth(uint64_t *v, size_t n, size_t k)
{
	size_t lo = 0, hi = n;   /* v[k] is among v[lo, hi) */

	for (;;) {
		uint64_t pivot = v[lo + (hi - lo) / 2], t;
		size_t lt = lo, i = lo, gt = hi;

		/* [lo, lt) below the pivot, [lt, i) equal, [gt, hi) above */
		while (i < gt) {
			if (v[i] < pivot) {
				t = v[lt], v[lt++] = v[i], v[i++] = t;
			} else if (v[i] > pivot) {
				t = v[--gt], v[gt] = v[i], v[i] = t;
			} else {
				i++;
			}
		}
		if (k < lt)
			hi = lt;
		else if (k >= gt)
			lo = gt;
		else
			return pivot;
	}
}

static uint64_t percentile(int pct)
{
	size_t n = co.number < PAUSES ? co.number : PAUSES;
	uint64_t v[PAUSES];

	if (!n)
		return 0;
	memcpy(v, co.pauses, n * sizeof(*v));
	return select_kth(v, n, ((size_t)pct * n + 99) / 100 - 1);   /* nearest rank */
}

void collect_fill_stats(struct gcshim_stats *st)
{
	st->collections = co.number;
	st->collections_abandoned = co.abandoned;
	st->collected_blocks = co.total_collected;
	st->collected_bytes = co.total_collected_bytes;
	st->garbage_blocks = (int64_t)garbage_count();
	st->pause_total_ns = (int64_t)co.total_pause_ns;
	st->pause_last_ns = (int64_t)co.last.pause_ns;
	st->pause_max_ns = (int64_t)co.max.pause_ns;
	st->pause_p50_ns = (int64_t)percentile(50);
	st->pause_p99_ns = (int64_t)percentile(99);
	st->last_stop_ns = (int64_t)co.last.stop_ns;
	st->last_mark_ns = (int64_t)co.last.mark_ns;
	st->last_sweep_ns = (int64_t)co.last.sweep_ns;
	st->last_root_bytes = (int64_t)co.last.root_bytes;
	st->last_heap_bytes = (int64_t)co.last.heap_bytes;
	st->last_collected_blocks = co.last.collected;
	st->last_collected_bytes = co.last.collected_bytes;
	st->root_bytes_scanned = (int64_t)co.total_root_bytes;
	st->heap_bytes_scanned = (int64_t)co.total_heap_bytes;
	st->markers = co.last.markers;
	st->last_roots_ns = (int64_t)co.last.roots_ns;
	st->last_track_ns = (int64_t)co.last.track_ns;
	st->tracked_root_bytes = (int64_t)rtrack_bytes();
	st->sweep_pending_bytes = sweep_pending_bytes();
	st->collections_minor = co.minors;
	st->written_pages = (int64_t)co.total_written_pages;
	st->last_written_pages = (int64_t)co.last.written_pages;
	st->write_tracking = young_tracking();
	st->vacant_pages = (int64_t)vacant_count();
	st->prefaulted_pages = (int64_t)prefault_pages();
}

/* A free() or realloc() of a block the collector declared unreachable:
 * the collector missed a reference.  In reclaim mode it would have been a
 * use after free; here it is reported and the block simply leaves the
 * garbage list. */
void garbage_check_free(void *p, size_t usable)
{
	uint32_t number;

	if (!garbage_take(p, &number))
		return;
	stat_inc(EV_false_garbage);
	PROBE(false__garbage, p, usable, number + 1);
	log_msg("false garbage: %p (%zu bytes), found unreachable by collection "
		"#%u, was freed by the program", p, usable, number + 1);
	if (!garbage_count())
		gc_set_mode(MODE_GARBAGE, false);
}

/* ---- inspection (lib/inspect.c) --------------------------------------------- */

/* Collections a live block survived, as a generation. */
int collect_generation(uintptr_t start)
{
	uintptr_t g = (start - om.base) >> OM_GRANULE_LG;
	uint64_t bit = 1ULL << (g & 63);

	if (!co.age1)
		return 0;
	return (co.age2[g >> 6] & bit) ? 2 : (co.age1[g >> 6] & bit) ? 1 : 0;
}

/* Unfrozen blocks go to the oldest generation, as in CPython.  Under the
 * collector's lock. */
void collect_make_oldest(size_t word, uint64_t bits)
{
	co.age1[word] |= bits;
	co.age2[word] |= bits;
}
