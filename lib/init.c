/* Start-up, exit and fork: the order in which the pieces come up. */
#define _GNU_SOURCE
#include "init.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "collect.h"
#include "ctl.h"
#include "garbage.h"
#include "account.h"
#include "bcache.h"
#include "heap.h"
#include "inspect.h"
#include "kroots.h"
#include "leaks.h"
#include "log.h"
#include "options.h"
#include "regions.h"
#include "report.h"
#include "sigguard.h"
#include "sites.h"
#include "stop.h"
#include "sweep.h"
#include "thread.h"
#include "tstacks.h"
#include "watch.h"
#include "young.h"

extern char **environ;

enum { HEAP_NONE, HEAP_STARTING, HEAP_READY, HEAP_FAILED };

static _Atomic int heap_state;
static __thread bool starting __attribute__((tls_model("initial-exec")));
static bool options_read;

static void read_options(char **envp)
{
	if (options_read || !envp)
		return;
	options_read = true;
	options_load(envp);
}

/* The first allocation may come before our constructor (from the loader
 * or another library's constructor).  A call that arrives while the same
 * thread is still setting up is served by the bootstrap arena. */
static bool caches_init(void)
{
	if (bcache_init())
		return true;
	log_msg("cannot set up the block cache");
	return false;
}

/* The accounting's first: anything the thread allocates from here on is
 * counted from the totals its record holds now. */
static void thread_started(struct thread_rec *t)
{
	bool crowded = bcache_crowded(thread_live());

	gc_thread_start(t);
	bcache_start(&t->cache, crowded);
	heap_thread_init(crowded);
}

static void thread_ended(struct thread_rec *t)
{
	bcache_drain(&t->cache);
	gc_publish(t);
}

bool shim_heap_ready(void)
{
	int expected = HEAP_NONE;

	if (__builtin_expect(atomic_load_explicit(&heap_state, memory_order_acquire) == HEAP_READY, 1))
		return true;
	if (starting)
		return false;
	if (atomic_compare_exchange_strong(&heap_state, &expected, HEAP_STARTING)) {
		bool ok;

		starting = true;
		read_options(environ);
		ok = heap_init((size_t)opt_int(OPT_HEAP_RESERVE), (unsigned)opt_int(OPT_ARENAS)) &&
		     caches_init();
		if (ok)
			thread_registry_init(thread_started, thread_ended);
		atomic_store_explicit(&heap_state, ok ? HEAP_READY : HEAP_FAILED,
				      memory_order_release);
		starting = false;
	}
	while (atomic_load_explicit(&heap_state, memory_order_acquire) == HEAP_STARTING)
		;
	return atomic_load(&heap_state) == HEAP_READY;
}

/* No collection may be half done in a child, nor a lock of ours held by
 * a thread that does not exist there.  The leaf locks are held across
 * the fork; the registry of our mappings is taken inside jemalloc's own
 * locks, after our prepare handler, so in the child it is only reset. */
static void fork_prepare(void)
{
	sites_fork_prepare();   /* first: an unwinding thread may need the rest */
	collect_lock();
	sweep_finish();   /* no block is half given back in the child */
	heap_lock();
	thread_lock();
	garbage_lock();
	kroots_lock();
	watch_lock();
}

static void fork_parent(void)
{
	watch_unlock();
	kroots_unlock();
	garbage_unlock();
	thread_unlock();
	heap_unlock();
	collect_unlock();
	sites_fork_parent();
}

static void fork_child(void)
{
	watch_unlock();
	kroots_unlock();
	garbage_unlock();
	regions_unlock();
	insp_fork_child();
	leaks_fork_child();
	sweep_fork_child();
	thread_unlock();
	heap_unlock();
	collect_unlock();
	thread_fork_child();
	tstacks_fork_child();
	bcache_fork_child();
	stop_fork_child();
	young_fork_child();
	ctl_fork_child();
	sites_fork_child();
}

/* jemalloc registers its fork handlers when it first runs; ours come
 * after, so they run before its prepare and after its child handler. */
__attribute__((constructor(101))) static void shim_start(int argc, char **argv,
							  char **envp)
{
	tstacks_main_started((uintptr_t)argv);
	read_options(envp);
	sigguard_init();
	if (!shim_heap_ready() || !thread_get())
		return;
	gc_init();
	if (!collect_init() || !insp_init())
		log_msg("the collector could not start (%s); allocation works, collections do not",
			strerror(errno));
	report_init();
	sites_init();
	pthread_atfork(fork_prepare, fork_parent, fork_child);
	ctl_start();
}

__attribute__((destructor)) static void shim_stop(void)
{
	int code = report_at_exit();

	if (code) {
		fflush(NULL);
		_exit(code);
	}
	ctl_stop();
}
