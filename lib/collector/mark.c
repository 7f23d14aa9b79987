#define _GNU_SOURCE
#include "mark.h"

#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "heap.h"
#include "objmap.h"
#include "os.h"

#define STACK_ENTRIES (1u << 24)   /* 256 MiB of address space, committed as used */
#define SCAN_CHECK_PAGES (64 * 1024)

struct entry {
	uintptr_t start;
	size_t size;
};

static struct {
	uint64_t *bits;           /* one bit per granule, like om.starts */
	struct entry *stack;
	size_t top, cap;
	bool overflow;
	bool code;                /* scanning machine code: every byte offset */
	int pagemap_fd;
	struct mark_stats st;
} mk;

bool mark_init(void)
{
	mk.bits = os_map(om.size >> (OM_GRANULE_LG + 3));
	mk.cap = STACK_ENTRIES;
	mk.stack = os_map(mk.cap * sizeof(*mk.stack));
	return mk.bits && mk.stack;
}

uint64_t *mark_bits(void)
{
	return mk.bits;
}

void mark_begin(int pagemap_fd)
{
	memset(&mk.st, 0, sizeof(mk.st));
	mk.top = 0;
	mk.overflow = false;
	mk.pagemap_fd = pagemap_fd;
}

/* The stack is one fixed reservation, registered as the shim's own: it
 * never moves while the world is stopped.  When it is full, the block
 * stays marked and the rescan over the mark bits finds it again. */
static void push(uintptr_t start, size_t size)
{
	if (mk.top == mk.cap) {
		mk.overflow = true;
		mk.st.overflows++;
		return;
	}
	mk.stack[mk.top++] = (struct entry){ start, size };
}

static void mark_block(uintptr_t start, size_t size)
{
	uintptr_t g = (start - om.base) >> OM_GRANULE_LG;
	uint64_t bit = 1ULL << (g & 63);

	if (mk.bits[g >> 6] & bit)
		return;
	mk.bits[g >> 6] |= bit;
	mk.st.marked_blocks++;
	push(start, size);
}

/* A word marks the block it points into, at its start or inside it, or
 * the block it points one past the end of — only when it starts no live
 * block itself: blocks of a slab are packed, and otherwise every pointer
 * to a block would also hold its neighbour (see LIMITATIONS).  The exact
 * start of an already marked block, the commonest case, is settled from
 * two bitmap words. */
static inline void consider(uintptr_t w)
{
	uintptr_t off = w - om.base, soff;
	size_t sz;

	if (off >= om.size)
		return;
	if (!(off & ((1UL << OM_GRANULE_LG) - 1))) {
		uintptr_t g = off >> OM_GRANULE_LG;

		if ((atomic_load_explicit(&om.starts[g >> 6], memory_order_relaxed) >> (g & 63)) & 1) {
			if (!((mk.bits[g >> 6] >> (g & 63)) & 1) && (sz = om_size_at(off)))
				mark_block(w, sz);
			return;
		}
	}
	if (om_nearest(off, &soff, &sz) && off <= soff + sz)
		mark_block(om.base + soff, sz);
}

/* Most words of most blocks are not heap addresses: four at a time are
 * ruled out with one branch before any is looked up. */
static void scan_words(uintptr_t lo, uintptr_t hi)
{
	const uintptr_t *p = (const uintptr_t *)((lo + 7) & ~(uintptr_t)7);
	const uintptr_t *end = (const uintptr_t *)(hi & ~(uintptr_t)7);
	const uintptr_t base = om.base, size = om.size;

	for (; end - p >= 4; p += 4) {
		uintptr_t a = p[0], b = p[1], c = p[2], d = p[3];

		if (__builtin_expect((a - base >= size) & (b - base >= size) &
				     (c - base >= size) & (d - base >= size), 1))
			continue;
		consider(a);
		consider(b);
		consider(c);
		consider(d);
	}
	for (; p < end; p++)
		consider(*p);
}

/* Machine code written at run time (a JIT's code cache) holds addresses
 * as instruction operands, at any byte offset. */
static void scan_bytes(uintptr_t lo, uintptr_t hi)
{
	for (uintptr_t p = lo; p + sizeof(uintptr_t) <= hi; p++) {
		uintptr_t w;

		memcpy(&w, (const void *)p, sizeof(w));
		consider(w);
	}
}

static void scan_run(uintptr_t a, uintptr_t b, void *arg)
{
	(void)arg;
	if (mk.code)
		scan_bytes(a, b);
	else
		scan_words(a, b);
}

static void scan_resident(uintptr_t lo, uintptr_t hi, bool shared)
{
	os_written_runs(mk.pagemap_fd, lo, hi, shared, scan_run, NULL);
}

void mark_range(uintptr_t lo, uintptr_t hi, bool resident_only, bool shared)
{
	if (hi <= lo)
		return;
	mk.st.root_bytes += hi - lo;
	if (resident_only && mk.pagemap_fd >= 0)
		scan_resident(lo, hi, shared);
	else
		scan_words(lo, hi);
}

void mark_code_range(uintptr_t lo, uintptr_t hi)
{
	mk.code = true;
	mark_range(lo, hi, true, false);
	mk.code = false;
}

/* Small blocks are read directly; big ones only where resident, since a
 * large calloc'd block may never have been touched. */
static void scan_block(uintptr_t start, size_t size)
{
	mk.st.heap_bytes += size;
	if (size >= SCAN_CHECK_PAGES && mk.pagemap_fd >= 0)
		scan_resident(start, start + size, false);
	else
		scan_words(start, start + size);
}

static void rescan_marked(void)
{
	size_t words = (heap_top() - om.base) >> (OM_GRANULE_LG + 6);

	mk.overflow = false;
	for (size_t w = 0; w < words; w++) {
		uint64_t m = mk.bits[w];

		while (m) {
			uintptr_t g = (w << 6) + (uintptr_t)__builtin_ctzll(m);
			uintptr_t start = om.base + (g << OM_GRANULE_LG);

			m &= m - 1;
			scan_block(start, om_usable((void *)start));
			mark_drain();
		}
	}
}

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
			__builtin_prefetch(&mk.bits[w]);
		}
	}
}

void mark_drain(void)
{
	struct entry q[PREFETCH_QUEUE];
	unsigned head = 0, n = 0;

	for (;;) {
		while (n < PREFETCH_QUEUE && mk.top) {
			struct entry e = mk.stack[--mk.top];

			__builtin_prefetch((const void *)e.start);
			q[(head + n++) % PREFETCH_QUEUE] = e;
		}
		if (!n)
			return;
		if (n > PREFETCH_QUEUE / 2)
			prefetch_lookups(&q[(head + PREFETCH_QUEUE / 2) % PREFETCH_QUEUE]);
		scan_block(q[head].start, q[head].size);
		head = (head + 1) % PREFETCH_QUEUE;
		n--;
	}
}

void mark_finish(struct mark_stats *st)
{
	mark_drain();
	while (mk.overflow)
		rescan_marked();
	*st = mk.st;
}

/* After the world resumed: the pages the stack used go back. */
void mark_release(void)
{
	os_purge(mk.stack, mk.cap * sizeof(*mk.stack), true);
}
