/* The PAGEMAP_SCAN ioctl of /proc/self/pagemap (Linux 6.7), which older
 * system headers lack: the pages of a range that are in given categories,
 * as runs of pages, in one call. */
#ifndef GCSHIM_PMSCAN_H
#define GCSHIM_PMSCAN_H

#include <linux/fs.h>
#include <stdint.h>

#ifndef PAGEMAP_SCAN
#define PAGE_IS_WRITTEN (1 << 1)
#define PAGE_IS_FILE (1 << 2)
#define PAGE_IS_PRESENT (1 << 3)
#define PAGE_IS_SWAPPED (1 << 4)
#define PAGE_IS_PFNZERO (1 << 5)
#define PM_SCAN_WP_MATCHING (1 << 0)
#define PM_SCAN_CHECK_WPASYNC (1 << 1)
struct page_region {
	uint64_t start, end, categories;
};
struct pm_scan_arg {
	uint64_t size, flags, start, end, walk_end, vec, vec_len, max_pages;
	uint64_t category_inverted, category_mask, category_anyof_mask, return_mask;
};
#define PAGEMAP_SCAN _IOWR('f', 16, struct pm_scan_arg)
#endif

/* Walks [lo, hi) with the masks and flags of *a, a call of the n runs of
 * runs at a time, and calls fn on each run found, clipped to [lo, hi).
 * A call that fails has its runs handed on too: the kernel wrote them
 * before it stopped, and with PM_SCAN_WP_MATCHING protected them again
 * already, so their writes would otherwise be lost.  Returns where the
 * walk stopped, hi when it got through; *err is the failure (-errno) or 0.
 * Safe on a thread that runs on another's thread pointer (no errno). */
uintptr_t pmscan_walk(int pagemap, struct pm_scan_arg *a, struct page_region *runs, unsigned n,
		      uintptr_t lo, uintptr_t hi, void (*fn)(uintptr_t a, uintptr_t b, void *arg),
		      void *arg, long *err);

#endif
