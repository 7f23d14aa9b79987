/* record: samples a live process until it ends or gcctl is interrupted,
 * one JSON object per line (gcctl(1) documents the format):
 *
 *   {"type":"header","format":"gcshim-record 1","pid":..,"command":..,"interval_ms":..,"time_ns":..}
 *   {"type":"sample","time_ns":..,"mem_alloc":..,"rss":..,"heap_bytes":..,"collections":..}
 *   {"type":"collection","time_ns":..,"generation":..,"pause_ns":..,"collected":..,
 *    "collected_bytes":..,"mem_alloc_before":..,"mem_alloc_after":..,"completed":true}
 *
 * Samples come from "stats" on one connection, collections from "watch"
 * on another, so that none is missed between two samples. */
#define _GNU_SOURCE

#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "gcctl.h"

#define RECORD_FORMAT "gcshim-record 1"

static volatile sig_atomic_t interrupted;

static void on_signal(int sig)
{
	interrupted = 1;
}

static long long wall_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (long long)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static long long mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void emit(FILE *out, json_t *o)
{
	json_dumpf(o, out, JSON_COMPACT);
	fputc('\n', out);
	fflush(out);
	json_decref(o);
}

/* One sample; false when the process no longer answers. */
static bool sample(struct client *c, FILE *out)
{
	json_t *r = NULL, *s;
	bool ok = client_request(c, "stats", &r) == CLIENT_OK &&
		  (s = json_object_get(r, "stats")) != NULL;

	if (ok)
		emit(out, json_pack("{s:s,s:I,s:O,s:O,s:O,s:O}", "type", "sample",
				    "time_ns", (json_int_t)wall_ns(),
				    "mem_alloc", json_object_get(s, "mem_alloc"),
				    "rss", json_object_get(s, "rss"),
				    "heap_bytes", json_object_get(s, "jemalloc_active"),
				    "collections", json_object_get(s, "collections")));
	json_decref(r);
	return ok;
}

static void collection(const json_t *e, FILE *out)
{
	static const char *const keys[] = {
		"generation", "pause_ns", "collected", "collected_bytes", "mem_alloc_before",
		"mem_alloc_after", "completed",
	};
	json_t *o = json_pack("{s:s,s:O}", "type", "collection", "time_ns",
			      json_object_get(e, "time_ns"));

	for (size_t i = 0; i < sizeof(keys) / sizeof(*keys); i++)
		json_object_set(o, keys[i], json_object_get(e, keys[i]));
	emit(out, o);
}

/* Every collection event already received; false when the stream ended. */
static bool drain_events(struct client *w, FILE *out)
{
	enum client_status st;
	json_t *e;

	while ((st = client_next(w, 0, &e)) == CLIENT_OK) {
		if (!strcmp(str_of(e, "event"), "stop"))
			collection(e, out);
		json_decref(e);
	}
	return st == CLIENT_TIMED_OUT;
}

static int record_loop(struct ctx *cx, struct client *w, struct client *s, long interval,
		       FILE *out)
{
	long long next = mono_ms();

	while (!interrupted) {
		struct pollfd pfd = { .fd = w->fd, .events = POLLIN };
		long long wait = next - mono_ms();

		if (wait <= 0) {
			if (!sample(s, out))
				break;
			next += interval;
			continue;
		}
		if (w->inlen || poll(&pfd, 1, (int)wait) > 0)
			if (!drain_events(w, out))
				break;
	}
	return EXIT_OK;
}

static bool open_both(struct ctx *cx, pid_t pid, struct client *w, struct client *s)
{
	json_t *r = NULL;

	if (client_open(w, pid) != CLIENT_OK)
		return fail_with(cx, EXIT_UNREACHABLE, "%s", w->error), false;
	if (client_request(w, "watch", &r) != CLIENT_OK || !json_is_true(json_object_get(r, "ok"))) {
		json_decref(r);
		client_close(w);
		return fail_with(cx, EXIT_UNREACHABLE, "process %d refused to be watched", (int)pid), false;
	}
	json_decref(r);
	if (client_open(s, pid) != CLIENT_OK) {
		client_close(w);
		return fail_with(cx, EXIT_UNREACHABLE, "%s", s->error), false;
	}
	return true;
}

static int parse_record_args(struct ctx *cx, int argc, char **argv, long *interval,
			     const char **path)
{
	for (int i = 1; i < argc; i++) {
		if (i + 1 < argc && !strcmp(argv[i], "--interval")) {
			if (!parse_duration_ms(argv[++i], interval))
				return fail_with(cx, EXIT_USAGE, "bad argument '%s' for --interval: "
						 "expected a duration like 100ms or 1s", argv[i]);
		} else if (i + 1 < argc && !strcmp(argv[i], "-o")) {
			*path = argv[++i];
		} else {
			return fail_with(cx, EXIT_USAGE, "bad argument '%s' for record "
					 "(gcctl help record)", argv[i]);
		}
	}
	return EXIT_OK;
}

int cmd_record(struct ctx *cx, int argc, char **argv)
{
	struct sigaction sa = { .sa_handler = on_signal };
	struct client w = { .fd = -1 }, s = { .fd = -1 };
	const char *path = NULL;
	long interval = 100;
	char cmd[256];
	FILE *out = stdout;
	pid_t pid;
	int st = parse_record_args(cx, argc, argv, &interval, &path);

	if (st != EXIT_OK)
		return st;
	pid = cx->pid ? cx->pid : the_only_process(cx);
	if (!pid)
		return cx->status;
	if (path && !(out = fopen(path, "we")))
		return fail_with(cx, EXIT_USAGE, "cannot write %s: %s", path, strerror(errno));
	if (!open_both(cx, pid, &w, &s)) {
		if (path)
			fclose(out);
		return cx->status;
	}
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	command_line(pid, cmd, sizeof(cmd));
	emit(out, json_pack("{s:s,s:s,s:i,s:s,s:i,s:I}", "type", "header", "format", RECORD_FORMAT,
			    "pid", (int)pid, "command", cmd, "interval_ms", (int)interval,
			    "time_ns", (json_int_t)wall_ns()));
	st = record_loop(cx, &w, &s, interval, out);
	client_close(&w);
	client_close(&s);
	if (path && fclose(out) != 0)
		return fail_with(cx, EXIT_USAGE, "cannot write %s: %s", path, strerror(errno));
	return st;
}
