#define _GNU_SOURCE
#include "proto.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <string.h>
#include <unistd.h>

#include "collect.h"
#include "garbage.h"
#include "account.h"
#include "leaks.h"
#include "objmap.h"
#include "gcshim.h"
#include "log.h"
#include "options.h"
#include "sites.h"
#include "stats.h"
#include "stop.h"
#include "inspect.h"

void reply_raw(struct reply *r, const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++, r->len++)
		if (r->len + 1 < r->cap)
			r->buf[r->len] = s[i];
}

void reply_fmt(struct reply *r, const char *fmt, ...)
{
	va_list ap;
	size_t room = r->len < r->cap ? r->cap - r->len : 0;

	va_start(ap, fmt);
	r->len += fmt_v(r->buf + (r->len < r->cap ? r->len : r->cap), room, fmt, ap);
	va_end(ap);
}

/* Length of the well-formed UTF-8 sequence at s, 0 if there is none:
 * shortest form, no surrogates, nothing past U+10FFFF.  The lead byte
 * gives the length and the range of the second byte (RFC 3629), the
 * others are plain continuation bytes; a NUL ends the check as any other
 * byte out of range does. */
static size_t utf8_len(const unsigned char *s)
{
	unsigned char lo = 0x80, hi = 0xbf;
	size_t n;

	if (s[0] >= 0xc2 && s[0] <= 0xdf)
		n = 2;
	else if (s[0] >= 0xe0 && s[0] <= 0xef)
		n = 3, lo = s[0] == 0xe0 ? 0xa0 : 0x80, hi = s[0] == 0xed ? 0x9f : 0xbf;
	else if (s[0] >= 0xf0 && s[0] <= 0xf4)
		n = 4, lo = s[0] == 0xf0 ? 0x90 : 0x80, hi = s[0] == 0xf4 ? 0x8f : 0xbf;
	else
		return 0;
	if (s[1] < lo || s[1] > hi)
		return 0;
	for (size_t i = 2; i < n; i++)
		if ((s[i] & 0xc0) != 0x80)
			return 0;
	return n;
}

/* A JSON string: quotes, backslashes and control bytes escaped; bytes
 * that are not well-formed UTF-8 become \u00XX, so the line stays valid. */
void reply_str(struct reply *r, const char *s)
{
	reply_raw(r, "\"", 1);
	while (*s) {
		unsigned char c = (unsigned char)*s;
		size_t n = c >= 0x80 ? utf8_len((const unsigned char *)s) : 1;

		if (c == '"' || c == '\\')
			reply_fmt(r, "\\%c", c);
		else if (c < 0x20 || c == 0x7f || n == 0)
			reply_fmt(r, "\\u00%c%c", "0123456789abcdef"[c >> 4],
				  "0123456789abcdef"[c & 15]);
		else
			reply_raw(r, s, n);
		s += n ? n : 1;
	}
	reply_raw(r, "\"", 1);
}

static int vfail(struct reply *r, bool usage, const char *fmt, va_list ap)
{
	char msg[256];

	fmt_v(msg, sizeof(msg), fmt, ap);
	r->len = 0;
	reply_raw(r, "{\"ok\":false,\"error\":", 20);
	reply_str(r, msg);
	if (usage)
		reply_raw(r, ",\"usage\":true", 13);
	reply_raw(r, "}", 1);
	return -1;
}

/* The request could not be served. */
static int fail(struct reply *r, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vfail(r, false, fmt, ap);
	va_end(ap);
	return -1;
}

/* The request itself is wrong: "usage" tells a client it was misused,
 * not that the process failed. */
static int fail_usage(struct reply *r, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vfail(r, true, fmt, ap);
	va_end(ap);
	return -1;
}

/* Why a collection or leak check did not run, the thread that did not
 * stop named with its TID and name. */
static void collection_failure(char *buf, size_t cap)
{
	char path[64], name[32] = "";
	pid_t tid = stop_laggard();
	ssize_t n;
	int fd;

	if (errno != EAGAIN) {
		fmt_s(buf, cap, "%s", gc_failure_reason(errno));
		return;
	}
	fmt_s(path, sizeof(path), "/proc/self/task/%d/comm", (int)tid);
	fd = tid ? open(path, O_RDONLY | O_CLOEXEC) : -1;
	n = fd >= 0 ? read(fd, name, sizeof(name) - 1) : -1;
	if (fd >= 0)
		close(fd);
	name[n > 0 ? (size_t)n - (name[n - 1] == '\n') : 0] = '\0';
	if (tid)
		fmt_s(buf, cap, "thread %d (%s) did not stop within GCSHIM_STOP_TIMEOUT",
		      (int)tid, *name ? name : "gone");
	else
		fmt_s(buf, cap, "a thread could not be stopped in time, or /proc could not be read");
}

/* Out of line: its buffers must not enlarge the frame of a verb that
 * collects, whose stack the collector scans as a root. */
static __attribute__((noinline)) int fail_collection(struct reply *r, const char *before,
						     const char *after)
{
	char why[160];

	collection_failure(why, sizeof(why));
	return fail(r, "%s%s%s", before, why, after);
}

static void ok(struct reply *r)
{
	reply_raw(r, "{\"ok\":true", 10);
}

static void triple(struct reply *r, const char *key, const int64_t v[3])
{
	reply_fmt(r, ",\"%s\":[%ld,%ld,%ld]", key, (long)v[0], (long)v[1], (long)v[2]);
}

static int cmd_hello(struct reply *r, char **argv, int argc)
{
	int64_t v;

	if (!parse_int(argv[1], &v) || v != PROTO_VERSION)
		return fail_usage(r, "unsupported protocol '%s' (this process speaks %d)",
			    argv[1], PROTO_VERSION);
	ok(r);
	reply_fmt(r, ",\"protocol\":%d,\"version\":\"%s\",\"pid\":%d,\"command\":",
		  PROTO_VERSION, GCSHIM_VERSION, (int)getpid());
	reply_str(r, program_invocation_short_name);
	return 0;
}

static int cmd_mem_alloc(struct reply *r, char **argv, int argc)
{
	ok(r);
	reply_fmt(r, ",\"mem_alloc\":%ld", (long)gcshim_mem_alloc());
	return 0;
}

static int cmd_mem_free(struct reply *r, char **argv, int argc)
{
	ok(r);
	reply_fmt(r, ",\"mem_free\":%ld", (long)gcshim_mem_free());
	return 0;
}

static int show_enabled(struct reply *r)
{
	ok(r);
	reply_fmt(r, ",\"enabled\":%s", atomic_load(&gc.enabled) ? "true" : "false");
	return 0;
}

static int cmd_enable(struct reply *r, char **argv, int argc)
{
	atomic_store(&gc.enabled, 1);
	return show_enabled(r);
}

static int cmd_disable(struct reply *r, char **argv, int argc)
{
	atomic_store(&gc.enabled, 0);
	return show_enabled(r);
}

static int cmd_isenabled(struct reply *r, char **argv, int argc)
{
	return show_enabled(r);
}

static int cmd_threshold(struct reply *r, char **argv, int argc)
{
	int64_t old = atomic_load(&gc.threshold), v;

	if (argc > 1) {
		if (!parse_size_or_off(argv[1], &v))
			return fail_usage(r, "bad threshold '%s': expected bytes (like 64M) or -1",
				    argv[1]);
		gc_set_threshold_bytes(v);
	}
	ok(r);
	reply_fmt(r, ",\"threshold\":%ld", (long)atomic_load(&gc.threshold));
	if (argc > 1)
		reply_fmt(r, ",\"previous\":%ld", (long)old);
	return 0;
}

static int cmd_growth(struct reply *r, char **argv, int argc)
{
	int64_t old = atomic_load(&gc.growth), v;

	if (argc > 1) {
		if (!parse_percent_or_on(argv[1], &v))
			return fail_usage(r, "bad growth '%s': expected a percent (like 100), on or off",
					  argv[1]);
		gc_set_growth(v);
	}
	ok(r);
	reply_fmt(r, ",\"growth\":%ld,\"growth_target\":%ld", (long)atomic_load(&gc.growth),
		  atomic_load(&gc.growth) > 0 ? (long)atomic_load(&gc.growth_target) : -1L);
	if (argc > 1)
		reply_fmt(r, ",\"previous\":%ld", (long)old);
	return 0;
}

static int show_thresholds(struct reply *r)
{
	int64_t t[3];

	for (int i = 0; i < 3; i++)
		t[i] = atomic_load(&gc.gen_threshold[i]);
	ok(r);
	triple(r, "threshold", t);
	return 0;
}

static int cmd_set_threshold(struct reply *r, char **argv, int argc)
{
	int64_t t[3];

	for (int i = 0; i < 3; i++)
		t[i] = atomic_load(&gc.gen_threshold[i]);
	for (int i = 1; i < argc; i++)
		if (!parse_int(argv[i], &t[i - 1]) || t[i - 1] < 0 || t[i - 1] > INT32_MAX)
			return fail_usage(r, "bad threshold '%s': expected an integer from 0 to %d",
				    argv[i], INT32_MAX);
	gc_set_gen_thresholds(t);
	return show_thresholds(r);
}

static int cmd_get_threshold(struct reply *r, char **argv, int argc)
{
	return show_thresholds(r);
}

static int cmd_get_count(struct reply *r, char **argv, int argc)
{
	int64_t c[3];

	gc_get_counts(c);
	ok(r);
	triple(r, "count", c);
	return 0;
}

static int show_debug(struct reply *r)
{
	ok(r);
	reply_fmt(r, ",\"debug\":%d", atomic_load(&gc.debug));
	return 0;
}

static int cmd_set_debug(struct reply *r, char **argv, int argc)
{
	int64_t v;

	if (!parse_flags(argv[1], &v) || gc_set_debug(v) < 0)
		return fail_usage(r, "bad debug flags '%s': expected a combination of "
			    "STATS=1 COLLECTABLE=2 UNCOLLECTABLE=4 SAVEALL=32 LEAK=38",
			    argv[1]);
	return show_debug(r);
}

static int cmd_get_debug(struct reply *r, char **argv, int argc)
{
	return show_debug(r);
}

static int cmd_stats(struct reply *r, char **argv, int argc)
{
	char buf[4096];
	size_t n;

	n = stats_json(buf, sizeof(buf));
	if (n >= sizeof(buf))
		return fail(r, "stats do not fit the reply buffer");
	ok(r);
	reply_raw(r, ",\"stats\":", 9);
	reply_raw(r, buf, n);
	return 0;
}

static int cmd_collect(struct reply *r, char **argv, int argc)
{
	struct collection c;
	int64_t gen = 2;

	if (argc > 1 && (!parse_int(argv[1], &gen) || gen < 0 || gen > 2))
		return fail_usage(r, "invalid generation '%s' (must be 0, 1 or 2)", argv[1]);
	if (gc_collect((int)gen, GC_MANUAL, false, &c) < 0)
		return fail_collection(r, "collection failed: ", "; nothing was freed");
	ok(r);
#define COLLECTION_FIELD(field, unit, label) reply_fmt(r, ",\"" #field "\":%ld", (long)c.field);
	PROTO_COLLECTION_FIELDS(COLLECTION_FIELD)
#undef COLLECTION_FIELD
	return 0;
}

static int cmd_get_stats(struct reply *r, char **argv, int argc)
{
	struct gen_stats g[3];

	collect_get_gen_stats(g);
	ok(r);
	reply_raw(r, ",\"generations\":[", 16);
	for (int i = 0; i < 3; i++) {
		const char *sep = "{";

#define GEN_STATS_FIELD(field) \
		reply_fmt(r, "%s\"" #field "\":%ld", sep, (long)g[i].field), sep = ",";
		reply_raw(r, i ? "," : "", i ? 1 : 0);
		PROTO_GEN_STATS_FIELDS(GEN_STATS_FIELD)
#undef GEN_STATS_FIELD
		reply_raw(r, "}", 1);
	}
	reply_raw(r, "]", 1);
	return 0;
}

#define GARBAGE_SHOWN 256
#define LIT(r, s) reply_raw(r, s, sizeof(s) - 1)

/* A block's usable size, and the size the program asked for when known. */
static void sizes_json(struct reply *r, uintptr_t p)
{
	size_t usable = om_usable((void *)p), asked = sites_request(p, usable);

	reply_fmt(r, "\"size\":%lu", (unsigned long)usable);
	if (asked)
		reply_fmt(r, ",\"requested\":%lu", (unsigned long)asked);
}

static int garbage_hexdump(struct reply *r, const char *arg);

static int cmd_garbage(struct reply *r, char **argv, int argc)
{
	uintptr_t blocks[GARBAGE_SHOWN];
	size_t n;

	if (argc > 1 && strcmp(argv[1], "free"))
		return garbage_hexdump(r, argv[1]);
	if (argc > 1) {
		ok(r);
		reply_fmt(r, ",\"freed\":%lu", (unsigned long)garbage_release());
		gc_set_mode(MODE_GARBAGE, garbage_count() != 0);
		return 0;
	}
	n = garbage_list(blocks, GARBAGE_SHOWN);
	ok(r);
	reply_fmt(r, ",\"count\":%lu,\"blocks\":[", (unsigned long)garbage_count());
	for (size_t i = 0; i < n; i++) {
		reply_fmt(r, "%s{\"address\":\"%p\",", i ? "," : "", (void *)blocks[i]);
		sizes_json(r, blocks[i]);
		LIT(r, "}");
	}
	reply_raw(r, "]", 1);
	return 0;
}

/* ---- inspection --------------------------------------------------------- */

#define SHOWN_ROOM 1024   /* an entry is left out when less than this is left */

static struct proto_session *current;   /* the session of the request */

static const char *const ref_kinds[] = { "block", "stack", "data", "mmap", "epoll", "garbage" };

static void hex_bytes(struct reply *r, const unsigned char *b, size_t n)
{
	for (size_t i = 0; i < n; i++)
		reply_fmt(r, "%c%c", "0123456789abcdef"[b[i] >> 4], "0123456789abcdef"[b[i] & 15]);
}

#define HEXDUMP_MAX 4096

static int garbage_hexdump(struct reply *r, const char *arg)
{
	static uintptr_t blocks[GARBAGE_SHOWN];
	static size_t sizes[GARBAGE_SHOWN];
	static unsigned char bytes[GARBAGE_SHOWN * 256];
	int64_t want;
	size_t n, shown = 0, each;

	if (!parse_int(arg, &want) || want < 1 || want > 256)
		return fail_usage(r, "usage: garbage [free|BYTES] (BYTES from 1 to 256)");
	each = (size_t)want;
	n = garbage_peek(blocks, sizes, bytes, each, GARBAGE_SHOWN);
	ok(r);
	reply_fmt(r, ",\"count\":%lu,\"blocks\":[", (unsigned long)garbage_count());
	for (; shown < n && r->len + SHOWN_ROOM + 2 * each < r->cap; shown++) {
		reply_fmt(r, "%s{\"address\":\"%p\",", shown ? "," : "", (void *)blocks[shown]);
		sizes_json(r, blocks[shown]);
		LIT(r, ",\"hex\":\"");
		hex_bytes(r, bytes + shown * each, sizes[shown]);
		LIT(r, "\"}");
	}
	reply_fmt(r, "],\"shown\":%lu", (unsigned long)shown);
	/* the shim's data is scanned as roots: leave no address behind */
	memset(blocks, 0, n * sizeof(*blocks));
	memset(bytes, 0, n * each);
	return 0;
}

/* Addresses are hexadecimal (0x optional), as gcctl and every tool print
 * them.  Several per argument, split by commas. */
static bool parse_addr(const char *s, size_t len, uintptr_t *out)
{
	uintptr_t v = 0;
	size_t i = 0;

	if (len > 2 && s[0] == '0' && (s[1] == 'x' || s[1] == 'X'))
		i = 2;
	if (i == len || len - i > 16)
		return false;
	for (; i < len; i++) {
		char c = s[i];
		unsigned d = c >= '0' && c <= '9' ? (unsigned)(c - '0') :
			     c >= 'a' && c <= 'f' ? (unsigned)(c - 'a' + 10) :
			     c >= 'A' && c <= 'F' ? (unsigned)(c - 'A' + 10) : 16u;

		if (d == 16)
			return false;
		v = v << 4 | d;
	}
	*out = v;
	return true;
}

static int parse_addrs(struct reply *r, char **argv, int argc, uintptr_t *out, size_t *n)
{
	*n = 0;
	for (int i = 1; i < argc; i++) {
		for (const char *s = argv[i]; *s;) {
			size_t len = strcspn(s, ",");

			if (*n == INSP_MAX_TARGETS)
				return fail_usage(r, "too many addresses (at most %d)", INSP_MAX_TARGETS);
			if (!parse_addr(s, len, &out[*n]))
				return fail_usage(r, "bad address '%s': expected hexadecimal, like 0x7f12a4c0", argv[i]);
			(*n)++;
			s += len;
			if (*s == ',')
				s++;
		}
	}
	return 0;
}

static void block_json(struct reply *r, const struct gcshim_block *b)
{
	reply_fmt(r, "\"address\":\"%p\",\"size\":%lu,\"generation\":%d", b->start,
		  (unsigned long)b->size, b->generation);
	if (b->requested)
		reply_fmt(r, ",\"requested\":%lu", (unsigned long)b->requested);
	if (b->frozen)
		LIT(r, ",\"frozen\":true");
	if (b->site) {
		const uintptr_t *frames;
		size_t n = sites_frames(b->site, &frames);

		LIT(r, ",\"site\":[");
		for (size_t i = 0; i < n; i++)
			reply_fmt(r, "%s\"%p\"", i ? "," : "", (void *)frames[i]);
		LIT(r, "]");
	}
}

static int cmd_is_tracked(struct reply *r, char **argv, int argc)
{
	struct gcshim_block b;
	uintptr_t p[INSP_MAX_TARGETS];   /* "A,B,..." parses before it is refused */
	size_t n;

	if (parse_addrs(r, argv, argc, p, &n) < 0)
		return -1;
	if (n != 1)
		return fail_usage(r, "usage: is-tracked ADDR");
	ok(r);
	if (!insp_is_tracked(p[0], &b)) {
		LIT(r, ",\"tracked\":false");
		return 0;
	}
	LIT(r, ",\"tracked\":true,");
	block_json(r, &b);
	reply_fmt(r, ",\"offset\":%lu", (unsigned long)(p[0] - (uintptr_t)b.start));
	return 0;
}

struct listing {
	struct reply *r;
	size_t shown;
};

static void list_block(const struct gcshim_block *b, void *arg)
{
	struct listing *l = arg;

	if (l->r->len + SHOWN_ROOM >= l->r->cap)
		return;
	if (l->shown++)
		LIT(l->r, ",");
	LIT(l->r, "{");
	block_json(l->r, b);
	LIT(l->r, "}");
}

static void list_referrer(const struct gcshim_referrer *f, void *arg)
{
	struct listing *l = arg;
	struct reply *r = l->r;

	if (r->len + SHOWN_ROOM >= r->cap)
		return;
	reply_fmt(r, "%s{\"kind\":\"%s\",\"where\":\"%p\",\"target\":\"%p\"",
		  l->shown++ ? "," : "", ref_kinds[f->kind], f->where, f->target);
	switch (f->kind) {
	case GCSHIM_REF_BLOCK:
		reply_fmt(r, ",\"block\":\"%p\",\"size\":%lu,\"offset\":%lu", f->block,
			  (unsigned long)f->size,
			  (unsigned long)((uintptr_t)f->where - (uintptr_t)f->block));
		break;
	case GCSHIM_REF_STACK:
		reply_fmt(r, ",\"tid\":%d", f->tid);
		break;
	case GCSHIM_REF_DATA:
		LIT(r, ",\"path\":");
		reply_str(r, f->path);
		reply_fmt(r, ",\"offset\":%lu", (unsigned long)f->offset);
		break;
	case GCSHIM_REF_MMAP:
		if (f->path[0]) {
			LIT(r, ",\"path\":");
			reply_str(r, f->path);
		}
		break;
	}
	if (f->kind != GCSHIM_REF_BLOCK)
		reply_fmt(r, ",\"start\":\"%p\",\"end\":\"%p\"", f->region_start, f->region_end);
	LIT(r, "}");
}

/* get-referents and get-referrers share their reply: a list under key,
 * how many were found and how many are shown. */
static int related_begin(struct reply *r, char **argv, int argc, const char *key,
			 uintptr_t *p, size_t *n)
{
	if (parse_addrs(r, argv, argc, p, n) < 0)
		return -1;
	ok(r);
	reply_fmt(r, ",\"%s\":[", key);
	return 0;
}

static int related_end(struct reply *r, long found, const struct listing *l)
{
	if (found < 0) {
		errno = EAGAIN;   /* the only way a query fails: the world did not stop */
		return fail_collection(r, "", "");
	}
	reply_fmt(r, "],\"count\":%ld,\"shown\":%lu", found, (unsigned long)l->shown);
	return 0;
}

static int cmd_get_referents(struct reply *r, char **argv, int argc)
{
	uintptr_t p[INSP_MAX_TARGETS];
	struct listing l = { r, 0 };
	size_t n;

	if (related_begin(r, argv, argc, "referents", p, &n) < 0)
		return -1;
	return related_end(r, insp_referents(p, n, true, 0, list_block, &l), &l);
}

static int cmd_get_referrers(struct reply *r, char **argv, int argc)
{
	uintptr_t p[INSP_MAX_TARGETS];
	struct listing l = { r, 0 };
	size_t n;

	if (related_begin(r, argv, argc, "referrers", p, &n) < 0)
		return -1;
	return related_end(r, insp_referrers(p, n, true, 0, list_referrer, &l), &l);
}

/* Blocks per size class, for --summary: one pass over the side tables. */
#define SUMMARY_SITES 4096   /* distinct sites counted; more go under site 0 */
#define SUMMARY_SHOWN 32     /* sites listed, largest first */

/* requested: what the program asked for, the usable size of the unsized
 * blocks (allocated while requests were not recorded) included. */
struct site_total {
	uint32_t site;
	long count, bytes, requested, unsized;
};

/* Open addressing on the site number; the table is the control thread's. */
static struct site_total *site_slot(struct site_total *t, uint32_t site)
{
	for (uint32_t i = site * 2654435761u % SUMMARY_SITES, n = 0; n < SUMMARY_SITES;
	     i = (i + 1) % SUMMARY_SITES, n++)
		if (t[i].site == site || !t[i].count)
			return &t[i];
	return NULL;
}

static void add_site(struct site_total *t, const struct gcshim_block *b)
{
	struct site_total *s = site_slot(t, b->site);

	if (!s)
		s = site_slot(t, 0);
	if (!s)
		return;
	s->site = s->count ? s->site : b->site;
	s->count++;
	s->bytes += (long)b->size;
	s->requested += (long)(b->requested ? b->requested : b->size);
	s->unsized += !b->requested;
}

/* The largest sites by bytes, with their frames. */
static void list_sites(struct reply *r, struct site_total *t)
{
	LIT(r, ",\"sites\":[");
	for (int shown = 0; shown < SUMMARY_SHOWN; shown++) {
		struct site_total *best = NULL;
		const uintptr_t *frames;
		size_t n;

		for (size_t i = 0; i < SUMMARY_SITES; i++)
			if (t[i].count && (!best || t[i].bytes > best->bytes))
				best = &t[i];
		if (!best)
			break;
		n = best->site ? sites_frames(best->site, &frames) : 0;
		reply_fmt(r, "%s{\"count\":%ld,\"bytes\":%ld,\"requested\":%ld,\"unsized\":%ld,"
			  "\"frames\":[", shown ? "," : "", best->count, best->bytes, best->requested,
			  best->unsized);
		for (size_t f = 0; f < n; f++)
			reply_fmt(r, "%s\"%p\"", f ? "," : "", (void *)frames[f]);
		LIT(r, "]}");
		best->count = 0;
	}
	LIT(r, "]");
}

/* Blocks per size class and per allocation site: one pass over the side
 * tables.  Blocks allocated without a recorded site share one group. */
static int objects_summary(struct reply *r, int gen, size_t min_size)
{
	static long count[256], bytes[256];
	static struct site_total sites[SUMMARY_SITES];
	struct gcshim_block b[256];
	uintptr_t cursor = 0;
	long total = 0, total_bytes = 0, total_requested = 0, unsized = 0;
	size_t n;
	bool first = true;

	memset(count, 0, sizeof(count));
	memset(bytes, 0, sizeof(bytes));
	memset(sites, 0, sizeof(sites));
	while ((n = insp_objects(&cursor, gen, min_size, b, 256)))
		for (size_t i = 0; i < n; i++) {
			unsigned c = sc_index(b[i].size) & 255;

			count[c]++;
			bytes[c] += (long)b[i].size;
			add_site(sites, &b[i]);
			total++;
			total_bytes += (long)b[i].size;
			total_requested += (long)(b[i].requested ? b[i].requested : b[i].size);
			unsized += !b[i].requested;
		}
	ok(r);
	LIT(r, ",\"done\":true,\"classes\":[");
	for (unsigned c = 0; c < 256; c++) {
		if (!count[c])
			continue;
		reply_fmt(r, "%s{\"size\":%lu,\"count\":%ld,\"bytes\":%ld}", first ? "" : ",",
			  (unsigned long)sc_sizes[c], count[c], bytes[c]);
		first = false;
	}
	LIT(r, "]");
	list_sites(r, sites);
	reply_fmt(r, ",\"count\":%ld,\"bytes\":%ld,\"requested\":%ld,\"unsized\":%ld", total,
		  total_bytes, total_requested, unsized);
	return 0;
}

/* One line of a get-objects stream: as many blocks as fit, then "more"
 * or, with the last ones, "done" and the totals. */
static void objects_chunk(struct reply *r, struct proto_stream *st)
{
	struct gcshim_block b[64];
	bool first = true;

	ok(r);
	LIT(r, ",\"objects\":[");
	for (;;) {
		size_t n, i;

		if (r->len + 64 * 128 + SHOWN_ROOM >= r->cap) {
			LIT(r, "],\"more\":true");
			return;
		}
		n = insp_objects(&st->cursor, st->generation, st->min_size, b, 64);
		if (!n)
			break;
		for (i = 0; i < n; i++) {
			if (!first)
				LIT(r, ",");
			LIT(r, "{");
			first = false;
			block_json(r, &b[i]);
			LIT(r, "}");
			st->count++;
			st->bytes += (long)b[i].size;
		}
	}
	reply_fmt(r, "],\"done\":true,\"count\":%ld,\"bytes\":%ld", st->count, st->bytes);
	st->active = false;
}

static int cmd_get_objects(struct reply *r, char **argv, int argc)
{
	struct proto_stream st = { .generation = -1 };
	bool summary = false;
	int64_t v;

	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--summary")) {
			summary = true;
		} else if (!strcmp(argv[i], "--generation") && i + 1 < argc) {
			if (!parse_int(argv[++i], &v) || v < 0 || v > 2)
				return fail_usage(r, "invalid generation '%s' (must be 0, 1 or 2)", argv[i]);
			st.generation = (int)v;
		} else if (!strcmp(argv[i], "--min-size") && i + 1 < argc) {
			if (!parse_size(argv[++i], &v) || v < 0)
				return fail_usage(r, "bad size '%s': expected bytes (like 4K)", argv[i]);
			st.min_size = (size_t)v;
		} else {
			return fail_usage(r, "usage: get-objects [--generation G] [--min-size BYTES] [--summary]");
		}
	}
	if (summary)
		return objects_summary(r, st.generation, st.min_size);
	st.active = true;
	objects_chunk(r, &st);
	current->stream = st;
	return 0;
}

size_t proto_stream_next(struct proto_session *s, char *out, size_t cap)
{
	struct reply r = { out, cap, 0 };

	if (!s->stream.active)
		return 0;
	objects_chunk(&r, &s->stream);
	reply_raw(&r, "}\n", 2);
	if (r.len >= cap) {   /* cannot happen: a chunk leaves room */
		s->stream.active = false;
		r.len = 0;
		fail(&r, "reply too large");
		reply_raw(&r, "\n", 1);
	}
	out[r.len < cap ? r.len : cap - 1] = '\0';
	return r.len;
}

static int cmd_freeze(struct reply *r, char **argv, int argc)
{
	long n;

	n = insp_freeze();
	ok(r);
	reply_fmt(r, ",\"frozen\":%ld", n);
	return 0;
}

static int cmd_unfreeze(struct reply *r, char **argv, int argc)
{
	long n;

	n = insp_unfreeze();
	ok(r);
	reply_fmt(r, ",\"unfrozen\":%ld", n);
	return 0;
}

static int cmd_get_freeze_count(struct reply *r, char **argv, int argc)
{
	ok(r);
	reply_fmt(r, ",\"freeze_count\":%ld", insp_freeze_count());
	return 0;
}

/* The control thread sees the flag and turns the connection into a
 * stream of events. */
static int cmd_watch(struct reply *r, char **argv, int argc)
{
	current->watch = true;
	ok(r);
	LIT(r, ",\"watching\":true");
	return 0;
}

/* ---- allocation sites and leak reports ---- */

#define LEAKS_RESERVE 2048   /* room kept for the closing members */

struct leaks_reply {
	struct reply *r;
	size_t shown, groups;
};

static void totals_json(const struct leak_totals *t, void *arg)
{
	struct leaks_reply *lr = arg;

	lr->groups = t->ngroups;
	reply_fmt(lr->r, ",\"pid\":%d,\"backtrace\":%d,\"sizes\":%s,\"direct_blocks\":%ld,"
		  "\"direct_bytes\":%ld,\"indirect_blocks\":%ld,\"indirect_bytes\":%ld,\"sites\":[",
		  (int)getpid(), sites_depth(), sites_sizes_recorded() ? "true" : "false",
		  (long)t->count[0], (long)t->bytes[0], (long)t->count[1], (long)t->bytes[1]);
}

static const char *const stack_names[] = { "recorded", "not_sampled", "before_recording", "off" };

static bool group_json(const struct leak_group *g, void *arg)
{
	struct leaks_reply *lr = arg;
	struct reply *r = lr->r;
	const uintptr_t *f = NULL;
	size_t depth = sites_frames(g->site, &f);

	if (r->len + LEAKS_RESERVE >= r->cap)
		return false;
	reply_fmt(r, "%s{\"kind\":\"%s\",\"bytes\":%ld,\"count\":%ld,\"size_class\":%s,"
		  "\"stack\":\"%s\",\"site\":%u,\"frames\":[", lr->shown++ ? "," : "",
		  g->indirect ? "indirect" : "direct", (long)g->bytes, (long)g->count,
		  g->unsized ? "true" : "false", stack_names[leaks_stack(g)], g->site);
	for (size_t i = 0; i < depth; i++)
		reply_fmt(r, "%s\"%p\"", i ? "," : "", (void *)f[i]);
	reply_raw(r, "]}", 2);
	return true;
}

#define LEAKS_KEEP 4096

/* "--keep SITE,SITE...": the sites of suppressed leaks, whose blocks and
 * what they lead to are not leaks; -1 when malformed. */
static long parse_keep(char **argv, int argc, uint32_t *keep)
{
	long n = 0;
	int64_t v;

	if (argc == 1)
		return 0;
	if (argc != 3 || strcmp(argv[1], "--keep"))
		return -1;
	for (char *s = argv[2], *next; *s && n < LEAKS_KEEP; s = next) {
		next = s + strcspn(s, ",");
		if (*next)
			*next++ = '\0';
		if (!parse_int(s, &v) || v < 1 || v > SITES_MAX)
			return -1;
		keep[n++] = (uint32_t)v;
	}
	return n;
}

static int cmd_leaks(struct reply *r, char **argv, int argc)
{
	static uint32_t keep[LEAKS_KEEP];
	struct leaks_reply lr = { .r = r };
	struct leak_sink sink = { totals_json, group_json, &lr };
	long nkeep = parse_keep(argv, argc, keep);

	if (nkeep < 0)
		return fail(r, "usage: leaks [--keep SITE[,SITE...]] (sites from 1 to %u)", SITES_MAX);
	ok(r);
	if (leaks_report(&sink, keep, (size_t)nkeep) == 0) {
		reply_fmt(r, "],\"groups\":%lu,\"truncated\":%s", (unsigned long)lr.groups,
			  lr.shown < lr.groups ? "true" : "false");
		return 0;
	}
	return fail_collection(r, "leak check failed: ", "");
}

static int cmd_backtrace(struct reply *r, char **argv, int argc)
{
	int64_t v = -1;
	int old = sites_depth();

	if (argc > 1 && !strcmp(argv[1], "off"))
		v = 0;
	else if (argc > 1 && (!parse_int(argv[1], &v) || v < 0 || v > SITES_MAX_DEPTH))
		return fail_usage(r, "bad depth '%s': expected frames from 1 to %d, or off", argv[1],
			    SITES_MAX_DEPTH);
	if (v >= 0 && sites_set_depth((int)v) < 0)
		return fail(r, "allocation sites cannot be recorded: libunwind cannot be loaded");
	ok(r);
	reply_fmt(r, ",\"backtrace\":%d,\"sizes\":%s", sites_depth(),
		  sites_sizes_recorded() ? "true" : "false");
	if (v >= 0)
		reply_fmt(r, ",\"previous_backtrace\":%d", old);
	return 0;
}

typedef int (*handler)(struct reply *, char **, int);

/* The handler of each verb of proto_desc.h; the table there gives the
 * number of arguments and the usage line. */
static const handler handlers[PROTO_VERB_COUNT] = {
	[PROTO_HELLO] = cmd_hello,
	[PROTO_MEM_ALLOC] = cmd_mem_alloc,
	[PROTO_MEM_FREE] = cmd_mem_free,
	[PROTO_ENABLE] = cmd_enable,
	[PROTO_DISABLE] = cmd_disable,
	[PROTO_ISENABLED] = cmd_isenabled,
	[PROTO_THRESHOLD] = cmd_threshold,
	[PROTO_GROWTH] = cmd_growth,
	[PROTO_SET_THRESHOLD] = cmd_set_threshold,
	[PROTO_GET_THRESHOLD] = cmd_get_threshold,
	[PROTO_GET_COUNT] = cmd_get_count,
	[PROTO_SET_DEBUG] = cmd_set_debug,
	[PROTO_GET_DEBUG] = cmd_get_debug,
	[PROTO_STATS] = cmd_stats,
	[PROTO_COLLECT] = cmd_collect,
	[PROTO_GET_STATS] = cmd_get_stats,
	[PROTO_GARBAGE] = cmd_garbage,
	[PROTO_IS_TRACKED] = cmd_is_tracked,
	[PROTO_GET_REFERENTS] = cmd_get_referents,
	[PROTO_GET_REFERRERS] = cmd_get_referrers,
	[PROTO_GET_OBJECTS] = cmd_get_objects,
	[PROTO_FREEZE] = cmd_freeze,
	[PROTO_UNFREEZE] = cmd_unfreeze,
	[PROTO_GET_FREEZE_COUNT] = cmd_get_freeze_count,
	[PROTO_WATCH] = cmd_watch,
	[PROTO_LEAKS] = cmd_leaks,
	[PROTO_BACKTRACE] = cmd_backtrace,
};

static int split(char *line, char **argv)
{
	int argc = 0;

	for (char *s = strtok_r(line, " \t", &line); s; s = strtok_r(NULL, " \t", &line)) {
		if (argc == PROTO_MAX_ARGS)
			return -1;
		argv[argc++] = s;
	}
	return argc;
}

/* A trailing CR (a client sending CRLF) is dropped; any other control
 * byte makes the request invalid. */
static bool printable(char *s)
{
	size_t n = strlen(s);

	if (n && s[n - 1] == '\r')
		s[--n] = '\0';
	for (; *s; s++)
		if (((unsigned char)*s < 0x20 && *s != '\t') || *s == 0x7f)
			return false;
	return true;
}

static int dispatch(struct proto_session *s, struct reply *r, char *line)
{
	char *argv[PROTO_MAX_ARGS];
	const struct proto_verb_desc *d;
	enum proto_verb verb;
	int argc;

	if (!printable(line))
		return fail(r, "request contains control characters");
	argc = split(line, argv);
	if (argc < 0)
		return fail_usage(r, "too many arguments");
	if (argc == 0)
		return fail_usage(r, "empty request");
	proto_verb_normalize(argv[0]);
	current = s;
	verb = proto_verb_find(argv[0]);
	if (!s->greeted && verb != PROTO_HELLO)
		return fail(r, "expected 'hello %d' first", PROTO_VERSION);
	if (verb == PROTO_UNKNOWN)
		return fail_usage(r, "unknown request '%s'", argv[0]);
	d = &proto_verbs[verb];
	if (argc - 1 < d->min_args || argc - 1 > d->max_args)
		return fail_usage(r, "usage: %s%s%s", d->name, *d->args ? " " : "", d->args);
	if (handlers[verb](r, argv, argc) < 0)
		return -1;
	if (verb == PROTO_HELLO)
		s->greeted = true;
	return 0;
}

/* Returns the length of the reply, newline included. */
size_t proto_handle(struct proto_session *s, char *line, char *out, size_t cap)
{
	struct reply r = { out, cap, 0 };

	if (dispatch(s, &r, line) < 0)
		stat_inc(EV_ctl_bad_requests);
	else
		reply_raw(&r, "}", 1);
	if (r.len + 2 > cap) {
		r.len = 0;
		fail(&r, "reply too large");
	}
	reply_raw(&r, "\n", 1);
	if (r.len >= cap)
		r.len = cap ? cap - 1 : 0;
	if (cap)
		out[r.len] = '\0';
	return r.len;
}
