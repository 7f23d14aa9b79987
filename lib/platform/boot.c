#include "boot.h"

#include <stdatomic.h>
#include <stdint.h>

#define BOOT_SIZE (256 * 1024)

static _Alignas(4096) unsigned char arena[BOOT_SIZE];
static _Atomic size_t used;

/* Each block is preceded by its size, so realloc() can copy it out. */
void *boot_alloc(size_t n, size_t align)
{
	size_t off, start, cur = atomic_load(&used);

	if (align < 16)
		align = 16;
	if (n > BOOT_SIZE || align > 4096)
		return NULL;
	do {
		start = (cur + sizeof(size_t) + align - 1) & ~(align - 1);
		off = start + n;
		if (off > BOOT_SIZE)
			return NULL;
	} while (!atomic_compare_exchange_weak(&used, &cur, off));
	((size_t *)(arena + start))[-1] = n;
	return arena + start;
}

bool boot_owns(const void *p)
{
	return (uintptr_t)p - (uintptr_t)arena < BOOT_SIZE;
}

size_t boot_size(const void *p)
{
	return ((const size_t *)p)[-1];
}
