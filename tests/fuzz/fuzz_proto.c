/* libFuzzer harness for the control protocol: the request parser and
 * dispatcher (lib/proto.c) on top of the whole shim, linked in with its
 * malloc family renamed (tests/fuzz/shim.syms): the harness and the fuzzer
 * allocate from AddressSanitizer's heap, and a small graph of blocks made
 * through the renamed entry points is the shim's heap that every verb
 * inspects, collects and reports.  "@D" in a request (D a digit) is the
 * address of graph block D, so that addressed verbs reach live blocks.
 *
 * An input is one connection: its bytes are cut into lines as the control
 * thread cuts them (a line ends at '\n', the request at its first NUL, a
 * request of PROTO_MAX_REQUEST bytes without an end closes the
 * connection), a streamed reply is read to its end, and `watch` ends the
 * requests as it does on a socket.  Every reply must be one line holding
 * one JSON object with an "ok" member, within the reply buffer.  After
 * each input the settings a request can change are put back, so that one
 * input's `threshold 1` does not slow down all the others. */
#define _GNU_SOURCE
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "gcshim.h"
#include "inspect.h"
#include "json.h"
#include "proto.h"

void *fuzz_shim_malloc(size_t n);
void fuzz_shim_free(void *p);

#define GRAPH 10                /* blocks addressed by "@0".."@9" */
#define REPLY_MAX (64 * 1024)   /* the control thread's reply buffer */
#define STREAM_LINES 100000     /* a get-objects stream longer than this never ends */

static char reply[REPLY_MAX];

/* A chain: each block points at the next, the first is held here. */
static void **graph[GRAPH];
static int64_t graph_bytes;

static void build_graph(void)
{
	for (int i = GRAPH - 1; i >= 0; i--) {
		graph[i] = fuzz_shim_malloc(16 + (size_t)i * 40);
		graph[i][0] = i + 1 < GRAPH ? graph[i + 1] : NULL;
		graph[i][1] = (void *)(uintptr_t)0x4444444444444444u;
	}
	graph_bytes = gcshim_mem_alloc();
}

/* Two blocks nothing points to, for collect, garbage and leaks to find,
 * whenever collections freed the last ones: the heap stays bounded. */
static void leave_garbage(void)
{
	if (gcshim_mem_alloc() > graph_bytes + 1024)
		return;
	for (int i = 0; i < 2; i++)
		memset(fuzz_shim_malloc(64), 0x5a, 64);
}

/* Copies a request, "@D" replaced by a graph block's address. */
static void expand(char *out, size_t cap, const uint8_t *in, size_t len)
{
	size_t o = 0;

	for (size_t i = 0; i < len && o + 1 < cap; i++) {
		if (in[i] == '@' && i + 1 < len && in[i + 1] >= '0' && in[i + 1] <= '9') {
			int n = snprintf(out + o, cap - o, "%p", (void *)graph[in[++i] - '0']);

			o += n > 0 && (size_t)n < cap - o ? (size_t)n : 0;
			continue;
		}
		out[o++] = (char)in[i];
	}
	out[o] = '\0';
}

static void check_reply(const char *what, size_t n)
{
	char err[128];
	struct json *v;

	if (n == 0 || n >= sizeof(reply) || reply[n] != '\0' || strlen(reply) != n ||
	    reply[n - 1] != '\n' || memchr(reply, '\n', n - 1)) {
		fprintf(stderr, "after %s: malformed reply of %zu bytes: %.200s\n", what, n, reply);
		abort();
	}
	v = json_parse(reply, n, err, sizeof(err));
	if (!v || v->type != JSON_OBJECT || !json_get(v, "ok")) {
		fprintf(stderr, "after %s: reply is not a JSON object with \"ok\" (%s): %.300s\n",
			what, v ? "no ok" : err, reply);
		abort();
	}
	json_free(v);
}

static void drain_stream(struct proto_session *s)
{
	for (long i = 0; s->stream.active; i++) {
		if (i == STREAM_LINES) {
			fprintf(stderr, "a get-objects stream did not end after %d lines\n", STREAM_LINES);
			abort();
		}
		check_reply("a streamed line", proto_stream_next(s, reply, sizeof(reply)));
	}
}

static void request(struct proto_session *s, const char *text)
{
	char line[PROTO_MAX_REQUEST + 1];

	snprintf(line, sizeof(line), "%s", text);
	check_reply(text, proto_handle(s, line, reply, sizeof(reply)));
	drain_stream(s);
}

/* What any request may have changed in the process, back to the defaults
 * the harness runs with. */
static void restore_settings(void)
{
	static const char *const reset[] = {
		"hello 1", "enable", "threshold -1", "set-threshold 0 10 10", "set-debug 0",
		"garbage free",
	};
	struct proto_session s = { 0 };

	for (size_t i = 0; i < sizeof(reset) / sizeof(*reset); i++)
		request(&s, reset[i]);
	if (insp_freeze_count())   /* a walk of the whole heap: only when needed */
		request(&s, "unfreeze");
	leave_garbage();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct proto_session s = { 0 };
	char line[PROTO_MAX_REQUEST + 1];

	while (size && !s.watch) {
		const uint8_t *nl = memchr(data, '\n', size);
		size_t len = nl ? (size_t)(nl - data) : size;

		if (len >= PROTO_MAX_REQUEST)
			break;
		expand(line, sizeof(line), data, len);
		check_reply("a request", proto_handle(&s, line, reply, sizeof(reply)));
		drain_stream(&s);
		data += nl ? len + 1 : len;
		size -= nl ? len + 1 : len;
	}
	restore_settings();
	return 0;
}

/* The shim reads its options before main: the harness starts again with
 * its own when they are not set.  No control thread (nothing but the
 * fuzzer may talk to the shim), and the roots the collector scans limited
 * to data, stacks and TLS: the sanitizers reserve terabytes of shadow. */
int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	if (getenv("GCSHIM_SOCKET")) {
		build_graph();
		leave_garbage();
		return 0;
	}
	setenv("GCSHIM_SOCKET", "0", 1);
	setenv("GCSHIM_ROOTS", "minimal", 0);
	execv("/proc/self/exe", *argv);
	perror("execv /proc/self/exe");
	exit(1);
}
