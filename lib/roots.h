/* Roots: where the collector looks for pointers into the heap.
 *  all (default): every writable private mapping of the process, and
 *      anonymous shared memory, minus the heap itself and the shim's own
 *      memory; thread stacks from their stack pointer up.
 *  minimal: data and bss of loaded objects, the brk heap, thread stacks
 *      and static TLS only (faster, misses pointers kept in mmap'd memory).
 * Plus the pointers only the kernel holds that the shim can see (epoll). */
#ifndef GCSHIM_ROOTS_H
#define GCSHIM_ROOTS_H

#include <stdbool.h>
#include <stdint.h>

#include "regions.h"
#include "stop.h"

enum roots_mode { ROOTS_ALL, ROOTS_MINIMAL };

bool roots_init(void);
void roots_prepare(void);
bool roots_scan(const struct world *w, enum roots_mode mode);
void roots_add_extra(void (*fn)(void));

#endif
