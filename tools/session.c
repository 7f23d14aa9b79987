/* Talking to the process for a verb: errors, connecting to the one asked
 * for, one request and its reply, and reading members of replies. */
#define _GNU_SOURCE

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "gcctl.h"
#include "parse.h"

static void vcomplain(const char *fmt, va_list ap)
{
	fputs("gcctl: ", stderr);
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
}


void complain(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vcomplain(fmt, ap);
	va_end(ap);
}

/* With --json, an error is a JSON object on standard output, like the
 * process's own: {"ok":false,"error":"...","status":3}. */
static void json_error(const char *fmt, va_list ap, int status)
{
	char *msg = NULL;
	json_t *o;

	if (vasprintf(&msg, fmt, ap) < 0)
		msg = NULL;
	o = json_pack("{s:b,s:s,s:i}", "ok", 0, "error", msg ? msg : "out of memory",
		      "status", status);
	if (o)
		json_dumpf(o, stdout, JSON_COMPACT);
	putchar('\n');
	json_decref(o);
	free(msg);
}

int fail_with(struct ctx *cx, int status, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	if (cx->json)
		json_error(fmt, ap, status);
	else
		vcomplain(fmt, ap);
	va_end(ap);
	cx->status = status;
	return status;
}

int client_exit(enum client_status st)
{
	return st == CLIENT_DENIED ? EXIT_DENIED : EXIT_UNREACHABLE;
}

bool arg_long(const char *s, long min, long max, long *out)
{
	int64_t v;

	if (!parse_int(s, &v) || v < min || v > max)
		return false;
	*out = (long)v;
	return true;
}

/* The command line of pid, arguments joined by spaces, for a listing.
 * The program is shown by its name, as ps(1) does: its directory would
 * fill the column. */
void command_line(pid_t pid, char *buf, size_t cap)
{
	char path[64];
	size_t n = 0, dir;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/cmdline", (int)pid);
	f = fopen(path, "re");
	if (f) {
		n = fread(buf, 1, cap - 1, f);
		fclose(f);
	}
	buf[n] = '\0';
	for (dir = strlen(buf); dir && buf[dir - 1] != '/'; dir--)
		;
	memmove(buf, buf + dir, n - dir);
	n -= dir;
	while (n && buf[n - 1] == '\0')
		n--;
	buf[n] = '\0';
	for (size_t i = 0; i < n; i++)
		if (buf[i] == '\0')
			buf[i] = ' ';
		else if ((unsigned char)buf[i] < 0x20 || buf[i] == 0x7f)
			buf[i] = '?';
	if (!n)
		snprintf(buf, cap, "?");
}

/* Cuts s to at most max bytes, ending in "..." when cut, never inside a
 * UTF-8 character. */
void truncate_text(char *s, size_t max)
{
	size_t n;

	if (strlen(s) <= max)
		return;
	n = max - 3;
	while (n && ((unsigned char)s[n] & 0xc0) == 0x80)
		n--;
	strcpy(s + n, "...");
}

/* Without -p: the only process there is, else an error. */
pid_t the_only_process(struct ctx *cx)
{
	pid_t *pids;
	char list[2048] = "", cmd[64];
	size_t n, len = 0;
	pid_t pid;

	if (client_find_all(&pids, &n) < 0)
		return fail_with(cx, EXIT_UNREACHABLE, "out of memory"), 0;
	if (n == 0) {
		free(pids);
		return fail_with(cx, EXIT_UNREACHABLE, "no process is running under gcshim"), 0;
	}
	pid = pids[0];
	for (size_t i = 0; n > 1 && i < n && len < sizeof(list); i++) {
		command_line(pids[i], cmd, sizeof(cmd));
		truncate_text(cmd, 30);
		len += (size_t)snprintf(list + len, sizeof(list) - len, "%s%d (%s)", i ? ", " : "",
					(int)pids[i], cmd);
	}
	free(pids);
	if (n > 1)
		return fail_with(cx, EXIT_USAGE,
				 "%zu processes are running under gcshim: %s; choose one with -p PID",
				 n, list), 0;
	return pid;
}

static bool connect_target(struct ctx *cx)
{
	pid_t pid = cx->pid ? cx->pid : the_only_process(cx);
	enum client_status st;

	if (!pid)
		return false;
	st = client_open(&cx->client, pid);
	if (st != CLIENT_OK) {
		fail_with(cx, client_exit(st), "%s", cx->client.error);
		return false;
	}
	cx->connected = true;
	return true;
}

/* Arguments become one line of words: no white space inside them, no
 * control characters, and the line must fit the library's buffer. */
static bool build_request(struct ctx *cx, char *line, size_t cap, int argc, char **argv)
{
	size_t n = 0;

	for (int i = 0; i < argc; i++) {
		const char *a = argv[i];

		if (!*a || strpbrk(a, " \t\r\n"))
			return fail_with(cx, EXIT_USAGE, "bad argument '%s': empty or with spaces", a), false;
		for (const char *p = a; *p; p++)
			if ((unsigned char)*p < 0x20 || *p == 0x7f)
				return fail_with(cx, EXIT_USAGE,
						 "bad argument: control character in '%s'", a), false;
		if (n + strlen(a) + 2 > cap)
			return fail_with(cx, EXIT_USAGE, "bad argument: request longer than %zu bytes",
					 cap - 1), false;
		n += (size_t)snprintf(line + n, cap - n, "%s%s", i ? " " : "", a);
	}
	return true;
}

const char *reply_error(const json_t *r)
{
	const json_t *e = json_object_get(r, "error");

	return e && json_is_string(e) ? json_string_value(e) : "the process reported an error";
}

/* Sends argv as one request.  Returns the reply when it is a success to be
 * shown to a person; otherwise the reply (raw, with --json) or the failure
 * has been reported already and cx->status says how gcctl ends. */
json_t *ask(struct ctx *cx, int argc, char **argv)
{
	char line[PROTO_MAX_REQUEST];
	enum client_status st;
	json_t *r;

	if (!build_request(cx, line, sizeof(line), argc, argv) ||
	    (!cx->connected && !connect_target(cx)))
		return NULL;
	st = client_request(&cx->client, line, &r);
	if (st != CLIENT_OK)
		return fail_with(cx, client_exit(st), "%s", cx->client.error), NULL;
	if (cx->json)
		puts(cx->client.line);
	if (!json_is_true(json_object_get(r, "ok"))) {
		/* the process found the request itself wrong: bad usage */
		cx->status = json_is_true(json_object_get(r, "usage")) ? EXIT_USAGE : EXIT_REPLY_ERROR;
		if (!cx->json)
			complain("%s", reply_error(r));
	}
	if (cx->json || cx->status != EXIT_OK) {
		json_decref(r);
		return NULL;
	}
	return r;
}


/* The integer members keys[0..n) of a reply, or an error: the reply is
 * not what this version of gcctl understands. */
bool reply_ints(struct ctx *cx, const json_t *r, const char *const *keys,
		       int64_t *out, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (!json_int_of(json_object_get(r, keys[i]), &out[i]))
			return fail_with(cx, EXIT_REPLY_ERROR,
					 "the reply of process %d has no integer \"%s\"",
					 (int)cx->client.pid, keys[i]), false;
	return true;
}


const char *str_of(const json_t *obj, const char *key)
{
	const json_t *v = json_object_get(obj, key);

	return v && json_is_string(v) ? json_string_value(v) : "?";
}

bool json_int_of(const json_t *v, int64_t *out)
{
	if (!json_is_integer(v))
		return false;
	*out = (int64_t)json_integer_value(v);
	return true;
}

long long int_of(const json_t *obj, const char *key)
{
	int64_t v = 0;

	json_int_of(json_object_get(obj, key), &v);
	return (long long)v;
}

bool true_of(const json_t *obj, const char *key)
{
	const json_t *v = json_object_get(obj, key);

	return v && json_is_true(v);
}

/* The first line of a reply that goes on: parsed even with --json,
 * which prints it as it is. */
json_t *ask_first(struct ctx *cx, int argc, char **argv)
{
	bool json = cx->json;
	json_t *r;

	cx->json = false;
	r = ask(cx, argc, argv);
	cx->json = json;
	if (r && json)
		puts(cx->client.line);
	return r;
}


/* The "stats" object of process pid, to be freed, or NULL with the
 * reason in err (when given). */
json_t *fetch_stats(pid_t pid, char *err, size_t cap)
{
	struct client c;
	json_t *r = NULL, *stats = NULL;

	if (client_open(&c, pid) != CLIENT_OK) {
		if (err)
			snprintf(err, cap, "%s", c.error);
		return NULL;
	}
	if (client_request(&c, "stats", &r) == CLIENT_OK)
		stats = json_incref(json_object_get(r, "stats"));
	if (!stats && err)
		snprintf(err, cap, "%s", r ? reply_error(r) : c.error);
	json_decref(r);
	client_close(&c);
	return stats;
}
