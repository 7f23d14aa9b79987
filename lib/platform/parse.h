/* Parsers of option values and protocol arguments, shared by the library
 * and gcctl (lib/parse.c).  Each returns false on bad input and then
 * leaves *out alone.  Blanks around a value are ignored. */
#ifndef GCSHIM_PARSE_H
#define GCSHIM_PARSE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* The kinds of values options take. */
enum opt_kind { OPT_BOOL, OPT_SIZE, OPT_SIZE_OR_OFF, OPT_INT, OPT_FLAGS,
		OPT_TRIPLE, OPT_PATH, OPT_SIGNO, OPT_ROOTSET, OPT_PERCENT_OR_ON };

/* GCSHIM_GROWTH=on: the heap may double over what the last collection
 * left live (chosen with the allocation benchmarks). */
#define GROWTH_DEFAULT 100

bool parse_int(const char *s, int64_t *out);
bool parse_size(const char *s, int64_t *out);
bool parse_size_or_off(const char *s, int64_t *out);
bool parse_bool(const char *s, int64_t *out);
bool parse_flags(const char *s, int64_t *out);
/* "t0[,t1[,t2]]": missing values keep what out already holds. */
bool parse_triple(const char *s, int64_t out[3]);
bool parse_signal(const char *s, int64_t *out);
bool parse_roots(const char *s, int64_t *out);
/* A percent ("100", "100%"), "on" for GROWTH_DEFAULT, or off ("off", "0", "-1": -1). */
bool parse_percent_or_on(const char *s, int64_t *out);

/* A value of any kind but OPT_PATH and OPT_TRIPLE, within [min, max]. */
bool parse_kind(enum opt_kind kind, const char *s, int64_t min, int64_t max, int64_t *out);
/* What a kind accepts, for error messages: "a size (like 512M or 2G)". */
const char *parse_kind_expects(enum opt_kind kind);

/* Edit distance between a[0..na) and b[0..nb), for "did you mean";
 * SIZE_MAX when nb > PARSE_DISTANCE_MAX. */
#define PARSE_DISTANCE_MAX 64
size_t parse_distance(const char *a, size_t na, const char *b, size_t nb);

#endif
