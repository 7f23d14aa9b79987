/*
 * Inspection on a live process: tests/fixtures/insp_heap runs under
 * $GCSHIM_LIB with a private socket directory and a heap of known shape;
 * its control socket is asked, and its own C API checks are run.
 */
#define _GNU_SOURCE
#include <criterion/criterion.h>

#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "json.h"
#include "support.h"

#define WAIT_MS 20000

static char sockdir[64];
static pid_t child = -1;
static int to_child = -1, from_child = -1;
static char inbuf[8192];
static size_t inlen;

/* What the fixture reported at start. */
static struct {
	uintptr_t global, list[3], held, holder, tblock, big;
	unsigned long global_off;
	int tid;
} shape;

static void child_line(char *line, size_t cap)
{
	cr_assert(read_line_fd(from_child, inbuf, &inlen, sizeof(inbuf), line, cap, WAIT_MS),
		  "the fixture said nothing");
}

/* Sends a command to the fixture and returns its answer. */
static char *tell(const char *fmt, ...)
{
	static char line[1024];
	char cmd[256];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(cmd, sizeof(cmd) - 1, fmt, ap);
	va_end(ap);
	cmd[n++] = '\n';
	cr_assert_eq(write(to_child, cmd, (size_t)n), n);
	child_line(line, sizeof(line));
	return line;
}

static void start(void)
{
	int in[2], out[2];
	char line[512];

	strcpy(sockdir, "/tmp/gcshim-insp-XXXXXX");
	cr_assert(mkdtemp(sockdir));
	cr_assert(pipe(in) == 0 && pipe(out) == 0);
	child = fork();
	cr_assert(child >= 0);
	if (child == 0) {
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		dup2(in[0], 0);
		dup2(out[1], 1);
		close(in[1]);
		close(out[0]);
		setenv("LD_PRELOAD", getenv("GCSHIM_LIB"), 1);
		setenv("GCSHIM_SOCKET_DIR", sockdir, 1);
		setenv("GCSHIM_GEN_THRESHOLD", "0", 1);   /* collections only when asked */
		execl(build_path("tests/fixtures/insp_heap"), "insp_heap", (char *)NULL);
		_exit(127);
	}
	close(in[0]);
	close(out[1]);
	to_child = in[1];
	from_child = out[0];
	child_line(line, sizeof(line));
	cr_assert(!strncmp(line, "ready ", 6), "%s", line);
	child_line(line, sizeof(line));
	cr_assert(sscanf(line, "global %lx %lu", &shape.global, &shape.global_off) == 2, "%s", line);
	child_line(line, sizeof(line));
	cr_assert(sscanf(line, "list %lx %lx %lx", &shape.list[0], &shape.list[1], &shape.list[2]) == 3);
	child_line(line, sizeof(line));
	cr_assert(sscanf(line, "held %lx %lx", &shape.held, &shape.holder) == 2);
	child_line(line, sizeof(line));
	cr_assert(sscanf(line, "thread %d %lx", &shape.tid, &shape.tblock) == 2);
	child_line(line, sizeof(line));
	cr_assert(sscanf(line, "big %lx", &shape.big) == 1);
}

static void stop(void)
{
	char cmd[128];

	if (child > 0) {
		kill(child, SIGKILL);
		waitpid(child, NULL, 0);
	}
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", sockdir);
	system(cmd);
}

TestSuite(inspect, .init = start, .fini = stop, .timeout = 120);

/* ---- the control socket ------------------------------------------------------ */

struct conn {
	int fd;
	char buf[1 << 17];
	size_t len;
};

static struct conn *conn_open(void)
{
	struct sockaddr_un addr = { .sun_family = AF_UNIX };
	struct conn *c = calloc(1, sizeof(*c));
	char line[256];

	snprintf(addr.sun_path, sizeof(addr.sun_path), "%s/%d.sock", sockdir, (int)child);
	c->fd = socket(AF_UNIX, SOCK_STREAM, 0);
	for (int i = 0; i < 200; i++) {
		if (connect(c->fd, (struct sockaddr *)&addr, sizeof(addr)) == 0)
			break;
		cr_assert(i < 199, "cannot connect to %s: %s", addr.sun_path, strerror(errno));
		poll(NULL, 0, 20);
	}
	cr_assert_eq(write(c->fd, "hello 1\n", 8), 8);
	cr_assert(read_line_fd(c->fd, c->buf, &c->len, sizeof(c->buf), line, sizeof(line), WAIT_MS));
	cr_assert(strstr(line, "\"ok\":true"), "%s", line);
	return c;
}

static void conn_close(struct conn *c)
{
	close(c->fd);
	free(c);
}

static struct json *conn_next(struct conn *c, int timeout_ms)
{
	static char line[1 << 17];
	char err[128];
	struct json *r;

	if (!read_line_fd(c->fd, c->buf, &c->len, sizeof(c->buf), line, sizeof(line), timeout_ms))
		return NULL;
	r = json_parse(line, strlen(line), err, sizeof(err));
	cr_assert(r, "not JSON (%s): %.200s", err, line);
	return r;
}

static struct json *ask(struct conn *c, const char *fmt, ...)
{
	char req[1024];
	va_list ap;
	int n;
	struct json *r;

	va_start(ap, fmt);
	n = vsnprintf(req, sizeof(req) - 1, fmt, ap);
	va_end(ap);
	req[n++] = '\n';
	cr_assert_eq(write(c->fd, req, (size_t)n), n);
	r = conn_next(c, WAIT_MS);
	cr_assert(r, "no answer to %s", req);
	return r;
}

static struct json *ask_once(const char *fmt, const char *arg)
{
	struct conn *c = conn_open();
	struct json *r = ask(c, fmt, arg);

	conn_close(c);
	return r;
}

static bool ok(const struct json *r)
{
	const struct json *v = json_get(r, "ok");

	return v && v->type == JSON_TRUE;
}

static bool is_true(const struct json *r, const char *key)
{
	const struct json *v = json_get(r, key);

	return v && v->type == JSON_TRUE;
}

static int64_t num(const struct json *r, const char *key)
{
	int64_t v = -1;

	json_int(json_get(r, key), &v);
	return v;
}

static uintptr_t addr(const struct json *r, const char *key)
{
	const struct json *v = json_get(r, key);

	return v && v->type == JSON_STRING ? (uintptr_t)strtoul(v->str, NULL, 16) : 0;
}

static const char *str(const struct json *r, const char *key)
{
	const struct json *v = json_get(r, key);

	return v && v->type == JSON_STRING ? v->str : "";
}

static char hexbuf[8][32];
static int hexnext;

static const char *hex(uintptr_t a)
{
	char *p = hexbuf[hexnext++ % 8];

	snprintf(p, 32, "%#lx", (unsigned long)a);
	return p;
}

/* The referrer entry of the given kind matching `match`, or NULL. */
static const struct json *find_ref(const struct json *r, const char *kind,
				   bool (*match)(const struct json *e))
{
	const struct json *list = json_get(r, "referrers");

	cr_assert(list && list->type == JSON_ARRAY, "no referrers array");
	for (size_t i = 0; i < list->count; i++)
		if (!strcmp(str(&list->items[i], "kind"), kind) && (!match || match(&list->items[i])))
			return &list->items[i];
	return NULL;
}

/* ---- referrers ---------------------------------------------------------------- */

static bool at_global(const struct json *e)
{
	const char *path = str(e, "path");
	size_t n = strlen(path);

	return n >= 9 && !strcmp(path + n - 9, "insp_heap") && num(e, "offset") == (int64_t)shape.global_off;
}

Test(inspect, referrers_name_the_module_holding_a_global)
{
	struct json *r = ask_once("get-referrers %s", hex(shape.global));

	cr_assert(ok(r));
	cr_expect(find_ref(r, "data", at_global), "no data referrer at insp_heap+%lu",
		  shape.global_off);
	cr_expect_eq(addr(find_ref(r, "data", at_global), "target"), shape.global);
	json_free(r);
}

static bool in_holder(const struct json *e)
{
	return addr(e, "block") == shape.holder && num(e, "offset") == 0;
}

Test(inspect, referrers_name_the_block_holding_a_block)
{
	struct json *r = ask_once("get-referrers %s", hex(shape.held));

	cr_assert(ok(r));
	cr_expect(find_ref(r, "block", in_holder), "no block referrer %s",
		  hex(shape.holder));
	cr_expect_null(find_ref(r, "data", NULL), "the held block is not in any global");
	json_free(r);
}

static bool on_thread(const struct json *e)
{
	return num(e, "tid") == shape.tid;
}

Test(inspect, referrers_name_the_thread_whose_stack_holds_a_block)
{
	struct json *r = ask_once("get-referrers %s", hex(shape.tblock));

	cr_assert(ok(r));
	cr_expect(find_ref(r, "stack", on_thread), "no stack referrer of thread %d", shape.tid);
	json_free(r);
}

Test(inspect, referrers_of_an_interior_address_and_of_no_block)
{
	struct json *r = ask_once("get-referrers %s", hex(shape.global + 8));

	cr_expect(find_ref(r, "data", at_global));
	json_free(r);
	r = ask_once("get-referrers %s", "0x10");
	cr_assert(ok(r));
	cr_expect_eq(num(r, "count"), 0);
	json_free(r);
	r = ask_once("get-referrers %s", "zz");
	cr_expect(!ok(r));
	json_free(r);
}

/* ---- referents, is-tracked ----------------------------------------------------- */

Test(inspect, referents_of_a_list_node_are_its_successor)
{
	struct json *r = ask_once("get-referents %s", hex(shape.list[0]));
	const struct json *list = json_get(r, "referents");

	cr_assert(ok(r));
	cr_assert(list && list->count == 1, "want exactly one referent");
	cr_expect_eq(addr(&list->items[0], "address"), shape.list[1]);
	json_free(r);
	r = ask_once("get-referents %s", hex(shape.list[2]));
	cr_expect_eq(num(r, "count"), 0, "the tail points nowhere");
	json_free(r);
}

Test(inspect, is_tracked_at_start_inside_and_outside)
{
	struct json *r = ask_once("is-tracked %s", hex(shape.global));

	cr_assert(ok(r));
	cr_expect(is_true(r, "tracked"));
	cr_expect_eq(addr(r, "address"), shape.global);
	cr_expect_geq(num(r, "size"), 64);
	cr_expect_eq(num(r, "generation"), 0);
	json_free(r);
	r = ask_once("is-tracked %s", hex(shape.global + 40));
	cr_expect(is_true(r, "tracked"));
	cr_expect_eq(addr(r, "address"), shape.global);
	cr_expect_eq(num(r, "offset"), 40);
	json_free(r);
	r = ask_once("is-tracked %s", "0x1000");
	cr_assert(ok(r));
	cr_expect(!is_true(r, "tracked"), "a stranger's address");
	json_free(r);
}

Test(inspect, generation_grows_with_collections)
{
	struct json *r;

	cr_assert(!strncmp(tell("collect 2"), "ok", 2));
	r = ask_once("is-tracked %s", hex(shape.global));
	cr_expect_eq(num(r, "generation"), 2, "two collections survived");
	json_free(r);
}

/* ---- freeze ------------------------------------------------------------------------- */

static bool tracked(uintptr_t a)
{
	struct json *r = ask_once("is-tracked %s", hex(a));
	bool t = is_true(r, "tracked");

	json_free(r);
	return t;
}

Test(inspect, freeze_keeps_a_leak_until_unfreeze)
{
	char *ans = tell("leak");
	uintptr_t leak;
	struct json *r;

	cr_assert(sscanf(ans, "ok %lx", &leak) == 1, "%s", ans);
	leak ^= 1;
	cr_assert(tracked(leak));
	r = ask_once("freeze%s", "");
	cr_assert(ok(r));
	cr_expect_geq(num(r, "frozen"), 6);
	json_free(r);
	r = ask_once("get-freeze-count%s", "");
	cr_expect_geq(num(r, "freeze_count"), 6);
	json_free(r);
	cr_assert(!strncmp(tell("collect 3"), "ok", 2));
	cr_expect(tracked(leak), "a frozen block was collected");
	r = ask_once("unfreeze%s", "");
	cr_expect_geq(num(r, "unfrozen"), 6);
	json_free(r);
	r = ask_once("get-freeze-count%s", "");
	cr_expect_eq(num(r, "freeze_count"), 0);
	json_free(r);
	cr_assert(!strncmp(tell("collect 1"), "ok", 2));
	cr_expect(!tracked(leak), "unfrozen, the leak should have been collected");
	cr_expect(tracked(shape.list[2]), "a reachable block was collected");
}

/* ---- get-objects ------------------------------------------------------------------------ */

Test(inspect, get_objects_filters)
{
	struct conn *c = conn_open();
	struct json *r = ask(c, "get-objects --min-size 100000");
	const struct json *list = json_get(r, "objects");
	bool big = false;

	cr_assert(ok(r) && is_true(r, "done"));
	for (size_t i = 0; list && i < list->count; i++) {
		cr_expect_geq(num(&list->items[i], "size"), 100000);
		big |= addr(&list->items[i], "address") == shape.big;
	}
	cr_expect(big, "the 200000-byte block is missing");
	json_free(r);
	r = ask(c, "get-objects --generation 1");
	cr_assert(ok(r));
	cr_expect_eq(num(r, "count"), 0, "nothing survived a collection yet");
	json_free(r);
	cr_assert(!strncmp(tell("collect 1"), "ok", 2));
	r = ask(c, "get-objects --generation 1 --min-size 100000");
	cr_expect_eq(num(r, "count"), 1, "the big block is in generation 1 now");
	json_free(r);
	r = ask(c, "get-objects --summary");
	cr_assert(ok(r) && json_get(r, "classes"));
	cr_expect_geq(num(r, "count"), 8);
	json_free(r);
	r = ask(c, "get-objects --generation 5");
	cr_expect(!ok(r));
	json_free(r);
	conn_close(c);
}

Test(inspect, get_objects_streams_a_large_listing)
{
	struct conn *c = conn_open();
	struct json *r;
	int lines = 0;
	int64_t seen = 0;

	cr_assert_str_eq(tell("many 20000"), "ok");
	r = ask(c, "get-objects");
	for (;;) {
		const struct json *list = json_get(r, "objects");

		cr_assert(ok(r));
		lines++;
		seen += list ? (int64_t)list->count : 0;
		if (is_true(r, "done"))
			break;
		cr_assert(is_true(r, "more"));
		json_free(r);
		r = conn_next(c, WAIT_MS);
		cr_assert(r, "the stream stopped");
	}
	cr_expect_gt(lines, 1, "20000 blocks do not fit one line");
	cr_expect_geq(seen, 20000);
	cr_expect_eq(num(r, "count"), seen);
	json_free(r);
	r = ask(c, "get-freeze-count");   /* the connection takes requests again */
	cr_expect(ok(r));
	json_free(r);
	conn_close(c);
}

/* ---- watch ---------------------------------------------------------------------------------- */

#define WATCHED 200

struct watcher {
	struct conn *c;
	int starts, stops, bad;
};

static void *read_events(void *arg)
{
	struct watcher *w = arg;
	struct json *e;

	while (w->stops < WATCHED && (e = conn_next(w->c, WAIT_MS))) {
		const char *ev = str(e, "event");

		if (!strcmp(ev, "start") && num(e, "generation") == 2)
			w->starts++;
		else if (!strcmp(ev, "stop") && num(e, "generation") == 2 && json_get(e, "pause_ns"))
			w->stops++;
		else
			w->bad++;
		json_free(e);
	}
	return NULL;
}

Test(inspect, watch_streams_every_collection_and_a_stalled_watcher_delays_none)
{
	struct watcher good = { .c = conn_open() };
	struct conn *stalled = conn_open();
	struct json *r, *e, *last = NULL;
	pthread_t t;
	int64_t max_ns;
	char *ans;

	r = ask(good.c, "watch");
	cr_assert(is_true(r, "watching"));
	json_free(r);
	r = ask(stalled, "watch");
	cr_assert(is_true(r, "watching"));
	json_free(r);
	pthread_create(&t, NULL, read_events, &good);
	ans = tell("collect %d", WATCHED);   /* the stalled watcher reads nothing meanwhile */
	cr_assert(sscanf(ans, "ok %ld", &max_ns) == 1, "%s", ans);
	pthread_join(t, NULL);
	cr_expect_eq(good.starts, WATCHED);
	cr_expect_eq(good.stops, WATCHED);
	cr_expect_eq(good.bad, 0);
	cr_log_info("longest of %d watched collections: %ld ns", WATCHED, max_ns);
	/* What the stalled one gets now ends with the count of what it lost. */
	while ((e = conn_next(stalled, 500))) {
		json_free(last);
		last = e;
	}
	cr_assert(last, "the stalled watcher got nothing at all");
	cr_expect_gt(num(last, "dropped"), 0, "no event was counted as dropped");
	cr_expect_lt(num(last, "dropped"), 2 * WATCHED);
	json_free(last);
	conn_close(stalled);
	conn_close(good.c);
}

/* ---- garbage, C API ------------------------------------------------------------------------------- */

Test(inspect, garbage_hexdump_shows_the_first_bytes)
{
	char *ans = tell("leak");
	struct json *r;
	const struct json *list;
	bool seen = false;

	cr_assert(!strncmp(ans, "ok", 2));
	r = ask_once("set-debug %s", "32");
	json_free(r);
	cr_assert(!strncmp(tell("collect 1"), "ok", 2));
	r = ask_once("garbage %s", "4");
	cr_assert(ok(r));
	list = json_get(r, "blocks");
	for (size_t i = 0; list && i < list->count; i++)
		seen |= !strcmp(str(&list->items[i], "hex"), "44444444");
	cr_expect(seen, "the leaked block's bytes are missing");
	json_free(r);
}

Test(inspect, c_api)
{
	char *ans = tell("capi");

	cr_expect_str_eq(ans, "ok");
}
