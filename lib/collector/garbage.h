/* The `garbage` list: blocks found unreachable but kept allocated
 * (DEBUG_SAVEALL, verify mode, leak reports).  Like CPython's gc.garbage
 * it keeps them, and what they point to, reachable: it is a root. */
#ifndef GCSHIM_GARBAGE_H
#define GCSHIM_GARBAGE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "roots.h"

bool garbage_init(void);
void garbage_add(uintptr_t block, uint32_t collection);
void garbage_scan_root(void);
size_t garbage_count(void);
size_t garbage_list(uintptr_t *out, size_t cap);
size_t garbage_release(void);
bool garbage_take(void *p, uint32_t *collection);

/* inspection */
void garbage_each_root(root_range_fn fn, void *arg);
size_t garbage_peek(uintptr_t *blocks, size_t *sizes, unsigned char *bytes, size_t nbytes,
		    size_t cap);
void garbage_lock(void);
void garbage_unlock(void);

#endif
