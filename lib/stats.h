/* Process-wide event counters (rare events: a shared atomic each) and the
 * assembly of struct gcshim_stats from every source. */
#ifndef GCSHIM_STATS_H
#define GCSHIM_STATS_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "gcshim.h"

#define STAT_EVENTS(X) X(foreign_frees) X(invalid_frees) X(foreign_reallocs) X(foreign_sizes) \
	X(alloc_failures) X(limit_failures) X(threshold_triggers)            \
	X(count_triggers) X(limit_triggers) X(ctl_connections) X(ctl_refused) \
	X(ctl_bad_requests) X(false_garbage) X(stack_unwinds) X(stops_traced)      \
	X(stops_signalled) X(calls_restarted)

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

void stats_read(struct gcshim_stats *st);
size_t stats_json(char *buf, size_t cap);

#endif
