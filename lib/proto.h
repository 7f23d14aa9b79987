/* The control protocol: one request line in, one JSON line out.
 * A connection starts with "hello 1"; see gcshim(7). */
#ifndef GCSHIM_PROTO_H
#define GCSHIM_PROTO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "proto_desc.h"

/* A reply of several lines (get-objects): where the next line resumes. */
struct proto_stream {
	bool active;
	uintptr_t cursor;
	int generation;
	size_t min_size;
	long count, bytes;
};

struct proto_session {
	bool greeted;
	bool watch;               /* asked for `watch`: the server streams events */
	struct proto_stream stream;
};

struct reply {
	char *buf;
	size_t cap, len;
};

size_t proto_handle(struct proto_session *s, char *line, char *out, size_t cap);
/* The next line of a streamed reply; 0 when the session streams nothing. */
size_t proto_stream_next(struct proto_session *s, char *out, size_t cap);
void reply_raw(struct reply *r, const char *s, size_t n);
void reply_fmt(struct reply *r, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void reply_str(struct reply *r, const char *s);

#endif
