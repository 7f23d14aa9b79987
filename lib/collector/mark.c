#define _GNU_SOURCE
#include "mark.h"

#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "heap.h"
#include "markers.h"
#include "prefault.h"
#include "objmap.h"
#include "os.h"
#include "resident.h"
#include "spin.h"
#include "young.h"

/* Per marker: 256 MiB of address space, committed as used; less under an
 * address-space limit, as an overflow only costs a rescan (push). */
#define STACK_ENTRIES (1u << 24)
#define STACK_ENTRIES_MIN (1u << 16)
#define POOL_ENTRIES (1u << 20)
#define SHARE_MAX 4096
#define PIECE (256 * 1024)         /* a big block is scanned this much at a time */
#define ENTRY_CHECK_PAGES 1u       /* in an entry's start: read resident pages only */
#define UNIT_LG 4                  /* a mark byte for every 16 bytes of heap */
#define FOLD_PAGES 256             /* heap pages a marker folds at a time */
#define SHARED_PIECE (1u << 20)    /* a big root range is shared this much at a time */
#define SHARED_PIECES 4096

struct entry {
	uintptr_t start;
	size_t size;
};

/* One marker's state.  Marker 0 is the collecting thread, which also
 * scans the roots; the others run only inside mark_finish. */
struct marker {
	struct entry *stack;
	size_t bottom, top;       /* entries [bottom, top): pushed and popped at
				   * the top, shared from the bottom */
	size_t high;              /* the most entries this collection */
	struct os_scratch mem;    /* the stack's pages */
	bool code;                /* scanning machine code: every byte offset */
	struct mark_stats st;
} __attribute__((aligned(64)));

static struct {
	/* read on every block by every marker: a line of their own */
	_Atomic uint64_t *bits;   /* one bit per granule, like om.starts */
	uint8_t *bytes;           /* marks of several markers: see mark_block */
	struct os_scratch bytes_mem;
	uintptr_t bytes_top;      /* the heap's range when marking last used them */
	bool by_byte;
	unsigned n;               /* markers of this collection */
	int pagemap_fd;
	struct marker m[MARK_MAX_MARKERS];
	_Atomic bool overflow;
	/* Work shared between markers: a marker with plenty gives half of
	 * its stack here when another is idle.  Changed only under the
	 * lock, with `idle`, so that "everyone idle and nothing shared" is
	 * seen exactly when it holds. */
	atomic_flag lock __attribute__((aligned(64)));
	struct entry *pool;
	_Atomic size_t pool_n;
	_Atomic unsigned idle;
	/* Markers that took part so far: a helper joins when it first runs,
	 * and one the scheduler starts after the work is done never joins,
	 * so the others need not wait for a thread that had no CPU. */
	_Atomic unsigned joined;
	_Atomic bool done;
	_Atomic bool go;          /* mk.n is final: markers may start */
	_Atomic size_t fold_next; /* the next heap page to fold */
	_Atomic unsigned arrived; /* markers past the end of the marking */
	_Atomic uint64_t marked_at;   /* when the first marker saw every mark in */
	void (*then)(void);
} mk = { .lock = ATOMIC_FLAG_INIT };

/* Root ranges left to whichever marker takes them first: pieces of the
 * big mappings (roots.c), which the collecting thread alone would scan
 * while the other processors wait.  Addresses of roots, never of blocks:
 * this list, itself scanned as a root, keeps nothing alive. */
static struct {
	struct piece {
		uintptr_t lo, hi;
		bool shared;
	} p[SHARED_PIECES];
	size_t n;
	_Atomic size_t next;
} rp;

/* And pages of the heap (written ones, in a minor collection), a bitmap
 * word of them at a time. */
static struct {
	const uint64_t *bits;
	size_t words;
	void (*scan)(uintptr_t pg, struct marker *m);
	_Atomic size_t next;
} sp;

static struct marker *const root_marker = &mk.m[0];
static size_t stack_entries;   /* of every marker's stack */

bool mark_init(void)
{
	size_t bytes = STACK_ENTRIES * sizeof(struct entry);

	mk.bits = os_map(om.size >> (OM_GRANULE_LG + 3));
	mk.pool = os_map(POOL_ENTRIES * sizeof(*mk.pool));
	root_marker->mem.base = root_marker->stack =
		os_map_some(&bytes, STACK_ENTRIES_MIN * sizeof(struct entry));
	stack_entries = bytes / sizeof(struct entry);
	return mk.bits && mk.pool && root_marker->stack && resident_init() && markers_init();
}

uint64_t *mark_bits(void)
{
	return (uint64_t *)mk.bits;
}

/* The stacks of the other markers, mapped the first time they are used. */
static unsigned stacks_ready(unsigned want)
{
	unsigned n = 1;

	for (; n < want; n++) {
		if (!mk.m[n].stack)
			mk.m[n].mem.base = mk.m[n].stack = os_map(stack_entries * sizeof(struct entry));
		if (!mk.m[n].stack)
			break;
	}
	return n;
}

static size_t bytes_size(void)
{
	return om.size >> UNIT_LG;
}

/* Before the stop, while the roots' list of the shim's own memory is
 * still to be taken: memory mapped after it would be scanned as a root,
 * and the mark bytes span a sixteenth of the heap's range, whose page map
 * alone is thousands of reads. */
unsigned mark_reserve(unsigned markers)
{
	unsigned n = stacks_ready(markers ? markers : 1);

	if (n > 1 && !mk.bytes) {
		mk.bytes_mem.base = mk.bytes = os_map(bytes_size());
		prefault_add(mk.bytes, UNIT_LG);
	}
	return n;
}

void mark_begin(int pagemap_fd, unsigned markers)
{
	mk.n = markers;
	mk.by_byte = mk.n > 1 && mk.bytes;
	if (mk.by_byte)
		mk.bytes_top = heap_top() - om.base;
	mk.fold_next = 0;
	mk.arrived = 0;
	mk.marked_at = 0;
	for (unsigned i = 0; i < MARK_MAX_MARKERS && mk.m[i].stack; i++) {
		memset(&mk.m[i].st, 0, sizeof(mk.m[i].st));
		mk.m[i].bottom = mk.m[i].top = mk.m[i].high = 0;
		mk.m[i].code = false;
	}
	mk.overflow = false;
	mk.pagemap_fd = pagemap_fd;
	resident_begin(pagemap_fd);
	mk.pool_n = 0;
	rp.n = 0;
	atomic_store_explicit(&rp.next, 0, memory_order_relaxed);
	sp.words = 0;
	mk.idle = 0;
	mk.joined = 1;
	mk.done = false;
	mk.go = false;
}

/* An entry is written with one 16-byte store: drain reads it back whole,
 * often before the store has left the core, and a load that spans two
 * stores cannot take its value from them; it waits until both reach the
 * cache.  Written as two words, that wait was a third of the time
 * marking a tree of small nodes took. */
typedef uintptr_t entry_words __attribute__((vector_size(sizeof(struct entry))));

static inline void store_entry(struct entry *e, uintptr_t start, size_t size)
{
	entry_words w = { start, size };

	memcpy(e, &w, sizeof(w));
}

/* A marker's stack is one fixed reservation of the shim's own: it never
 * moves while the world is stopped.  When it is full, the block stays
 * marked and the rescan over the mark bits finds it again. */
static void push(struct marker *m, uintptr_t start, size_t size)
{
	if (m->top == stack_entries && m->bottom) {
		memmove(m->stack, m->stack + m->bottom, (m->top - m->bottom) * sizeof(*m->stack));
		m->top -= m->bottom;
		m->bottom = 0;
	}
	if (m->top == stack_entries) {
		atomic_store_explicit(&mk.overflow, true, memory_order_relaxed);
		m->st.overflows++;
		return;
	}
	store_entry(&m->stack[m->top++], start, size);
	if (m->top > m->high)
		m->high = m->top;
}

/* With one marker the bit is simply set.  With several, a block of 16
 * bytes or more that starts a 16-byte unit (all of jemalloc's but the
 * 8-byte class) is marked in a byte of its own, with a plain store, as the
 * Boehm collector does: a locked OR into the bitmap word that
 * neighbouring blocks share cost 5 ns a block here, as much as scanning a
 * small block.  Two markers that reach one block at the same moment may
 * then both scan it (and count it twice in the marking's statistics),
 * which costs only time.  No other block can start in such a block's
 * unit; the others keep the locked OR.  The bytes are folded into the
 * bitmap when the marking ends. */
static inline bool marked_byte(uintptr_t off)
{
	return __atomic_load_n(&mk.bytes[off >> UNIT_LG], __ATOMIC_RELAXED);
}

#define HOT static inline __attribute__((always_inline))

/* The marking loop comes in two copies, by bit and by byte (the `bytes`
 * argument is a constant in each), so that neither tests the mode at
 * every word. */
HOT void mark_block(struct marker *m, uintptr_t start, size_t size, const bool bytes)
{
	uintptr_t off = start - om.base, g = off >> OM_GRANULE_LG;
	uint64_t bit = 1ULL << (g & 63), old;
	_Atomic uint64_t *w = &mk.bits[g >> 6];

	if (yg.on && !young_block(off))
		return;   /* a minor collection: old blocks are live */
	if (bytes && size > (1u << OM_GRANULE_LG) && !(off & ((1u << UNIT_LG) - 1))) {
		if (marked_byte(off))
			return;
		__atomic_store_n(&mk.bytes[off >> UNIT_LG], 1, __ATOMIC_RELAXED);
	} else {
		old = atomic_load_explicit(w, memory_order_relaxed);
		if (old & bit)
			return;
		if (mk.n == 1)
			atomic_store_explicit(w, old | bit, memory_order_relaxed);
		else if (atomic_fetch_or_explicit(w, bit, memory_order_relaxed) & bit)
			return;
	}
	m->st.marked_blocks++;
	push(m, start, size);
}

/* The mark bytes of one bitmap word's 64 granules, folded into it and
 * cleared.  A byte stands for its unit's first granule. */
static void fold_word(size_t w)
{
	uint64_t *b = (uint64_t *)(void *)&mk.bytes[(w << 6 << OM_GRANULE_LG) >> UNIT_LG];
	uint64_t bits = 0;

	for (unsigned i = 0; i < (64u << OM_GRANULE_LG >> UNIT_LG) / 8; i++) {
		uint64_t x = b[i];

		if (!x)
			continue;
		b[i] = 0;
		/* eight 0/1 bytes to eight bits, then each to its granule */
		x = (x * 0x0102040810204080ULL) >> 56;
		for (; x; x &= x - 1)
			bits |= 1ULL << ((i * 8 + (unsigned)__builtin_ctzll(x)) << UNIT_LG >> OM_GRANULE_LG);
	}
	if (bits)
		atomic_fetch_or_explicit(&mk.bits[w], bits, memory_order_relaxed);
}

/* After a stack overflowed: the whole bitmap, for the rescan. */
static void fold_bytes(void)
{
	size_t pages = (heap_top() - om.base) >> OM_PAGE_LG, pg, end;

	while (om_claim_pages(&mk.fold_next, pages, FOLD_PAGES, &pg, &end))
		OM_EACH_WORD(w, pg, end)
			fold_word(w);
}

/* Word w of the mark bitmap, once the marking is done, the mark bytes of
 * its granules folded in; only the thread that claimed w's page calls. */
uint64_t mark_word(size_t w)
{
	if (mk.by_byte)
		fold_word(w);
	return atomic_load_explicit(&mk.bits[w], memory_order_relaxed);
}

/* A word marks the block it points into, at its start or inside it, or
 * the block it points one past the end of — only when it starts no live
 * block itself: blocks of a slab are packed, and otherwise every pointer
 * to a block would also hold its neighbour (see LIMITATIONS).  The exact
 * start of an already marked block, the commonest case, is settled from
 * two bitmap words. */
HOT void consider(struct marker *m, uintptr_t w, const bool bytes)
{
	uintptr_t off = w - om.base, soff;
	size_t sz;

	if (off >= om.size)
		return;
	if (!(off & ((1UL << OM_GRANULE_LG) - 1))) {
		uintptr_t g = off >> OM_GRANULE_LG;

		if ((atomic_load_explicit(&om.starts[g >> 6], memory_order_relaxed) >> (g & 63)) & 1) {
			/* old blocks, most of what a minor collection's written
			 * pages point to, are ruled out before the size lookup */
			if ((bytes ? !marked_byte(off) :
			     !((atomic_load_explicit(&mk.bits[g >> 6], memory_order_relaxed) >>
				(g & 63)) & 1)) &&
			    (!yg.on || young_block(off)) && (sz = om_size_at(off)))
				mark_block(m, w, sz, bytes);
			return;
		}
	}
	if (om_nearest(off, &soff, &sz) && off <= soff + sz)
		mark_block(m, om.base + soff, sz, bytes);
}

/* Most words of most blocks are not heap addresses: four at a time are
 * ruled out with one branch before any is looked up. */
HOT void scan_words_as(struct marker *m, uintptr_t lo, uintptr_t hi, const bool bytes)
{
	const uintptr_t *p = (const uintptr_t *)((lo + 7) & ~(uintptr_t)7);
	const uintptr_t *end = (const uintptr_t *)(hi & ~(uintptr_t)7);
	const uintptr_t base = om.base, size = om.size;

	for (; end - p >= 4; p += 4) {
		uintptr_t a = p[0], b = p[1], c = p[2], d = p[3];

		if (__builtin_expect((a - base >= size) & (b - base >= size) &
				     (c - base >= size) & (d - base >= size), 1))
			continue;
		consider(m, a, bytes);
		consider(m, b, bytes);
		consider(m, c, bytes);
		consider(m, d, bytes);
	}
	for (; p < end; p++)
		consider(m, *p, bytes);
}

static void scan_words(struct marker *m, uintptr_t lo, uintptr_t hi)
{
	if (mk.by_byte)
		scan_words_as(m, lo, hi, true);
	else
		scan_words_as(m, lo, hi, false);
}

/* Machine code written at run time (a JIT's code cache) holds addresses
 * as instruction operands, at any byte offset. */
static void scan_bytes(struct marker *m, uintptr_t lo, uintptr_t hi)
{
	for (uintptr_t p = lo; p + sizeof(uintptr_t) <= hi; p++) {
		uintptr_t w;

		memcpy(&w, (const void *)p, sizeof(w));
		consider(m, w, mk.by_byte);
	}
}

static void scan_run(uintptr_t a, uintptr_t b, void *arg)
{
	struct marker *m = arg;

	if (m->code)
		scan_bytes(m, a, b);
	else
		scan_words(m, a, b);
}

/* Root bytes are the bytes read, not the size of the mappings: a large
 * reservation the program never touched costs nothing. */
static void scan_root_run(uintptr_t a, uintptr_t b, void *arg)
{
	struct marker *m = arg;

	m->st.root_bytes += b - a;
	scan_run(a, b, m);
}

void mark_range(uintptr_t lo, uintptr_t hi, bool resident_only, bool shared)
{
	struct marker *m = root_marker;

	if (hi <= lo)
		return;
	if (resident_only && mk.pagemap_fd >= 0) {
		os_written_runs(mk.pagemap_fd, lo, hi, shared, scan_root_run, m);
	} else {
		m->st.root_bytes += hi - lo;
		scan_words(m, lo, hi);
	}
}

/* With one marker, or pieces past the list's room, scanned at once. */
void mark_range_by_any(uintptr_t lo, uintptr_t hi, bool shared)
{
	size_t pieces = (hi - lo + SHARED_PIECE - 1) / SHARED_PIECE;

	if (mk.n < 2 || mk.pagemap_fd < 0 || hi <= lo || pieces > SHARED_PIECES - rp.n) {
		mark_range(lo, hi, true, shared);
		return;
	}
	for (; lo < hi; lo += SHARED_PIECE)
		rp.p[rp.n++] = (struct piece){ lo, hi - lo > SHARED_PIECE ? lo + SHARED_PIECE : hi,
					       shared };
}

void mark_written(struct marker *m, uintptr_t lo, uintptr_t hi)
{
	m->st.heap_bytes += hi - lo;
	scan_words(m, lo, hi);
}

static void scan_pages_in(size_t w, struct marker *m)
{
	for (uint64_t b = sp.bits[w]; b; b &= b - 1)
		sp.scan((w << 6) + (uintptr_t)__builtin_ctzll(b), m);
}

void mark_pages_by_any(const uint64_t *bits, size_t words,
		       void (*scan)(uintptr_t pg, struct marker *m))
{
	sp.bits = bits;
	sp.words = words;
	sp.scan = scan;
	atomic_store_explicit(&sp.next, 0, memory_order_relaxed);
	if (mk.n > 1)
		return;
	for (size_t w = 0; w < words; w++)
		scan_pages_in(w, root_marker);
	sp.words = 0;
}

void mark_code_range(uintptr_t lo, uintptr_t hi)
{
	root_marker->code = true;
	mark_range(lo, hi, true, false);
	root_marker->code = false;
}

/* Blocks of a page or less are read directly; bigger ones, and every
 * piece of a big one, only on the pages the program wrote (resident.h),
 * since a block allocated and written only at its head (a calloc'd
 * array, a buffer of which a little is used) may never have been touched
 * further.  A big block is scanned a piece at a time, the rest pushed
 * back first: one marker alone would scan a 1 GiB array while the others
 * wait, and this way they can take the rest from its stack. */
HOT void scan_block(struct marker *m, uintptr_t start, size_t size, const bool bytes)
{
	bool check = (start & ENTRY_CHECK_PAGES) || size > OS_PAGE;

	start &= ~(uintptr_t)ENTRY_CHECK_PAGES;
	if (size > PIECE) {
		push(m, (start + PIECE) | ENTRY_CHECK_PAGES, size - PIECE);
		size = PIECE;
	}
	m->st.heap_bytes += size;
	if (check && mk.pagemap_fd >= 0)
		resident_runs(start, start + size, scan_run, m);
	else
		scan_words_as(m, start, start + size, bytes);
}

/* ---- sharing work ----------------------------------------------------- */

/* Half the stack, at most SHARE_MAX entries, from its bottom: the blocks
 * pushed first, nearest the roots, whose subgraphs are the largest and
 * farthest from the one this marker works on (markers on neighbouring
 * blocks would fight over the lines of the mark bitmap). */
static void share(struct marker *m)
{
	size_t give = (m->top - m->bottom) / 2, room;

	if (give > SHARE_MAX)
		give = SHARE_MAX;
	spin_lock(&mk.lock);
	room = POOL_ENTRIES - mk.pool_n;
	if (give > room)
		give = room;
	memcpy(&mk.pool[mk.pool_n], m->stack + m->bottom, give * sizeof(*m->stack));
	m->bottom += give;
	atomic_store_explicit(&mk.pool_n, mk.pool_n + give, memory_order_release);
	spin_unlock(&mk.lock);
}

static inline bool others_idle(void)
{
	return atomic_load_explicit(&mk.idle, memory_order_relaxed) &&
	       !atomic_load_explicit(&mk.pool_n, memory_order_relaxed);
}

/* Even one entry is worth giving: the bottom of a tree's stack is the
 * sibling of a node near the root, half of what is left to mark. */
static inline void share_if_wanted(struct marker *m)
{
	if (m->top - m->bottom >= 2 && others_idle())
		share(m);
}

/* Takes up to half the pool (at least one entry); under the lock. */
static bool take_locked(struct marker *m)
{
	size_t n = mk.pool_n, take = (n + 1) / 2;

	if (!n)
		return false;
	memcpy(m->stack, &mk.pool[n - take], take * sizeof(*m->stack));
	m->bottom = 0;
	m->top = take;
	if (take > m->high)
		m->high = take;
	atomic_store_explicit(&mk.pool_n, n - take, memory_order_release);
	return true;
}

/* ---- draining --------------------------------------------------------- */

/* Depth first, the block pushed last would be scanned next, long before
 * its lines could arrive.  So blocks pass from the stack through a small
 * queue: each is prefetched as it enters; halfway along, when its words
 * have arrived, the bitmap words its pointers will be looked up in are
 * prefetched in turn; it is scanned as it leaves. */
#define PREFETCH_QUEUE 16
#define PREFETCH_WORDS 8   /* blocks up to 64 bytes: the commonest nodes */

static void prefetch_lookups(const struct entry *e)
{
	const uintptr_t *p = (const uintptr_t *)e->start;
	size_t n = e->size / sizeof(uintptr_t);

	if (n > PREFETCH_WORDS)
		return;
	for (size_t i = 0; i < n; i++) {
		uintptr_t off = p[i] - om.base;

		if (off < om.size) {
			uintptr_t w = off >> (OM_GRANULE_LG + 6);

			__builtin_prefetch(&om.starts[w]);
			if (mk.by_byte)
				__builtin_prefetch(&mk.bytes[off >> UNIT_LG]);
			else
				__builtin_prefetch(&mk.bits[w]);
		}
	}
}

HOT void drain_as(struct marker *m, const bool bytes)
{
	struct entry q[PREFETCH_QUEUE];
	unsigned head = 0, n = 0;

	for (;;) {
		/* while another marker waits, two entries stay on the stack
		 * to share: the queue may hold all a marker has */
		size_t keep = n && mk.n > 1 && others_idle() ? 2 : 0;

		while (n < PREFETCH_QUEUE && m->top > m->bottom + keep) {
			struct entry e = m->stack[--m->top];

			__builtin_prefetch((const void *)e.start);
			q[(head + n++) % PREFETCH_QUEUE] = e;
		}
		if (m->top == m->bottom)
			m->top = m->bottom = 0;   /* empty: the space shared is reused */
		if (!n)
			return;
		if (n > PREFETCH_QUEUE / 2)
			prefetch_lookups(&q[(head + PREFETCH_QUEUE / 2) % PREFETCH_QUEUE]);
		scan_block(m, q[head].start, q[head].size, bytes);
		head = (head + 1) % PREFETCH_QUEUE;
		n--;
		if (mk.n > 1)
			share_if_wanted(m);
	}
}

static void drain(struct marker *m)
{
	if (mk.by_byte)
		drain_as(m, true);
	else
		drain_as(m, false);
}

/* An idle marker waits for shared work; false when there is none left
 * anywhere: every marker idle with the pool empty can only stay so. */
static bool wait_for_work(struct marker *m)
{
	unsigned spins = 0;
	bool got = false;

	spin_lock(&mk.lock);
	got = take_locked(m);
	if (!got)
		atomic_fetch_add_explicit(&mk.idle, 1, memory_order_relaxed);
	spin_unlock(&mk.lock);
	while (!got) {
		if (atomic_load_explicit(&mk.done, memory_order_acquire))
			return false;
		if (atomic_load_explicit(&mk.pool_n, memory_order_acquire) ||
		    atomic_load_explicit(&mk.idle, memory_order_relaxed) ==
		    atomic_load_explicit(&mk.joined, memory_order_relaxed)) {
			spin_lock(&mk.lock);
			if (take_locked(m)) {
				atomic_fetch_sub_explicit(&mk.idle, 1, memory_order_relaxed);
				got = true;
			} else if (mk.idle == mk.joined) {
				atomic_store_explicit(&mk.done, true, memory_order_release);
			}
			spin_unlock(&mk.lock);
			continue;
		}
		markers_pause(spins++);
	}
	return true;
}

/* Each marker takes pieces, then words of pages, until none is left, and
 * drains what each reached before the next: when the first marker to
 * run out of them goes idle, every one is taken, by it or by a marker
 * that has joined and is not idle, so the marking cannot end with a root
 * unread. */
static void scan_shared_roots(struct marker *m)
{
	size_t i;

	while ((i = atomic_fetch_add_explicit(&rp.next, 1, memory_order_relaxed)) < rp.n) {
		os_written_runs(mk.pagemap_fd, rp.p[i].lo, rp.p[i].hi, rp.p[i].shared,
				scan_root_run, m);
		drain(m);
	}
	while ((i = atomic_fetch_add_explicit(&sp.next, 1, memory_order_relaxed)) < sp.words) {
		if (sp.bits[i]) {
			scan_pages_in(i, m);
			drain(m);
		}
	}
}

static void mark_until_done(struct marker *m)
{
	do
		drain(m);
	while (wait_for_work(m));
}

/* Under the lock, where the end is decided: a helper late enough to find
 * the marking done leaves it so. */
static bool join(void)
{
	bool in;

	spin_lock(&mk.lock);
	in = !atomic_load_explicit(&mk.done, memory_order_relaxed);
	if (in)
		atomic_fetch_add_explicit(&mk.joined, 1, memory_order_relaxed);
	spin_unlock(&mk.lock);
	return in;
}

/* The marking's end is when the first marker finds every mark in: the
 * collecting thread may be descheduled there while the others go on. */
static void note_marked(void)
{
	uint64_t none = 0;

	atomic_compare_exchange_strong(&mk.marked_at, &none, os_now_ns());
}

/* Every marker that took part, once the marking is done, waits for the
 * others to be past it too: then every mark byte is written, and the
 * markers fold them into the bitmap word by word as they find the dead
 * blocks (mark_word), in the one walk over the bitmap that finding takes.
 * False when a stack overflowed: the collecting thread then folds them
 * all and rescans alone, after the others have gone. */
static bool marks_final(void)
{
	unsigned spins = 0;

	atomic_fetch_add_explicit(&mk.arrived, 1, memory_order_acq_rel);
	if (atomic_load_explicit(&mk.overflow, memory_order_relaxed))
		return false;
	/* joined is final: no helper joins once the marking is done */
	while (atomic_load_explicit(&mk.arrived, memory_order_acquire) <
	       atomic_load_explicit(&mk.joined, memory_order_relaxed))
		markers_pause(spins++);
	note_marked();
	return true;
}

/* A marker thread's body (markers.c): it owns mk.m[i]. */
static void marker_run(unsigned i)
{
	unsigned spins = 0;

	while (!atomic_load_explicit(&mk.go, memory_order_acquire))
		markers_pause(spins++);
	if (i < mk.n && join()) {
		scan_shared_roots(&mk.m[i]);
		mark_until_done(&mk.m[i]);
		if (marks_final())
			mk.then();
	}
}

static void rescan_marked(void)
{
	size_t words = (heap_top() - om.base) >> (OM_GRANULE_LG + 6);

	mk.overflow = false;
	for (size_t w = 0; w < words; w++) {
		uint64_t bits = atomic_load_explicit(&mk.bits[w], memory_order_relaxed);

		while (bits) {
			uintptr_t g = (w << 6) + (uintptr_t)__builtin_ctzll(bits);
			uintptr_t start = om.base + (g << OM_GRANULE_LG);

			bits &= bits - 1;
			scan_block(root_marker, start, om_usable((void *)start), false);
			drain(root_marker);
		}
	}
}

static void add_stats(struct mark_stats *to, const struct mark_stats *from)
{
	to->root_bytes += from->root_bytes;
	to->heap_bytes += from->heap_bytes;
	to->marked_blocks += from->marked_blocks;
	to->overflows += from->overflows;
}

/* The roots are scanned: every marker now drains the graph, marker 0 on
 * the calling thread.  A full stack anywhere is made good alone after. */
void mark_finish(struct mark_stats *st, void (*then)(void))
{
	unsigned started = mk.n > 1 ? markers_start(mk.n - 1, marker_run) : 0;
	bool done;

	mk.n = started + 1;   /* as many as could be started */
	mk.then = then;
	atomic_store_explicit(&mk.go, true, memory_order_release);
	scan_shared_roots(root_marker);
	mark_until_done(root_marker);
	done = marks_final();
	if (done)
		then();
	markers_join();
	mk.n = 1;
	if (!done && mk.by_byte)
		fold_bytes();
	mk.by_byte = false;
	if (!done) {
		while (mk.overflow)
			rescan_marked();
		note_marked();
		then();
	}
	memset(st, 0, sizeof(*st));
	st->marked_ns = mk.marked_at;
	for (unsigned i = 0; i < MARK_MAX_MARKERS && mk.m[i].stack; i++)
		add_stats(st, &mk.m[i].st);
	st->markers = started + 1;
}

size_t mark_bytes_unused(void)
{
	uintptr_t range = heap_top() - om.base;

	return range > mk.bytes_top ? (range - mk.bytes_top) >> UNIT_LG : 0;
}

/* After the world resumed: the pages the stacks used beyond what stays
 * resident go back. */
void mark_release(size_t cap)
{
	for (unsigned i = 0; i < MARK_MAX_MARKERS && mk.m[i].stack; i++)
		os_scratch_trim(&mk.m[i].mem, mk.m[i].high * sizeof(struct entry), cap);
	os_purge_beyond(mk.pool, POOL_ENTRIES * sizeof(*mk.pool), OS_KEEP_RESIDENT);
	/* those of the whole heap stay: the next parallel marking needs
	 * them, and they are a sixteenth of the heap */
	if (mk.bytes)
		os_scratch_trim(&mk.bytes_mem, (heap_top() - om.base) >> UNIT_LG, SIZE_MAX);
}
