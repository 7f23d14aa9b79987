#define _GNU_SOURCE
#include "config.h"
#include "sites.h"

#include <dlfcn.h>
#include <link.h>
#include <pthread.h>
#include <stdatomic.h>
#include <string.h>

#define UNW_LOCAL_ONLY
#include <libunwind.h>

#include "bcache.h"
#include "account.h"
#include "log.h"
#include "objmap.h"
#include "options.h"
#include "os.h"
#include "stackmemo.h"
#include "events.h"

#define SITE_SLOTS SITES_MAX
#define POOL_WORDS (1ul << 23)            /* frames of all stacks: 64 MiB */
#define EXTRA_FRAMES 12                   /* the shim's own frames, dropped */
#define MAX_CODE 8

/* A block's entry in the side table: its site index + 1 in the low half,
 * its request code (sites_request) in the high half; 0 when the block
 * was allocated while nothing was recorded. */
#define ENTRY(site, req) ((uint64_t)(req) << 32 | (site))
#define REQ_SLACK (1u << 31)   /* the code holds usable - request */

struct site {
	_Atomic uint64_t key;     /* hash of the frames, never 0 once claimed */
	_Atomic uint64_t info;    /* pool offset << 8 | depth; 0 while being filled */
};

static struct {
	_Atomic int depth;        /* 0: sizes only, no stacks */
	int memo_depth;           /* the depth the memo was made for */
	_Atomic uint32_t sample;
	struct site *slots;
	uintptr_t *pool;
	_Atomic size_t pool_top;
	/* One per heap granule: the ENTRY of the block starting there.
	 * Only the block's owner writes its entry: plain stores, no atomic
	 * operation on the allocation path. */
	_Atomic uint64_t *of_block;
	_Atomic(_Atomic uint64_t *) pins;   /* one bit per heap granule */
	uintptr_t code_lo[MAX_CODE], code_hi[MAX_CODE];
	int ncode;
} st;

/* libunwind, opened RTLD_LOCAL when backtraces are on (see configure). */
static int (*backtrace_fn)(void **, int);

static __thread int capturing;
static __thread uint32_t countdown;
/* The program's call into the shim, while the allocation it asked for is
 * made (sites_enter .. sites_leave); sp 0 when not known. */
static __thread struct site_caller caller __attribute__((tls_model("initial-exec")));
static bool memo_on;

static int find_own_code(struct dl_phdr_info *info, size_t size, void *arg)
{
	uintptr_t me = (uintptr_t)arg;
	bool mine = false;

	(void)size;
	for (int i = 0; i < info->dlpi_phnum; i++) {
		const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
		uintptr_t lo = info->dlpi_addr + ph->p_vaddr;

		if (ph->p_type == PT_LOAD && me >= lo && me < lo + ph->p_memsz)
			mine = true;
	}
	if (!mine)
		return 0;
	for (int i = 0; i < info->dlpi_phnum && st.ncode < MAX_CODE; i++) {
		const ElfW(Phdr) *ph = &info->dlpi_phdr[i];

		if (ph->p_type == PT_LOAD && (ph->p_flags & PF_X)) {
			st.code_lo[st.ncode] = info->dlpi_addr + ph->p_vaddr;
			st.code_hi[st.ncode] = st.code_lo[st.ncode] + ph->p_memsz;
			st.ncode++;
		}
	}
	return 1;
}

static bool own_code(uintptr_t pc)
{
	for (int i = 0; i < st.ncode; i++)
		if (pc >= st.code_lo[i] && pc < st.code_hi[i])
			return true;
	return false;
}

static void *open_libunwind(void)
{
	void *h = dlopen(LIBUNWIND_SONAME, RTLD_NOW | RTLD_LOCAL);
	int (*policy)(unw_addr_space_t, unw_caching_policy_t);
	unw_addr_space_t *space;

	if (!h) {
		log_msg("allocation sites: cannot load %s; backtraces are off", LIBUNWIND_SONAME);
		return NULL;
	}
	*(void **)&backtrace_fn = dlsym(h, "unw_backtrace");
	*(void **)&policy = dlsym(h, UNW_SYMBOL(unw_set_caching_policy));
	space = dlsym(h, UNW_SYMBOL(unw_local_addr_space));
	if (!backtrace_fn) {
		log_msg("allocation sites: %s has no unw_backtrace; backtraces are off",
			LIBUNWIND_SONAME);
		return NULL;
	}
	if (policy && space)
		policy(*space, UNW_CACHE_PER_THREAD);
	return h;
}

/* libunwind's own locks are not reset in a fork's child: a child forked
 * while another thread of the program was unwinding waited on one of them
 * forever (a program forking while its threads allocate, with
 * backtraces).  Unwinds hold this lock shared, fork holds it alone; a
 * waiting fork keeps new unwinds out, so it cannot be starved. */
static pthread_rwlock_t unwinding = PTHREAD_RWLOCK_WRITER_NONRECURSIVE_INITIALIZER_NP;

void sites_fork_prepare(void)
{
	pthread_rwlock_wrlock(&unwinding);
}

void sites_fork_parent(void)
{
	pthread_rwlock_unlock(&unwinding);
}

/* Made anew: the readers that queued behind the fork are in the parent,
 * and an unlock here would hand them the lock. */
void sites_fork_child(void)
{
	static const pthread_rwlock_t fresh = PTHREAD_RWLOCK_WRITER_NONRECURSIVE_INITIALIZER_NP;

	unwinding = fresh;
}

static int backtrace_unforked(void **raw, int n)
{
	int got;

	pthread_rwlock_rdlock(&unwinding);
	got = backtrace_fn(raw, n);
	pthread_rwlock_unlock(&unwinding);
	return got;
}

/* The tables and libunwind, once: from the constructor, or from the
 * first live switch (the control thread or a call of the program's,
 * never inside malloc).  The side table is never unmapped: once it
 * exists every allocation writes its entry, so no entry goes stale. */
static bool sites_setup(int depth)
{
	static void *unwind_lib;
	static bool failed;
	void *warm[4];

	if (unwind_lib || failed)
		return !failed;
	failed = true;
	if (!(unwind_lib = open_libunwind()))
		return false;
	st.slots = os_map(SITE_SLOTS * sizeof(*st.slots));
	st.pool = os_map(POOL_WORDS * sizeof(*st.pool));
	st.of_block = os_map((om.size >> OM_GRANULE_LG) * sizeof(*st.of_block));
	if (!st.slots || !st.pool || !st.of_block) {
		log_msg("allocation sites: no memory for the tables; backtraces are off");
		return false;
	}
	dl_iterate_phdr(find_own_code, (void *)(uintptr_t)sites_init);
	memo_on = memo_init(unwind_lib, depth);
	st.memo_depth = depth;
	/* libunwind does its one-time set-up here, outside malloc. */
	capturing = 1;
	backtrace_unforked(warm, 4);
	capturing = 0;
	failed = false;
	return true;
}

void sites_init(void)
{
	int64_t depth = opt_int(OPT_BACKTRACE);
	const char *report = opt_str(OPT_REPORT);

	if (depth < 0)   /* unset: on for exit reports, off otherwise */
		depth = report && !strcmp(report, "exit") ? 16 : 0;
	atomic_store(&st.sample, (uint32_t)opt_int(OPT_BACKTRACE_SAMPLE));
	if (depth)
		sites_set_depth((int)depth);
}

int sites_set_depth(int depth)
{
	static atomic_flag busy = ATOMIC_FLAG_INIT;
	int old = atomic_load(&st.depth);

	if (depth < 0 || depth > SITES_MAX_DEPTH)
		return -1;
	while (atomic_flag_test_and_set_explicit(&busy, memory_order_acquire))
		;
	if (depth && !sites_setup(depth)) {
		atomic_flag_clear_explicit(&busy, memory_order_release);
		return -1;
	}
	atomic_store_explicit(&st.depth, depth, memory_order_release);
	if (st.of_block)
		gc_set_mode(MODE_SITES, true);
	atomic_flag_clear_explicit(&busy, memory_order_release);
	return old;
}

int sites_depth(void)
{
	return atomic_load_explicit(&st.depth, memory_order_relaxed);
}

bool sites_sizes_recorded(void)
{
	return st.of_block != NULL;
}

static uint64_t hash_frames(const uintptr_t *f, int n)
{
	uint64_t h = 0x9e3779b97f4a7c15ULL ^ (uint64_t)n;

	for (int i = 0; i < n; i++) {
		h ^= f[i];
		h *= 0xff51afd7ed558ccdULL;
		h ^= h >> 32;
	}
	return h ? h : 1;
}

static bool same_frames(uint64_t info, const uintptr_t *f, int n)
{
	return (int)(info & 255) == n &&
	       !memcmp(st.pool + (info >> 8), f, (size_t)n * sizeof(*f));
}

static uint64_t wait_info(struct site *s)
{
	uint64_t info;

	/* bounded: the filler may be a thread that no longer exists (fork) */
	for (long spins = 0; spins < (1L << 20); spins++)
		if ((info = atomic_load_explicit(&s->info, memory_order_acquire)))
			return info;
	return 0;
}

/* The index + 1 of the site with these frames, added if new; 0 when the
 * tables are full. */
static uint32_t intern(const uintptr_t *f, int n)
{
	uint64_t h = hash_frames(f, n);
	size_t off = SIZE_MAX;

	for (uint32_t i = 0, idx = (uint32_t)h & (SITE_SLOTS - 1); i < SITE_SLOTS;
	     i++, idx = (idx + 1) & (SITE_SLOTS - 1)) {
		struct site *s = &st.slots[idx];
		uint64_t k = atomic_load_explicit(&s->key, memory_order_acquire);

		if (k == 0) {
			uint64_t zero = 0;

			if (off == SIZE_MAX) {
				off = atomic_fetch_add_explicit(&st.pool_top, (size_t)n,
								memory_order_relaxed);
				if (off + (size_t)n > POOL_WORDS)
					return 0;
				memcpy(st.pool + off, f, (size_t)n * sizeof(*f));
			}
			if (atomic_compare_exchange_strong(&s->key, &zero, h)) {
				atomic_store_explicit(&s->info, (uint64_t)off << 8 | (uint64_t)n,
						      memory_order_release);
				return idx + 1;
			}
			k = zero;
		}
		if (k == h && same_frames(wait_info(s), f, n))
			return idx + 1;
	}
	return 0;
}

/* The side-table entry of the block at heap address p. */
static _Atomic uint64_t *site_entry(uintptr_t p)
{
	return &st.of_block[(p - om.base) >> OM_GRANULE_LG];
}

/* The request n of the block at p, coded in 32 bits: n + 1 when small
 * enough, else the slack above it in its usable size; 0 when neither
 * fits.  malloc(0) counts as 1 byte, as in LeakSanitizer. */
static uint32_t request_code(void *p, size_t n)
{
	size_t usable;

	if (n < REQ_SLACK - 1)
		return (uint32_t)(n ? n : 1) + 1;
	usable = om_usable(p);
	return usable >= n && usable - n < REQ_SLACK ? REQ_SLACK | (uint32_t)(usable - n) : 0;
}

/* The site of the stack unwound now, remembered in t's memo when the
 * program's call is known; 0 when no frame is left or the tables are
 * full. */
static uint32_t unwind(struct thread_rec *t, int depth)
{
	void *raw[SITES_MAX_DEPTH + EXTRA_FRAMES];
	uintptr_t f[SITES_MAX_DEPTH];
	int got, skip = 0, n = 0;
	uint32_t id;

	stat_inc(EV_stack_unwinds);
	got = backtrace_unforked(raw, depth + EXTRA_FRAMES);
	while (skip < got && own_code((uintptr_t)raw[skip]))
		skip++;
	for (; skip + n < got && n < depth; n++)
		f[n] = (uintptr_t)raw[skip + n];
	if (n == 0)
		return 0;
	id = intern(f, n);
	if (memo_on && caller.sp && f[0] == caller.ra && depth == st.memo_depth)
		memo_add(t, caller.sp, f, n, id);
	return id;
}

/* Every allocation writes its entry, so a freed block's entry needs no
 * clearing on the free path: the next block there overwrites it.  Every
 * sample-th allocation of each thread gets its stack; none from inside
 * libunwind (which may allocate) or from a signal handler that
 * interrupted it. */
void sites_alloc(struct thread_rec *t, void *p, size_t n)
{
	int depth = atomic_load_explicit(&st.depth, memory_order_acquire);
	uint32_t id = 0;

	if (depth && !capturing && countdown <= 1) {
		countdown = atomic_load_explicit(&st.sample, memory_order_relaxed);
		capturing = 1;
		if (memo_on && caller.sp && depth == st.memo_depth)
			id = memo_find(t, caller.ra, caller.sp);
		if (!id)
			id = unwind(t, depth);
		capturing = 0;
	} else if (depth && !capturing) {
		countdown--;
	}
	atomic_store_explicit(site_entry((uintptr_t)p), ENTRY(id, request_code(p, n)),
			      memory_order_release);
}

/* Called on entry by a function the program called: with ra its return
 * address and fp its frame address, the program's stack pointer is fp +
 * 16.  That holds only if every call from the exported function on was a
 * tail call, which the return address tells: it must be the program's. */
void sites_enter(struct site_caller *prev, void *ra, void *fp)
{
	*prev = caller;
	if (!memo_on || own_code((uintptr_t)ra) || ((void **)fp)[1] != ra)
		return;
	caller.ra = (uintptr_t)ra;
	caller.sp = (uintptr_t)fp + 16;
}

void sites_leave(const struct site_caller *prev)
{
	caller = *prev;
}

void sites_unpin_freed(void *p)
{
	uintptr_t g = ((uintptr_t)p - om.base) >> OM_GRANULE_LG;
	_Atomic uint64_t *pins = atomic_load_explicit(&st.pins, memory_order_acquire);

	if (pins && (atomic_load_explicit(&pins[g >> 6], memory_order_relaxed) >> (g & 63)) & 1)
		atomic_fetch_and_explicit(&pins[g >> 6], ~(1ULL << (g & 63)), memory_order_relaxed);
}

static uint64_t entry_of(uintptr_t p)
{
	if (!st.of_block || !om_in_heap((void *)p))
		return 0;
	return atomic_load_explicit(site_entry(p), memory_order_acquire);
}

uint32_t sites_of(uintptr_t p)
{
	return (uint32_t)entry_of(p);
}

size_t sites_request(uintptr_t p, size_t usable)
{
	uint32_t code = (uint32_t)(entry_of(p) >> 32);

	if (!code)
		return 0;
	if (code & REQ_SLACK)
		return usable - (code & ~REQ_SLACK);
	return code - 1 <= usable ? code - 1 : 0;
}

size_t sites_frames(uint32_t site, const uintptr_t **frames)
{
	uint64_t info;

	if (!site || site > SITE_SLOTS || !st.slots)
		return 0;
	info = atomic_load_explicit(&st.slots[site - 1].info, memory_order_acquire);
	*frames = st.pool + (info >> 8);
	return (size_t)(info & 255);
}

/* The pin bitmap is mapped at the first pin, outside malloc. */
bool sites_pin(void *p, bool on)
{
	_Atomic uint64_t *pins = atomic_load(&st.pins);
	uintptr_t g;

	if (!om_in_heap(p) || !om_usable(p) || bcache_holds(p))
		return false;
	if (!pins) {
		_Atomic uint64_t *fresh = os_map(om.size >> (OM_GRANULE_LG + 3)), *none = NULL;

		if (!fresh)
			return false;
		if (!atomic_compare_exchange_strong(&st.pins, &none, fresh))
			os_unmap(fresh, om.size >> (OM_GRANULE_LG + 3));
		pins = atomic_load(&st.pins);
		gc_set_mode(MODE_PINNED, true);
	}
	g = ((uintptr_t)p - om.base) >> OM_GRANULE_LG;
	if (on)
		atomic_fetch_or(&pins[g >> 6], 1ULL << (g & 63));
	else
		atomic_fetch_and(&pins[g >> 6], ~(1ULL << (g & 63)));
	return true;
}

bool sites_pinned(uintptr_t p)
{
	_Atomic uint64_t *pins = atomic_load_explicit(&st.pins, memory_order_acquire);
	uintptr_t g = (p - om.base) >> OM_GRANULE_LG;

	return pins && (atomic_load_explicit(&pins[g >> 6], memory_order_relaxed) >> (g & 63)) & 1;
}
