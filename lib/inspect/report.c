#define _GNU_SOURCE
#include "report.h"

#include <dlfcn.h>
#include <elfutils/libdwfl.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "leaks.h"
#include "log.h"
#include "options.h"
#include "os.h"
#include "sites.h"
#include "suppress.h"

#define SUPP_RULES 4096
#define SUPP_FILE_MAX (16u << 20)

static bool at_exit;

void report_init(void)
{
	const char *r = opt_str(OPT_REPORT);

	at_exit = r && !strcmp(r, "exit");
	if (r && *r && !at_exit && strcmp(r, "0") && strcmp(r, "off") && strcmp(r, "none"))
		log_msg("GCSHIM_REPORT=%s: unknown report (only \"exit\" is); no report", r);
}

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

struct frame_names {
	const char *function, *file, *module;
	int line;
	uintptr_t offset;      /* into the module */
};

/* Return addresses are looked up one byte back, inside the call. */
static void name_frame(uintptr_t pc, struct frame_names *n)
{
	Dwfl_Module *m = dw.dwfl ? dw.addrmodule(dw.dwfl, pc - 1) : NULL;
	Dwfl_Line *line = m ? dw.getsrc(m, pc - 1) : NULL;
	Dwarf_Addr start = 0;
	Dl_info di;

	*n = (struct frame_names){ 0 };
	if (m) {
		n->function = dw.addrname(m, pc - 1);
		n->module = dw.modinfo(m, NULL, &start, NULL, NULL, NULL, NULL, NULL);
	} else if (dladdr((void *)pc, &di)) {
		n->function = di.dli_sname;
		n->module = di.dli_fname;
		start = (Dwarf_Addr)di.dli_fbase;
	}
	if (line)
		n->file = dw.lineinfo(line, NULL, &n->line, NULL, NULL, NULL);
	n->offset = pc - start;
}

/* The shim's own frames (a thread's start) are not the program's: left
 * out, as LeakSanitizer leaves out its interceptors. */
static bool shim_frame(const struct frame_names *n)
{
	const char *base = n->module ? strrchr(n->module, '/') : NULL;

	return base && !strcmp(base + 1, "libgcshim.so");
}

/* "in func file:line", "in func (module+0xoff)" or "(module+0xoff)". */
static void put_frame(struct out *o, int *i, uintptr_t pc)
{
	struct frame_names n;

	name_frame(pc, &n);
	if (shim_frame(&n))
		return;
	put(o, "    #%d %p", (*i)++, (void *)pc);
	if (n.function)
		put(o, " in %s", n.function);
	if (n.file && n.line > 0)
		put(o, " %s:%d\n", n.file, n.line);
	else if (n.module)
		put(o, " (%s+0x%lx)\n", n.module, (unsigned long)n.offset);
	else
		put(o, "\n");
}

/* ---- suppressions --------------------------------------------------------- */

static struct {
	const char *path;
	char *text;
	size_t len;
	struct supp_list list;
} sp;

static void bad_line(int line, const char *why, void *arg)
{
	(void)arg;
	log_msg("GCSHIM_SUPPRESSIONS=%s: line %d: %s; line ignored", sp.path, line, why);
}

static bool read_whole(int fd, char *buf, size_t len)
{
	for (size_t off = 0; off < len;) {
		ssize_t n = read(fd, buf + off, len - off);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return false;
		off += (size_t)n;
	}
	return true;
}

/* The file, read into memory of our own; a file that cannot be read is
 * reported and the report goes on without it. */
static void load_suppressions(void)
{
	struct stat sb;
	int fd;

	sp.path = opt_str(OPT_SUPPRESSIONS);
	if (!sp.path || !*sp.path)
		return;
	fd = open(sp.path, O_RDONLY | O_CLOEXEC);
	if (fd < 0 || fstat(fd, &sb) < 0 || !S_ISREG(sb.st_mode) ||
	    (size_t)sb.st_size > SUPP_FILE_MAX) {
		log_msg("GCSHIM_SUPPRESSIONS=%s: %s; no suppressions", sp.path,
			fd < 0 ? strerror(errno) : "not a regular file of at most 16 MiB");
		if (fd >= 0)
			os_close(fd);
		return;
	}
	sp.len = (size_t)sb.st_size;
	sp.text = os_map(sp.len + 1);
	sp.list.rules = os_map(SUPP_RULES * sizeof(*sp.list.rules));
	sp.list.cap = SUPP_RULES;
	if (!sp.text || !sp.list.rules || !read_whole(fd, sp.text, sp.len)) {
		log_msg("GCSHIM_SUPPRESSIONS=%s: cannot read it; no suppressions", sp.path);
		sp.list.cap = 0;
	} else {
		supp_parse(&sp.list, sp.text, sp.len, bad_line, NULL);
	}
	os_close(fd);
}

/* The first rule that matches a frame of the group's stack, innermost
 * frame first. */
static struct supp_rule *suppression_of(const struct leak_group *g)
{
	const uintptr_t *f = NULL;
	size_t depth = sp.list.n ? sites_frames(g->site, &f) : 0;

	for (size_t i = 0; i < depth; i++) {
		struct frame_names n;
		struct supp_rule *r;

		name_frame(f[i], &n);
		if (!shim_frame(&n) && (r = supp_find(&sp.list, n.function, n.file, n.module)))
			return r;
	}
	return NULL;
}

/* Marks the suppressed groups; returns what is left: blocks and bytes. */
static void apply_suppressions(int64_t *bytes, int64_t *count)
{
	for (size_t k = 0; k < leaks_groups(); k++) {
		struct leak_group *g = leaks_group(k);
		struct supp_rule *r = suppression_of(g);

		g->suppressed = r != NULL;
		if (!r)
			continue;
		r->count += g->count;
		r->bytes += g->bytes;
		*bytes -= g->bytes;
		*count -= g->count;
	}
}

static void put_padded(struct out *o, int64_t v, int width)
{
	char num[32];
	int n = (int)fmt_s(num, sizeof(num), "%ld", (long)v);

	for (; n < width; n++)
		put(o, " ");
	put(o, "%s", num);
}

/* LeakSanitizer's table of the suppressions that matched. */
static void put_suppressions(struct out *o)
{
	static const char rule[] = "-----------------------------------------------------";
	bool any = false;

	for (size_t i = 0; i < sp.list.n; i++)
		any = any || sp.list.rules[i].count;
	if (!any)
		return;
	put(o, "%s\nSuppressions used:\n  count      bytes template\n", rule);
	for (size_t i = 0; i < sp.list.n; i++) {
		const struct supp_rule *r = &sp.list.rules[i];
		char pat[512];
		size_t n = r->len < sizeof(pat) - 1 ? r->len : sizeof(pat) - 1;

		if (!r->count)
			continue;
		memcpy(pat, r->pattern, n);
		pat[n] = '\0';
		put_padded(o, r->count, 7);
		put(o, " ");
		put_padded(o, r->bytes, 10);
		put(o, " %s\n", pat);
	}
	put(o, "%s\n\n", rule);
}

/* ---- the report ------------------------------------------------------------- */

static const char *no_stack_note(enum leak_stack why)
{
	switch (why) {
	case LEAK_STACK_NOT_SAMPLED:
		return "<no stack: not sampled (GCSHIM_BACKTRACE_SAMPLE) or not unwound>";
	case LEAK_STACK_BEFORE:
		return "<allocated before allocation sites were recorded>";
	default:
		return "<no stack: allocation sites not recorded (GCSHIM_BACKTRACE=16 records them)>";
	}
}

static void put_group(struct out *o, const struct leak_group *g)
{
	const uintptr_t *f = NULL;
	size_t depth = sites_frames(g->site, &f);
	int shown = 0;

	put(o, "\n%s leak of %ld byte(s)%s in %ld object(s) allocated from:\n",
	    g->indirect ? "Indirect" : "Direct", (long)g->bytes, g->unsized ? " (size class)" : "",
	    (long)g->count);
	if (!depth)
		put(o, "    %s\n", no_stack_note(leaks_stack(g)));
	for (size_t i = 0; i < depth; i++)
		put_frame(o, &shown, f[i]);
}

static void write_report(struct out *o, int64_t bytes, int64_t count)
{
	if (count) {
		put(o, "\n=================================================================\n"
		    "==%d==gcshim: detected memory leaks\n", (int)getpid());
		for (size_t k = 0; k < leaks_groups(); k++)
			if (!leaks_group(k)->suppressed)
				put_group(o, leaks_group(k));
		put(o, "\n");
	}
	put_suppressions(o);
	if (count)
		put(o, "SUMMARY: gcshim: %ld byte(s) leaked in %ld allocation(s).\n", (long)bytes,
		    (long)count);
	flush(o);
}

static int open_output(void)
{
	const char *path = opt_str(OPT_REPORT_FILE);
	int fd;

	if (!path || !*path)
		return 2;
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0) {
		log_msg("exit report: cannot open %s; writing to stderr", path);
		return 2;
	}
	return fd;
}

int report_at_exit(void)
{
	static struct out o;
	int code = (int)opt_int(OPT_REPORT_EXITCODE);
	struct leak_totals t;
	int64_t bytes, count;

	if (!at_exit)
		return 0;
	at_exit = false;   /* once, also if a destructor calls exit() */
	if (!leaks_check()) {
		log_msg("exit report: the final collection failed; no report");
		return 0;
	}
	leaks_totals(&t);
	bytes = t.bytes[0] + t.bytes[1];
	count = t.count[0] + t.count[1];
	if (leaks_groups()) {
		open_libdw();
		load_suppressions();
		apply_suppressions(&bytes, &count);
		o.fd = open_output();
		write_report(&o, bytes, count);
		if (o.fd != 2)
			os_close(o.fd);
	}
	leaks_done();
	return count ? code : 0;
}
