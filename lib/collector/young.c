#define _GNU_SOURCE
#include "young.h"

#include <errno.h>
#include <string.h>
#include <sys/mman.h>
#include <linux/close_range.h>
#include <linux/futex.h>
#include <sched.h>
#include <signal.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "heap.h"
#include "mark.h"
#include "options.h"
#include "os.h"
#include "rtrack.h"
#include "stop.h"
#include "vacant.h"
#include "wtrack.h"

struct young yg;

/* Heap pages written since the last collection (since0), and since the
 * last collection of generation 1 or 2 (since1): one bit a page.  Every
 * scan adds to both. */
static struct {
	uint64_t *since0, *since1;
	bool scanned;          /* a scan has protected the heap once */
	bool precleaned;       /* since0 and the counts hold a preclean's pages */
	unsigned paused;       /* automatic collections left without tracking */
	unsigned backoff;      /* the next pause's length */
	uint64_t fault_ns;     /* a first write to a protected page */
	uint64_t touch_ns;     /* a first write to a page never written */
	uint64_t last_pages;   /* distinct written pages the last scan found */
	uint64_t last_faults;  /* pages it reported: each was a fault */
	uintptr_t top;         /* end of the heap registered so far */
} wr;

bool young_init(void)
{
	size_t bytes = om.size >> (OM_PAGE_LG + 3);

	if (!opt_int(OPT_MINOR))
		wtrack_disable();
	wr.since0 = os_map(bytes);
	wr.since1 = os_map(bytes);
	return wr.since0 && wr.since1 && vacant_init() && rtrack_init();
}

bool young_tracking(void)
{
	return wtrack_state() == WTRACK_ON && wr.scanned && !wr.paused;
}

/* Minor collections pay when marking the old heap costs more than the
 * faults of the program's first writes after each collection: a program
 * that writes every page again between two collections (a leaky one
 * reusing what was collected) pays a fault a page and saves little.
 * When the pages written since the last protection cost more than half
 * what an automatic collection saves, the heap is left unprotected, and
 * collections are full, for 4, then 16, up to 256 of them before the
 * next try.  Half: what minor collections cost besides the faults is
 * left out, chiefly the blocks they promote that die soon after and
 * stay until the next full collection, which the program's new blocks
 * go around on fresh pages: in the GCBench program, 43 minor collections
 * chosen on the faults alone made 20,500 page faults in all against
 * 11,600 with full ones only, and took as long or longer.  An explicit
 * collection of generation 0 or 1 always protects. */
#define BACKOFF_FIRST 4
#define BACKOFF_MAX 256

static bool faults_pay(uint64_t cost, uint64_t saved_ns)
{
	return cost <= saved_ns / 2;
}

static void back_off(void)
{
	wr.backoff = !wr.backoff ? BACKOFF_FIRST :
		     wr.backoff < BACKOFF_MAX ? wr.backoff * 4 : BACKOFF_MAX;
	wr.paused = wr.backoff;
}

/* A first scan reports every page never protected, not what the program
 * writes between collections: the heap is protected if an eighth of it
 * rewritten would cost no more than a collection saves. */
static bool worth_protecting(uint64_t saved_ns)
{
	uint64_t cost = wr.last_faults * wr.fault_ns;

	if (faults_pay(wr.scanned ? cost : cost / 8, saved_ns)) {
		if (wr.scanned)
			wr.backoff = 0;
		return true;
	}
	back_off();
	return false;
}

uint64_t young_touch_ns(void)
{
	return wr.touch_ns;
}

uint64_t young_last_pages(void)
{
	return wr.last_pages;
}

/* The userfaultfd is held by a task of the shim's, in a descriptor table
 * of its own: a program that lists, closes or dup2()s over every
 * descriptor it has never sees it, and its registration lasts as long as
 * the process.  The task registers the whole reserved heap once (the
 * heap's extents change protection, never mapping: os_commit), then
 * sleeps.  It is made with clone, not pthread_create, as a collection
 * may start inside malloc; until it has started, it touches nothing of
 * the thread that made it but errno, while that thread waits for it. */
#define HOLDER_STACK (64 * 1024)

static struct {
	void *stack;
	_Atomic int result;        /* 0 while it starts, then 1 or -1 */
	bool tried;
	/* a request to register mappings (young_register): 0 none, 1 made,
	 * 2 served */
	_Atomic int asked;
	const struct span *spans;
	bool *ok;
	size_t n;
} holder;

/* The task runs on the thread pointer of the thread that made it, which
 * may end while the task lives on: once started, the task must not touch
 * thread-local storage, errno included, so its futex calls are made
 * without libc (os_futex_raw). */
static void futex_wait(_Atomic int *at, int was)
{
	os_futex_raw(at, FUTEX_WAIT_PRIVATE, was);
}

static void futex_wake(_Atomic int *at)
{
	os_futex_raw(at, FUTEX_WAKE_PRIVATE, 1);
}

/* What the program pays for each page it writes after a collection
 * protected it: a fault the kernel resolves, measured on pages of the
 * task's own (from 1 us on bare metal to 20 us in some VMs).  The first
 * write to a page never written, which the markers pay for the mark bytes
 * of a heap that grew, is measured on the way. */
#define PROBE_PAGES 16

static uint64_t write_pages(char *p)
{
	uint64_t t = os_now_ns();

	for (size_t i = 0; i < PROBE_PAGES; i++)
		((volatile char *)p)[i * OS_PAGE] = 2;
	return (os_now_ns() - t) / PROBE_PAGES;
}

static void measure_faults(void)
{
	size_t size = PROBE_PAGES * OS_PAGE;
	char *p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

	if (p == MAP_FAILED)
		return;
	wr.touch_ns = write_pages(p);
	if (wtrack_register((uintptr_t)p, (uintptr_t)p + size) &&
	    wtrack_protect((uintptr_t)p, (uintptr_t)p + size))
		wr.fault_ns = write_pages(p);
	munmap(p, size);
}

static int holder_main(void *arg)
{
	bool ok;

	(void)arg;
	ok = syscall(SYS_close_range, 0, ~0U, CLOSE_RANGE_UNSHARE) == 0 && wtrack_open() &&
	     wtrack_register(om.base, om.base + om.size);
	if (ok)
		measure_faults();
	atomic_store(&holder.result, ok ? 1 : -1);
	futex_wake(&holder.result);
	for (;;) {
		futex_wait(&holder.asked, 0);
		if (atomic_load(&holder.asked) != 1)
			continue;
		for (size_t i = 0; i < holder.n; i++)
			holder.ok[i] = ok && wtrack_register(holder.spans[i].lo, holder.spans[i].hi);
		atomic_store(&holder.asked, 2);
		futex_wake(&holder.asked);
	}
	return 0;
}

/* Only the holder can register: the descriptor is in its table alone. */
bool young_register(const struct span *spans, size_t n, bool *ok)
{
	if (atomic_load(&holder.result) != 1)
		return false;
	holder.spans = spans;
	holder.ok = ok;
	holder.n = n;
	atomic_store(&holder.asked, 1);
	futex_wake(&holder.asked);
	while (atomic_load(&holder.asked) != 2)
		futex_wait(&holder.asked, 1);
	atomic_store(&holder.asked, 0);
	return true;
}

/* Every signal blocked in the task (it inherits the mask): a signal for
 * the process must never run the program's handler there. */
static void start_holder(void)
{
	const int flags = CLONE_VM | CLONE_FS | CLONE_FILES | CLONE_SIGHAND | CLONE_THREAD |
			  CLONE_SYSVSEM;
	sigset_t all, old;
	int saved = errno;
	pid_t tid;

	holder.tried = true;
	if (!holder.stack && !(holder.stack = os_map(HOLDER_STACK)))
		return;
	atomic_store(&holder.result, 0);
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	tid = clone(holder_main, (char *)holder.stack + HOLDER_STACK, flags, NULL);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (tid > 0) {
		stop_exclude(tid);
		while (atomic_load(&holder.result) == 0)
			syscall(SYS_futex, &holder.result, FUTEX_WAIT_PRIVATE, 0, NULL, NULL, 0);
	}
	errno = saved;
}

void young_prepare(void)
{
	if (!holder.tried && wtrack_state() == WTRACK_UNTRIED)
		start_holder();
}

/* The parent's task did not follow the fork: the child makes its own. */
void young_fork_child(void)
{
	holder.tried = false;
	wr.precleaned = false;
	holder.result = 0;
	holder.asked = 0;
	rtrack_fork_child();
	wtrack_fork_child();
	vacant_forget();
}

static void forget_counts(void)
{
	wr.last_pages = 0;
	wr.last_faults = 0;
}

/* Returns how many were clear. */
static uint64_t set_bits(uint64_t *bits, uintptr_t first, uintptr_t end)
{
	uint64_t was_clear = 0;

	for (uintptr_t pg = first; pg < end; pg++) {
		uint64_t bit = 1ULL << (pg & 63);

		was_clear += !(bits[pg >> 6] & bit);
		bits[pg >> 6] |= bit;
	}
	return was_clear;
}

static void note_written(uintptr_t a, uintptr_t b, void *arg)
{
	uintptr_t first = (a - om.base) >> OM_PAGE_LG, end = (b - om.base) >> OM_PAGE_LG;

	(void)arg;
	wr.last_faults += end - first;
	wr.last_pages += set_bits(wr.since0, first, end);
	set_bits(wr.since1, first, end);
}

static void ignore_run(uintptr_t a, uintptr_t b, void *arg)
{
	(void)a, (void)b, (void)arg;
}

/* Protecting a page changes its page-table entry and costs a share of a
 * TLB flush on every processor the program runs on: a few microseconds
 * in a virtual machine, several milliseconds for the pages a program
 * writes between two collections.  So while the program still runs, the
 * collecting thread lists and protects the pages written since the last
 * scan, twice more while the program keeps writing many, and the scan in
 * the stopped world has only the pages written since to protect.  Every
 * write is still reported: one before a page's protection by the pass
 * that protects it, one after by a later pass.  Only when the last scan
 * protected and tracking paid. */
#define PRECLEAN_PASSES 3
#define PRECLEAN_FEW 64   /* pages a further pass would not pay for */

void young_preclean(int pagemap, uint64_t saved_ns)
{
	uint64_t before;

	if (!young_tracking() || !faults_pay(wr.last_faults * wr.fault_ns, saved_ns))
		return;
	if (!wr.precleaned)
		forget_counts();
	wr.precleaned = true;
	rtrack_prepare();
	for (int i = 0; i < PRECLEAN_PASSES; i++) {
		before = wr.last_faults;
		if (!vacant_scan_heap(pagemap, true, note_written) ||
		    wr.last_faults - before <= PRECLEAN_FEW)
			break;
	}
	wr.last_faults += rtrack_preclean(pagemap);
}

/* Without a preclean, the pages are listed first, and protected again in
 * a second walk only if that pays: without protection, the next scans
 * start over.  The report is complete either way; a walk that only lists
 * costs a fraction of one that protects. */
static bool list_then_protect(int pagemap, uint64_t saved_ns)
{
	if (!vacant_scan_heap(pagemap, false, note_written))
		return false;
	wr.scanned = worth_protecting(saved_ns) &&
		     vacant_scan_heap(pagemap, true, ignore_run);
	return true;
}

/* After a preclean, one walk lists and protects: the program has paid for
 * the faults of most pages already, and the decision is for the next
 * collections.  A walk that fails has not listed every page. */
static bool protect_rest(int pagemap, uint64_t saved_ns)
{
	wr.scanned = vacant_scan_heap(pagemap, true, note_written);
	worth_protecting(saved_ns);
	return wr.scanned;
}

bool young_scan(int pagemap, int gen, uint64_t saved_ns)
{
	bool ready = wr.scanned, precleaned = wr.precleaned, listed = false;

	wr.precleaned = false;
	if (!precleaned)
		forget_counts();
	if (saved_ns == UINT64_MAX)   /* a minor collection asked for ends a pause */
		wr.paused = 0;
	if (wr.paused)
		wr.paused--;
	else if (wtrack_state() == WTRACK_ON)
		listed = precleaned ? protect_rest(pagemap, saved_ns) :
				      list_then_protect(pagemap, saved_ns);
	/* the roots are protected again when the heap is */
	rtrack_begin(pagemap, gen, young_tracking());
	return listed && ready && gen < 2;
}

static size_t bitmap_words(void)
{
	return (((heap_top() - om.base) >> OM_PAGE_LG) + 63) / 64;
}

void young_begin(int gen, const uint64_t *aged)
{
	yg.flags = gen == 0 ? OM_YOUNG0 : OM_YOUNG;
	yg.aged = aged;
	yg.on = true;
}

/* The part within [lo, hi) of the block at start, if it is old. */
static void scan_if_old(struct marker *m, uintptr_t start, size_t size, uintptr_t lo,
			uintptr_t hi)
{
	uintptr_t end = start + size;

	if (young_block(start - om.base))
		return;
	mark_written(m, start > lo ? start : lo, end < hi ? end : hi);
}

/* One written page: the old block reaching into it from below, then the
 * old blocks starting on it, neighbours scanned as one run.  Blocks that
 * start on a page all have its class's size, and on a page that is not
 * flagged young for this collection none of them is young. */
static void scan_written_page(uintptr_t pg, struct marker *m)
{
	uintptr_t lo = om.base + (pg << OM_PAGE_LG), hi = lo + (1UL << OM_PAGE_LG);
	uintptr_t start, run = 0, run_end = 0;
	bool any_young = atomic_load_explicit(&om.pages[pg], memory_order_relaxed) & yg.flags;
	size_t size;

	if (om_find(lo, &start, &size) && start < lo)
		scan_if_old(m, start, size, lo, hi);
	if (!om_page_has_starts(pg) || !(size = om_size_at(lo - om.base)))
		return;
	for (size_t w = pg * OM_WORDS_PER_PAGE; w < (pg + 1) * OM_WORDS_PER_PAGE; w++) {
		uint64_t bits = atomic_load_explicit(&om.starts[w], memory_order_relaxed);

		for (; bits; bits &= bits - 1) {
			uintptr_t off = ((w << 6) + (uintptr_t)__builtin_ctzll(bits)) << OM_GRANULE_LG;

			if (any_young && young_block(off))
				continue;
			if (om.base + off != run_end) {
				if (run_end)
					mark_written(m, run, run_end < hi ? run_end : hi);
				run = om.base + off;
			}
			run_end = om.base + off + size;
		}
	}
	if (run_end)
		mark_written(m, run, run_end < hi ? run_end : hi);
}

void young_mark_written(int gen)
{
	mark_pages_by_any(gen == 0 ? wr.since0 : wr.since1, bitmap_words(), scan_written_page);
}

/* After a collection of generation 1 or 2, the blocks that were in
 * generation 0 are young for generation 1 still, and pointers to them
 * were written since the collection before: the pages of that interval,
 * since0 now, are where the next one of generation 1 starts from. */
void young_end(int gen)
{
	size_t words = bitmap_words();

	yg.on = false;
	rtrack_end(gen);
	for (size_t w = 0; w < words; w++) {
		if (gen > 0 && wr.since1[w] != wr.since0[w])
			wr.since1[w] = wr.since0[w];
		if (wr.since0[w])
			wr.since0[w] = 0;
	}
}
