/* Process-wide counters of rare events: a shared atomic each, low in the
 * layers so that any file can count, and read by the statistics above. */
#ifndef GCSHIM_EVENTS_H
#define GCSHIM_EVENTS_H

#include <stdatomic.h>
#include <stdint.h>

/* Each name is also a field of struct gcshim_stats, filled from here. */
#define STAT_EVENTS(X) X(foreign_frees) X(invalid_frees) X(foreign_reallocs) X(foreign_sizes) \
	X(alloc_failures) X(limit_failures) X(threshold_triggers)            \
	X(count_triggers) X(growth_triggers) X(limit_triggers) X(ctl_connections) X(ctl_refused) \
	X(ctl_bad_requests) X(false_garbage) X(stack_unwinds) X(stops_traced)      \
	X(stops_signalled) X(calls_restarted) X(reused_blocks) X(crowded_threads)

enum stat_event {
#define EV_ENUM(name) EV_##name,
	STAT_EVENTS(EV_ENUM)
#undef EV_ENUM
	EV_COUNT
};

extern _Atomic int64_t stat_events[EV_COUNT];

static inline void stat_inc(enum stat_event ev)
{
	atomic_fetch_add_explicit(&stat_events[ev], 1, memory_order_relaxed);
}

static inline void stat_add(enum stat_event ev, int64_t n)
{
	atomic_fetch_add_explicit(&stat_events[ev], n, memory_order_relaxed);
}

static inline int64_t stat_event(enum stat_event ev)
{
	return atomic_load_explicit(&stat_events[ev], memory_order_relaxed);
}

#endif
