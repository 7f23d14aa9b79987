#define _GNU_SOURCE
#include "rtrack.h"

#include "mark.h"
#include "os.h"
#include "roots.h"
#include "wtrack.h"
#include "young.h"

#define MAPPINGS 4096        /* registered mappings remembered */
#define RUNS (1u << 15)      /* runs a list holds */

/* A registered mapping, and the unbroken chain of collections whose
 * stopped scan protected it: first and last collection numbers, 0 for
 * none. */
struct mapping_rec {
	uintptr_t lo, hi;
	uint32_t first, last;
};

/* Runs of written pages, sorted, neighbours joined. */
struct runs {
	struct span *v;
	size_t n;
	bool overflow;   /* some runs were lost: the list cannot be used */
};

static struct {
	struct mapping_rec *reg, *next_reg;
	size_t nreg, nnext;
	struct span *asked;
	bool *ok;
	size_t nasked;
	/* pre: the preclean's, now: the stopped scan's (both this
	 * collection's), old: since the last collection of generation 1 or
	 * 2, for generation 1; scratch: for merging */
	struct runs pre, now, old, scratch;
	uint32_t number;       /* of the collection under way, from 1 */
	uint32_t old_from;     /* collection whose reports old starts with */
	int pagemap, gen;
	bool active;           /* protecting again this time */
} rk;

static bool map_runs(struct runs *r)
{
	r->v = os_map(RUNS * sizeof(*r->v));
	return r->v != NULL;
}

bool rtrack_init(void)
{
	rk.reg = os_map(MAPPINGS * sizeof(*rk.reg));
	rk.next_reg = os_map(MAPPINGS * sizeof(*rk.next_reg));
	rk.asked = os_map(MAPPINGS * sizeof(*rk.asked));
	rk.ok = os_map(MAPPINGS * sizeof(*rk.ok));
	return rk.reg && rk.next_reg && rk.asked && rk.ok && map_runs(&rk.pre) &&
	       map_runs(&rk.now) && map_runs(&rk.old) && map_runs(&rk.scratch);
}

/* The child's mappings are not registered (no fork events are asked
 * for), and what the parent reported is not the child's to trust. */
void rtrack_fork_child(void)
{
	rk.nreg = 0;
	rk.pre.n = rk.now.n = rk.old.n = 0;
	rk.pre.overflow = rk.now.overflow = false;
	rk.old.overflow = true;
	rk.active = false;
}

static void add_run(struct runs *r, uintptr_t a, uintptr_t b)
{
	if (r->n && r->v[r->n - 1].hi == a) {
		r->v[r->n - 1].hi = b;
	} else if (r->n < RUNS) {
		r->v[r->n++] = (struct span){ a, b };
	} else {
		r->overflow = true;
	}
}

/* out = a + b, sorted, joined where they meet or overlap. */
static void merge(const struct runs *a, const struct runs *b, struct runs *out)
{
	size_t i = 0, j = 0;

	out->n = 0;
	out->overflow = a->overflow || b->overflow;
	while (i < a->n || j < b->n) {
		const struct span *s = j >= b->n || (i < a->n && a->v[i].lo <= b->v[j].lo) ?
				       &a->v[i++] : &b->v[j++];

		if (out->n && out->v[out->n - 1].hi >= s->lo) {
			if (s->hi > out->v[out->n - 1].hi)
				out->v[out->n - 1].hi = s->hi;
		} else {
			add_run(out, s->lo, s->hi);
		}
	}
}

/* into = into + from; from emptied. */
static void merge_into(struct runs *into, struct runs *from)
{
	struct span *v = into->v;

	merge(into, from, &rk.scratch);
	into->v = rk.scratch.v;
	into->n = rk.scratch.n;
	into->overflow = rk.scratch.overflow;
	rk.scratch.v = v;
	from->n = 0;
	from->overflow = false;
}

/* ---- registering, before the stop ------------------------------------- */

static struct mapping_rec *find_rec(struct mapping_rec *v, size_t n, uintptr_t lo, uintptr_t hi)
{
	size_t a = 0, b = n;

	while (a < b) {
		size_t m = (a + b) / 2;

		if (v[m].hi <= lo)
			a = m + 1;
		else
			b = m;
	}
	return a < n && v[a].lo <= lo && v[a].hi >= hi ? &v[a] : NULL;
}

/* A mapping of the listing: kept with its chain if registered already,
 * else asked for. */
static void consider(uintptr_t lo, uintptr_t hi, void *arg)
{
	struct mapping_rec *r = find_rec(rk.reg, rk.nreg, lo, hi);

	(void)arg;
	if (r && rk.nnext < MAPPINGS)
		rk.next_reg[rk.nnext++] = (struct mapping_rec){ lo, hi, r->first, r->last };
	else if (!r && rk.nasked < MAPPINGS)
		rk.asked[rk.nasked++] = (struct span){ lo, hi };
}

static void insert_rec(struct mapping_rec rec)
{
	size_t i = rk.nnext;

	if (rk.nnext == MAPPINGS)
		return;
	for (; i > 0 && rk.next_reg[i - 1].lo > rec.lo; i--)
		rk.next_reg[i] = rk.next_reg[i - 1];
	rk.next_reg[i] = rec;
	rk.nnext++;
}

/* The list of registered mappings is made again from the program's
 * mappings: those gone leave it, new ones are registered. */
void rtrack_prepare(void)
{
	struct mapping_rec *t;

	if (!young_tracking())
		return;
	rk.nnext = rk.nasked = 0;
	if (!roots_each_trackable(RTRACK_MIN, consider, NULL))
		return;
	if (rk.nasked && young_register(rk.asked, rk.nasked, rk.ok))
		for (size_t i = 0; i < rk.nasked; i++)
			if (rk.ok[i])
				insert_rec((struct mapping_rec){ rk.asked[i].lo, rk.asked[i].hi, 0, 0 });
	t = rk.reg;
	rk.reg = rk.next_reg;
	rk.next_reg = t;
	rk.nreg = rk.nnext;
}

uint64_t rtrack_bytes(void)
{
	uint64_t n = 0;

	for (size_t i = 0; i < rk.nreg; i++)
		n += rk.reg[i].hi - rk.reg[i].lo;
	return n;
}

/* ---- protecting and reading ------------------------------------------- */

static void note_run(uintptr_t a, uintptr_t b, void *arg)
{
	add_run(arg, a, b);
}

static uint64_t pages_from(const struct runs *r, size_t from)
{
	uint64_t n = 0;

	for (size_t i = from; i < r->n; i++)
		n += (r->v[i].hi - r->v[i].lo) / OS_PAGE;
	return n;
}

/* While the program runs: the runs are merged into pre, which stays
 * sorted.  A mapping whose scan fails is read whole in the pause.  The
 * pages reported of mappings protected before are faults the program
 * took; a new mapping's are all its pages. */
uint64_t rtrack_preclean(int pagemap)
{
	uint64_t faults = 0;

	if (!young_tracking() || !rk.nreg)
		return 0;
	if (rk.now.n || rk.now.overflow)   /* a collection given up left them */
		merge_into(&rk.pre, &rk.now);
	for (size_t i = 0; i < rk.nreg; i++) {
		size_t from = rk.now.n;

		wtrack_scan(pagemap, rk.reg[i].lo, rk.reg[i].hi, true, note_run, &rk.now);
		if (rk.reg[i].last)
			faults += pages_from(&rk.now, from);
	}
	merge_into(&rk.pre, &rk.now);
	return faults;
}

void rtrack_begin(int pagemap, int gen, bool active)
{
	rk.number++;
	rk.pagemap = pagemap;
	rk.gen = gen;
	rk.active = active && rk.nreg;
	if (rk.now.n || rk.now.overflow)
		merge_into(&rk.pre, &rk.now);
}

/* Marks what the runs of r hold inside [lo, hi). */
static void mark_runs_in(const struct runs *r, uintptr_t lo, uintptr_t hi)
{
	size_t a = 0, b = r->n;

	while (a < b) {
		size_t m = (a + b) / 2;

		if (r->v[m].hi <= lo)
			a = m + 1;
		else
			b = m;
	}
	for (; a < r->n && r->v[a].lo < hi; a++)
		mark_range(r->v[a].lo > lo ? r->v[a].lo : lo, r->v[a].hi < hi ? r->v[a].hi : hi,
			   false, false);
}

/* Whether the lists hold every page of a mapping written since what the
 * collection's generation needs: generation 0, the last collection (this
 * pause's scan, which must have succeeded, and the preclean's); 1, the
 * last of generation 1 or 2, and every scan since. */
static bool lists_cover(const struct mapping_rec *r)
{
	if (rk.pre.overflow || rk.now.overflow)
		return false;
	return rk.gen == 0 || (!rk.old.overflow && r->first && r->first <= rk.old_from);
}

bool rtrack_piece(uintptr_t lo, uintptr_t hi)
{
	struct mapping_rec *r;

	if (!rk.active || !(r = find_rec(rk.reg, rk.nreg, lo, hi)))
		return false;
	if (!wtrack_scan(rk.pagemap, lo, hi, true, note_run, &rk.now)) {
		r->first = r->last = 0;   /* replaced: registered anew next time */
		r->hi = r->lo;
		return false;
	}
	if (r->last + 1 < rk.number || !r->first)
		r->first = rk.number;
	r->last = rk.number;
	if (!yg.on || !lists_cover(r))
		return false;
	mark_runs_in(&rk.pre, lo, hi);
	mark_runs_in(&rk.now, lo, hi);
	if (rk.gen == 1)
		mark_runs_in(&rk.old, lo, hi);
	return true;
}

/* A collection of generation 1 or 2 starts old afresh with its own
 * reports; one of generation 0 adds them. */
void rtrack_end(int gen)
{
	merge_into(&rk.pre, &rk.now);
	if (gen > 0) {
		struct runs t = rk.old;

		rk.old = rk.pre;
		rk.pre = t;
		rk.old_from = rk.number;
	} else {
		merge_into(&rk.old, &rk.pre);
	}
	rk.pre.n = 0;
	rk.pre.overflow = false;
	rk.active = false;
}
