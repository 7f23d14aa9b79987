#include "tstacks.h"

#include <stdatomic.h>
#include <stddef.h>

#define TSTACKS 4096

enum { FREE, LIVE, ENDED };

struct tstack {
	_Atomic int state;
	_Atomic uintptr_t tp;     /* the thread pointer: TCB and static TLS */
	_Atomic uintptr_t floor;
	bool main, shim;
};

static struct tstack table[TSTACKS];
static _Atomic size_t used;   /* entries ever claimed: the rest are FREE */

static uintptr_t thread_pointer(void)
{
	return (uintptr_t)__builtin_thread_pointer();
}

/* The entry of this thread pointer, else a free one, else one of an
 * ended thread (whose stack becomes a root again); claimed LIVE.  NULL
 * when every entry is live. */
static struct tstack *claim(uintptr_t tp)
{
	for (int pass = 0; pass < 3; pass++)
		for (size_t i = 0; i < TSTACKS; i++) {
			struct tstack *t = &table[i];
			int s = atomic_load_explicit(&t->state, memory_order_relaxed);
			size_t n = atomic_load(&used);

			if (s == LIVE || (pass == 0 && atomic_load(&t->tp) != tp) ||
			    (pass == 1 && s != FREE))
				continue;
			if (!atomic_compare_exchange_strong(&t->state, &s, LIVE))
				continue;
			while (n < i + 1 && !atomic_compare_exchange_weak(&used, &n, i + 1))
				;
			return t;
		}
	return NULL;
}

/* The entry is LIVE while it changes: a collection ignores it. */
static void start(uintptr_t floor, bool main, bool shim)
{
	uintptr_t tp = thread_pointer();
	struct tstack *t = claim(tp);

	if (!t)
		return;
	atomic_store_explicit(&t->tp, tp, memory_order_relaxed);
	atomic_store_explicit(&t->floor, floor, memory_order_relaxed);
	t->main = main;
	t->shim = shim;
	if (shim)   /* ended as far as roots go: from now on */
		atomic_store_explicit(&t->state, ENDED, memory_order_release);
}

void tstacks_started(uintptr_t floor)
{
	start(floor, false, false);
}

void tstacks_main_started(uintptr_t floor)
{
	start(floor, true, false);
}

void tstacks_shim_started(uintptr_t floor)
{
	start(floor, false, true);
}

static void end(struct tstack *t)
{
	atomic_store_explicit(&t->state, ENDED, memory_order_release);
}

void tstacks_ended(void)
{
	uintptr_t tp = thread_pointer();

	for (size_t i = 0; i < atomic_load(&used); i++)
		if (atomic_load(&table[i].state) == LIVE && atomic_load(&table[i].tp) == tp)
			end(&table[i]);
}

void tstacks_fork_child(void)
{
	uintptr_t tp = thread_pointer();

	for (size_t i = 0; i < atomic_load(&used); i++)
		if (atomic_load(&table[i].state) == LIVE && atomic_load(&table[i].tp) != tp)
			end(&table[i]);
}

/* glibc puts a thread's TCB at the top of its stack mapping; on x86-64
 * the TCB starts with two pointers to itself (tcbhead_t's tcb and self),
 * which a mapping put there since would not have. */
static bool still_its_stack(const struct tstack *t, uintptr_t tp, uintptr_t lo, uintptr_t hi)
{
	if (t->main)
		return true;
	if (tp < lo || tp + 3 * sizeof(uintptr_t) > hi)
		return false;
#ifdef __x86_64__
	return ((const uintptr_t *)tp)[0] == tp && ((const uintptr_t *)tp)[2] == tp;
#else
	return true;
#endif
}

uintptr_t tstacks_dead_floor(uintptr_t lo, uintptr_t hi, bool main_stack, bool running)
{
	size_t n = atomic_load_explicit(&used, memory_order_acquire);

	for (size_t i = 0; i < n; i++) {
		const struct tstack *t = &table[i];
		uintptr_t floor, tp;

		if (atomic_load_explicit(&t->state, memory_order_acquire) != ENDED ||
		    t->main != main_stack || (running && !t->shim))
			continue;
		floor = atomic_load_explicit(&t->floor, memory_order_relaxed);
		tp = atomic_load_explicit(&t->tp, memory_order_relaxed);
		if (floor > lo && floor <= hi && still_its_stack(t, tp, lo, hi))
			return floor;
	}
	return 0;
}
