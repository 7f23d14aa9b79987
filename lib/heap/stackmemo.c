#define _GNU_SOURCE
#include "config.h"
#include "stackmemo.h"

#include <dlfcn.h>
#include <stdatomic.h>
#include <stddef.h>

#define UNW_LOCAL_ONLY
#include <libunwind.h>

#include "os.h"
#include "sites.h"
#include "thread.h"

#define SIZE_SLOTS (1u << 16)     /* return addresses with a known frame */
#define MEMO_SLOTS 256            /* stacks remembered per thread */
#define MEMO_WAYS 4
#define LEARN_FRAMES (SITES_MAX_DEPTH + 16)
/* Bigger frames are not memoized: this bounds how far past a frame a read
 * could go, were a frame of varying size ever taken for a fixed one. */
#define MAX_FRAME (1u << 20)
#define VARIABLE UINT32_MAX

/* The frame size (the distance from the stack pointer after the call
 * returns to the frame's top, its canonical frame address) at a return
 * address: 0 while unknown, VARIABLE when it is not the same every time.
 * Each entry only ever goes 0 -> size -> VARIABLE. */
struct frame_size {
	_Atomic uintptr_t ra;
	_Atomic uint32_t size;
};

/* One remembered stack: the return address and stack pointer of its
 * innermost frame, its site, and where each outer return address lies
 * (as offsets from sp; off[0] is unused). */
struct memo_entry {
	uintptr_t ra, sp;
	uint32_t id, n;
	uint32_t off[];
};

static struct {
	_Atomic bool full;         /* the size table has no room left */
	size_t stride;             /* bytes per memo entry */
	struct frame_size *sizes;
	int (*getcontext)(unw_context_t *);
	int (*init_local)(unw_cursor_t *, unw_context_t *);
	int (*step)(unw_cursor_t *);
	int (*get_reg)(unw_cursor_t *, unw_regnum_t, unw_word_t *);
	int (*is_signal_frame)(unw_cursor_t *);
} mm;

#if defined(__x86_64__)
#define FRAME_POINTER UNW_X86_64_RBP
#endif

bool memo_init(void *h, int depth)
{
#ifdef FRAME_POINTER
	*(void **)&mm.getcontext = dlsym(h, UNW_SYMBOL(unw_tdep_getcontext));
	*(void **)&mm.init_local = dlsym(h, UNW_SYMBOL(unw_init_local));
	*(void **)&mm.step = dlsym(h, UNW_SYMBOL(unw_step));
	*(void **)&mm.get_reg = dlsym(h, UNW_SYMBOL(unw_get_reg));
	*(void **)&mm.is_signal_frame = dlsym(h, UNW_SYMBOL(unw_is_signal_frame));
	if (!mm.getcontext || !mm.init_local || !mm.step || !mm.get_reg || !mm.is_signal_frame)
		return false;
	mm.sizes = os_map(SIZE_SLOTS * sizeof(*mm.sizes));
	if (!mm.sizes)
		return false;
	mm.stride = (offsetof(struct memo_entry, off) + (size_t)depth * sizeof(uint32_t) + 7) & ~(size_t)7;
	return true;
#else
	(void)h, (void)depth;
	return false;
#endif
}

static size_t slot_of(uintptr_t ra)
{
	return (size_t)((ra * 0x9e3779b97f4a7c15ULL) >> 48) & (SIZE_SLOTS - 1);
}

/* The table's entry for ra, claimed if absent; NULL when it is full. */
static struct frame_size *size_entry(uintptr_t ra, bool claim)
{
	size_t i = slot_of(ra);

	for (unsigned probes = 0; probes < 64; probes++, i = (i + 1) & (SIZE_SLOTS - 1)) {
		struct frame_size *e = &mm.sizes[i];
		uintptr_t k = atomic_load_explicit(&e->ra, memory_order_acquire);

		if (k == ra)
			return e;
		if (k == 0) {
			if (!claim)
				return NULL;
			if (atomic_compare_exchange_strong(&e->ra, &k, ra) || k == ra)
				return e;
		}
	}
	if (claim)
		atomic_store_explicit(&mm.full, true, memory_order_relaxed);
	return NULL;
}

static uint32_t frame_size_at(uintptr_t ra)
{
	struct frame_size *e = size_entry(ra, false);

	return e ? atomic_load_explicit(&e->size, memory_order_relaxed) : 0;
}

/* A second, different size makes the frame VARIABLE for good. */
static void learn(uintptr_t ra, uint32_t size)
{
	struct frame_size *e = size_entry(ra, true);
	uint32_t old = 0;

	if (!e || atomic_compare_exchange_strong(&e->size, &old, size) || old == size)
		return;
	while (old != VARIABLE && !atomic_compare_exchange_weak(&e->size, &old, VARIABLE))
		;
}

/* A frame whose stack pointer is sp and whose caller's is next, with the
 * frame pointer register holding rbp. */
static uint32_t classify(unw_word_t sp, unw_word_t next, unw_word_t rbp, bool signal)
{
	unw_word_t size = next - sp;

	/* A frame addressed through its frame pointer may have a different
	 * size at every call (alloca, variable arrays, realignment). */
	if (signal || next <= sp || size > MAX_FRAME || size % 8 || rbp + 16 == next)
		return VARIABLE;
	return (uint32_t)size;
}

/* One slow walk over this thread's stack with libunwind's cursor, which
 * tells each frame's stack pointer: every frame's size is learned. */
#ifdef FRAME_POINTER
static void learn_stack(void)
{
	unw_context_t uc;
	unw_cursor_t c;
	unw_word_t ip, sp, rbp, next;
	bool after_signal = false;

	if (mm.getcontext(&uc) < 0 || mm.init_local(&c, &uc) < 0 ||
	    mm.get_reg(&c, UNW_REG_IP, &ip) < 0 || mm.get_reg(&c, UNW_REG_SP, &sp) < 0 ||
	    mm.get_reg(&c, FRAME_POINTER, &rbp) < 0)
		return;
	for (int i = 0; i < LEARN_FRAMES; i++) {
		bool signal = mm.is_signal_frame(&c) > 0;

		if (mm.step(&c) <= 0 || mm.get_reg(&c, UNW_REG_SP, &next) < 0)
			return;
		/* the first frame's ip is this function's, and an interrupted
		 * frame's is not a return address either */
		if (i > 0 && !after_signal)
			learn(ip, classify(sp, next, rbp, signal));
		after_signal = signal;
		sp = next;
		if (mm.get_reg(&c, UNW_REG_IP, &ip) < 0 || mm.get_reg(&c, FRAME_POINTER, &rbp) < 0)
			return;
	}
}
#else
static void learn_stack(void)
{
}
#endif

/* A thread's memo: MEMO_SLOTS entries of mm.stride bytes in sets of
 * MEMO_WAYS, mapped at its first use and kept with the thread's record.
 * Stacks that differ only further out share a key (one line reached along
 * two paths), hence the ways. */
static struct memo_entry *entry_at(unsigned char *m, size_t i)
{
	return (struct memo_entry *)(m + i * mm.stride);
}

static size_t set_of(uintptr_t ra, uintptr_t sp)
{
	uint64_t h = (ra ^ (sp << 7)) * 0xff51afd7ed558ccdULL;

	return (size_t)(h >> 58) * MEMO_WAYS;
}

/* Whether e's stack is the one on the thread's stack now. */
static bool entry_holds(const struct memo_entry *e, uintptr_t ra, uintptr_t sp)
{
	const uintptr_t *f;

	if (e->ra != ra || e->sp != sp || sites_frames(e->id, &f) != e->n || f[0] != ra)
		return false;
	/* Inner frames first: each slot read lies in a frame the previous
	 * match proved live. */
	for (uint32_t k = 1; k < e->n; k++)
		if (*(const uintptr_t *)(sp + e->off[k]) != f[k])
			return false;
	return true;
}

uint32_t memo_find(struct thread_rec *t, uintptr_t ra, uintptr_t sp)
{
	unsigned char *m = t->site_memo;
	size_t set = set_of(ra, sp);

	for (size_t w = 0; m && w < MEMO_WAYS; w++) {
		const struct memo_entry *e = entry_at(m, set + w);

		if (entry_holds(e, ra, sp))
			return e->id;
	}
	return 0;
}

static unsigned char *memo_of(struct thread_rec *t)
{
	if (!t->site_memo)
		t->site_memo = os_map(MEMO_SLOTS * mm.stride);
	return t->site_memo;
}

/* The sizes of frames 0..n-2, learned by one walk if some are unknown.
 * A return address the walk did not reach is taken as VARIABLE, so that
 * no stack makes every allocation walk again. */
static bool sizes_of(const uintptr_t *f, int n, uint32_t *size)
{
	bool learned = false;

	for (int j = 0; j + 1 < n; j++) {
		size[j] = frame_size_at(f[j]);
		if (size[j] == 0 && !learned && !atomic_load_explicit(&mm.full, memory_order_relaxed)) {
			learn_stack();
			learned = true;
			size[j] = frame_size_at(f[j]);
		}
		if (size[j] == 0) {
			if (learned)
				learn(f[j], VARIABLE);
			return false;
		}
		if (size[j] == VARIABLE)
			return false;
	}
	return true;
}

void memo_add(struct thread_rec *t, uintptr_t sp, const uintptr_t *f, int n, uint32_t id)
{
	uint32_t size[SITES_MAX_DEPTH], off[SITES_MAX_DEPTH];
	struct memo_entry *e;
	unsigned char *m;
	uintptr_t s = sp;

	if (n < 1 || !id || !sizes_of(f, n, size))
		return;
	for (int j = 0; j + 1 < n; j++) {
		s += size[j];
		/* the learned size must put the next return address where the
		 * unwinder found it; if not, the frame varies */
		if (*(const uintptr_t *)(s - 8) != f[j + 1]) {
			learn(f[j], VARIABLE);
			return;
		}
		off[j + 1] = (uint32_t)(s - 8 - sp);
	}
	m = memo_of(t);
	if (!m)
		return;
	/* the ways of a set are filled in turn */
	e = entry_at(m, set_of(f[0], sp) + t->site_memo_next++ % MEMO_WAYS);
	e->ra = f[0];
	e->sp = sp;
	e->id = id;
	e->n = (uint32_t)n;
	for (int k = 1; k < n; k++)
		e->off[k] = off[k];
}
