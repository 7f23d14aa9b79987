/* The assembly of struct gcshim_stats from every layer below: the event
 * counters, the accounting, the heap, the collector. */
#ifndef GCSHIM_STATS_H
#define GCSHIM_STATS_H

#include <stddef.h>
#include <stdint.h>

#include "events.h"
#include "gcshim.h"

void stats_read(struct gcshim_stats *st);
size_t stats_json(char *buf, size_t cap);

#endif
