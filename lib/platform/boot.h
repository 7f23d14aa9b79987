/* A static bump arena for the few allocations made while the heap is
 * being set up (the dynamic loader, jemalloc's own start-up).  Its blocks
 * are never reused; free() of them is a no-op. */
#ifndef GCSHIM_BOOT_H
#define GCSHIM_BOOT_H

#include <stdbool.h>
#include <stddef.h>

void *boot_alloc(size_t n, size_t align);
bool boot_owns(const void *p);
size_t boot_size(const void *p);

#endif
