/*
 * gcctl against live processes: tests/fixtures/gcctl_mp runs under
 * $GCSHIM_LIB with a private socket directory, is driven through pipes,
 * and is inspected with the built gcctl and with raw socket connections.
 */
#define _GNU_SOURCE
#include <criterion/criterion.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <limits.h>
#include <poll.h>
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

#include "gcshim.h"
#include "json.h"
#include "support.h"

#define WAIT_MS 10000
#define MAX_PROCS 8
#define NOBODY 65534
#define MIB (1024 * 1024)

struct fixture {
	pid_t pid;
	int to, from;        /* its stdin and stdout */
	char buf[4096];      /* output read and not yet returned */
	size_t len;
	char ready[128];     /* its first line, "ready PID..." */
};

struct result {
	int status;          /* exit status, or 128 + signal */
	char out[65536], err[4096];
};

static char sockdir[] = "/tmp/gcctl-test-XXXXXX";
static char uid_dir[64]; /* /tmp/gcshim-UID of a test's private user */
static struct fixture procs[MAX_PROCS];
static int n_procs;
static pid_t strays[MAX_PROCS]; /* processes the fixtures started */
static int n_strays;

/* ---- set-up ------------------------------------------------------------ */

static const char *lib_path(void)
{
	const char *lib = getenv("GCSHIM_LIB");

	cr_assert(lib && *lib, "GCSHIM_LIB is not set");
	return lib;
}

static void remove_tree(const char *dir)
{
	DIR *d = opendir(dir);
	struct dirent *e;
	char path[PATH_MAX];

	if (!d)
		return;
	while ((e = readdir(d)))
		if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..")) {
			snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
			unlink(path);
		}
	closedir(d);
	rmdir(dir);
}

static void setup(void)
{
	cr_assert(mkdtemp(sockdir), "mkdtemp: %s", strerror(errno));
	cr_assert(chmod(sockdir, 0700) == 0);
}

static void reap(pid_t pid)
{
	if (pid <= 0)
		return;
	kill(pid, SIGCONT);
	kill(pid, SIGKILL);
	waitpid(pid, NULL, 0);
}

static void teardown(void)
{
	for (int i = 0; i < n_strays; i++)
		kill(strays[i], SIGKILL);
	for (int i = 0; i < n_procs; i++) {
		reap(procs[i].pid);
		close(procs[i].to);
		close(procs[i].from);
	}
	remove_tree(sockdir);
	if (*uid_dir)
		remove_tree(uid_dir);
}

TestSuite(gcctl, .init = setup, .fini = teardown, .timeout = 30);

static void sleep_ms(int ms)
{
	poll(NULL, 0, ms);
}

/* ---- child processes --------------------------------------------------- */

/* Environment changes, applied in the child: "NAME=VALUE" sets, "-NAME"
 * removes.  Every child starts without the variables that decide where
 * sockets go, so that nothing outside the test leaks in. */
static void apply_env(char *const *changes)
{
	unsetenv("LD_PRELOAD");
	unsetenv("XDG_RUNTIME_DIR");
	unsetenv("GCSHIM_SOCKET_DIR");
	for (; changes && *changes; changes++) {
		char name[128];
		const char *eq = strchr(*changes, '=');

		if (**changes == '-') {
			unsetenv(*changes + 1);
			continue;
		}
		snprintf(name, sizeof(name), "%.*s", (int)(eq - *changes), *changes);
		setenv(name, eq + 1, 1);
	}
}

static void become(uid_t uid)
{
	if (!uid)
		return;
	if (setgroups(0, NULL) < 0 || setresgid(uid, uid, uid) < 0 || setresuid(uid, uid, uid) < 0)
		_exit(125);
}

/* In a forked child: the credentials, then the parent-death signal (a
 * change of uid clears it), then the environment and the program. */
static void exec_child(uid_t uid, char *const *env, char *const *argv)
{
	pid_t parent = getppid();

	become(uid);
	prctl(PR_SET_PDEATHSIG, SIGKILL);
	if (getppid() != parent)
		_exit(125);
	apply_env(env);
	execv(argv[0], argv);
	_exit(127);
}

static void fixture_line(struct fixture *f, char *line, size_t cap)
{
	cr_assert(read_line_fd(f->from, f->buf, &f->len, sizeof(f->buf), line, cap, WAIT_MS),
		  "fixture %d did not answer", (int)f->pid);
}

/* Starts the fixture as uid (0: as we are) with LD_PRELOAD=$GCSHIM_LIB and,
 * unless env says otherwise, GCSHIM_SOCKET_DIR=sockdir. */
static struct fixture *start_program(uid_t uid, char *const *argv, char *const *env)
{
	struct fixture *f;
	int in[2], out[2];
	char line[128];
	pid_t pid;

	cr_assert(n_procs < MAX_PROCS);
	cr_assert(pipe2(in, O_CLOEXEC) == 0 && pipe2(out, O_CLOEXEC) == 0);
	pid = fork();
	cr_assert(pid >= 0);
	if (pid == 0) {
		dup2(in[0], 0);
		dup2(out[1], 1);
		exec_child(uid, env, argv);
	}
	f = &procs[n_procs++];
	f->pid = pid;
	f->to = in[1];
	f->from = out[0];
	f->len = 0;
	close(in[0]);
	close(out[1]);
	fixture_line(f, line, sizeof(line));
	cr_assert_eq(strncmp(line, "ready ", 6), 0, "fixture said '%s'", line);
	cr_assert_eq(atoi(line + 6), pid);
	snprintf(f->ready, sizeof(f->ready), "%s", line);
	return f;
}

static char *fixture_path(void)
{
	return build_path("tests/fixtures/gcctl_mp");
}

static char *gcctl_path(void)
{
	return build_path("gcctl");
}

static void socket_path(char *buf, size_t cap, const char *dir, pid_t pid)
{
	snprintf(buf, cap, "%s/%d.sock", dir, (int)pid);
}

/* ---- raw connections ---------------------------------------------------- */

static int try_connect(const char *path)
{
	struct sockaddr_un addr = { .sun_family = AF_UNIX };
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

	cr_assert(fd >= 0);
	snprintf(addr.sun_path, sizeof(addr.sun_path), "%s", path);
	if (connect(fd, (struct sockaddr *)&addr, sizeof(addr)) < 0) {
		close(fd);
		return -1;
	}
	return fd;
}

struct conn {
	int fd;
	char buf[8192];
	size_t len;
};

static void conn_send(struct conn *c, const char *data, size_t len)
{
	cr_assert_eq(send(c->fd, data, len, MSG_NOSIGNAL), (ssize_t)len);
}

/* Sends one raw line and returns the parsed reply (never NULL). */
static struct json *conn_ask(struct conn *c, const char *request, size_t len)
{
	char line[8192], err[128];
	struct json *r;

	conn_send(c, request, len);
	conn_send(c, "\n", 1);
	cr_assert(read_line_fd(c->fd, c->buf, &c->len, sizeof(c->buf), line, sizeof(line), WAIT_MS),
		  "no reply to a raw request");
	r = json_parse(line, strlen(line), err, sizeof(err));
	cr_assert(r, "reply '%s' is not JSON: %s", line, err);
	return r;
}

static bool reply_ok(const struct json *r)
{
	const struct json *ok = json_get(r, "ok");

	cr_assert(ok && (ok->type == JSON_TRUE || ok->type == JSON_FALSE), "reply without ok");
	return ok->type == JSON_TRUE;
}

static const char *reply_str(const struct json *r, const char *key)
{
	const struct json *v = json_get(r, key);

	cr_assert(v && v->type == JSON_STRING, "reply without string '%s'", key);
	return v->str;
}

static int64_t reply_int(const struct json *r, const char *key)
{
	int64_t v;

	cr_assert(json_int(json_get(r, key), &v), "reply without integer '%s'", key);
	return v;
}

/* Says hello on a new connection; returns the reply, or NULL while the
 * socket does not answer yet. */
static struct json *raw_hello(const char *path, struct conn *c)
{
	c->fd = try_connect(path);
	c->len = 0;
	if (c->fd < 0)
		return NULL;
	return conn_ask(c, "hello 1", 7);
}

/* Waits until the process at path answers hello as command. */
static void wait_answering(const char *path, pid_t pid, const char *command)
{
	long long deadline = now_ms() + WAIT_MS;

	for (;;) {
		struct conn c;
		struct json *r = raw_hello(path, &c);
		bool done = r && reply_ok(r) && reply_int(r, "pid") == pid &&
			    (!command || !strcmp(reply_str(r, "command"), command));

		json_free(r);
		if (c.fd >= 0)
			close(c.fd);
		if (done)
			return;
		cr_assert(now_ms() < deadline, "%s does not answer as process %d", path, (int)pid);
		sleep_ms(20);
	}
}

static struct fixture *start_fixture(char *const *env)
{
	char *argv[] = { fixture_path(), NULL };
	char set_dir[PATH_MAX + 32], set_lib[PATH_MAX + 16], path[PATH_MAX];
	char *full_env[16] = { set_dir, set_lib };
	struct fixture *f;
	int n = 2;

	snprintf(set_dir, sizeof(set_dir), "GCSHIM_SOCKET_DIR=%s", sockdir);
	snprintf(set_lib, sizeof(set_lib), "LD_PRELOAD=%s", lib_path());
	for (; env && *env && n < 15; env++)
		full_env[n++] = *env;
	full_env[n] = NULL;
	f = start_program(0, argv, full_env);
	socket_path(path, sizeof(path), sockdir, f->pid);
	wait_answering(path, f->pid, NULL);
	return f;
}

/* One command to the fixture; its answer must start with "ok". */
static void fixture_do(struct fixture *f, const char *cmd, char *answer, size_t cap)
{
	char line[256];

	cr_assert(write(f->to, cmd, strlen(cmd)) == (ssize_t)strlen(cmd));
	cr_assert(write(f->to, "\n", 1) == 1);
	fixture_line(f, line, sizeof(line));
	cr_assert_eq(strncmp(line, "ok", 2), 0, "fixture answered '%s' to '%s'", line, cmd);
	if (answer)
		snprintf(answer, cap, "%s", line[2] ? line + 3 : "");
}

static long long fixture_num(struct fixture *f, const char *cmd)
{
	char answer[64];

	fixture_do(f, cmd, answer, sizeof(answer));
	return atoll(answer);
}

/* ---- running gcctl ----------------------------------------------------- */

static void slurp(int fd, char *buf, size_t cap)
{
	ssize_t n = pread(fd, buf, cap - 1, 0);

	buf[n > 0 ? n : 0] = '\0';
	close(fd);
}

/* Runs argv to its end as uid, stdout and stderr captured. */
static void run_as(struct result *res, uid_t uid, char *const *env, char *const *argv)
{
	FILE *out = tmpfile(), *err = tmpfile();
	int status;
	pid_t pid;

	cr_assert(out && err);
	pid = fork();
	cr_assert(pid >= 0);
	if (pid == 0) {
		dup2(fileno(out), 1);
		dup2(fileno(err), 2);
		exec_child(uid, env, argv);
	}
	cr_assert_eq(waitpid(pid, &status, 0), pid);
	res->status = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
	slurp(dup(fileno(out)), res->out, sizeof(res->out));
	slurp(dup(fileno(err)), res->err, sizeof(res->err));
	fclose(out);
	fclose(err);
}

/* gcctl ARGS... as ourselves, finding sockets in sockdir; NULL ends ARGS. */
static struct result *gcctl(const char *first, ...)
{
	static struct result res;
	char set_dir[PATH_MAX + 32];
	char *env[] = { set_dir, NULL };
	char *argv[32] = { gcctl_path(), (char *)first };
	va_list ap;
	int n = 2;

	snprintf(set_dir, sizeof(set_dir), "GCSHIM_SOCKET_DIR=%s", sockdir);
	va_start(ap, first);
	while (n < 31 && (argv[n] = va_arg(ap, char *)))
		n++;
	va_end(ap);
	run_as(&res, 0, env, argv);
	return &res;
}

static const char *pid_arg(pid_t pid)
{
	static char buf[8][16];
	static int next;
	char *s = buf[next++ % 8];

	snprintf(s, 16, "%d", (int)pid);
	return s;
}

/* gcctl -p PID --json VERB [ARG]: the reply, which must be a success. */
static struct json *ask_json(pid_t pid, const char *verb, const char *arg)
{
	struct result *res = gcctl("-p", pid_arg(pid), "--json", verb, arg, NULL);
	char err[128];
	struct json *r;

	cr_assert_eq(res->status, 0, "gcctl %s: exit %d, stderr: %s", verb, res->status, res->err);
	cr_assert_str_empty(res->err);
	r = json_parse(res->out, strlen(res->out), err, sizeof(err));
	cr_assert(r, "gcctl --json %s printed '%s': %s", verb, res->out, err);
	cr_assert(reply_ok(r));
	return r;
}

static int64_t ask_int(pid_t pid, const char *verb, const char *arg, const char *key)
{
	struct json *r = ask_json(pid, verb, arg);
	int64_t v = reply_int(r, key);

	json_free(r);
	return v;
}

static void ask_triple(pid_t pid, const char *verb, const char *key, int64_t out[3])
{
	struct json *r = ask_json(pid, verb, NULL);
	const struct json *a = json_get(r, key);

	cr_assert(a && a->type == JSON_ARRAY && a->count == 3, "'%s' is not a triple", key);
	for (int i = 0; i < 3; i++)
		cr_assert(json_int(&a->items[i], &out[i]));
	json_free(r);
}

static int64_t stat_of(pid_t pid, const char *field)
{
	struct json *r = ask_json(pid, "stats", NULL);
	int64_t v = reply_int(json_get(r, "stats"), field);

	json_free(r);
	return v;
}

/* The human output's line for key: "key  value". */
static const char *line_of(const char *out, const char *key)
{
	static char line[512];
	size_t klen = strlen(key);

	for (const char *s = out; *s; s = strchr(s, '\n') ? strchr(s, '\n') + 1 : s + strlen(s))
		if (!strncmp(s, key, klen) && s[klen] == ' ') {
			snprintf(line, sizeof(line), "%.*s", (int)strcspn(s, "\n"), s);
			return line;
		}
	cr_assert_fail("no line for '%s' in:\n%s", key, out);
	return NULL;
}

/* ---- 1. the MicroPython sequence ---------------------------------------- */

Test(gcctl, mem_free_without_limit_is_minus_one)
{
	struct fixture *f = start_fixture(NULL);
	struct result *res;

	cr_assert_eq(ask_int(f->pid, "mem-free", NULL, "mem_free"), -1);
	res = gcctl("-p", pid_arg(f->pid), "mem_free", NULL);
	cr_assert_eq(res->status, 0);
	cr_assert(strstr(line_of(res->out, "mem_free"), "unlimited"), "%s", res->out);
}

Test(gcctl, micropython_sequence)
{
	char *env[] = { "GCSHIM_HEAP_LIMIT=64M", NULL };
	struct fixture *f = start_fixture(env);
	int64_t before, after, usable, freed, leaked;
	char expect[64];
	struct result *res;
	struct json *r;

	fixture_do(f, "pid", NULL, 0);
	before = ask_int(f->pid, "mem-alloc", NULL, "mem_alloc");
	cr_assert_eq(ask_int(f->pid, "mem-free", NULL, "mem_free"), 64 * MIB - before);

	usable = leaked = fixture_num(f, "alloc 1000");
	cr_assert_geq(usable, 1000);
	after = ask_int(f->pid, "mem-alloc", NULL, "mem_alloc");
	cr_assert_eq(after - before, usable, "mem_alloc rose by %lld, the block has %lld bytes",
		     (long long)(after - before), (long long)usable);
	cr_assert_eq(ask_int(f->pid, "mem-free", NULL, "mem_free"), 64 * MIB - after);

	/* A leaked block is still allocated: nothing collects it. */
	fixture_do(f, "drop", NULL, 0);
	cr_assert_eq(ask_int(f->pid, "mem-alloc", NULL, "mem_alloc"), after);

	usable = fixture_num(f, "alloc 100000");
	cr_assert_eq(ask_int(f->pid, "mem-alloc", NULL, "mem_alloc"), after + usable);
	fixture_do(f, "free", NULL, 0);
	freed = ask_int(f->pid, "mem-alloc", NULL, "mem_alloc");
	cr_assert_eq(freed, after);

	res = gcctl("-p", pid_arg(f->pid), "mem-alloc", NULL);
	cr_assert_eq(res->status, 0);
	snprintf(expect, sizeof(expect), "%lld bytes", (long long)freed);
	cr_assert(strstr(line_of(res->out, "mem_alloc"), expect), "'%s' lacks '%s'", res->out,
		  expect);

	/* gc.collect(): the dropped block is found and freed. */
	r = ask_json(f->pid, "collect", NULL);
	cr_assert_geq(reply_int(r, "collected"), 1, "the dropped block was not collected");
	cr_assert_geq(reply_int(r, "collected_bytes"), leaked);
	json_free(r);
	after = ask_int(f->pid, "mem-alloc", NULL, "mem_alloc");
	cr_assert_leq(after, before, "mem_alloc %lld after the collection, %lld before the alloc",
		      (long long)after, (long long)before);
	cr_assert_eq(ask_int(f->pid, "mem-free", NULL, "mem_free"), 64 * MIB - after);
}

/* ---- collections ---------------------------------------------------------- */

static void expect_failure(struct result *res, int status, const char *message);

static const struct json *generation(const struct json *r, int g)
{
	const struct json *gens = json_get(r, "generations");

	cr_assert(gens && gens->type == JSON_ARRAY && gens->count == 3, "no 3 generations");
	return &gens->items[g];
}

/* The human table's row for generation g: its three numbers. */
static void get_stats_row(const char *out, int g, long long v[3])
{
	for (const char *s = strchr(out, '\n'); s && s[1]; s = strchr(s + 1, '\n')) {
		int gen;

		if (sscanf(s + 1, "%d %lld %lld %lld", &gen, &v[0], &v[1], &v[2]) == 4 && gen == g)
			return;
	}
	cr_assert_fail("no row for generation %d in:\n%s", g, out);
}

Test(gcctl, get_stats_counts_collections_per_generation)
{
	struct fixture *f = start_fixture(NULL);
	const char *p = pid_arg(f->pid);
	struct result *res;
	struct json *r;
	long long row[3], blocks;
	char unit[16], dropped[64];
	size_t usable;

	fixture_do(f, "alloc 2000", dropped, sizeof(dropped));
	cr_assert_eq(sscanf(dropped, "%zu %63s", &usable, dropped), 2);
	fixture_do(f, "drop", NULL, 0);
	res = gcctl("-p", p, "collect", NULL);
	cr_assert_eq(res->status, 0, "%s", res->err);
	cr_assert_eq(sscanf(line_of(res->out, "collected"), "collected %lld %15s", &blocks, unit), 2,
		     "%s", res->out);
	cr_assert_geq(blocks, 1, "%s", res->out);
	cr_assert_str_eq(unit, blocks == 1 ? "block" : "blocks");
	cr_assert(strstr(line_of(res->out, "generation"), " 2"), "%s", res->out);
	for (size_t i = 0; i < 4; i++) {
		const char *l = line_of(res->out, (const char *[]){ "pause", "stop", "mark", "sweep" }[i]);
		double d;

		cr_assert_eq(sscanf(l, "%*s %lf %15s", &d, unit), 2, "%s", l);
		cr_assert(!strcmp(unit, "ns") || !strcmp(unit, "\u00b5s") || !strcmp(unit, "ms") ||
			  !strcmp(unit, "s"), "%s", l);
	}
	cr_assert(strstr(line_of(res->out, "roots scanned"), " bytes"), "%s", res->out);
	cr_assert(strstr(line_of(res->out, "heap scanned"), " bytes"), "%s", res->out);
	/* the count is the process's word: the block the fixture dropped is
	 * what the test knows was unreachable, and it must be gone */
	r = ask_json(f->pid, "is-tracked", dropped);
	cr_assert(json_get(r, "tracked") && json_get(r, "tracked")->type == JSON_FALSE,
		  "the dropped block %s is still live after the collection", dropped);
	json_free(r);

	r = ask_json(f->pid, "collect", "2");
	cr_assert_eq(reply_int(r, "generation"), 2);
	json_free(r);
	r = ask_json(f->pid, "collect", "0");
	cr_assert_eq(reply_int(r, "generation"), 0);
	json_free(r);
	/* Refused by gcctl: nothing is sent, nothing is counted. */
	expect_failure(gcctl("-p", p, "collect", "-1", NULL), 2,
		       "gcctl: invalid generation -1 (must be 0, 1 or 2)\n");
	expect_failure(gcctl("-p", p, "collect", "x", NULL), 2,
		       "gcctl: invalid generation x (must be 0, 1 or 2)\n");
	expect_failure(gcctl("-p", p, "collect", "1", "2", NULL), 2, NULL);

	r = ask_json(f->pid, "get-stats", NULL);
	cr_assert_eq(reply_int(generation(r, 0), "collections"), 1);
	cr_assert_eq(reply_int(generation(r, 1), "collections"), 0);
	cr_assert_eq(reply_int(generation(r, 2), "collections"), 2);
	cr_assert_eq(reply_int(generation(r, 2), "collected"), blocks);
	cr_assert_eq(reply_int(generation(r, 1), "collected"), 0);
	json_free(r);

	res = gcctl("-p", p, "get_stats", NULL);
	cr_assert_eq(res->status, 0, "%s", res->err);
	cr_assert_eq(strncmp(res->out, "GENERATION  COLLECTIONS  COLLECTED  UNCOLLECTABLE\n", 50), 0,
		     "%s", res->out);
	get_stats_row(res->out, 0, row);
	cr_assert(row[0] == 1 && row[1] == 0, "%s", res->out);
	get_stats_row(res->out, 1, row);
	cr_assert(row[0] == 0 && row[1] == 0, "%s", res->out);
	get_stats_row(res->out, 2, row);
	cr_assert(row[0] == 2 && row[1] == blocks, "%s", res->out);
	cr_assert_eq(stat_of(f->pid, "collections"), 3);
}

/* The member of the garbage reply's blocks at address, or NULL. */
static const struct json *garbage_block(const struct json *r, uintptr_t address)
{
	const struct json *blocks = json_get(r, "blocks");

	cr_assert(blocks && blocks->type == JSON_ARRAY, "no blocks array");
	for (size_t i = 0; i < blocks->count; i++) {
		const char *a = reply_str(&blocks->items[i], "address");

		if (strtoull(a, NULL, 16) == address)
			return &blocks->items[i];
	}
	return NULL;
}

Test(gcctl, saveall_keeps_the_garbage_until_freed)
{
	struct fixture *f = start_fixture(NULL);
	const char *p = pid_arg(f->pid);
	int64_t before, after, usable, count;
	char answer[64], line[128], *end;
	long long size;
	const struct json *b;
	struct result *res;
	uintptr_t address;
	struct json *r;

	fixture_do(f, "pid", NULL, 0);
	cr_assert_eq(ask_int(f->pid, "set-debug", "saveall", "debug"), GCSHIM_DEBUG_SAVEALL);
	before = ask_int(f->pid, "mem-alloc", NULL, "mem_alloc");
	fixture_do(f, "alloc 3000", answer, sizeof(answer));
	usable = strtoll(answer, &end, 10);
	address = strtoull(end, NULL, 16);
	cr_assert(usable >= 3000 && address, "fixture answered '%s'", answer);
	fixture_do(f, "drop", NULL, 0);
	after = ask_int(f->pid, "mem-alloc", NULL, "mem_alloc");
	cr_assert_eq(after, before + usable);

	r = ask_json(f->pid, "collect", NULL);
	cr_assert_geq(reply_int(r, "collected"), 1);
	count = reply_int(r, "collected");
	json_free(r);
	/* Found, and kept: SAVEALL frees nothing. */
	cr_assert_eq(ask_int(f->pid, "mem-alloc", NULL, "mem_alloc"), after);

	r = ask_json(f->pid, "garbage", NULL);
	cr_assert_eq(reply_int(r, "count"), count);
	b = garbage_block(r, address);
	cr_assert(b, "block %#lx is not in the garbage list", (unsigned long)address);
	cr_assert_eq(reply_int(b, "size"), usable);
	snprintf(line, sizeof(line), "%s", reply_str(b, "address"));
	json_free(r);
	cr_assert_eq(stat_of(f->pid, "garbage_blocks"), count);

	res = gcctl("-p", p, "garbage", NULL);
	cr_assert_eq(res->status, 0, "%s", res->err);
	snprintf(answer, sizeof(answer), "count  %lld\n", (long long)count);
	cr_assert_eq(strncmp(res->out, answer, strlen(answer)), 0, "%s", res->out);
	cr_assert(strstr(line_of(res->out, "ADDRESS"), "SIZE"), "%s", res->out);
	cr_assert_eq(sscanf(line_of(res->out, line), "%*s %lld", &size), 1);
	cr_assert_eq(size, usable, "%s", res->out);

	res = gcctl("-p", p, "garbage", "--free", NULL);
	cr_assert_eq(res->status, 0, "%s", res->err);
	snprintf(answer, sizeof(answer), "freed  %lld block%s\n", (long long)count,
		 count == 1 ? "" : "s");
	cr_assert_str_eq(res->out, answer);
	r = ask_json(f->pid, "garbage", NULL);
	cr_assert_eq(reply_int(r, "count"), 0);
	cr_assert_eq(json_get(r, "blocks")->count, 0);
	json_free(r);
	cr_assert_eq(stat_of(f->pid, "garbage_blocks"), 0);
	cr_assert_leq(ask_int(f->pid, "mem-alloc", NULL, "mem_alloc"), before);
	cr_assert_eq(ask_int(f->pid, "garbage", "free", "freed"), 0);
	expect_failure(gcctl("-p", p, "garbage", "--all", NULL), 2, NULL);
}

Test(gcctl, stats_after_a_collection)
{
	struct fixture *f = start_fixture(NULL);
	struct json *r, *c;
	const struct json *st;
	struct result *res;
	char expect[64];

	cr_assert_eq(stat_of(f->pid, "collections"), 0);
	cr_assert_eq(stat_of(f->pid, "pause_last_ns"), 0);
	fixture_do(f, "alloc 500", NULL, 0);
	fixture_do(f, "drop", NULL, 0);
	c = ask_json(f->pid, "collect", NULL);
	r = ask_json(f->pid, "stats", NULL);
	st = json_get(r, "stats");
	cr_assert_geq(reply_int(st, "collections"), 1);
	cr_assert_gt(reply_int(st, "pause_last_ns"), 0);
	cr_assert_gt(reply_int(st, "last_root_bytes"), 0);
	/* The same collection, seen twice. */
	cr_assert_eq(reply_int(st, "pause_last_ns"), reply_int(c, "pause_ns"));
	cr_assert_eq(reply_int(st, "last_stop_ns"), reply_int(c, "stop_ns"));
	cr_assert_eq(reply_int(st, "last_root_bytes"), reply_int(c, "root_bytes"));
	cr_assert_eq(reply_int(st, "last_collected_blocks"), reply_int(c, "collected"));
	cr_assert_geq(reply_int(st, "collected_blocks"), 1);
	cr_assert_geq(reply_int(st, "pause_max_ns"), reply_int(st, "pause_last_ns"));
	json_free(r);

	res = gcctl("-p", pid_arg(f->pid), "stats", NULL);
	cr_assert_eq(res->status, 0, "%s", res->err);
	snprintf(expect, sizeof(expect), " (%lld ns)  ", (long long)reply_int(c, "pause_ns"));
	cr_assert(strstr(line_of(res->out, "pause_last_ns"), expect), "'%s' lacks '%s'",
		  line_of(res->out, "pause_last_ns"), expect);
	cr_assert(strstr(line_of(res->out, "pause_last_ns"), "s ("), "%s", res->out);
	json_free(c);
}

Test(gcctl, corpus_collected_from_outside)
{
	char *corpus = build_path("tests/fixtures/gc_corpus");
	char *plugin = build_path("tests/fixtures/.libs/libgcplugin.so");
	char set_plugin[PATH_MAX + 16], set_dir[PATH_MAX + 32];
	char set_lib[PATH_MAX + 16], path[PATH_MAX], line[512], wrong[4096] = "";
	char *argv[] = { corpus, "external", NULL };
	char *env[] = { set_dir, set_lib, set_plugin, NULL };
	struct fixture *f;
	int leaked = -1, status;
	struct json *r;

	snprintf(set_plugin, sizeof(set_plugin), "GC_PLUGIN=%s", plugin);
	snprintf(set_dir, sizeof(set_dir), "GCSHIM_SOCKET_DIR=%s", sockdir);
	snprintf(set_lib, sizeof(set_lib), "LD_PRELOAD=%s", lib_path());
	f = start_program(0, argv, env);
	cr_assert_eq(sscanf(f->ready, "ready %*d leaked %d", &leaked), 1, "%s", f->ready);
	cr_assert_gt(leaked, 0);
	socket_path(path, sizeof(path), sockdir, f->pid);
	wait_answering(path, f->pid, "gc_corpus");

	r = ask_json(f->pid, "collect", NULL);
	cr_assert_eq(reply_int(r, "collected"), leaked, "collected %lld of %d leaked blocks",
		     (long long)reply_int(r, "collected"), leaked);
	json_free(r);

	/* The fixture now checks, block by block, what was freed. */
	cr_assert(write(f->to, "go\n", 3) == 3);
	for (;;) {
		fixture_line(f, line, sizeof(line));
		if (!strncmp(line, "leaked ", 7))
			break;
		snprintf(wrong + strlen(wrong), sizeof(wrong) - strlen(wrong), "%s\n", line);
	}
	cr_assert_eq(waitpid(f->pid, &status, 0), f->pid);
	f->pid = 0;
	cr_assert(strstr(line, " wrong 0"), "%s\n%s", wrong, line);
	cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0, "status %#x: %s", status, line);
}

/* ---- 2. settings round trips --------------------------------------------- */

static bool enabled_of(pid_t pid, const char *verb)
{
	struct json *r = ask_json(pid, verb, NULL);
	const struct json *e = json_get(r, "enabled");
	bool on;

	cr_assert(e && (e->type == JSON_TRUE || e->type == JSON_FALSE));
	on = e->type == JSON_TRUE;
	json_free(r);
	return on;
}

Test(gcctl, enable_disable_isenabled)
{
	struct fixture *f = start_fixture(NULL);
	struct result *res;

	cr_assert(enabled_of(f->pid, "isenabled"));
	cr_assert_not(enabled_of(f->pid, "disable"));
	cr_assert_not(enabled_of(f->pid, "isenabled"));
	cr_assert_eq(stat_of(f->pid, "enabled"), 0);
	res = gcctl("-p", pid_arg(f->pid), "isenabled", NULL);
	cr_assert_str_eq(res->out, "enabled  false\n");
	cr_assert(enabled_of(f->pid, "enable"));
	cr_assert(enabled_of(f->pid, "IsEnabled"));
	cr_assert_eq(stat_of(f->pid, "enabled"), 1);
}

/* The growth trigger turned on, set and off from outside, and seen in
 * the statistics. */
Test(gcctl, growth_trigger)
{
	struct fixture *f = start_fixture(NULL);
	struct json *r;
	struct result *res;

	cr_assert_eq(ask_int(f->pid, "growth", NULL, "growth"), -1);
	r = ask_json(f->pid, "growth", "on");
	cr_assert_eq(reply_int(r, "growth"), 100);
	cr_assert_eq(reply_int(r, "previous"), -1);
	cr_assert_geq(reply_int(r, "growth_target"), 4 << 20);
	json_free(r);
	cr_assert_eq(stat_of(f->pid, "growth"), 100);
	r = ask_json(f->pid, "growth", "25%");
	cr_assert_eq(reply_int(r, "growth"), 25);
	cr_assert_eq(reply_int(r, "previous"), 100);
	json_free(r);
	res = gcctl("-p", pid_arg(f->pid), "growth", "lots", NULL);
	cr_assert_eq(res->status, 2, "%s", res->err);
	cr_assert_eq(ask_int(f->pid, "growth", NULL, "growth"), 25, "a bad value changed it");
	r = ask_json(f->pid, "growth", "off");
	cr_assert_eq(reply_int(r, "growth"), -1);
	cr_assert_eq(reply_int(r, "growth_target"), -1);
	json_free(r);
	cr_assert_eq(stat_of(f->pid, "growth_target"), -1);
}

Test(gcctl, byte_threshold)
{
	struct fixture *f = start_fixture(NULL);
	struct json *r;
	struct result *res;

	cr_assert_eq(ask_int(f->pid, "threshold", NULL, "threshold"), -1);
	r = ask_json(f->pid, "threshold", "64K");
	cr_assert_eq(reply_int(r, "threshold"), 65536);
	cr_assert_eq(reply_int(r, "previous"), -1);
	json_free(r);
	cr_assert_eq(ask_int(f->pid, "threshold", NULL, "threshold"), 65536);
	cr_assert_eq(stat_of(f->pid, "threshold"), 65536);

	res = gcctl("-p", pid_arg(f->pid), "threshold", "1M", NULL);
	cr_assert_eq(res->status, 0);
	cr_assert_str_eq(line_of(res->out, "threshold"), "threshold  1M (1048576 bytes)");
	cr_assert_str_eq(line_of(res->out, "previous"), "previous   64K (65536 bytes)");

	r = ask_json(f->pid, "threshold", "-1");
	cr_assert_eq(reply_int(r, "threshold"), -1);
	cr_assert_eq(reply_int(r, "previous"), 1048576);
	json_free(r);
	cr_assert_eq(ask_int(f->pid, "threshold", NULL, "threshold"), -1);
}

Test(gcctl, generation_thresholds)
{
	struct fixture *f = start_fixture(NULL);
	int64_t t[3];

	ask_triple(f->pid, "get-threshold", "threshold", t);
	cr_assert(t[0] == 0 && t[1] == 10 && t[2] == 10, "defaults %lld %lld %lld",
		  (long long)t[0], (long long)t[1], (long long)t[2]);
	json_free(ask_json(f->pid, "set-threshold", "700"));
	ask_triple(f->pid, "get_threshold", "threshold", t);
	cr_assert(t[0] == 700 && t[1] == 10 && t[2] == 10);

	cr_assert_eq(gcctl("-p", pid_arg(f->pid), "set-threshold", "100", "5", "3", NULL)->status, 0);
	ask_triple(f->pid, "get-threshold", "threshold", t);
	cr_assert(t[0] == 100 && t[1] == 5 && t[2] == 3);
	cr_assert_eq(stat_of(f->pid, "gen_threshold0"), 100);
	cr_assert_eq(stat_of(f->pid, "gen_threshold2"), 3);

	/* Refused by gcctl itself, so the process keeps its values. */
	cr_assert_eq(gcctl("-p", pid_arg(f->pid), "set-threshold", "-5", NULL)->status, 2);
	cr_assert_eq(gcctl("-p", pid_arg(f->pid), "set-threshold", "1", "2", "3", "4", NULL)->status, 2);
	ask_triple(f->pid, "get-threshold", "threshold", t);
	cr_assert(t[0] == 100 && t[1] == 5 && t[2] == 3);
}

Test(gcctl, debug_flags)
{
	struct fixture *f = start_fixture(NULL);
	struct result *res;

	cr_assert_eq(ask_int(f->pid, "get-debug", NULL, "debug"), 0);
	cr_assert_eq(ask_int(f->pid, "set-debug", "stats|saveall", "debug"),
		     GCSHIM_DEBUG_STATS | GCSHIM_DEBUG_SAVEALL);
	cr_assert_eq(ask_int(f->pid, "get-debug", NULL, "debug"), 33);
	res = gcctl("-p", pid_arg(f->pid), "get-debug", NULL);
	cr_assert_str_eq(res->out, "debug  33 (stats|saveall)\n");
	cr_assert_eq(ask_int(f->pid, "set-debug", "4", "debug"), GCSHIM_DEBUG_UNCOLLECTABLE);
	cr_assert_eq(ask_int(f->pid, "set-debug", "leak", "debug"), GCSHIM_DEBUG_LEAK);

	/* bad usage exits 2, whether gcctl or the process found it */
	res = gcctl("-p", pid_arg(f->pid), "set-debug", "bogus", NULL);
	cr_assert_eq(res->status, 2);
	cr_assert_str_empty(res->out);
	cr_assert(!strncmp(res->err, "gcctl: ", 7) && strstr(res->err, "bogus"), "%s", res->err);
	cr_assert_eq(strchr(res->err, '\n'), res->err + strlen(res->err) - 1, "not one line");
	res = gcctl("-p", pid_arg(f->pid), "--json", "set-debug", "bogus", NULL);
	cr_assert_eq(res->status, 2);
	cr_assert(strstr(res->out, "\"ok\":false"), "%s", res->out);
	cr_assert_eq(ask_int(f->pid, "get-debug", NULL, "debug"), GCSHIM_DEBUG_LEAK);
}

Test(gcctl, count_follows_live_allocations)
{
	struct fixture *f = start_fixture(NULL);
	int64_t before[3], after[3];

	fixture_do(f, "pid", NULL, 0);
	ask_triple(f->pid, "get-count", "count", before);
	for (int i = 0; i < 10; i++)
		fixture_do(f, "alloc 64", NULL, 0);
	ask_triple(f->pid, "get-count", "count", after);
	cr_assert_eq(after[0] - before[0], 10, "count0 went from %lld to %lld",
		     (long long)before[0], (long long)after[0]);
	for (int i = 0; i < 10; i++)
		fixture_do(f, "free", NULL, 0);
	ask_triple(f->pid, "get-count", "count", after);
	cr_assert_eq(after[0], before[0]);
}

/* ---- 3. stats --------------------------------------------------------------- */

Test(gcctl, stats_fields_are_consistent)
{
	struct fixture *f = start_fixture(NULL);
	struct json *r;
	const struct json *st;
	struct result *res;
	int64_t mem_alloc;

	fixture_do(f, "alloc 3000", NULL, 0);
	fixture_do(f, "pid", NULL, 0);
	r = ask_json(f->pid, "stats", NULL);
	st = json_get(r, "stats");
	cr_assert(st && st->type == JSON_OBJECT);
#define HAS_FIELD(name, desc) reply_int(st, #name);
	GCSHIM_STAT_FIELDS(HAS_FIELD)
#undef HAS_FIELD
	cr_assert_eq(reply_int(st, "allocations") - reply_int(st, "frees"),
		     reply_int(st, "live_blocks"));
	cr_assert_eq(reply_int(st, "bytes_allocated") - reply_int(st, "bytes_freed"),
		     reply_int(st, "mem_alloc"));
	cr_assert_geq(reply_int(st, "peak_mem_alloc"), reply_int(st, "mem_alloc"));
	cr_assert_eq(reply_int(st, "mem_free"), -1);
	cr_assert_eq(reply_int(st, "heap_limit"), 0);
	mem_alloc = reply_int(st, "mem_alloc");
	json_free(r);
	cr_assert_eq(ask_int(f->pid, "mem-alloc", NULL, "mem_alloc"), mem_alloc);

	res = gcctl("-p", pid_arg(f->pid), "stats", NULL);
	cr_assert_eq(res->status, 0);
#define HAS_ROW(name, desc)                                                     \
	cr_assert(strstr(line_of(res->out, #name), "  " desc), "row %s", #name);
	GCSHIM_STAT_FIELDS(HAS_ROW)
#undef HAS_ROW
	cr_assert(strstr(line_of(res->out, "heap_reserved"), "G  "), "%s", res->out);
	cr_assert(strstr(line_of(res->out, "gen_threshold1"), " 10  "), "%s", res->out);
}

/* ---- 4. other users ----------------------------------------------------------- */

/* As nobody, connects to path and checks the first line received. */
static void connect_as_nobody(const char *path, const char *expect)
{
	int status;
	pid_t pid = fork();

	cr_assert(pid >= 0);
	if (pid == 0) {
		char buf[256];
		size_t len = 0;
		char line[256];
		int fd;

		become(NOBODY);
		fd = try_connect(path);
		if (fd < 0)
			_exit(2);
		if (!read_line_fd(fd, buf, &len, sizeof(buf), line, sizeof(line), WAIT_MS))
			_exit(3);
		_exit(strcmp(line, expect) ? 4 : 0);
	}
	cr_assert_eq(waitpid(pid, &status, 0), pid);
	cr_assert(WIFEXITED(status), "child died");
	cr_assert_eq(WEXITSTATUS(status), 0,
		     "nobody: 2 cannot connect, 3 no reply, 4 wrong reply; got %d",
		     WEXITSTATUS(status));
}

Test(gcctl, other_user_is_refused)
{
	struct fixture *f;
	char path[PATH_MAX], set_dir[PATH_MAX + 32];
	char *env[] = { set_dir, NULL };
	char *argv[] = { gcctl_path(), "-p", NULL, "mem-alloc", NULL };
	struct result res;

	if (geteuid() != 0)
		cr_skip_test("needs root to act as another user");
	f = start_fixture(NULL);
	socket_path(path, sizeof(path), sockdir, f->pid);
	cr_assert_eq(stat_of(f->pid, "ctl_refused"), 0);

	/* The library checks its directory only when it starts: opening it
	 * now lets another user reach the socket and meet the peer check. */
	cr_assert(chmod(sockdir, 0711) == 0 && chmod(path, 0666) == 0);
	connect_as_nobody(path, "{\"ok\":false,\"error\":\"permission denied\"}");
	cr_assert_eq(stat_of(f->pid, "ctl_refused"), 1);
	fixture_do(f, "pid", NULL, 0);
	cr_assert_eq(gcctl("-p", pid_arg(f->pid), "mem-alloc", NULL)->status, 0);

	snprintf(set_dir, sizeof(set_dir), "GCSHIM_SOCKET_DIR=%s", sockdir);
	argv[2] = (char *)pid_arg(f->pid);
	run_as(&res, NOBODY, env, argv);
	snprintf(path, sizeof(path), "gcctl: permission denied: process %d belongs to another user\n",
		 (int)f->pid);
	cr_assert_eq(res.status, 4, "exit %d: %s", res.status, res.err);
	cr_assert_str_eq(res.err, path);
	fixture_do(f, "pid", NULL, 0);
}

/* Clients past the limit are told so, whether the refusal comes before
 * gcctl's request is sent or after: many attempts meet both orders. */
Test(gcctl, too_many_clients_is_said_and_the_process_serves_after)
{
	struct fixture *f = start_fixture(NULL);
	char path[PATH_MAX];
	int held[8], n = 0;
	struct result *r;

	socket_path(path, sizeof(path), sockdir, f->pid);
	for (; n < 8; n++)
		cr_assert((held[n] = try_connect(path)) >= 0);
	fixture_do(f, "pid", NULL, 0);   /* the process took them all in by now */
	for (int i = 0; i < 20; i++) {
		r = gcctl("-p", pid_arg(f->pid), "mem-alloc", NULL);
		cr_assert_neq(r->status, 0, "answered past the limit: %s", r->out);
		cr_assert(strstr(r->err, "too many clients"), "attempt %d, exit %d: %s", i,
			  r->status, r->err);
	}
	while (n > 0)
		close(held[--n]);
	fixture_do(f, "pid", NULL, 0);
	r = gcctl("-p", pid_arg(f->pid), "mem-alloc", NULL);
	cr_assert_eq(r->status, 0, "exit %d: %s", r->status, r->err);
}

/* ---- 5. fork and exec ------------------------------------------------------- */

Test(gcctl, forked_child_has_its_own_socket)
{
	struct fixture *f = start_fixture(NULL);
	char path[PATH_MAX], answer[32];
	pid_t child;

	fixture_do(f, "fork", answer, sizeof(answer));
	child = atoi(answer);
	cr_assert_gt(child, 0);
	strays[n_strays++] = child;
	cr_assert_neq(child, f->pid);
	socket_path(path, sizeof(path), sockdir, child);
	wait_answering(path, child, "gcctl_mp");
	json_free(ask_json(child, "mem-alloc", NULL));
	json_free(ask_json(child, "disable", NULL));
	/* Settings are per process from the fork on. */
	cr_assert_eq(stat_of(child, "enabled"), 0);
	cr_assert_eq(stat_of(f->pid, "enabled"), 1);
	fixture_do(f, "pid", NULL, 0);
}

Test(gcctl, exec_serves_again_under_the_same_pid)
{
	struct fixture *f = start_fixture(NULL);
	char path[PATH_MAX], line[64], expect[64];

	cr_assert(write(f->to, "exec gcctl_mp2\n", 15) == 15);
	fixture_line(f, line, sizeof(line));
	snprintf(expect, sizeof(expect), "ready %d", (int)f->pid);
	cr_assert_str_eq(line, expect);
	socket_path(path, sizeof(path), sockdir, f->pid);
	wait_answering(path, f->pid, "gcctl_mp2");
	json_free(ask_json(f->pid, "stats", NULL));
	cr_assert_gt(fixture_num(f, "alloc 10"), 0);
}

/* ---- 6. junk on the socket ----------------------------------------------------- */

/* Sends request raw and expects an error reply. */
static void expect_error(struct conn *c, const char *request, size_t len, const char *says)
{
	struct json *r = conn_ask(c, request, len);

	cr_assert_not(reply_ok(r), "'%.*s' was accepted", (int)len, request);
	if (says)
		cr_assert(strstr(reply_str(r, "error"), says), "error '%s' lacks '%s'",
			  reply_str(r, "error"), says);
	json_free(r);
}

Test(gcctl, junk_requests_get_errors)
{
	struct fixture *f = start_fixture(NULL);
	char path[PATH_MAX], line[256], *longline;
	int64_t bad_before;
	struct conn c;
	struct json *r;
	size_t len = 0;
	ssize_t n;

	socket_path(path, sizeof(path), sockdir, f->pid);
	bad_before = stat_of(f->pid, "ctl_bad_requests");
	c.fd = try_connect(path);
	c.len = 0;
	cr_assert(c.fd >= 0);
	expect_error(&c, "stats", 5, "hello");
	expect_error(&c, "hello 99", 8, "protocol");
	expect_error(&c, "hello", 5, "usage");
	r = conn_ask(&c, "hello 1", 7);
	cr_assert(reply_ok(r));
	cr_assert_eq(reply_int(r, "protocol"), 1);
	json_free(r);
	expect_error(&c, "\xff\xfe\x80garbage \x81", 12, NULL);
	expect_error(&c, "mem\x01" "alloc", 9, "control");
	expect_error(&c, "mem-alloc\x1b[2J", 13, "control");
	expect_error(&c, "a\0b", 3, NULL);
	expect_error(&c, "frobnicate now", 14, "unknown request 'frobnicate'");
	expect_error(&c, "", 0, "empty");
	expect_error(&c, "a b c d e f g h i j", 19, "too many");
	expect_error(&c, "threshold lots", 14, "bad threshold");
	r = conn_ask(&c, "mem_alloc", 9);
	cr_assert(reply_ok(r), "the connection no longer works");
	json_free(r);
	close(c.fd);
	cr_assert_eq(stat_of(f->pid, "ctl_bad_requests") - bad_before, 11);

	/* Over-long: one error line, then the connection ends. */
	c.fd = try_connect(path);
	c.len = 0;
	cr_assert(c.fd >= 0);
	longline = malloc(5001);
	memset(longline, 'x', 5000);
	longline[5000] = '\n';
	conn_send(&c, longline, 5001);
	free(longline);
	cr_assert(read_line_fd(c.fd, c.buf, &len, sizeof(c.buf), line, sizeof(line), WAIT_MS));
	cr_assert(strstr(line, "\"ok\":false") && strstr(line, "longer"), "%s", line);
	do
		n = read(c.fd, line, sizeof(line));
	while (n > 0);
	cr_assert(n == 0 || errno == ECONNRESET, "read: %s", strerror(errno));
	close(c.fd);

	cr_assert_eq(stat_of(f->pid, "ctl_bad_requests") - bad_before, 12);
	fixture_do(f, "pid", NULL, 0);
	cr_assert_eq(gcctl("-p", pid_arg(f->pid), "mem-alloc", NULL)->status, 0);
}

/* ---- 7. gcctl's own errors ------------------------------------------------------ */

static pid_t dead_pid(void)
{
	pid_t pid = fork();

	cr_assert(pid >= 0);
	if (pid == 0)
		_exit(0);
	cr_assert_eq(waitpid(pid, NULL, 0), pid);
	return pid;
}

static void expect_failure(struct result *res, int status, const char *message)
{
	cr_assert_eq(res->status, status, "exit %d instead of %d; stderr: %s", res->status, status,
		     res->err);
	cr_assert_str_empty(res->out);
	cr_assert_eq(strncmp(res->err, "gcctl: ", 7), 0, "stderr: %s", res->err);
	if (message)
		cr_assert_str_eq(res->err, message);
}

Test(gcctl, usage_errors)
{
	struct fixture *f = start_fixture(NULL);
	const char *p = pid_arg(f->pid);
	char expect[256];
	pid_t gone = dead_pid();
	struct result *res;
	struct json *r;

	snprintf(expect, sizeof(expect), "gcctl: no such process %d\n", (int)gone);
	expect_failure(gcctl("-p", pid_arg(gone), "mem-alloc", NULL), 3, expect);
	snprintf(expect, sizeof(expect),
		 "gcctl: process %d is not running under gcshim (no control socket)\n", (int)getpid());
	expect_failure(gcctl("-p", pid_arg(getpid()), "stats", NULL), 3, expect);

	expect_failure(gcctl("-p", p, "threshold", "12Q", NULL), 2, NULL);
	expect_failure(gcctl("-p", p, "threshold", "1", "2", NULL), 2, NULL);
	expect_failure(gcctl("-p", p, "set-debug", NULL), 2, NULL);
	expect_failure(gcctl("-p", p, "collect", "3", NULL), 2,
		       "gcctl: invalid generation 3 (must be 0, 1 or 2)\n");
	expect_failure(gcctl("-p", "12x", "mem-alloc", NULL), 2, NULL);
	expect_failure(gcctl("-p", p, NULL), 2, NULL);
	expect_failure(gcctl("--frobnicate", NULL), 2, NULL);
	expect_failure(gcctl("-p", p, "ps", NULL), 2, NULL);
	expect_failure(gcctl("-p", p, "stats", "now", NULL), 2, NULL);
	expect_failure(gcctl("-p", p, "threshold", "1 2", NULL), 2, NULL);

	/* Verbs gcctl does not know are refused before any process is
	 * asked; send passes them, and the process refuses them as usage. */
	expect_failure(gcctl("-p", p, "frobnicate", NULL), 2,
		       "gcctl: unknown verb 'frobnicate' (gcctl help lists them; gcctl send "
		       "passes any request to the process)\n");
	expect_failure(gcctl("-p", p, "send", "frobnicate", NULL), 2,
		       "gcctl: unknown request 'frobnicate'\n");
	r = ask_json(f->pid, "collect", "1");
	cr_assert_eq(reply_int(r, "generation"), 1);
	json_free(r);

	res = gcctl("--help", NULL);
	cr_assert_eq(res->status, 0);
	cr_assert(strstr(res->out, "usage: gcctl"));
	res = gcctl("--version", NULL);
	cr_assert_eq(res->status, 0);
	cr_assert(strstr(res->out, GCSHIM_VERSION), "%s", res->out);
	fixture_do(f, "pid", NULL, 0);
}

/* A socket file nobody listens on, named after pid. */
static void plant_stale_socket(pid_t pid)
{
	struct sockaddr_un addr = { .sun_family = AF_UNIX };
	int fd = socket(AF_UNIX, SOCK_STREAM, 0);

	cr_assert(fd >= 0);
	socket_path(addr.sun_path, sizeof(addr.sun_path), sockdir, pid);
	cr_assert(bind(fd, (struct sockaddr *)&addr, sizeof(addr)) == 0, "bind: %s",
		  strerror(errno));
	close(fd);
}

/* The ps row of pid, or NULL. */
static const char *ps_row(const char *out, pid_t pid)
{
	static char row[512];

	for (const char *s = out; *s; s = strchr(s, '\n') ? strchr(s, '\n') + 1 : s + strlen(s)) {
		int n;

		snprintf(row, sizeof(row), "%.*s", (int)strcspn(s, "\n"), s);
		if (sscanf(row, "%d", &n) == 1 && n == pid)
			return row;
	}
	return NULL;
}

Test(gcctl, ps_lists_processes_and_removes_stale_sockets)
{
	struct fixture *f = start_fixture(NULL);
	pid_t gone = dead_pid(), alive = getpid();
	char path[PATH_MAX];
	struct result *res;
	const char *row;

	plant_stale_socket(gone);
	plant_stale_socket(alive);
	res = gcctl("ps", NULL);
	cr_assert_eq(res->status, 0, "%s", res->err);
	cr_assert(strstr(res->out, "PID") && strstr(res->out, "COMMAND") &&
		  strstr(res->out, "MEM_ALLOC"), "%s", res->out);
	row = ps_row(res->out, f->pid);
	cr_assert(row, "fixture %d not listed:\n%s", (int)f->pid, res->out);
	cr_assert(strstr(row, "gcctl_mp"), "%s", row);
	cr_assert_not(strstr(row, "?"), "no MEM_ALLOC: %s", row);
	cr_assert_null(ps_row(res->out, gone));
	cr_assert_null(ps_row(res->out, alive));
	socket_path(path, sizeof(path), sockdir, gone);
	cr_assert_neq(access(path, F_OK), 0, "stale socket of a dead process kept");
	socket_path(path, sizeof(path), sockdir, alive);
	cr_assert_neq(access(path, F_OK), 0, "socket nobody listens on kept");
	socket_path(path, sizeof(path), sockdir, f->pid);
	cr_assert_eq(access(path, F_OK), 0, "live socket removed");
}

/* ---- without -p ----------------------------------------------------------- */

/* gcctl as a user of its own, so that only this test's processes count. */
static struct result *gcctl_as(uid_t uid, const char *verb)
{
	static struct result res;
	char *argv[] = { gcctl_path(), (char *)verb, NULL };

	run_as(&res, uid, NULL, argv);
	return &res;
}

static struct fixture *start_fixture_as(uid_t uid)
{
	char set_lib[PATH_MAX + 16], path[PATH_MAX];
	char *env[] = { set_lib, NULL };
	char *argv[] = { fixture_path(), NULL };
	struct fixture *f;

	snprintf(set_lib, sizeof(set_lib), "LD_PRELOAD=%s", lib_path());
	f = start_program(uid, argv, env);
	socket_path(path, sizeof(path), uid_dir, f->pid);
	wait_answering(path, f->pid, NULL);
	return f;
}

Test(gcctl, without_pid_picks_the_only_process)
{
	uid_t uid = 2000000000u + (uid_t)getpid() % 1000000u;
	struct fixture *one, *two;
	struct result *res;
	char expect[64];

	if (geteuid() != 0)
		cr_skip_test("needs root to act as another user");
	snprintf(uid_dir, sizeof(uid_dir), "/tmp/gcshim-%u", (unsigned)uid);
	remove_tree(uid_dir);

	expect_failure(gcctl_as(uid, "mem-alloc"), 3, "gcctl: no process is running under gcshim\n");

	one = start_fixture_as(uid);
	res = gcctl_as(uid, "disable");
	cr_assert_eq(res->status, 0, "%s", res->err);
	cr_assert_str_eq(res->out, "enabled  false\n");
	/* root reaches the process in its owner's directory. */
	cr_assert_not(enabled_of(one->pid, "isenabled"));

	two = start_fixture_as(uid);
	res = gcctl_as(uid, "mem-alloc");
	cr_assert_eq(res->status, 2, "%s", res->err);
	snprintf(expect, sizeof(expect), "%d (", (int)one->pid);
	cr_assert(strstr(res->err, expect), "%s", res->err);
	snprintf(expect, sizeof(expect), "%d (", (int)two->pid);
	cr_assert(strstr(res->err, expect), "%s", res->err);
	cr_assert(strstr(res->err, "-p"), "%s", res->err);
}

/* ---- gcctl run -------------------------------------------------------------- */

static struct fixture *start_with_run(char **options, char *const *env)
{
	char *argv[32] = { gcctl_path(), "run" };
	int n = 2;
	struct fixture *f;
	char path[PATH_MAX];

	for (; *options; options++)
		argv[n++] = *options;
	argv[n++] = "--";
	argv[n++] = fixture_path();
	argv[n] = NULL;
	f = start_program(0, argv, env);
	socket_path(path, sizeof(path), sockdir, f->pid);
	return f;
}

static void same_file(const char *a, const char *b)
{
	char ra[PATH_MAX], rb[PATH_MAX];

	cr_assert(realpath(a, ra) && realpath(b, rb), "%s or %s does not exist", a, b);
	cr_assert_str_eq(ra, rb);
}

Test(gcctl, run_sets_the_environment)
{
	char *options[] = { "--heap-limit", "64M", "--threshold", "1M", "--gen-threshold",
			    "100,5,3", "--debug", "stats", "--disable", "--socket-dir", sockdir,
			    "-e", "GCSHIM_ARENAS=2", NULL };
	char *env[] = { "LD_PRELOAD=libm.so.6", NULL };
	struct fixture *f = start_with_run(options, env);
	char path[PATH_MAX], preload[PATH_MAX + 64], *colon;
	int64_t t[3];

	socket_path(path, sizeof(path), sockdir, f->pid);
	wait_answering(path, f->pid, "gcctl_mp");
	fixture_do(f, "env LD_PRELOAD", preload, sizeof(preload));
	colon = strchr(preload, ':');
	cr_assert(colon && !strcmp(colon, ":libm.so.6"), "LD_PRELOAD=%s", preload);
	*colon = '\0';
	same_file(preload, lib_path());

	cr_assert_eq(stat_of(f->pid, "heap_limit"), 64 * MIB);
	cr_assert_eq(stat_of(f->pid, "threshold"), MIB);
	cr_assert_eq(stat_of(f->pid, "debug"), GCSHIM_DEBUG_STATS);
	cr_assert_eq(stat_of(f->pid, "enabled"), 0);
	ask_triple(f->pid, "get-threshold", "threshold", t);
	cr_assert(t[0] == 100 && t[1] == 5 && t[2] == 3);
	fixture_do(f, "env GCSHIM_ARENAS", preload, sizeof(preload));
	cr_assert_str_eq(preload, "2");
}

Test(gcctl, run_finds_the_library_of_its_build_tree)
{
	char *options[] = { "--socket-dir", sockdir, NULL };
	char *env[] = { "-GCSHIM_LIB", NULL };
	struct fixture *f = start_with_run(options, env);
	char preload[PATH_MAX + 64];

	fixture_do(f, "env LD_PRELOAD", preload, sizeof(preload));
	same_file(preload, lib_path());
}

Test(gcctl, run_without_socket)
{
	char *options[] = { "--no-socket", "--socket-dir", sockdir, NULL };
	struct fixture *f = start_with_run(options, NULL);
	char expect[128];

	char socket_opt[16];

	/* What turns the socket off reached the process, and the socket it
	 * would have served is not there. */
	fixture_do(f, "env GCSHIM_SOCKET", socket_opt, sizeof(socket_opt));
	cr_assert_str_eq(socket_opt, "0");
	fixture_do(f, "pid", NULL, 0);
	snprintf(expect, sizeof(expect),
		 "gcctl: process %d is not running under gcshim (no control socket)\n", (int)f->pid);
	expect_failure(gcctl("-p", pid_arg(f->pid), "mem-alloc", NULL), 3, expect);
}

Test(gcctl, run_usage_errors)
{
	expect_failure(gcctl("run", NULL), 2, NULL);
	expect_failure(gcctl("run", "--", NULL), 2, NULL);
	expect_failure(gcctl("run", "--heap-limit", "lots", "--", "true", NULL), 2, NULL);
	expect_failure(gcctl("run", "--gen-threshold", "1,,2", "--", "true", NULL), 2, NULL);
	expect_failure(gcctl("run", "-e", "PATH=/", "--", "true", NULL), 2, NULL);
	expect_failure(gcctl("run", "--frobnicate", "--", "true", NULL), 2, NULL);
	expect_failure(gcctl("run", "--", "/nonexistent/program", NULL), 127, NULL);
	cr_assert_eq(gcctl("run", "--", "/bin/true", NULL)->status, 0);
	cr_assert_eq(gcctl("run", "--", "/bin/false", NULL)->status, 1);
}

/* ---- timeouts ---------------------------------------------------------------- */

Test(gcctl, stopped_process_times_out)
{
	struct fixture *f = start_fixture(NULL);
	long long start, took;
	struct result *res;
	int status;

	/* Reported once every thread, the control thread too, has stopped. */
	cr_assert(kill(f->pid, SIGSTOP) == 0);
	cr_assert_eq(waitpid(f->pid, &status, WUNTRACED), f->pid);
	cr_assert(WIFSTOPPED(status));
	start = now_ms();
	res = gcctl("-p", pid_arg(f->pid), "mem-alloc", NULL);
	took = now_ms() - start;
	kill(f->pid, SIGCONT);
	expect_failure(res, 3, NULL);
	cr_assert(strstr(res->err, "did not answer within 5 s"), "%s", res->err);
	cr_assert(took >= 4500 && took < 20000, "gcctl gave up after %lld ms", took);
	fixture_do(f, "pid", NULL, 0);
	json_free(ask_json(f->pid, "mem-alloc", NULL));
}

/* ---- the JSON reader ------------------------------------------------------------ */

static struct json *parse(const char *text)
{
	char err[128];
	struct json *v = json_parse(text, strlen(text), err, sizeof(err));

	cr_assert(v, "'%s' rejected: %s", text, err);
	return v;
}

static void rejects(const char *text, size_t len)
{
	char err[128] = "";
	struct json *v = json_parse(text, len, err, sizeof(err));

	cr_assert_null(v, "'%.*s' accepted", (int)len, text);
	cr_assert_str_neq(err, "", "no message for '%.*s'", (int)len, text);
}

Test(json, values)
{
	struct json *v = parse(" {\"a\":[1,-2,true,false,null,\"x\"],\"b\":{\"c\":{}},\"d\":[]} ");
	const struct json *a = json_get(v, "a");
	int64_t n;

	cr_assert(a && a->type == JSON_ARRAY && a->count == 6);
	cr_assert(json_int(&a->items[0], &n) && n == 1);
	cr_assert(json_int(&a->items[1], &n) && n == -2);
	cr_assert_eq(a->items[2].type, JSON_TRUE);
	cr_assert_eq(a->items[3].type, JSON_FALSE);
	cr_assert_eq(a->items[4].type, JSON_NULL);
	cr_assert_str_eq(a->items[5].str, "x");
	cr_assert_eq(json_get(json_get(v, "b"), "c")->type, JSON_OBJECT);
	cr_assert_eq(json_get(v, "d")->count, 0);
	cr_assert_null(json_get(v, "e"));
	cr_assert_null(json_get(a, "a"));
	json_free(v);

	v = parse("[9223372036854775807,-9223372036854775808,0]");
	cr_assert_eq(v->items[0].num, INT64_MAX);
	cr_assert_eq(v->items[1].num, INT64_MIN);
	json_free(v);
}

Test(json, string_escapes)
{
	struct json *v = parse("\"q\\\"b\\\\s\\/n\\nt\\tu\\u00e9\\u20ac\\ud83d\\ude00\\u001b\"");

	cr_assert_str_eq(v->str, "q\"b\\s/n\nt\tu\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80\x1b");
	json_free(v);
	v = parse("\"raw \xff bytes\"");
	cr_assert_str_eq(v->str, "raw \xff bytes");
	json_free(v);
}

Test(json, malformed)
{
	char deep[200];

	rejects("", 0);
	rejects("{", 1);
	rejects("{\"a\"}", 5);
	rejects("{\"a\":1,}", 8);
	rejects("[1 2]", 5);
	rejects("[1,]", 4);
	rejects("1.5", 3);
	rejects("1e3", 3);
	rejects("01", 2);
	rejects("-", 1);
	rejects("9223372036854775808", 19);
	rejects("tru", 3);
	rejects("nul", 3);
	rejects("\"abc", 4);
	rejects("\"a\nb\"", 5);
	rejects("\"\\x\"", 4);
	rejects("\"\\u12\"", 6);
	rejects("\"\\ud83d\"", 8);
	rejects("\"\\ude00\"", 8);
	rejects("\"\\u0000\"", 8);
	rejects("{} {}", 5);
	rejects("{}\0", 3);
	memset(deep, '[', sizeof(deep));
	rejects(deep, sizeof(deep));
}

/* With backtraces on, is-tracked names where the block was allocated:
 * the fixture's do_alloc, in its own source file. */
Test(gcctl, is_tracked_names_the_allocation_site)
{
	char *env[] = { "GCSHIM_BACKTRACE=8", NULL };
	struct fixture *f = start_fixture(env);
	char answer[64], pid[16], *address;
	struct result *res;

	fixture_do(f, "alloc 1000", answer, sizeof(answer));
	address = strchr(answer, ' ');
	cr_assert(address, "no address in '%s'", answer);
	snprintf(pid, sizeof(pid), "%d", (int)f->pid);
	res = gcctl("-p", pid, "is-tracked", address + 1, NULL);
	cr_assert_eq(res->status, 0, "%s", res->err);
	cr_expect(strstr(res->out, "allocated from:"), "%s", res->out);
	cr_expect(strstr(res->out, "in do_alloc ") && strstr(res->out, "gcctl_mp.c:"), "%s",
		  res->out);
}

/* get-objects --summary groups blocks by allocation site too: the
 * fixture's do_alloc leads with the blocks it made. */
Test(gcctl, objects_summary_groups_by_site)
{
	char *env[] = { "GCSHIM_BACKTRACE=8", NULL };
	struct fixture *f = start_fixture(env);
	char pid[16];
	struct result *res;

	for (int i = 0; i < 20; i++)
		fixture_do(f, "alloc 100000", NULL, 0);
	snprintf(pid, sizeof(pid), "%d", (int)f->pid);
	res = gcctl("-p", pid, "get-objects", "--summary", NULL);
	cr_assert_eq(res->status, 0, "%s", res->err);
	cr_expect(strstr(res->out, "allocated from:\n    #0 ") &&
		  strstr(strstr(res->out, "allocated from:"), "in do_alloc "),
		  "the largest site is not do_alloc:\n%s", res->out);
}

/* ---- the human output of inspection verbs ------------------------------------ */

/* gcctl ARGS... started in the background, its output on a pipe. */
static pid_t gcctl_background(int *out, char *const argv[])
{
	int p[2];
	pid_t pid;

	cr_assert(pipe(p) == 0);
	pid = fork();
	cr_assert(pid >= 0);
	if (pid == 0) {
		dup2(p[1], 1);
		dup2(p[1], 2);
		close(p[0]);
		execv(gcctl_path(), argv);
		_exit(127);
	}
	close(p[1]);
	*out = p[0];
	return pid;
}

static void read_all(int fd, char *buf, size_t cap)
{
	size_t len = 0;
	ssize_t n;

	while (len + 1 < cap && (n = read(fd, buf + len, cap - 1 - len)) > 0)
		len += (size_t)n;
	buf[len] = '\0';
}

static int count_lines_with(const char *out, const char *prefix)
{
	int n = 0;

	for (const char *s = out; *s; s = strchr(s, '\n') ? strchr(s, '\n') + 1 : s + strlen(s))
		n += !strncmp(s, prefix, strlen(prefix));
	return n;
}

/* Event lines that end a collection, after their clock time. */
static int mon_count_stops(const char *out)
{
	int n = 0;

	for (const char *s = out; *s; s = strchr(s, '\n') ? strchr(s, '\n') + 1 : s + strlen(s))
		n += strlen(s) > 14 && s[2] == ':' && !strncmp(s + 12, "  stop   generation", 19);
	return n;
}

/* GCSHIM_DEBUG=saveall from the environment keeps what a collection
 * finds: gcctl lists it, shows its bytes with --hexdump and frees it. */
Test(gcctl, saveall_from_the_environment_and_garbage_hexdump)
{
	char *env[] = { "GCSHIM_DEBUG=saveall", NULL };
	struct fixture *f = start_fixture(env);
	const char *p = pid_arg(f->pid);
	struct result *res;
	char block[64], want[128];
	size_t usable;

	cr_assert_eq(stat_of(f->pid, "debug"), GCSHIM_DEBUG_SAVEALL);
	fixture_do(f, "alloc 100", block, sizeof(block));
	cr_assert_eq(sscanf(block, "%zu %63s", &usable, block), 2);
	fixture_do(f, "drop", NULL, 0);
	res = gcctl("-p", p, "collect", NULL);
	cr_assert_eq(res->status, 0, "%s", res->err);
	res = gcctl("-p", p, "garbage", "--hexdump", "8", NULL);
	cr_assert_eq(res->status, 0, "%s", res->err);
	snprintf(want, sizeof(want), "%s ", block);
	cr_assert(strstr(res->out, want) &&
		  strstr(strstr(res->out, want), " a5a5a5a5a5a5a5a5\n"),
		  "no line for %s with its first 8 bytes in:\n%s", block, res->out);
	cr_assert(strstr(line_of(res->out, "count"), " 1"), "%s", res->out);
	res = gcctl("-p", p, "garbage", "--free", NULL);
	cr_assert_eq(res->status, 0, "%s", res->err);
	cr_assert_eq(ask_int(f->pid, "garbage", NULL, "count"), 0);
	expect_failure(gcctl("-p", p, "garbage", "--hexdump", "0", NULL), 2, NULL);
}

Test(gcctl, freeze_counts_and_get_referrers_names_the_holder)
{
	struct fixture *f = start_fixture(NULL);
	const char *p = pid_arg(f->pid);
	struct result *res;
	char block[64];
	size_t usable;
	long long frozen, count, unfrozen;

	fixture_do(f, "alloc 300", block, sizeof(block));
	cr_assert_eq(sscanf(block, "%zu %63s", &usable, block), 2);
	res = gcctl("-p", p, "get-referrers", block, NULL);
	cr_assert_eq(res->status, 0, "%s", res->err);
	/* the fixture keeps its newest block in a global: its data holds it */
	cr_assert(strstr(res->out, block) && strstr(res->out, "data of ") &&
		  strstr(res->out, "gcctl_mp+0x"), "%s", res->out);
	cr_assert(count_lines_with(res->out, block) >= 1 && strstr(res->out, " referrers"),
		  "%s", res->out);

	res = gcctl("-p", p, "freeze", NULL);
	cr_assert_eq(res->status, 0, "%s", res->err);
	cr_assert_eq(sscanf(line_of(res->out, "frozen"), "frozen %lld", &frozen), 1);
	cr_assert_geq(frozen, 1);
	res = gcctl("-p", p, "get-freeze-count", NULL);
	cr_assert_eq(sscanf(line_of(res->out, "freeze_count"), "freeze_count %lld", &count), 1);
	cr_assert_eq(count, frozen);
	/* a frozen block is left out of collections: dropped, it stays */
	fixture_do(f, "drop", NULL, 0);
	cr_assert_eq(ask_int(f->pid, "collect", NULL, "collected"), 0);
	res = gcctl("-p", p, "unfreeze", NULL);
	cr_assert_eq(sscanf(line_of(res->out, "unfrozen"), "unfrozen %lld", &unfrozen), 1);
	cr_assert_eq(unfrozen, frozen);
	cr_assert_geq(ask_int(f->pid, "collect", NULL, "collected"), 1);
}

Test(gcctl, watch_prints_each_collection_and_stops_after_count)
{
	struct fixture *f = start_fixture(NULL);
	char *argv[] = { gcctl_path(), "-p", (char *)pid_arg(f->pid), "watch", "--count", "2", NULL };
	char out[4096];
	int fd, status;
	pid_t w = gcctl_background(&fd, argv);

	/* collections until the watcher has seen two: it may connect late */
	while (waitpid(w, &status, WNOHANG) == 0) {
		gcctl("-p", pid_arg(f->pid), "collect", "0", NULL);
		sleep_ms(100);
	}
	read_all(fd, out, sizeof(out));
	close(fd);
	cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0, "watch: %#x\n%s", status, out);
	cr_assert(strstr(out, "start  generation 0"), "%s", out);
	cr_assert(strstr(out, "stop   generation 0: "), "%s", out);
	cr_assert(strstr(out, " collected (") && strstr(out, "pause "), "%s", out);
	/* each event line starts with its clock time, "14:03:27.512  " */
	cr_assert_eq(mon_count_stops(out), 2, "%s", out);
}

/* ---- options that act at start-up ------------------------------------------- */

/* Whether the process handles signal sig (its SigCgt mask). */
static bool catches(pid_t pid, int sig)
{
	char path[64], line[256];
	unsigned long long mask = 0;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
	f = fopen(path, "r");
	cr_assert(f);
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "SigCgt: %llx", &mask) == 1)
			break;
	fclose(f);
	return mask >> (sig - 1) & 1;
}

Test(gcctl, heap_reserve_arenas_and_signal_take_effect)
{
	char *env[] = { "GCSHIM_HEAP_RESERVE=1G", "GCSHIM_ARENAS=3", "GCSHIM_SIGNAL=SIGRTMIN+5",
			NULL };
	struct fixture *plain = start_fixture(NULL), *f = start_fixture(env);

	cr_assert_eq(stat_of(plain->pid, "heap_reserved"), 256LL << 30);
	cr_assert_eq(stat_of(f->pid, "heap_reserved"), 1LL << 30);
	/* one arena per thread that allocated, up to the three allowed; by
	 * default one per processor */
	{
		int64_t threads = stat_of(f->pid, "threads");
		int64_t cpus = sysconf(_SC_NPROCESSORS_ONLN);

		cr_assert_eq(stat_of(f->pid, "arenas"), threads < 3 ? threads : 3);
		cr_assert_leq(stat_of(plain->pid, "arenas"), cpus);
	}
	cr_assert(catches(plain->pid, SIGRTMAX - 3) && !catches(plain->pid, SIGRTMIN + 5));
	cr_assert(catches(f->pid, SIGRTMIN + 5) && !catches(f->pid, SIGRTMAX - 3));
	/* and collections stop threads with it */
	fixture_do(f, "alloc 100", NULL, 0);
	fixture_do(f, "drop", NULL, 0);
	cr_assert_geq(ask_int(f->pid, "collect", NULL, "collected"), 1);
}

/* jemalloc's own settings change how it picks arenas: blocks still come
 * from the shim's range, where collections find them. */
Test(gcctl, malloc_conf_changes_nothing_the_collector_relies_on)
{
	char *env[] = { "MALLOC_CONF=percpu_arena:percpu,tcache:false,narenas:4", NULL };
	struct fixture *f = start_fixture(env);
	char block[64];
	size_t usable;
	struct json *r;

	fixture_do(f, "alloc 100", block, sizeof(block));
	cr_assert_eq(sscanf(block, "%zu %63s", &usable, block), 2);
	r = ask_json(f->pid, "is-tracked", block);
	cr_assert(json_get(r, "tracked")->type == JSON_TRUE, "%s is not tracked", block);
	json_free(r);
	fixture_do(f, "drop", NULL, 0);
	cr_assert_geq(ask_int(f->pid, "collect", NULL, "collected"), 1);
	r = ask_json(f->pid, "is-tracked", block);
	cr_assert(json_get(r, "tracked")->type == JSON_FALSE, "%s is still live", block);
	json_free(r);
}

/* Without GCSHIM_SOCKET_DIR the socket is $XDG_RUNTIME_DIR/gcshim/PID.sock,
 * in a directory made 0700, and gcctl finds it there. */
Test(gcctl, socket_under_xdg_runtime_dir)
{
	char xdg[] = "/tmp/gcctl-xdg-XXXXXX", set_xdg[64], set_lib[PATH_MAX + 16];
	char path[PATH_MAX], dir[PATH_MAX / 2];
	char *env[] = { set_xdg, set_lib, NULL };
	char *argv[] = { fixture_path(), NULL };
	struct fixture *f;
	struct result *res;
	struct stat st;

	cr_assert(mkdtemp(xdg));
	snprintf(set_xdg, sizeof(set_xdg), "XDG_RUNTIME_DIR=%s", xdg);
	snprintf(set_lib, sizeof(set_lib), "LD_PRELOAD=%s", lib_path());
	f = start_program(0, argv, env);
	snprintf(dir, sizeof(dir), "%s/gcshim", xdg);
	socket_path(path, sizeof(path), dir, f->pid);
	wait_answering(path, f->pid, "gcctl_mp");
	cr_assert(stat(dir, &st) == 0 && (st.st_mode & 0777) == 0700, "%s: mode %o", dir,
		  st.st_mode & 0777);
	{
		static struct result res_xdg;
		char *gcctl_env[] = { set_xdg, NULL };
		char *gcctl_argv[] = { gcctl_path(), "-p", (char *)pid_arg(f->pid), "mem-alloc",
				       NULL };

		run_as(&res_xdg, 0, gcctl_env, gcctl_argv);
		res = &res_xdg;
	}
	cr_assert_eq(res->status, 0, "%s", res->err);
	cr_assert(write(f->to, "quit\n", 5) == 5);
	cr_assert_eq(waitpid(f->pid, NULL, 0), f->pid);
	f->pid = 0;
	cr_assert(access(path, F_OK) != 0, "%s is still there", path);
	rmdir(dir);
	rmdir(xdg);
}

/* --log sends the library's messages to a file, --env sets any variable
 * (here a debug flag whose summaries are such messages), --report makes
 * the process report its leaks at exit and end with the report's status. */
Test(gcctl, run_log_env_and_report)
{
	char log[PATH_MAX], report[PATH_MAX], set_report[PATH_MAX + 32];
	char value[PATH_MAX + 16], text[4096] = "";
	char *options[] = { "--log", log, "--env", "GCSHIM_DEBUG=stats", "--report",
			    "-e", set_report, "--socket-dir", sockdir, NULL };
	struct fixture *f;
	int fd, status;

	snprintf(log, sizeof(log), "%s/run.log", sockdir);
	snprintf(report, sizeof(report), "%s/leaks.txt", sockdir);
	snprintf(set_report, sizeof(set_report), "GCSHIM_REPORT_FILE=%s", report);
	f = start_with_run(options, NULL);
	fixture_do(f, "env GCSHIM_LOG", value, sizeof(value));
	same_file(value, log);
	fixture_do(f, "env GCSHIM_DEBUG", value, sizeof(value));
	cr_assert_str_eq(value, "stats");
	fixture_do(f, "env GCSHIM_REPORT", value, sizeof(value));
	cr_assert_str_eq(value, "exit");

	cr_assert_geq(ask_int(f->pid, "collect", NULL, "collected"), 0);
	fd = open(log, O_RDONLY);
	cr_assert(fd >= 0, "%s was not written", log);
	slurp(fd, text, sizeof(text));
	cr_assert(strstr(text, "gc: collecting generation 2"), "%s", text);

	/* a leak left at exit: the report, and its exit status */
	fixture_do(f, "alloc 700", NULL, 0);
	fixture_do(f, "drop", NULL, 0);
	cr_assert(write(f->to, "quit\n", 5) == 5);
	cr_assert_eq(waitpid(f->pid, &status, 0), f->pid);
	f->pid = 0;
	cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 23, "status %#x", status);
	fd = open(report, O_RDONLY);
	cr_assert(fd >= 0, "no report in %s", report);
	slurp(fd, text, sizeof(text));
	cr_assert(strstr(text, "Direct leak of 700 byte(s) in 1 object(s)") &&
		  strstr(text, "SUMMARY: gcshim: 700 byte(s) leaked in 1 allocation(s)."),
		  "%s", text);
	unlink(log);
	unlink(report);
}
