#define _GNU_SOURCE
#include "roots.h"

#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "log.h"
#include "mark.h"
#include "objmap.h"
#include "os.h"
#include "tstacks.h"

#define MAPS_MAX (64u << 20)   /* address space; committed as used */
#define MAX_EXCLUDED 4096
#define MAX_EXTRA 8

struct mapping {
	uintptr_t start, end, offset;
	char perms[5];
	const char *path;
};

static struct {
	char *buf;
	size_t cap;
	struct region *excluded;
	size_t nexcluded;
	void (*extra[MAX_EXTRA])(void);
	int nextra;
	struct { enum root_kind kind; void (*each)(root_range_fn, void *); } described[MAX_EXTRA];
	int ndescribed;
} rt;

bool roots_init(void)
{
	rt.cap = MAPS_MAX;
	rt.buf = os_map(rt.cap);
	rt.excluded = os_map(MAX_EXCLUDED * sizeof(*rt.excluded));
	return rt.buf && rt.excluded;
}

void roots_add_extra(void (*fn)(void))
{
	if (rt.nextra < MAX_EXTRA)
		rt.extra[rt.nextra++] = fn;
}

/* Insertion sort: qsort may allocate, and the list is short. */
static void sort_regions(struct region *r, size_t n)
{
	for (size_t i = 1; i < n; i++) {
		struct region x = r[i];
		size_t j = i;

		for (; j > 0 && r[j - 1].start > x.start; j--)
			r[j] = r[j - 1];
		r[j] = x;
	}
}

/* Taken before the world stops: the registry's lock may be held by any
 * thread, and a region added after this is only scanned needlessly. */
void roots_prepare(void)
{
	if (regions_overflowed())
		log_once(w_regions, "too many internal memory regions; some are "
			 "scanned as roots");
	rt.nexcluded = regions_snapshot(rt.excluded, MAX_EXCLUDED - 1);
	rt.excluded[rt.nexcluded++] = (struct region){ om.base, om.base + om.size };
	sort_regions(rt.excluded, rt.nexcluded);
}

/* /proc/self/maps, read whole with bare system calls into a buffer that
 * never moves: nothing here may allocate.  A listing that does not fit
 * fails the collection rather than leave roots out. */
static size_t read_maps(void)
{
	int fd = open("/proc/self/maps", O_RDONLY | O_CLOEXEC);
	size_t len = 0;
	ssize_t n;

	if (fd < 0)
		return 0;
	while ((n = read(fd, rt.buf + len, rt.cap - len - 1)) > 0)
		len += (size_t)n;
	os_close(fd);
	if (n < 0 || len >= rt.cap - 1)
		return 0;
	rt.buf[len] = '\0';
	return len;
}

static const char *parse_mapping(const char *s, struct mapping *m)
{
	char *end;

	m->start = strtoul(s, &end, 16);
	m->end = strtoul(end + 1, &end, 16);
	memcpy(m->perms, end + 1, 4);
	m->perms[4] = '\0';
	s = end + 6;
	m->offset = strtoul(s, NULL, 16);
	for (int field = 0; field < 3 && *s; field++) {   /* offset dev inode */
		while (*s == ' ')
			s++;
		while (*s && *s != ' ' && *s != '\n')
			s++;
	}
	while (*s == ' ')
		s++;
	m->path = s;
	while (*s && *s != '\n')
		s++;
	return *s ? s + 1 : s;
}

static bool path_is(const struct mapping *m, const char *name)
{
	size_t n = strlen(name);

	return !strncmp(m->path, name, n) && (m->path[n] == '\n' || m->path[n] == '\0' ||
					      m->path[n] == ' ');
}

static bool anonymous(const struct mapping *m)
{
	return *m->path == '\n' || *m->path == '\0';
}

static void scan_piece(uintptr_t lo, uintptr_t hi, bool shared, bool code)
{
	if (code)
		mark_code_range(lo, hi);
	else
		mark_range(lo, hi, true, shared);
}

/* Scans [lo, hi) minus every excluded region. */
static void scan_minus_excluded(uintptr_t lo, uintptr_t hi, bool shared, bool code)
{
	for (size_t i = 0; i < rt.nexcluded && lo < hi; i++) {
		const struct region *x = &rt.excluded[i];

		if (x->end <= lo || x->start >= hi)
			continue;
		if (x->start > lo)
			scan_piece(lo, x->start, shared, code);
		lo = x->end > lo ? x->end : lo;
	}
	if (lo < hi)
		scan_piece(lo, hi, shared, code);
}

/* The lowest stack pointer of any thread inside [start, end), or 0. */
static uintptr_t lowest_sp(const struct world *w, uintptr_t start, uintptr_t end)
{
	uintptr_t low = 0;

	if (w->self_sp >= start && w->self_sp < end)
		low = w->self_sp;
	for (size_t i = 0; i < w->n; i++) {
		uintptr_t sp = w->threads[i].sp;

		if (sp >= start && sp < end && (!low || sp < low))
			low = sp;
	}
	return low;
}

static bool holds_tp(const struct world *w, uintptr_t start, uintptr_t end)
{
	if (w->self_tp >= start && w->self_tp < end)
		return true;
	for (size_t i = 0; i < w->n; i++)
		if (w->threads[i].tp >= start && w->threads[i].tp < end)
			return true;
	return false;
}

/* Below a thread's stack pointer lies only dead data, when the mapping is
 * surely a stack: the main stack, or one right above a guard page (a
 * mapping merged with other data never sits above a guard).  A stack no
 * running thread is on may be that of a thread that ended: its own
 * frames are dead too (tstacks.h). */
static uintptr_t scan_from(const struct world *w, const struct mapping *m,
			   const struct mapping *prev)
{
	uintptr_t sp = lowest_sp(w, m->start, m->end), dead = 0;
	bool main_stack = path_is(m, "[stack]");
	bool stack = main_stack || (prev && prev->end == m->start && !strncmp(prev->perms, "---", 3));

	if (stack)
		dead = tstacks_dead_floor(m->start, m->end, main_stack, sp != 0);
	if (dead > sp)
		sp = dead;
	return sp && stack ? sp : m->start;
}

static bool wanted(enum roots_mode mode, const struct world *w,
		   const struct mapping *m, const struct mapping *prev)
{
	bool rw = m->perms[0] == 'r' && m->perms[1] == 'w';

	if (!rw)
		return false;
	if (m->perms[3] == 's')
		return anonymous(m) || path_is(m, "/dev/zero") || !strncmp(m->path, "/SYSV", 5);
	if (mode == ROOTS_ALL)
		return !path_is(m, "[vvar]") && !path_is(m, "[vsyscall]");
	/* minimal: data, bss (anonymous right after a file mapping), brk,
	 * stacks and the mappings holding static TLS */
	return !anonymous(m) || path_is(m, "[heap]") ||
	       (prev && prev->end == m->start && !anonymous(prev) && *prev->path == '/') ||
	       lowest_sp(w, m->start, m->end) || holds_tp(w, m->start, m->end);
}

bool roots_scan(const struct world *w, enum roots_mode mode)
{
	struct mapping cur, prev;
	bool have_prev = false;
	const char *s;

	if (!read_maps())
		return false;
	for (s = rt.buf; *s;) {
		s = parse_mapping(s, &cur);
		if (wanted(mode, w, &cur, have_prev ? &prev : NULL))
			scan_minus_excluded(scan_from(w, &cur, have_prev ? &prev : NULL),
					    cur.end, cur.perms[3] == 's', cur.perms[2] == 'x');
		prev = cur;
		have_prev = true;
	}
	for (int i = 0; i < rt.nextra; i++)
		rt.extra[i]();
	return true;
}

/* ---- inspection: root ranges with a description ------------------------ */

void roots_add_described(enum root_kind kind, void (*each)(root_range_fn, void *))
{
	if (rt.ndescribed < MAX_EXTRA) {
		rt.described[rt.ndescribed].kind = kind;
		rt.described[rt.ndescribed].each = each;
		rt.ndescribed++;
	}
}

static size_t path_length(const char *p)
{
	size_t n = 0;

	while (p[n] && p[n] != '\n')
		n++;
	return n;
}

/* The thread whose stack pointer lies in [start, end), self included. */
static pid_t stack_owner(const struct world *w, uintptr_t start, uintptr_t end, bool *self)
{
	*self = false;
	for (size_t i = 0; i < w->n; i++)
		if (w->threads[i].sp >= start && w->threads[i].sp < end)
			return w->threads[i].tid;
	if (w->self_sp >= start && w->self_sp < end) {
		*self = true;
		return os_gettid();
	}
	return 0;
}

/* Calls fn for [lo, hi) minus every excluded region, like the scan. */
static void describe_pieces(struct root_desc *d, uintptr_t lo, uintptr_t hi,
			    root_desc_fn fn, void *arg)
{
	for (size_t i = 0; i < rt.nexcluded && lo < hi; i++) {
		const struct region *x = &rt.excluded[i];

		if (x->end <= lo || x->start >= hi)
			continue;
		if (x->start > lo) {
			d->lo = lo;
			d->hi = x->start;
			fn(d, arg);
		}
		lo = x->end > lo ? x->end : lo;
	}
	if (lo < hi) {
		d->lo = lo;
		d->hi = hi;
		fn(d, arg);
	}
}

struct described_ctx {
	struct root_desc *d;
	root_desc_fn fn;
	void *arg;
};

static void described_range(uintptr_t lo, uintptr_t hi, void *arg)
{
	struct described_ctx *c = arg;

	c->d->lo = c->d->map_lo = lo;
	c->d->hi = c->d->map_hi = hi;
	c->fn(c->d, c->arg);
}

bool roots_enumerate(const struct world *w, enum roots_mode mode, bool skip_self,
		     root_desc_fn fn, void *arg)
{
	struct mapping cur, prev;
	const char *module = NULL;   /* path of the object mapped last */
	size_t module_len = 0;
	uintptr_t base = 0;
	bool have_prev = false;
	const char *s;

	if (!read_maps())
		return false;
	for (s = rt.buf; *s;) {
		struct root_desc d = { .kind = ROOT_MMAP };
		const struct mapping *pv = have_prev ? &prev : NULL;
		bool self;

		s = parse_mapping(s, &cur);
		if (*cur.path == '/') {
			size_t n = path_length(cur.path);

			if (!module || n != module_len || strncmp(module, cur.path, n)) {
				module = cur.path;
				module_len = n;
				base = cur.start - cur.offset;
			}
		}
		if (wanted(mode, w, &cur, pv)) {
			uintptr_t from = scan_from(w, &cur, pv);

			d.map_lo = cur.start;
			d.map_hi = cur.end;
			d.shared = cur.perms[3] == 's';
			d.code = cur.perms[2] == 'x';
			d.resident_only = true;
			d.path = cur.path;
			d.path_len = path_length(cur.path);
			if (from != cur.start || path_is(&cur, "[stack]")) {
				d.kind = ROOT_STACK;
				d.tid = stack_owner(w, cur.start, cur.end, &self);
				if (self && skip_self)
					goto next;
			} else if (*cur.path == '/' ||
				   (anonymous(&cur) && pv && pv->end == cur.start && module &&
				    *pv->path == '/')) {
				d.kind = ROOT_DATA;
				d.path = module;
				d.path_len = module_len;
				d.base = base;
			}
			describe_pieces(&d, from, cur.end, fn, arg);
		}
next:
		prev = cur;
		have_prev = true;
	}
	for (int i = 0; i < rt.ndescribed; i++) {
		struct root_desc d = { .kind = rt.described[i].kind };
		struct described_ctx c = { &d, fn, arg };

		rt.described[i].each(described_range, &c);
	}
	return true;
}
