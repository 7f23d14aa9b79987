#define _GNU_SOURCE
#include "markers.h"

#include <linux/futex.h>
#include <sched.h>
#include <signal.h>
#include <stdatomic.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "options.h"
#include "os.h"

#define MARKER_STACK (256 * 1024)

static struct helper {
	void *stack;
	void (*run)(unsigned i);
	unsigned index;
	_Atomic pid_t tid;        /* cleared by the kernel when it exits */
} helpers[MARK_MAX_MARKERS];

static unsigned wanted, started;
static bool chosen;   /* GCSHIM_MARKERS set: used whatever the heap */

bool markers_init(void)
{
	int64_t opt = opt_int(OPT_MARKERS);

	chosen = opt > 0;
	wanted = chosen ? (unsigned)opt : (unsigned)os_ncpus();
	if (wanted > MARK_MAX_MARKERS)
		wanted = MARK_MAX_MARKERS;
	return true;
}

unsigned markers_wanted(void)
{
	return wanted;
}

bool markers_chosen(void)
{
	return chosen;
}

/* The thread's whole life: no return into libc's thread start, which
 * would expect a pthread; clone's own exit path ends it. */
static int helper_main(void *arg)
{
	struct helper *h = arg;

	h->run(h->index);
	return 0;
}

static bool start_one(struct helper *h, unsigned index, void (*run)(unsigned i))
{
	const int flags = CLONE_VM | CLONE_FS | CLONE_FILES | CLONE_SIGHAND | CLONE_THREAD |
			  CLONE_SYSVSEM | CLONE_PARENT_SETTID | CLONE_CHILD_CLEARTID;

	if (!h->stack)
		h->stack = os_map(MARKER_STACK);
	if (!h->stack)
		return false;
	h->run = run;
	h->index = index;
	atomic_store(&h->tid, 1);
	return clone(helper_main, (char *)h->stack + MARKER_STACK, flags, h,
		     (pid_t *)&h->tid, NULL, (pid_t *)&h->tid) > 0;
}

/* Every signal is blocked in the helpers (they inherit the mask they are
 * made with): a signal for the process must go to one of its threads,
 * never run the program's handler on a marker. */
unsigned markers_start(unsigned n, void (*run)(unsigned i))
{
	sigset_t all, old;

	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	for (started = 0; started < n && started + 1 < MARK_MAX_MARKERS; started++)
		if (!start_one(&helpers[started], started + 1, run))
			break;
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	return started;
}

void markers_join(void)
{
	for (unsigned i = 0; i < started; i++) {
		pid_t tid;

		while ((tid = atomic_load(&helpers[i].tid)) != 0)
			syscall(SYS_futex, &helpers[i].tid, FUTEX_WAIT, tid, NULL, NULL, 0);
	}
	started = 0;
}

void markers_pause(unsigned spins)
{
	if (spins >= 64) {
		sched_yield();
		return;
	}
#if defined(__x86_64__)
	__builtin_ia32_pause();
#elif defined(__aarch64__)
	__asm__ volatile("yield");
#endif
}
