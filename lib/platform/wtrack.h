/* Write tracking: which pages of a range were written since they were
 * last looked at, from the kernel, with no signal and no handler.
 *
 * The range is registered with a userfaultfd in asynchronous
 * write-protect mode: a write to a protected page is resolved by the
 * kernel itself, which only clears the page's protection.  The pagemap's
 * PAGEMAP_SCAN ioctl then lists the pages whose protection is gone, and
 * can protect them again in the same walk.  A page never protected, or in
 * a part not registered, counts as written; an unpopulated one is never
 * reported, and never protected.  Needs Linux 6.7; elsewhere (or with
 * userfaultfd forbidden by sysctl or seccomp) wtrack_open fails and the
 * caller does without.
 *
 * The registration lasts while the descriptor is open, and covers the
 * mappings it was made on: a range mapped anew over them is not
 * registered.  wtrack_open and wtrack_register are for the one task
 * that holds the descriptor (young.c keeps it out of the program's
 * descriptor table); wtrack_scan needs only the pagemap. */
#ifndef GCSHIM_WTRACK_H
#define GCSHIM_WTRACK_H

#include <stdbool.h>
#include <stdint.h>

struct span {
	uintptr_t lo, hi;
};

/* Why tracking is off, for stats and the log. */
enum wtrack_state {
	WTRACK_UNTRIED,
	WTRACK_ON,
	WTRACK_NO_USERFAULTFD,   /* the syscall is missing or refused */
	WTRACK_NO_ASYNC,         /* the kernel lacks asynchronous write-protect */
	WTRACK_OFF,              /* turned off by option */
};

bool wtrack_open(void);
enum wtrack_state wtrack_state(void);
const char *wtrack_state_name(enum wtrack_state s);
void wtrack_disable(void);
/* Registers [lo, hi) (page-aligned), which must be mapped. */
bool wtrack_register(uintptr_t lo, uintptr_t hi);
/* Calls fn for every run of present pages of [lo, hi) written since they
 * were last protected, and with protect, protects them again; false if
 * the list is incomplete (what it holds was protected all the same), as
 * when protect meets a part not registered. */
bool wtrack_scan(int pagemap, uintptr_t lo, uintptr_t hi, bool protect,
		 void (*fn)(uintptr_t a, uintptr_t b, void *arg), void *arg);
/* Protects [lo, hi), for the holder of the descriptor. */
bool wtrack_protect(uintptr_t lo, uintptr_t hi);
/* In a child after fork, whose mappings are no longer registered. */
void wtrack_fork_child(void);

#endif
