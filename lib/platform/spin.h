/* The shim's locks: a flag spun on, never a pthread mutex, which could
 * allocate, be held by a thread the collector stopped in a way the
 * collector cannot see, or be left locked in a fork child.  A short
 * critical section spins; a long one (a collection, a query) yields the
 * core to its holder. */
#ifndef GCSHIM_SPIN_H
#define GCSHIM_SPIN_H

#include <sched.h>
#include <stdatomic.h>
#include <stdbool.h>

static inline bool spin_trylock(atomic_flag *f)
{
	return !atomic_flag_test_and_set_explicit(f, memory_order_acquire);
}

static inline void spin_lock(atomic_flag *f)
{
	while (!spin_trylock(f))
		;
}

static inline void spin_lock_yield(atomic_flag *f)
{
	while (!spin_trylock(f))
		sched_yield();
}

static inline void spin_unlock(atomic_flag *f)
{
	atomic_flag_clear_explicit(f, memory_order_release);
}

#endif
