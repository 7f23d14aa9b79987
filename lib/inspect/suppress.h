/* Leak suppressions in LeakSanitizer's file format, so that the files
 * users already keep for it work unchanged:
 *
 *     # a comment
 *     leak:libfoo.so          a module path
 *     leak:^parse_config$     a function name, anchored at both ends
 *     leak:third_party        a source file (any part of its path)
 *
 * One "TYPE:PATTERN" per line; blanks around it are ignored.  A pattern
 * matches a frame when it matches the frame's function name, source file
 * or module path: "*" matches any run of characters, a leading "^"
 * anchors it at the start, a trailing "$" at the end, and without
 * anchors it may match anywhere.  Types other than "leak" are other
 * sanitizers' and are skipped; anything else is a malformed line.
 *
 * Used by the library (the exit report) and by gcctl (leaks
 * --suppressions).  Nothing here allocates or reads a file: the parser
 * works on a buffer of any bytes, which the rules then point into. */
#ifndef GCSHIM_SUPPRESS_H
#define GCSHIM_SUPPRESS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct supp_rule {
	const char *pattern;   /* into the parsed buffer; not NUL-terminated */
	size_t len;
	int line;
	int64_t count, bytes;  /* what it suppressed: blocks, requested bytes */
};

struct supp_list {
	struct supp_rule *rules;   /* the caller's array of cap rules */
	size_t n, cap;
};

/* Called once per malformed line, with its number (from 1) and why. */
typedef void (*supp_error_fn)(int line, const char *why, void *arg);

/* Adds the "leak" rules of buf[0..len) to list.  Returns the number of
 * malformed lines (each reported through err, which may be NULL). */
int supp_parse(struct supp_list *list, const char *buf, size_t len, supp_error_fn err,
	       void *arg);

/* Whether pattern[0..plen) matches the NUL-terminated s (NULL and ""
 * never match). */
bool supp_match(const char *pattern, size_t plen, const char *s);

/* The first rule, in file order, that matches one of a frame's names
 * (any of them may be NULL); NULL when none does. */
struct supp_rule *supp_find(const struct supp_list *list, const char *function,
			    const char *file, const char *module);

#endif
