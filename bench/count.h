/* A count on a bench program's command line: a number, or with a K or M
 * suffix (1M, 16M); -1 if it is none or not positive. */
#ifndef GCSHIM_BENCH_COUNT_H
#define GCSHIM_BENCH_COUNT_H

#include <stdlib.h>

static inline long parse_count(const char *s)
{
	char *end;
	long v = strtol(s, &end, 10);

	if (*end == 'k' || *end == 'K')
		v <<= 10, end++;
	else if (*end == 'm' || *end == 'M')
		v <<= 20, end++;
	return *end || v <= 0 ? -1 : v;
}

#endif
