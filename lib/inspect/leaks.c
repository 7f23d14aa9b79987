#define _GNU_SOURCE
#include "leaks.h"

#include <errno.h>
#include <stdatomic.h>
#include <string.h>
#include <unistd.h>

#include "collect.h"
#include "log.h"
#include "mark.h"
#include "objmap.h"
#include "options.h"
#include "os.h"
#include "sites.h"
#include "spin.h"

#define GROUP_SLOTS (1u << 20)

struct summary {
	int64_t bytes[2], count[2];   /* [0] direct, [1] indirect */
	size_t ngroups;
};

static struct {
	struct leak_group *slots;     /* hash table of groups, key 0: empty */
	uint32_t *order;              /* slot indexes, largest first */
	uint64_t *indirect;           /* one bit per heap granule */
	struct summary sum;
	atomic_flag busy;
} lk = { .busy = ATOMIC_FLAG_INIT };

static bool scratch(void)
{
	if (!lk.slots)
		lk.slots = os_map(GROUP_SLOTS * sizeof(*lk.slots));
	if (!lk.order)
		lk.order = os_map(GROUP_SLOTS * sizeof(*lk.order));
	if (!lk.indirect)
		lk.indirect = os_map(om.size >> (OM_GRANULE_LG + 3));
	return lk.slots && lk.order && lk.indirect;
}

static bool bit(const uint64_t *map, uintptr_t p)
{
	uintptr_t g = (p - om.base) >> OM_GRANULE_LG;

	return (map[g >> 6] >> (g & 63)) & 1;
}

static void set_bit(uint64_t *map, uintptr_t p, bool on)
{
	uintptr_t g = (p - om.base) >> OM_GRANULE_LG;

	if (on)
		map[g >> 6] |= 1ULL << (g & 63);
	else
		map[g >> 6] &= ~(1ULL << (g & 63));
}

/* Pinned blocks are the program's own business: not leaks. */
static bool counted(uintptr_t p)
{
	return om_usable((void *)p) && !sites_pinned(p);
}

/* Every word of an unreachable block that points into another one makes
 * that one an indirect leak.  The mark bits, clear between collections
 * and ours while the collector's lock is held, hold the unreachable set. */
static void classify(const uintptr_t *dead, size_t n)
{
	uint64_t *set = mark_bits();

	for (size_t i = 0; i < n; i++)
		if (counted(dead[i]))
			set_bit(set, dead[i], true);
	for (size_t i = 0; i < n; i++) {
		uintptr_t d = dead[i];
		size_t size = counted(d) ? om_usable((void *)d) : 0;
		const uintptr_t *w = (const uintptr_t *)d, *end = (const uintptr_t *)(d + size);

		for (; w < end; w++) {
			uintptr_t s;
			size_t sz;

			if (om_find(*w, &s, &sz) && s != d && bit(set, s))
				set_bit(lk.indirect, s, true);
		}
	}
	for (size_t i = 0; i < n; i++)
		set_bit(set, dead[i], false);
}

/* Blocks are grouped by site, kind, and whether their request is known. */
static void add_to_group(uint32_t site, int indirect, bool unsized, size_t size)
{
	uint32_t key = (site << 2 | (uint32_t)unsized << 1 | (uint32_t)indirect) + 1;
	uint32_t h = key * 0x9e3779b1u;

	for (uint32_t i = 0; i < GROUP_SLOTS; i++) {
		uint32_t idx = (h + i) & (GROUP_SLOTS - 1);
		struct leak_group *g = &lk.slots[idx];

		if (g->key == 0) {
			*g = (struct leak_group){ .key = key, .site = site, .indirect = indirect,
						  .unsized = unsized };
			lk.order[lk.sum.ngroups++] = idx;
		}
		if (g->key == key) {
			g->bytes += (int64_t)size;
			g->count++;
			return;
		}
	}
}

/* Direct leaks first, then the largest, as LeakSanitizer lists them. */
static bool before(const struct leak_group *a, const struct leak_group *b)
{
	return a->indirect != b->indirect ? !a->indirect : a->bytes > b->bytes;
}

/* Shell sort: qsort may allocate. */
static void sort_groups(void)
{
	size_t n = lk.sum.ngroups;

	for (size_t gap = n / 2; gap; gap /= 2)
		for (size_t i = gap; i < n; i++) {
			uint32_t x = lk.order[i];
			size_t j = i;

			for (; j >= gap && before(&lk.slots[x], &lk.slots[lk.order[j - gap]]); j -= gap)
				lk.order[j] = lk.order[j - gap];
			lk.order[j] = x;
		}
}

static void gather(const uintptr_t *dead, size_t n, void *arg)
{
	(void)arg;
	classify(dead, n);
	for (size_t i = 0; i < n; i++) {
		uintptr_t d = dead[i];
		size_t size = counted(d) ? om_usable((void *)d) : 0, asked;
		int ind = bit(lk.indirect, d);

		set_bit(lk.indirect, d, false);
		if (!size)
			continue;
		asked = sites_request(d, size);
		lk.sum.bytes[ind] += (int64_t)(asked ? asked : size);
		lk.sum.count[ind]++;
		add_to_group(sites_of(d), ind, !asked, asked ? asked : size);
	}
	sort_groups();
}

/* Runs the leak check into lk; the caller holds lk.busy. */
static bool find(void)
{
	for (size_t i = 0; i < lk.sum.ngroups; i++)
		lk.slots[lk.order[i]] = (struct leak_group){ 0 };
	memset(&lk.sum, 0, sizeof(lk.sum));
	return scratch() && gc_find_leaks(gather, NULL) >= 0;
}

static void take(void)
{
	spin_lock(&lk.busy);
}

static void give(void)
{
	spin_unlock(&lk.busy);
}

/* A leak check of a thread that does not exist in a forked child is over. */
void leaks_fork_child(void)
{
	give();
}

bool leaks_check(void)
{
	take();
	if (find())
		return true;
	give();
	return false;
}

void leaks_done(void)
{
	give();
}

size_t leaks_groups(void)
{
	return lk.sum.ngroups;
}

struct leak_group *leaks_group(size_t k)
{
	return &lk.slots[lk.order[k]];
}

void leaks_totals(struct leak_totals *t)
{
	*t = (struct leak_totals){ { lk.sum.count[0], lk.sum.count[1] },
				   { lk.sum.bytes[0], lk.sum.bytes[1] }, lk.sum.ngroups };
}

enum leak_stack leaks_stack(const struct leak_group *g)
{
	if (g->site)
		return LEAK_STACK_RECORDED;
	if (!g->unsized)
		return LEAK_STACK_NOT_SAMPLED;
	return sites_sizes_recorded() ? LEAK_STACK_BEFORE : LEAK_STACK_OFF;
}

/* ---- a report for a caller ----------------------------------------------- */

int leaks_report(const struct leak_sink *sink)
{
	struct leak_totals t;

	if (!leaks_check()) {
		int e = errno;

		errno = e ? e : ENOMEM;
		return -1;
	}
	leaks_totals(&t);
	sink->totals(&t, sink->arg);
	for (size_t i = 0; i < lk.sum.ngroups; i++)
		if (!sink->group(leaks_group(i), sink->arg))
			break;
	leaks_done();
	return 0;
}
