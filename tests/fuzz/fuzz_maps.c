/* libFuzzer harness for the /proc/PID/maps line parser
 * (lib/platform/maps.c), which the collector runs over the listing of
 * the process's mappings before every collection and inspection.  Two
 * uses of each input:
 *   - as a listing, up to its first NUL, in a buffer of exactly its size:
 *     each line either is refused or gives a mapping with start < end,
 *     four permission characters and a path inside the line, and the
 *     next line starts right after it; a mapping printed back as the
 *     kernel prints it parses to the same mapping;
 *   - as the numbers, permissions and paths of mappings, printed as the
 *     kernel prints them (lib/platform/maps.h): every such line parses,
 *     to exactly what was printed. */
#define _GNU_SOURCE
#include <inttypes.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "maps.h"

#define LINE_MAX_LEN 4200   /* a path of up to PATH_MAX, and the fields */
#define GENERATED 4         /* lines printed per input */
#define MADE_PATH_MAX 256   /* longer ones take time and reach no other code */

static void fail(const char *line, const char *fmt, ...)
	__attribute__((format(printf, 2, 3), noreturn));

static void fail(const char *line, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, "\nline: \"%.*s\"\n", (int)strcspn(line, "\n"), line);
	abort();
}

static size_t path_len(const char *p)
{
	return strcspn(p, "\n");
}

/* As show_map_vma() prints it: the fields, then blanks up to column 73
 * and the path, or a blank and nothing for anonymous memory. */
static int print_line(char *out, size_t cap, uintptr_t start, uintptr_t end, const char *perms,
		      uintptr_t offset, unsigned major, unsigned minor, uint64_t inode,
		      const char *path, size_t plen)
{
	int n = snprintf(out, cap, "%08" PRIxPTR "-%08" PRIxPTR " %.4s %08" PRIxPTR
			 " %02x:%02x %" PRIu64 " ", start, end, perms, offset, major, minor, inode);

	if (plen)
		n += snprintf(out + n, cap - (size_t)n, "%*s%.*s", n < 73 ? 73 - n : 0, "",
			      (int)plen, path);
	n += snprintf(out + n, cap - (size_t)n, "\n");
	return n;
}

static void expect_same(const char *line, const struct mapping *got, uintptr_t start,
			uintptr_t end, const char *perms, uintptr_t offset, const char *path,
			size_t plen)
{
	if (got->start != start || got->end != end || got->offset != offset ||
	    memcmp(got->perms, perms, 5) || path_len(got->path) != plen ||
	    memcmp(got->path, path, plen))
		fail(line, "parsed as %" PRIxPTR "-%" PRIxPTR " %s %" PRIxPTR " \"%.*s\", printed "
		     "from %" PRIxPTR "-%" PRIxPTR " %s %" PRIxPTR " \"%.*s\"", got->start, got->end,
		     got->perms, got->offset, (int)path_len(got->path), got->path, start, end,
		     perms, offset, (int)plen, path);
}

/* ---- the input as a listing --------------------------------------------- */

static void check_mapping(const char *line, const char *next, const struct mapping *m)
{
	char printed[LINE_MAX_LEN + 128], *copy;
	size_t plen = path_len(m->path);
	struct mapping again;

	if (next <= line || (next[-1] != '\n' && *next))
		fail(line, "the next line does not start after this one");
	if (m->start >= m->end)
		fail(line, "a mapping from %" PRIxPTR " to %" PRIxPTR, m->start, m->end);
	if (strlen(m->perms) != 4 || strpbrk(m->perms, " \n"))
		fail(line, "permissions \"%s\"", m->perms);
	if (m->path <= line || m->path + plen > next || m->path[0] == ' ')
		fail(line, "a path outside the line, or with the blanks before it");
	if (plen > LINE_MAX_LEN)
		return;
	print_line(printed, sizeof(printed), m->start, m->end, m->perms, m->offset, 0xfe, 1, 42,
		   m->path, plen);
	copy = strdup(printed);   /* exactly its size */
	if (maps_parse_line(copy, &again) != copy + strlen(copy))
		fail(copy, "printed back, the mapping no longer parses");
	expect_same(copy, &again, m->start, m->end, m->perms, m->offset, m->path, plen);
	free(copy);
}

static void check_listing(const uint8_t *data, size_t size)
{
	size_t len = strnlen((const char *)data, size);
	char *buf = malloc(len + 1);
	const char *s = buf;

	memcpy(buf, data, len);
	buf[len] = '\0';
	while (*s) {
		struct mapping m;
		const char *next = maps_parse_line(s, &m);

		if (!next) {   /* refused: go on with the line after it */
			s += path_len(s);
			s += *s == '\n';
			continue;
		}
		check_mapping(s, next, &m);
		s = next;
	}
	free(buf);
}

/* ---- the input as fields ------------------------------------------------ */

struct bytes {
	const uint8_t *p;
	size_t n, at;
};

static uint64_t take(struct bytes *b, int nbytes)
{
	uint64_t v = 0;

	for (int i = 0; i < nbytes && b->n; i++, b->at++)
		v = v << 8 | b->p[b->at % b->n];
	return v;
}

/* A path as the kernel shows it: a file's (newlines escaped), a special
 * mapping's, or none. */
static size_t make_path(struct bytes *b, char *out, size_t cap)
{
	static const char *const special[] = {
		"", "[stack]", "[heap]", "[vvar]", "[vdso]", "[vsyscall]", "[anon:jemalloc]",
		"/usr/lib/x86_64-linux-gnu/libc.so.6", "/tmp/a file (deleted)", "/memfd:gc (deleted)",
		"/dev/shm/x\\012y", "/SYSV00000000 (deleted)", "/dev/zero (deleted)",
	};
	unsigned pick = (unsigned)take(b, 1);
	size_t n;

	if (pick % 4) {
		n = strlen(special[pick / 4 % (sizeof(special) / sizeof(*special))]);
		memcpy(out, special[pick / 4 % (sizeof(special) / sizeof(*special))], n);
		return n;
	}
	n = 1 + (size_t)take(b, 2) % (cap - 1);
	out[0] = pick & 4 ? '[' : '/';
	for (size_t i = 1; i < n; i++) {
		char c = (char)take(b, 1);

		out[i] = c == '\n' || c == '\0' ? '_' : c;
	}
	return n;
}

static void check_printed(const uint8_t *data, size_t size)
{
	struct bytes b = { data, size, 0 };
	char line[LINE_MAX_LEN + 128], path[MADE_PATH_MAX], perms[5];

	for (int i = 0; i < GENERATED && size; i++) {
		uintptr_t start = (uintptr_t)take(&b, 8) >> (take(&b, 1) % 64);
		uintptr_t span = ((uintptr_t)take(&b, 8) >> (take(&b, 1) % 64)) | 1;
		uintptr_t offset = (uintptr_t)take(&b, 8) >> (take(&b, 1) % 64);
		unsigned bits = (unsigned)take(&b, 1), major = (unsigned)take(&b, 2) % 4096,
			 minor = (unsigned)take(&b, 3) % (1u << 20);
		uint64_t inode = take(&b, 8);
		size_t plen = make_path(&b, path, sizeof(path));
		struct mapping m;
		char *copy;

		if (start > UINTPTR_MAX - span)
			start = UINTPTR_MAX - span;
		snprintf(perms, sizeof(perms), "%c%c%c%c", bits & 1 ? 'r' : '-',
			 bits & 2 ? 'w' : '-', bits & 4 ? 'x' : '-', bits & 8 ? 's' : 'p');
		print_line(line, sizeof(line), start, start + span, perms, offset, major, minor,
			   inode, path, plen);
		copy = strdup(line);
		if (maps_parse_line(copy, &m) != copy + strlen(copy))
			fail(copy, "a line printed as the kernel prints it does not parse");
		expect_same(copy, &m, start, start + span, perms, offset, path, plen);
		free(copy);
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	check_listing(data, size);
	check_printed(data, size);
	return 0;
}
