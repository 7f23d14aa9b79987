#define _GNU_SOURCE
#include "regions.h"

#include <stdatomic.h>
#include <sys/mman.h>

#include "spin.h"

#define MAX_REGIONS 4096

static struct region table[MAX_REGIONS];
static size_t count;
static atomic_bool overflowed;
static atomic_flag lock = ATOMIC_FLAG_INIT;

void regions_lock(void)
{
	spin_lock(&lock);
}

void regions_unlock(void)
{
	spin_unlock(&lock);
}

/* Ranges are kept apart, not merged: removal then only ever trims or
 * splits the one range it falls in. */
static void insert(uintptr_t s, uintptr_t e)
{
	if (count == MAX_REGIONS) {
		atomic_store(&overflowed, true);
		return;
	}
	table[count++] = (struct region){ s, e };
}

void regions_add(const void *p, size_t n)
{
	if (!p || !n)
		return;
	regions_lock();
	insert((uintptr_t)p, (uintptr_t)p + n);
	regions_unlock();
}

void regions_remove(const void *p, size_t n)
{
	uintptr_t s = (uintptr_t)p, e = s + n;

	regions_lock();
	for (size_t i = 0; i < count; i++) {
		struct region r = table[i];

		if (e <= r.start || s >= r.end)
			continue;
		table[i--] = table[--count];
		if (r.start < s)
			insert(r.start, s);
		if (e < r.end)
			insert(e, r.end);
	}
	regions_unlock();
}

size_t regions_snapshot(struct region *out, size_t cap)
{
	size_t n;

	regions_lock();
	n = count < cap ? count : cap;
	for (size_t i = 0; i < n; i++)
		out[i] = table[i];
	regions_unlock();
	return n;
}

/* jemalloc's calls to mmap and munmap are renamed to these at build time
 * (lib/jemalloc.syms), so every mapping it makes for itself is known. */
void *gsje_sys_mmap(void *addr, size_t len, int prot, int flags, int fd, off_t off)
{
	void *p = mmap(addr, len, prot, flags, fd, off);

	if (p != MAP_FAILED)
		regions_add(p, len);
	return p;
}

int gsje_sys_munmap(void *addr, size_t len)
{
	regions_remove(addr, len);
	return munmap(addr, len);
}

/* Reported by the collector, which is what a lost region affects: the
 * table sits below the log. */
bool regions_overflowed(void)
{
	return atomic_load(&overflowed);
}
