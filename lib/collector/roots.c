#define _GNU_SOURCE
#include "roots.h"

#include <elf.h>
#include <fcntl.h>
#include <link.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "log.h"
#include "maps.h"
#include "mark.h"
#include "objmap.h"
#include "os.h"
#include "rtrack.h"
#include "tstacks.h"

#define MAPS_MAX (64u << 20)   /* address space; committed as used */
#define MAX_EXCLUDED 4096
#define MAX_EXTRA 8
#define BOUNCE_BYTES (64u << 10)

static struct {
	char *buf;
	size_t cap;
	char *bounce;     /* shared file pages are read through it */
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
	rt.bounce = os_map(BOUNCE_BYTES);
	return rt.buf && rt.excluded && rt.bounce;
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

/* Whether every line of the listing is a maps line: checked before
 * anything is marked, so that the scans may parse it without failing
 * halfway. */
static bool listing_parses(const char *s)
{
	struct mapping m;

	while (s && *s)
		s = maps_parse_line(s, &m);
	return s != NULL;
}

/* /proc/self/maps, read whole with bare system calls into a buffer that
 * never moves: nothing here may allocate.  A listing that does not fit,
 * or does not parse, fails the collection rather than leave roots out. */
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
	return listing_parses(rt.buf) ? len : 0;
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

/* A writable MAP_SHARED mapping of a regular file (memfd and /dev/shm
 * included; device files never). */
static bool shared_file(const struct mapping *m)
{
	return m->perms[3] == 's' && *m->path == '/' &&
	       (strncmp(m->path, "/dev/", 5) || !strncmp(m->path, "/dev/shm/", 9));
}

struct piece_how {
	bool shared, code, track, any;
};

static void mark_copied(uintptr_t a, uintptr_t b, void *arg)
{
	(void)arg;
	while (a < b) {
		size_t n = b - a < BOUNCE_BYTES ? b - a : BOUNCE_BYTES;
		ssize_t got = os_copy_from_self(rt.bounce, (const void *)a, n);

		if (got > 0)
			mark_range((uintptr_t)rt.bounce, (uintptr_t)rt.bounce + ((size_t)got & ~7ul),
				   false, false);
		a += got > 0 ? ((size_t)got + OS_PAGE - 1) & ~(OS_PAGE - 1) : OS_PAGE;
	}
}

/* Only the pages resident in the mapping are read, never one that is
 * not (reading it would fault it in, or past the file's end, raise
 * SIGBUS), and through process_vm_readv: another process may truncate
 * the file at any moment, and a vanished page then reads short instead
 * of killing the program.  Without /proc/self/pagemap, nothing is read. */
static void scan_shared_file(uintptr_t lo, uintptr_t hi)
{
	int pagemap = open("/proc/self/pagemap", O_RDONLY | O_CLOEXEC);

	if (pagemap < 0) {
		log_once(w_pagemap, "cannot read /proc/self/pagemap: pointers kept in "
			 "shared file mappings are not roots");
		return;
	}
	os_written_runs(pagemap, lo, hi, true, mark_copied, NULL);
	os_close(pagemap);
}

/* any: the piece may wait for whichever marker takes it (mark.h). */
static void scan_piece(uintptr_t lo, uintptr_t hi, const struct piece_how *how)
{
	if (how->track && rtrack_piece(lo, hi))
		return;
	if (how->code)
		mark_code_range(lo, hi);
	else if (how->any)
		mark_range_by_any(lo, hi, how->shared);
	else
		mark_range(lo, hi, true, how->shared);
}

/* Scans [lo, hi) minus every excluded region; with track, through the
 * write tracking of roots. */
static void scan_minus_excluded(uintptr_t lo, uintptr_t hi, const struct piece_how *how)
{
	for (size_t i = 0; i < rt.nexcluded && lo < hi; i++) {
		const struct region *x = &rt.excluded[i];

		if (x->end <= lo || x->start >= hi)
			continue;
		if (x->start > lo)
			scan_piece(lo, x->start, how);
		lo = x->end > lo ? x->end : lo;
	}
	if (lo < hi)
		scan_piece(lo, hi, how);
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

static size_t path_length(const char *p)
{
	size_t n = 0;

	while (p[n] && p[n] != '\n')
		n++;
	return n;
}

/* The object mapped last: where its ELF header lies, readable, if it
 * does. */
struct object {
	const char *path;
	size_t len;
	uintptr_t base, hdr_end;   /* hdr_end: 0 when the header is not mapped */
};

static void follow_object(struct object *o, const struct mapping *m)
{
	size_t n;

	if (*m->path != '/')
		return;
	n = path_length(m->path);
	if (!o->path || n != o->len || strncmp(o->path, m->path, n)) {
		o->path = m->path;
		o->len = n;
		o->base = m->start - m->offset;
		o->hdr_end = 0;
	}
	if (m->offset == 0 && m->perms[0] == 'r')
		o->hdr_end = m->end;
}

/* Where an object's writable segments end, bss included, page-rounded, as
 * its program headers (mapped with its first page) say; 0 if unreadable. */
static uintptr_t elf_data_end(const struct object *o)
{
	const ElfW(Ehdr) *eh = (const void *)o->base;
	const ElfW(Phdr) *ph;
	uintptr_t room = o->hdr_end - o->base, lowest = UINTPTR_MAX, bias, end = 0;

	if (!o->hdr_end || room < sizeof(*eh) || memcmp(eh->e_ident, ELFMAG, SELFMAG) ||
	    eh->e_phentsize != sizeof(*ph) || eh->e_phoff > room ||
	    eh->e_phnum > (room - eh->e_phoff) / sizeof(*ph))
		return 0;
	ph = (const void *)(o->base + eh->e_phoff);
	for (unsigned i = 0; i < eh->e_phnum; i++)
		if (ph[i].p_type == PT_LOAD && (ph[i].p_vaddr & ~(OS_PAGE - 1)) < lowest)
			lowest = ph[i].p_vaddr & ~(OS_PAGE - 1);
	bias = eh->e_type == ET_DYN ? o->base - lowest : 0;
	for (unsigned i = 0; i < eh->e_phnum; i++)
		if (ph[i].p_type == PT_LOAD && (ph[i].p_flags & PF_W) &&
		    bias + ph[i].p_vaddr + ph[i].p_memsz > end)
			end = bias + ph[i].p_vaddr + ph[i].p_memsz;
	return (end + OS_PAGE - 1) & ~(OS_PAGE - 1);
}

/* How far a mapping is scanned.  In minimal mode an anonymous mapping
 * right behind an object's file mappings is scanned as its bss; but the
 * kernel merges an anonymous mmap that lands right behind the bss into
 * the same mapping, and the program's own mappings are not roots in this
 * mode: the scan stops where the object's data ends. */
static uintptr_t scan_to(enum roots_mode mode, const struct world *w, const struct mapping *m,
			 const struct mapping *prev, const struct object *o)
{
	uintptr_t end;

	if (mode != ROOTS_MINIMAL || !anonymous(m) || !prev || prev->end != m->start ||
	    *prev->path != '/' || lowest_sp(w, m->start, m->end) || holds_tp(w, m->start, m->end))
		return m->end;
	end = elf_data_end(o);
	return end > m->start && end < m->end ? end : m->end;
}

static bool wanted(enum roots_mode mode, const struct world *w,
		   const struct mapping *m, const struct mapping *prev)
{
	bool rw = m->perms[0] == 'r' && m->perms[1] == 'w';

	if (!rw)
		return false;
	if (m->perms[3] == 's')
		return anonymous(m) || path_is(m, "/dev/zero") || !strncmp(m->path, "/SYSV", 5) ||
		       shared_file(m);
	if (mode == ROOTS_ALL)
		return !path_is(m, "[vvar]") && !path_is(m, "[vsyscall]");
	/* minimal: data, bss (anonymous right after a file mapping), brk,
	 * stacks and the mappings holding static TLS */
	return !anonymous(m) || path_is(m, "[heap]") ||
	       (prev && prev->end == m->start && !anonymous(prev) && *prev->path == '/') ||
	       lowest_sp(w, m->start, m->end) || holds_tp(w, m->start, m->end);
}

/* A traced thread's registers were copied out of it (stop.h); a
 * signalled thread's lie in its signal frame, on its scanned stack. */
static void scan_registers(const struct world *w)
{
	for (size_t i = 0; i < w->n; i++)
		if (w->threads[i].nregs)
			mark_range((uintptr_t)w->threads[i].regs,
				   (uintptr_t)(w->threads[i].regs + w->threads[i].nregs), false, false);
}

/* A private writable mapping of the program that write tracking may take
 * (rtrack.h): anonymous or of a regular file, and no stack, which has a
 * guard page below it when it is a thread's. */
static bool trackable(const struct mapping *m, const struct mapping *prev)
{
	return m->perms[0] == 'r' && m->perms[1] == 'w' && m->perms[3] == 'p' &&
	       (anonymous(m) || (*m->path == '/' && strncmp(m->path, "/dev/", 5))) &&
	       !(prev && prev->end == m->start && !strncmp(prev->perms, "---", 3));
}

/* The pieces of [lo, hi) outside the shim's own regions (the heap among
 * them, which the heap's tracking protects), min_size or larger. */
static void each_piece(uintptr_t lo, uintptr_t hi, uintptr_t min_size, root_range_fn fn,
		       void *arg)
{
	for (size_t i = 0; i < rt.nexcluded && lo < hi; i++) {
		const struct region *x = &rt.excluded[i];

		if (x->end <= lo || x->start >= hi)
			continue;
		if (x->start > lo && x->start - lo >= min_size)
			fn(lo, x->start, arg);
		lo = x->end > lo ? x->end : lo;
	}
	if (lo < hi && hi - lo >= min_size)
		fn(lo, hi, arg);
}

bool roots_each_trackable(uintptr_t min_size, root_range_fn fn, void *arg)
{
	struct mapping cur, prev;
	bool have_prev = false;

	if (!read_maps())
		return false;
	for (const char *s = rt.buf; *s;) {
		s = maps_parse_line(s, &cur);
		if (cur.end - cur.start >= min_size && trackable(&cur, have_prev ? &prev : NULL))
			each_piece(cur.start, cur.end, min_size, fn, arg);
		prev = cur;
		have_prev = true;
	}
	return true;
}

/* Only a whole mapping that no thread's stack or thread pointer is in
 * may be tracked: those are written all the time.  Nor may any other
 * marker scan one later: the collecting thread goes on writing its own.
 * Anonymous memory and the brk heap only: the shim's own data lies in
 * its object's mappings. */
static void scan_mapping(enum roots_mode mode, const struct world *w, const struct mapping *m,
			 const struct mapping *prev, const struct object *obj)
{
	uintptr_t from = scan_from(w, m, prev), to = scan_to(mode, w, m, prev, obj);
	bool quiet = !lowest_sp(w, m->start, m->end) && !holds_tp(w, m->start, m->end);
	struct piece_how how = {
		.shared = m->perms[3] == 's',
		.code = m->perms[2] == 'x',
		.track = mode == ROOTS_ALL && from == m->start && to == m->end &&
			 m->end - m->start >= RTRACK_MIN && trackable(m, prev) && quiet,
	};

	how.any = quiet && !how.code && (anonymous(m) || path_is(m, "[heap]"));
	scan_minus_excluded(from, to, &how);
}

bool roots_scan(const struct world *w, enum roots_mode mode)
{
	struct mapping cur, prev;
	struct object obj = { 0 };
	bool have_prev = false;
	const char *s;

	if (!read_maps())
		return false;
	for (s = rt.buf; *s;) {
		const struct mapping *pv = have_prev ? &prev : NULL;

		s = maps_parse_line(s, &cur);
		follow_object(&obj, &cur);
		if (shared_file(&cur) && wanted(mode, w, &cur, NULL))
			scan_shared_file(cur.start, cur.end);
		else if (wanted(mode, w, &cur, pv))
			scan_mapping(mode, w, &cur, pv, &obj);
		prev = cur;
		have_prev = true;
	}
	scan_registers(w);
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
	struct object obj = { 0 };
	bool have_prev = false;
	const char *s;

	if (!read_maps())
		return false;
	for (s = rt.buf; *s;) {
		struct root_desc d = { .kind = ROOT_MMAP };
		const struct mapping *pv = have_prev ? &prev : NULL;
		bool self;

		s = maps_parse_line(s, &cur);
		follow_object(&obj, &cur);
		if (wanted(mode, w, &cur, pv)) {
			uintptr_t from = scan_from(w, &cur, pv), to = scan_to(mode, w, &cur, pv, &obj);

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
				   (anonymous(&cur) && pv && pv->end == cur.start && obj.path &&
				    *pv->path == '/')) {
				d.kind = ROOT_DATA;
				d.path = obj.path;
				d.path_len = obj.len;
				d.base = obj.base;
			}
			describe_pieces(&d, from, to, fn, arg);
		}
next:
		prev = cur;
		have_prev = true;
	}
	for (size_t i = 0; i < w->n; i++) {
		const struct stopped *t = &w->threads[i];
		struct root_desc d = { .kind = ROOT_STACK, .tid = t->tid };

		d.lo = d.map_lo = (uintptr_t)t->regs;
		d.hi = d.map_hi = (uintptr_t)(t->regs + t->nregs);
		if (t->nregs)
			fn(&d, arg);
	}
	for (int i = 0; i < rt.ndescribed; i++) {
		struct root_desc d = { .kind = rt.described[i].kind };
		struct described_ctx c = { &d, fn, arg };

		rt.described[i].each(described_range, &c);
	}
	return true;
}
