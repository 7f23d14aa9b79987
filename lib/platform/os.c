#define _GNU_SOURCE
#include "os.h"
#include "pmscan.h"
#include "regions.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/close_range.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

/* Every mapping the shim makes for itself is registered in regions.c so
 * that the collector does not scan it as a root. */

/* Up to *size bytes, no more than a share of RLIMIT_AS, halved until the
 * kernel agrees, but no less than min; *size is what was mapped.  The
 * program keeps room to map under an address-space limit. */
static void *map_within_limit(size_t *size, size_t min, size_t share, int prot)
{
	struct rlimit rl;
	size_t want = *size;

	if (getrlimit(RLIMIT_AS, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY &&
	    want > rl.rlim_cur / share)
		want = rl.rlim_cur / share;
	for (; want >= min; want /= 2) {
		void *p = mmap(NULL, want, prot, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE,
			       -1, 0);
		if (p != MAP_FAILED) {
			*size = want;
			return p;
		}
	}
	return NULL;
}

/* Address space is reserved without backing store: PROT_NONE pages cost
 * nothing until committed.  A quarter of an address-space limit at most. */
void *os_reserve(size_t *size)
{
	return map_within_limit(size, 64UL << 20, 4, PROT_NONE);
}

void *os_map_some(size_t *size, size_t min)
{
	void *p = map_within_limit(size, min, 16, PROT_READ | PROT_WRITE);

	if (p)
		regions_add(p, *size);
	return p;
}

void *os_map(size_t size)
{
	void *p = mmap(NULL, size, PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);

	if (p == MAP_FAILED)
		return NULL;
	regions_add(p, size);
	return p;
}

void os_unmap(void *p, size_t size)
{
	regions_remove(p, size);
	munmap(p, size);
}

/* Committing makes reserved pages of a private anonymous range
 * accessible; they read as zero, never touched or emptied by a decommit,
 * which is what the allocator is told (*zero = true).  Both change the
 * protection of the mapping the reservation made rather than map anew:
 * a new mapping would drop what is registered on the old one (the write
 * tracking, wtrack.h).  The reservation is MAP_NORESERVE, so neither
 * charges the commit limit. */
bool os_commit(void *p, size_t size)
{
	return mprotect(p, size, PROT_READ | PROT_WRITE) == 0;
}

bool os_decommit(void *p, size_t size)
{
	return madvise(p, size, MADV_DONTNEED) == 0 && mprotect(p, size, PROT_NONE) == 0;
}

#ifndef MADV_POPULATE_WRITE
#define MADV_POPULATE_WRITE 23
#endif

/* Kernels before 5.14 do not know the advice: asked once, never again. */
static _Atomic bool populate_unknown;

bool os_populate(void *p, size_t size)
{
	int saved = errno;
	bool done;

	if (atomic_load_explicit(&populate_unknown, memory_order_relaxed))
		return false;
	done = madvise(p, size, MADV_POPULATE_WRITE) == 0;
	if (!done && errno == EINVAL)
		atomic_store_explicit(&populate_unknown, true, memory_order_relaxed);
	errno = saved;
	return done;
}

/* The kernel checks the advice before the range: an empty one asks
 * whether it knows it, once (os_populate remembers a refusal). */
bool os_can_populate(void)
{
	static _Atomic bool asked;

	if (!atomic_exchange_explicit(&asked, true, memory_order_relaxed))
		os_populate(NULL, 0);
	return !atomic_load_explicit(&populate_unknown, memory_order_relaxed);
}

bool os_purge(void *p, size_t size, bool forced)
{
	return madvise(p, size, forced ? MADV_DONTNEED : MADV_FREE) == 0;
}

void os_purge_beyond(void *p, size_t size, size_t keep)
{
	if (size > keep)
		os_purge((char *)p + keep, size - keep, true);
}

void os_scratch_trim(struct os_scratch *s, size_t used, size_t cap)
{
	size_t keep = used < cap ? used : cap;

	keep = keep < OS_KEEP_RESIDENT ? OS_KEEP_RESIDENT : (keep + OS_PAGE - 1) & ~(OS_PAGE - 1);
	if (used > s->resident)
		s->resident = used;
	if (s->resident > keep)
		os_purge((char *)s->base + keep, s->resident - keep, true);
	if (s->resident > keep)
		s->resident = keep;
}

/* The shim's descriptors live high, away from the small numbers programs
 * expect open() to return; where the limit forbids, they stay put. */
int os_high_fd(int fd)
{
	int high = fcntl(fd, F_DUPFD_CLOEXEC, 900);

	if (high < 0)
		return fd;
	os_close(fd);
	return high;
}

static __thread bool own_table __attribute__((tls_model("initial-exec")));
/* In the private table of its thread, one for each such thread. */
static __thread int program_pidfd __attribute__((tls_model("initial-exec"))) = -1;

/* Gives the calling thread a descriptor table of its own, empty but for
 * /dev/null on 0, 1 and 2 (nothing it opens may land there and be taken
 * for a standard stream).  What it opens afterwards the program can
 * neither see, nor close, nor replace; and it holds none of the
 * program's descriptors, so a pipe the program closes is closed. */
bool os_private_fds(void)
{
	if (syscall(SYS_close_range, 0, ~0U, CLOSE_RANGE_UNSHARE) < 0)
		return false;
	own_table = true;
	program_pidfd = -1;
	for (int i = 0; i < 3; i++)
		open("/dev/null", O_RDWR);
	return true;
}

/* The program's descriptor `fd`, as seen from the calling thread: itself
 * in a shared table, else a duplicate (*owned: to be closed) fetched
 * with pidfd_getfd, or -1. */
int os_program_fd(int fd, bool *owned)
{
	*owned = own_table;
	if (!own_table)
		return fd;
	if (program_pidfd < 0)
		program_pidfd = (int)syscall(SYS_pidfd_open, getpid(), 0);
	return program_pidfd < 0 ? -1 : (int)syscall(SYS_pidfd_getfd, program_pidfd, fd, 0);
}

/* close(2) without passing through the shim's own close(), which may take
 * a lock: this one is safe while threads are stopped. */
int os_close(int fd)
{
	return (int)syscall(SYS_close, fd);
}

size_t os_read_small(const char *path, char *buf, size_t cap)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	size_t len = 0;

	if (fd < 0)
		return 0;
	while (len + 1 < cap) {
		ssize_t n = read(fd, buf + len, cap - 1 - len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		len += (size_t)n;
	}
	os_close(fd);
	buf[len] = '\0';
	return len;
}

uint64_t os_rss(void)
{
	char buf[128];
	const char *s;

	if (!os_read_small("/proc/self/statm", buf, sizeof(buf)))
		return 0;
	s = strchr(buf, ' ');
	if (!s)
		return 0;
	return strtoull(s + 1, NULL, 10) * (uint64_t)sysconf(_SC_PAGESIZE);
}

pid_t os_gettid(void)
{
	return (pid_t)syscall(SYS_gettid);
}

uint64_t os_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

size_t os_ncpus(void)
{
	cpu_set_t set;

	if (sched_getaffinity(0, sizeof(set), &set) == 0 && CPU_COUNT(&set) > 0)
		return (size_t)CPU_COUNT(&set);
	return 1;
}

#define PAGEMAP_BATCH 512
#define PM_PRESENT (1ULL << 63)
#define PM_SWAPPED (1ULL << 62)
#define PM_FILE (1ULL << 61)

static bool page_written(uint64_t pm, bool shared)
{
	return shared ? (pm & (PM_PRESENT | PM_SWAPPED)) :
		((pm & PM_SWAPPED) || ((pm & PM_PRESENT) && !(pm & PM_FILE)));
}

static long syscall_raw4(long nr, long a, long b, long c, long d);

/* The page map is read by the markers too, which run on the collecting
 * thread's thread pointer: libc's pread would write that thread's errno
 * and, as a cancellation point, its cancellation state. */
static ssize_t pread_raw(int fd, void *buf, size_t n, off_t at)
{
	return syscall_raw4(SYS_pread64, fd, (long)buf, (long)n, (long)at);
}

/* Sets bit i of bits for each written page (as os_written_runs says) of
 * the n (at most 512) pages from page on, which must be private memory;
 * false if the page map could not be read. */
bool os_written_bits(int pagemap, uintptr_t page, size_t n, uint64_t *bits)
{
	uint64_t pm[PAGEMAP_BATCH];
	ssize_t got;

	if (pagemap < 0 || n > PAGEMAP_BATCH)
		return false;
	got = pread_raw(pagemap, pm, n * sizeof(*pm), (off_t)(page / OS_PAGE * sizeof(*pm)));
	if (got != (ssize_t)(n * sizeof(*pm)))
		return false;
	memset(bits, 0, (n + 63) / 64 * sizeof(*bits));
	for (size_t i = 0; i < n; i++)
		if (page_written(pm[i], false))
			bits[i / 64] |= 1ULL << (i % 64);
	return true;
}

#define SCAN_RUNS 64

/* Set once the kernel refuses PAGEMAP_SCAN (before Linux 6.7): the page
 * map is then read entry by entry. */
static _Atomic bool no_scan;

uintptr_t pmscan_walk(int pagemap, struct pm_scan_arg *a, struct page_region *runs, unsigned n,
		      uintptr_t lo, uintptr_t hi, void (*fn)(uintptr_t a, uintptr_t b, void *arg),
		      void *arg, long *err)
{
	uintptr_t at = lo & ~(OS_PAGE - 1);

	*err = 0;
	a->size = sizeof(*a);
	a->vec = (uintptr_t)runs;
	a->vec_len = n;
	while (at < hi) {
		long got;

		/* the kernel does not say how many runs a failed call wrote */
		memset(runs, 0, n * sizeof(*runs));
		a->start = at;
		a->end = (hi + OS_PAGE - 1) & ~(OS_PAGE - 1);
		a->walk_end = 0;
		got = syscall_raw4(SYS_ioctl, pagemap, (long)PAGEMAP_SCAN, (long)a, 0);
		for (long i = 0; i < (got < 0 ? (long)n : got) && i < (long)n && runs[i].end; i++)
			fn(runs[i].start > lo ? runs[i].start : lo, runs[i].end < hi ? runs[i].end : hi,
			   arg);
		if (got < 0)
			*err = got;
		if (got < 0 || a->walk_end <= at)
			return at;
		at = a->walk_end;
	}
	return hi;
}

/* As os_written_runs, by PAGEMAP_SCAN: a call lists up to SCAN_RUNS runs
 * of pages, and leaves out the pages that map the zero page, memory the
 * program read but never wrote, which the entry-by-entry read cannot tell
 * from written pages.  Returns where it stopped, hi if it did not; the
 * caller reads the page map for the rest (a failed call's runs, handed on
 * already, are read twice then, which costs only time). */
static uintptr_t scanned_runs(int pagemap, uintptr_t lo, uintptr_t hi, bool shared,
			      void (*fn)(uintptr_t a, uintptr_t b, void *arg), void *arg)
{
	struct page_region runs[SCAN_RUNS];
	uint64_t never = PAGE_IS_PFNZERO | (shared ? 0 : PAGE_IS_FILE);
	struct pm_scan_arg a = {
		.category_inverted = never, .category_mask = never,
		.category_anyof_mask = PAGE_IS_PRESENT | PAGE_IS_SWAPPED,
	};
	long err;
	uintptr_t at = pmscan_walk(pagemap, &a, runs, SCAN_RUNS, lo, hi, fn, arg, &err);

	if (err == -ENOTTY || err == -EINVAL)
		atomic_store_explicit(&no_scan, true, memory_order_relaxed);
	return at;
}

/* Calls fn on each part of [lo, hi) that lies in a page the program
 * wrote: a private anonymous page, present or swapped out, or, in shared
 * memory, any present page.  Pages never written hold no pointers, and
 * reading them would bring them into memory (or fault past a file's end).
 * Without /proc/self/pagemap the whole range is passed on. */
void os_written_runs(int pagemap, uintptr_t lo, uintptr_t hi, bool shared,
		     void (*fn)(uintptr_t a, uintptr_t b, void *arg), void *arg)
{
	uint64_t pm[PAGEMAP_BATCH];
	uintptr_t page = lo & ~(OS_PAGE - 1);

	if (pagemap >= 0 && !atomic_load_explicit(&no_scan, memory_order_relaxed))
		page = scanned_runs(pagemap, lo, hi, shared, fn, arg);
	while (page < hi) {
		size_t n = (hi - page + OS_PAGE - 1) / OS_PAGE;
		ssize_t got;

		if (n > PAGEMAP_BATCH)
			n = PAGEMAP_BATCH;
		got = pagemap < 0 ? -1 : pread_raw(pagemap, pm, n * sizeof(*pm),
					      (off_t)(page / OS_PAGE * sizeof(*pm)));
		if (got <= 0) {
			fn(page > lo ? page : lo, hi, arg);
			return;
		}
		n = (size_t)got / sizeof(*pm);
		for (size_t i = 0; i < n; i++, page += OS_PAGE) {
			if (page_written(pm[i], shared))
				fn(page > lo ? page : lo, page + OS_PAGE < hi ? page + OS_PAGE : hi, arg);
		}
	}
}

/* Copies what is readable of [src, src+n): the kernel reports a fault as a
 * short count instead of a signal, so an unknown pointer is safe to read. */
ssize_t os_copy_from_self(void *dst, const void *src, size_t n)
{
	struct iovec local = { dst, n }, remote = { (void *)src, n };

	return process_vm_readv(getpid(), &local, 1, &remote, 1, 0);
}

bool os_each_name(const char *path, bool (*fn)(const char *name, void *arg), void *arg)
{
	char buf[4096] __attribute__((aligned(8)));
	int fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	long got;

	if (fd < 0)
		return false;
	while ((got = syscall(SYS_getdents64, fd, buf, sizeof(buf))) > 0)
		for (long off = 0; off < got;) {
			struct { uint64_t ino; int64_t off; unsigned short reclen;
				 unsigned char type; char name[]; } *d = (void *)(buf + off);

			off += d->reclen;
			if (!fn(d->name, arg)) {
				os_close(fd);
				return true;
			}
		}
	os_close(fd);
	return got == 0;
}

/* A system call of up to four arguments without libc's wrapper, which
 * writes errno: for a task that runs on another thread's thread pointer,
 * which may be gone.  Returns what the kernel does, -errno on failure. */
static long syscall_raw4(long nr, long a, long b, long c, long d)
{
#if defined(__x86_64__)
	register long r10 __asm__("r10") = d;
	long ret;

	__asm__ volatile("syscall"
			 : "=a"(ret)
			 : "0"(nr), "D"(a), "S"(b), "d"(c), "r"(r10)
			 : "rcx", "r11", "memory");
	return ret;
#elif defined(__aarch64__)
	register long x8 __asm__("x8") = nr;
	register long x0 __asm__("x0") = a;
	register long x1 __asm__("x1") = b;
	register long x2 __asm__("x2") = c;
	register long x3 __asm__("x3") = d;

	__asm__ volatile("svc 0" : "+r"(x0) : "r"(x8), "r"(x1), "r"(x2), "r"(x3) : "memory");
	return x0;
#else
	long ret = syscall(nr, a, b, c, d, 0L, 0L);

	return ret < 0 ? -errno : ret;
#endif
}

long os_syscall_raw(long nr, long a, long b, long c)
{
	return syscall_raw4(nr, a, b, c, 0);
}

long os_futex_raw(void *addr, int op, int val)
{
	return os_syscall_raw(SYS_futex, (long)addr, op, val);
}
