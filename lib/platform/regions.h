/* Memory of the shim's own, which the collector must never treat as
 * roots: its side tables, its working memory, and jemalloc's internal
 * mappings (its thread caches hold stale copies of block addresses). */
#ifndef GCSHIM_REGIONS_H
#define GCSHIM_REGIONS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct region {
	uintptr_t start, end;
};

void regions_add(const void *p, size_t n);
void regions_remove(const void *p, size_t n);
size_t regions_snapshot(struct region *out, size_t cap);
void regions_lock(void);
void regions_unlock(void);
bool regions_overflowed(void);

#endif
