#define _GNU_SOURCE
#include "leaks.h"

#include <dlfcn.h>
#include <elfutils/libdwfl.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
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

struct group {
	uint32_t key;        /* site << 1 | indirect, + 1; 0 = empty slot */
	int64_t bytes, count;
};

struct summary {
	int64_t bytes[2], count[2];   /* [0] direct, [1] indirect */
	size_t ngroups;
};

static struct {
	struct group *slots;          /* hash table of groups */
	uint32_t *order;              /* slot indexes, largest first */
	uint64_t *indirect;           /* one bit per heap granule */
	struct summary sum;
	atomic_flag busy;
	bool at_exit;
} lk = { .busy = ATOMIC_FLAG_INIT };

void leaks_init(void)
{
	const char *r = opt_str(OPT_REPORT);

	lk.at_exit = r && !strcmp(r, "exit");
	if (r && *r && !lk.at_exit && strcmp(r, "0") && strcmp(r, "off") && strcmp(r, "none"))
		log_msg("GCSHIM_REPORT=%s: unknown report (only \"exit\" is); no report", r);
}

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

static void add_to_group(uint32_t site, int indirect, size_t size)
{
	uint32_t key = (site << 1 | (uint32_t)indirect) + 1;
	uint32_t h = key * 0x9e3779b1u;

	for (uint32_t i = 0; i < GROUP_SLOTS; i++) {
		uint32_t idx = (h + i) & (GROUP_SLOTS - 1);
		struct group *g = &lk.slots[idx];

		if (g->key == 0) {
			g->key = key;
			lk.order[lk.sum.ngroups++] = idx;
		}
		if (g->key == key) {
			g->bytes += (int64_t)size;
			g->count++;
			return;
		}
	}
}

/* Shell sort: qsort may allocate. */
static void sort_groups(void)
{
	size_t n = lk.sum.ngroups;

	for (size_t gap = n / 2; gap; gap /= 2)
		for (size_t i = gap; i < n; i++) {
			uint32_t x = lk.order[i];
			size_t j = i;

			for (; j >= gap && lk.slots[lk.order[j - gap]].bytes < lk.slots[x].bytes; j -= gap)
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
		size_t size = counted(d) ? om_usable((void *)d) : 0;
		int ind = bit(lk.indirect, d);

		set_bit(lk.indirect, d, false);
		if (!size)
			continue;
		lk.sum.bytes[ind] += (int64_t)size;
		lk.sum.count[ind]++;
		add_to_group(sites_of(d), ind, size);
	}
	sort_groups();
}

/* Runs the leak check into lk; the caller holds lk.busy. */
static bool find(void)
{
	for (size_t i = 0; i < lk.sum.ngroups; i++)
		lk.slots[lk.order[i]] = (struct group){ 0 };
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

/* ---- a report for a caller ----------------------------------------------- */

int leaks_report(const struct leak_sink *sink)
{
	struct leak_totals t;

	take();
	if (!find()) {
		int e = errno;

		give();
		errno = e ? e : ENOMEM;
		return -1;
	}
	t = (struct leak_totals){ { lk.sum.count[0], lk.sum.count[1] },
				  { lk.sum.bytes[0], lk.sum.bytes[1] }, lk.sum.ngroups };
	sink->totals(&t, sink->arg);
	for (size_t i = 0; i < lk.sum.ngroups; i++) {
		const struct group *g = &lk.slots[lk.order[i]];
		struct leak_group lg = { .indirect = (g->key - 1) & 1, .site = (g->key - 1) >> 1,
					 .bytes = g->bytes, .count = g->count };

		if (!sink->group(&lg, sink->arg))
			break;
	}
	give();
	return 0;
}

/* ---- the exit report ---------------------------------------------------- */

/* libdw, opened only at exit: the library does not depend on it. */
static struct {
	void *h;
	Dwfl *(*begin)(const Dwfl_Callbacks *);
	int (*proc_report)(Dwfl *, pid_t);
	int (*report_end)(Dwfl *, int (*)(Dwfl_Module *, void *, const char *, Dwarf_Addr, void *), void *);
	Dwfl_Module *(*addrmodule)(Dwfl *, Dwarf_Addr);
	const char *(*addrname)(Dwfl_Module *, GElf_Addr);
	Dwfl_Line *(*getsrc)(Dwfl_Module *, Dwarf_Addr);
	const char *(*lineinfo)(Dwfl_Line *, Dwarf_Addr *, int *, int *, Dwarf_Word *, Dwarf_Word *);
	const char *(*modinfo)(Dwfl_Module *, void ***, Dwarf_Addr *, Dwarf_Addr *, Dwarf_Addr *,
			       Dwarf_Addr *, const char **, const char **);
	Dwfl_Callbacks cb;
	char *debuginfo_path;
	Dwfl *dwfl;
} dw;

static void open_libdw(void)
{
	void *h = dlopen("libdw.so.1", RTLD_NOW | RTLD_LOCAL);

	if (!h)
		return;
	*(void **)&dw.begin = dlsym(h, "dwfl_begin");
	*(void **)&dw.proc_report = dlsym(h, "dwfl_linux_proc_report");
	*(void **)&dw.report_end = dlsym(h, "dwfl_report_end");
	*(void **)&dw.addrmodule = dlsym(h, "dwfl_addrmodule");
	*(void **)&dw.addrname = dlsym(h, "dwfl_module_addrname");
	*(void **)&dw.getsrc = dlsym(h, "dwfl_module_getsrc");
	*(void **)&dw.lineinfo = dlsym(h, "dwfl_lineinfo");
	*(void **)&dw.modinfo = dlsym(h, "dwfl_module_info");
	*(void **)&dw.cb.find_elf = dlsym(h, "dwfl_linux_proc_find_elf");
	*(void **)&dw.cb.find_debuginfo = dlsym(h, "dwfl_standard_find_debuginfo");
	dw.cb.debuginfo_path = &dw.debuginfo_path;
	if (!dw.begin || !dw.proc_report || !dw.report_end || !dw.addrmodule || !dw.addrname ||
	    !dw.getsrc || !dw.lineinfo || !dw.modinfo || !dw.cb.find_elf || !dw.cb.find_debuginfo)
		return;
	dw.dwfl = dw.begin(&dw.cb);
	if (dw.dwfl && (dw.proc_report(dw.dwfl, getpid()) != 0 ||
			dw.report_end(dw.dwfl, NULL, NULL) != 0))
		dw.dwfl = NULL;
}

struct out {
	int fd;
	char buf[8192];
	size_t len;
};

static void flush(struct out *o)
{
	for (size_t off = 0; off < o->len;) {
		ssize_t n = write(o->fd, o->buf + off, o->len - off);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		off += (size_t)n;
	}
	o->len = 0;
}

static void put(struct out *o, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void put(struct out *o, const char *fmt, ...)
{
	char line[1024];
	va_list ap;
	size_t n;

	va_start(ap, fmt);
	n = fmt_v(line, sizeof(line), fmt, ap);
	va_end(ap);
	if (n >= sizeof(line))
		n = sizeof(line) - 1;
	if (o->len + n > sizeof(o->buf))
		flush(o);
	memcpy(o->buf + o->len, line, n);
	o->len += n;
}

/* "in func file:line", "in func (module+0xoff)" or "(module+0xoff)";
 * return addresses are looked up one byte back, inside the call. */
static void put_frame(struct out *o, int i, uintptr_t pc)
{
	Dwfl_Module *m = dw.dwfl ? dw.addrmodule(dw.dwfl, pc - 1) : NULL;
	const char *func = m ? dw.addrname(m, pc - 1) : NULL, *mod = NULL, *file = NULL;
	Dwfl_Line *line = m ? dw.getsrc(m, pc - 1) : NULL;
	Dwarf_Addr start = 0;
	Dl_info di;
	int lno = 0;

	if (line)
		file = dw.lineinfo(line, NULL, &lno, NULL, NULL, NULL);
	if (m)
		mod = dw.modinfo(m, NULL, &start, NULL, NULL, NULL, NULL, NULL);
	if (!m && dladdr((void *)pc, &di)) {
		func = di.dli_sname;
		mod = di.dli_fname;
		start = (Dwarf_Addr)di.dli_fbase;
	}
	put(o, "    #%d %p", i, (void *)pc);
	if (func)
		put(o, " in %s", func);
	if (file && lno > 0)
		put(o, " %s:%d\n", file, lno);
	else if (mod)
		put(o, " (%s+0x%lx)\n", mod, (unsigned long)(pc - start));
	else
		put(o, "\n");
}

static void write_report(struct out *o)
{
	put(o, "\n=================================================================\n"
	    "==%d==gcshim: detected memory leaks\n", (int)getpid());
	for (size_t k = 0; k < lk.sum.ngroups; k++) {
		const struct group *g = &lk.slots[lk.order[k]];
		uint32_t site = (g->key - 1) >> 1;
		const uintptr_t *f = NULL;
		size_t depth = sites_frames(site, &f);

		put(o, "\n%s leak of %ld byte(s) in %ld object(s) allocated from:\n",
		    (g->key - 1) & 1 ? "Indirect" : "Direct", (long)g->bytes, (long)g->count);
		if (!depth)
			put(o, "    <unknown: no backtrace recorded (GCSHIM_BACKTRACE=0, or not sampled)>\n");
		for (size_t i = 0; i < depth; i++)
			put_frame(o, (int)i, f[i]);
	}
	put(o, "\nSUMMARY: gcshim: %ld byte(s) leaked in %ld allocation(s).\n",
	    (long)(lk.sum.bytes[0] + lk.sum.bytes[1]), (long)(lk.sum.count[0] + lk.sum.count[1]));
	flush(o);
}

int leaks_at_exit(void)
{
	static struct out o;
	const char *path = opt_str(OPT_REPORT_FILE);
	int code = (int)opt_int(OPT_REPORT_EXITCODE);
	bool leaked;

	if (!lk.at_exit)
		return 0;
	lk.at_exit = false;   /* once, also if a destructor calls exit() */
	take();
	if (!find()) {
		give();
		log_msg("exit report: the final collection failed; no report");
		return 0;
	}
	leaked = lk.sum.count[0] + lk.sum.count[1] > 0;
	if (leaked) {
		o.fd = path && *path ? open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644) : 2;
		if (o.fd < 0) {
			log_msg("exit report: cannot open %s; writing to stderr", path);
			o.fd = 2;
		}
		open_libdw();
		write_report(&o);
		if (o.fd != 2)
			os_close(o.fd);
	}
	give();
	return leaked ? code : 0;
}
