/* The tests' own strict JSON reader, independent of the library's writer
 * and of gcctl's jansson: objects, arrays, strings, integers, true, false
 * and null.  Numbers with a fraction or an exponent are refused: the
 * protocol never sends them. */
#ifndef GCCTL_JSON_H
#define GCCTL_JSON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

enum json_type { JSON_NULL, JSON_FALSE, JSON_TRUE, JSON_INT, JSON_STRING,
		 JSON_ARRAY, JSON_OBJECT };

struct json {
	enum json_type type;
	int64_t num;        /* JSON_INT */
	char *str;          /* JSON_STRING, UTF-8, without NUL bytes */
	size_t count;       /* members of a JSON_ARRAY or JSON_OBJECT */
	struct json *items; /* their values */
	char **keys;        /* JSON_OBJECT: their names */
};

/* Parses exactly one value, surrounded by nothing but white space.
 * Returns NULL and a message in err when the text is not such a value. */
struct json *json_parse(const char *text, size_t len, char *err, size_t errcap);
void json_free(struct json *v);

/* The value of the first member called key, or NULL (also for non-objects). */
const struct json *json_get(const struct json *obj, const char *key);

/* True if v exists and is an integer; *out receives it. */
bool json_int(const struct json *v, int64_t *out);

/* s as a JSON string, quotes included; NULL as null. */
void json_put_string(FILE *f, const char *s);

#endif
