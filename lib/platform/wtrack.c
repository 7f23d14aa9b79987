#define _GNU_SOURCE
#include "wtrack.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/userfaultfd.h>
#include <sys/ioctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "os.h"
#include "pmscan.h"

/* Linux 6.7's interface, which older headers lack. */
#ifndef UFFD_FEATURE_WP_ASYNC
#define UFFD_FEATURE_WP_ASYNC (1 << 15)
#endif
#ifndef UFFD_USER_MODE_ONLY
#define UFFD_USER_MODE_ONLY 1
#endif
#define SCAN_RUNS 256

static int uffd = -1;
static enum wtrack_state state;

static int uffd_create(void)
{
	int fd = (int)syscall(SYS_userfaultfd, O_CLOEXEC | O_NONBLOCK | UFFD_USER_MODE_ONLY);

	return fd < 0 ? -1 : os_high_fd(fd);
}

/* Asynchronous write-protect only: no fault ever waits for a reader, so
 * nothing here can stall the program. */
static bool uffd_enable(int fd)
{
	struct uffdio_api api = { .api = UFFD_API, .features = UFFD_FEATURE_WP_ASYNC };

	return ioctl(fd, UFFDIO_API, &api) == 0 && (api.features & UFFD_FEATURE_WP_ASYNC);
}

bool wtrack_open(void)
{
	int fd;

	if (uffd >= 0 || state != WTRACK_UNTRIED)
		return uffd >= 0;
	fd = uffd_create();
	if (fd < 0) {
		state = WTRACK_NO_USERFAULTFD;
		return false;
	}
	if (!uffd_enable(fd)) {
		os_close(fd);
		state = WTRACK_NO_ASYNC;
		return false;
	}
	uffd = fd;
	state = WTRACK_ON;
	return true;
}

enum wtrack_state wtrack_state(void)
{
	return state;
}

const char *wtrack_state_name(enum wtrack_state s)
{
	switch (s) {
	case WTRACK_ON: return "userfaultfd";
	case WTRACK_NO_USERFAULTFD: return "none (no userfaultfd)";
	case WTRACK_NO_ASYNC: return "none (no asynchronous write-protect)";
	case WTRACK_OFF: return "none (GCSHIM_MINOR=0)";
	default: return "none (not started)";
	}
}

void wtrack_disable(void)
{
	state = WTRACK_OFF;
}

/* Protects all of [lo, hi), unpopulated pages too: the kernel marks
 * those in the page tables, where the pagemap then shows them as swapped
 * out, and a reader that takes swapped pages for written ones would read
 * them in.  For memory of the holder's own, fully populated. */
/* The holder calls these on the thread pointer of a thread that may be
 * gone: without libc's errno. */
static bool uffd_ioctl(unsigned long req, void *arg)
{
	return uffd >= 0 && os_syscall_raw(SYS_ioctl, uffd, (long)req, (long)arg) == 0;
}

bool wtrack_protect(uintptr_t lo, uintptr_t hi)
{
	struct uffdio_writeprotect w = { .range = { lo, hi - lo }, .mode = UFFDIO_WRITEPROTECT_MODE_WP };

	return uffd_ioctl(UFFDIO_WRITEPROTECT, &w);
}

bool wtrack_register(uintptr_t lo, uintptr_t hi)
{
	struct uffdio_register r = { .range = { lo, hi - lo }, .mode = UFFDIO_REGISTER_MODE_WP };

	return uffd_ioctl(UFFDIO_REGISTER, &r);
}

bool wtrack_scan(int pagemap, uintptr_t lo, uintptr_t hi, bool protect,
		 void (*fn)(uintptr_t a, uintptr_t b, void *arg), void *arg)
{
	struct page_region runs[SCAN_RUNS];
	struct pm_scan_arg a = {
		/* a part not registered would be skipped in silence, its
		 * writes unreported: it fails the scan instead */
		.flags = protect ? PM_SCAN_WP_MATCHING | PM_SCAN_CHECK_WPASYNC : 0,
		/* an unpopulated page counts as written (it was never
		 * protected), and reading it would populate it */
		.category_mask = PAGE_IS_WRITTEN,
		.category_anyof_mask = PAGE_IS_PRESENT | PAGE_IS_SWAPPED,
		.return_mask = PAGE_IS_WRITTEN,
	};
	long err;

	if (uffd < 0 || pagemap < 0)
		return false;
	return pmscan_walk(pagemap, &a, runs, SCAN_RUNS, lo, hi, fn, arg, &err) >= hi && !err;
}

/* The descriptor was in the table of a task that did not follow the
 * fork, and the child's mappings are not registered. */
void wtrack_fork_child(void)
{
	uffd = -1;
	if (state == WTRACK_ON)
		state = WTRACK_UNTRIED;
}
