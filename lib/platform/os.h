/* Layer 1 of 5, platform (lib/platform/): mappings, the log, options, the
 * stop signal's guard, boot-time memory, size classes, locks.  Calls
 * nothing else of the shim.  See README, "Layout". */
/* The operating-system layer: every system call the shim makes outside the
 * socket code goes through here, so the rest stays portable and testable. */
#ifndef GCSHIM_OS_H
#define GCSHIM_OS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define OS_PAGE 4096UL

void *os_reserve(size_t *size);
void *os_map(size_t size);
/* As os_map, for up to *size bytes: less under an address-space limit
 * (RLIMIT_AS, a sixteenth of it at most) or when the kernel refuses, but
 * min at least; *size is what was mapped. */
void *os_map_some(size_t *size, size_t min);
void os_unmap(void *p, size_t size);
bool os_commit(void *p, size_t size);
bool os_decommit(void *p, size_t size);
bool os_purge(void *p, size_t size, bool forced);
/* Faults in committed pages for writing in one call (MADV_POPULATE_WRITE)
 * instead of one fault each; false where the kernel cannot, or a page of
 * the range is not accessible.  errno is kept. */
bool os_populate(void *p, size_t size);
bool os_can_populate(void);
/* The collector's working memory (mark stacks, lists of dead blocks) is
 * given back after a collection past this much: what a typical collection
 * uses stays resident, so that the next one does not fault it in again
 * (one collection every few megabytes would otherwise spend more on page
 * faults than on marking). */
#define OS_KEEP_RESIDENT (512UL * 1024)
void os_purge_beyond(void *p, size_t size, size_t keep);
/* For the collector's bitmaps in mapped memory: a page only read (never
 * written) stays unallocated. */
static inline void os_store_if_changed(uint64_t *w, uint64_t v)
{
	if (*w != v)
		*w = v;
}
/* Working memory that each use fills from its start (the list of dead
 * blocks, the mark bytes): what the last use touched stays resident for
 * the next, up to cap bytes (at least OS_KEEP_RESIDENT), so that a
 * program whose collections look alike faults none of it in again; what
 * an earlier, larger use left beyond that goes back. */
struct os_scratch {
	void *base;
	size_t resident;          /* bytes from base that may be resident */
};
void os_scratch_trim(struct os_scratch *s, size_t used, size_t cap);
uint64_t os_rss(void);
pid_t os_gettid(void);
uint64_t os_now_ns(void);
size_t os_ncpus(void);
size_t os_read_small(const char *path, char *buf, size_t cap);
int os_high_fd(int fd);
bool os_private_fds(void);
long os_syscall_raw(long nr, long a, long b, long c);
long os_futex_raw(void *addr, int op, int val);
int os_program_fd(int fd, bool *owned);
int os_close(int fd);
/* Calls fn with each name in directory path until it returns false;
 * false when the directory cannot be read.  Raw getdents64: opendir's
 * buffer would be a block of the program's heap. */
bool os_each_name(const char *path, bool (*fn)(const char *name, void *arg), void *arg);
ssize_t os_copy_from_self(void *dst, const void *src, size_t n);
bool os_written_bits(int pagemap, uintptr_t page, size_t n, uint64_t *bits);
void os_written_runs(int pagemap, uintptr_t lo, uintptr_t hi, bool shared,
		     void (*fn)(uintptr_t a, uintptr_t b, void *arg), void *arg);

#endif
