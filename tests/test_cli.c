/* What a first-time user meets, each as a regression test on real
 * processes: the demo's exit status, help without a process, typos
 * caught before any process is asked, options after the verb, --timeout,
 * a collection that names the thread that did not stop, JSON for every
 * verb and error, usage errors exiting 2, misspelt GCSHIM_* names, an
 * unopenable GCSHIM_LOG, threshold 0, shell completion. */
#define _GNU_SOURCE
#include <criterion/criterion.h>

#include <errno.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "json.h"
#include "monitor_support.h"
#include "support.h"

TestSuite(cli, .init = mon_setup, .fini = mon_teardown, .timeout = 120);

/* A process that sleeps under the shim, answering on its socket. */
static pid_t start_sleeper(char *const env[])
{
	pid_t pid = mon_start((char *[]){ "sleep", "60", NULL }, env);

	mon_wait_answering(pid);
	return pid;
}

static long long stat_of(pid_t pid, const char *name)
{
	struct mon_result *r = mon_gcctl("-p", mon_pid(pid), "--json", "stats", NULL);
	char key[64], err[128];
	struct json *o = json_parse(r->out, strlen(r->out), err, sizeof(err));
	int64_t v = -12345;

	cr_assert(o, "%s: %s", err, r->out);
	snprintf(key, sizeof(key), "%s", name);
	cr_assert(json_int(json_get(json_get(o, "stats"), key), &v), "no %s in %s", name, r->out);
	json_free(o);
	return v;
}

/* Runs a program preloaded, without a socket; its standard error. */
static struct mon_result *preloaded(char *const env[], char *const argv[])
{
	char preload[PATH_MAX + 16];
	char *full[32] = { "env", preload, "GCSHIM_SOCKET=0" };
	int n = 3;

	snprintf(preload, sizeof(preload), "LD_PRELOAD=%s", mon_lib());
	for (int i = 0; env && env[i]; i++)
		full[n++] = env[i];
	for (int i = 0; argv[i]; i++)
		full[n++] = argv[i];
	full[n] = NULL;
	return mon_run(full, NULL, NULL);
}

Test(cli, demo_exits_zero)
{
	char script[PATH_MAX];
	struct mon_result *r;

	snprintf(script, sizeof(script), "%s/tools/demo.sh", env_or("top_srcdir", "."));
	r = mon_run((char *[]){ "bash", script, NULL }, NULL, NULL);
	cr_assert_eq(r->status, 0, "the demo ended with %d: %s", r->status, r->err);
	cr_assert(strstr(r->out, ">>> gc.collect()") && strstr(r->out, "collected      1 block"),
		  "%s", r->out);
}

Test(cli, quickstart_installs_no_jdk)
{
	char path[PATH_MAX];
	FILE *f;
	char line[512];

	snprintf(path, sizeof(path), "%s/tools/quickstart", env_or("top_srcdir", "."));
	f = fopen(path, "r");
	cr_assert(f);
	while (fgets(line, sizeof(line), f))
		cr_assert(!strstr(line, "jdk") && !strstr(line, "openjdk"), "%s", line);
	fclose(f);
}

Test(cli, help_needs_no_process)
{
	struct mon_result *r;

	/* no process runs under the shim in this test's directory */
	r = mon_gcctl("help", NULL);
	cr_assert_eq(r->status, 0);
	cr_assert(strstr(r->out, "metrics") && strstr(r->out, "get-referrers"), "%s", r->out);
	r = mon_gcctl("help", "collect", NULL);
	cr_assert_eq(r->status, 0, "%s", r->err);
	cr_assert(strstr(r->out, "usage: gcctl [-p PID] [--json] [--timeout T] collect [GENERATION]"),
		  "%s", r->out);
	r = mon_gcctl("collect", "--help", NULL);
	cr_assert_eq(r->status, 0, "%s", r->err);
	cr_assert(strstr(r->out, "usage: gcctl") && strstr(r->out, "collect"), "%s", r->out);
	r = mon_gcctl("help", "run", NULL);
	cr_assert(strstr(r->out, "--heap-limit SIZE") && strstr(r->out, "--stop-timeout N"),
		  "every option of the library is a flag of run: %s", r->out);
	r = mon_gcctl("version", NULL);
	cr_assert_eq(r->status, 0);
	cr_assert(strstr(r->out, "gcctl (gcshim) "));
	r = mon_gcctl("help", "colect", NULL);
	cr_assert_eq(r->status, 2);
	cr_assert(strstr(r->err, "did you mean 'collect'"), "%s", r->err);
}

Test(cli, typo_is_caught_without_asking_the_process)
{
	pid_t pid = start_sleeper(NULL);
	long long before = stat_of(pid, "ctl_connections"), after;
	struct mon_result *r = mon_gcctl("-p", mon_pid(pid), "colect", NULL);

	cr_assert_eq(r->status, 2);
	cr_assert_str_eq(r->err, "gcctl: unknown verb 'colect'; did you mean 'collect'?\n");
	r = mon_gcctl("-p", mon_pid(pid), "get_refrers", "0x1", NULL);
	cr_assert(strstr(r->err, "did you mean 'get-referrers'"), "%s", r->err);
	after = stat_of(pid, "ctl_connections");
	cr_assert_eq(after, before + 1, "the typos reached the process: %lld connections, then %lld",
		     before, after);
}

Test(cli, options_after_the_verb)
{
	pid_t pid = start_sleeper(NULL);
	struct mon_result *r = mon_gcctl("mem-alloc", "--json", "-p", mon_pid(pid), NULL);

	cr_assert_eq(r->status, 0, "%s", r->err);
	cr_assert(!strncmp(r->out, "{\"ok\":true,\"mem_alloc\":", 23), "%s", r->out);
	r = mon_gcctl("mem_alloc", "--pid=1", "--pid", mon_pid(pid), NULL);
	cr_assert_eq(r->status, 0, "the last -p counts: %s", r->err);
	cr_assert(!strncmp(r->out, "mem_alloc  ", 11), "%s", r->out);
}

Test(cli, json_for_every_verb_and_error)
{
	pid_t pid = start_sleeper(NULL), gone;
	struct mon_result *r;
	struct json *o;
	char err[128], me[32];
	int64_t status;

	r = mon_gcctl("--json", "ps", NULL);
	cr_assert_eq(r->status, 0, "%s", r->err);
	o = json_parse(r->out, strlen(r->out), err, sizeof(err));
	cr_assert(o && json_get(o, "processes"), "%s: %s", err, r->out);
	snprintf(me, sizeof(me), "{\"pid\":%d,", (int)pid);
	cr_assert(strstr(r->out, me), "%s", r->out);
	json_free(o);

	gone = fork();
	if (!gone)
		_exit(0);
	waitpid(gone, NULL, 0);
	r = mon_gcctl("--json", "-p", mon_pid(gone), "mem-alloc", NULL);
	cr_assert_eq(r->status, 3);
	cr_assert_str_empty(r->err);
	o = json_parse(r->out, strlen(r->out), err, sizeof(err));
	cr_assert(o, "gcctl's error is not JSON: %s", r->out);
	cr_assert(json_get(o, "ok")->type == JSON_FALSE && json_get(o, "error"));
	cr_assert(json_int(json_get(o, "status"), &status) && status == 3);
	json_free(o);

	r = mon_gcctl("--json", "colect", NULL);
	cr_assert_eq(r->status, 2);
	cr_assert(strstr(r->out, "\"ok\":false") && strstr(r->out, "did you mean"), "%s", r->out);
}

Test(cli, usage_errors_exit_2_wherever_found)
{
	pid_t pid = start_sleeper(NULL);
	const char *p = mon_pid(pid);

	/* found by gcctl */
	cr_assert_eq(mon_gcctl("-p", p, "collect", "7", NULL)->status, 2);
	cr_assert_eq(mon_gcctl("-p", p, "set-threshold", "x", NULL)->status, 2);
	cr_assert_eq(mon_gcctl("-p", p, "--timeout", "soon", "mem-alloc", NULL)->status, 2);
	cr_assert_eq(mon_gcctl("-p", p, "--timeout", "nan", "mem-alloc", NULL)->status, 2);
	cr_assert_eq(mon_gcctl("-p", p, "--timeout", "-nans", "mem-alloc", NULL)->status, 2);
	/* found by the process */
	cr_assert_eq(mon_gcctl("-p", p, "set-debug", "bogus", NULL)->status, 2);
	cr_assert_eq(mon_gcctl("-p", p, "send", "collect", "7", NULL)->status, 2);
	cr_assert_eq(mon_gcctl("-p", p, "send", "is-tracked", "zz", NULL)->status, 2);
	cr_assert_eq(mon_gcctl("-p", p, "get-objects", "--generation", "9", NULL)->status, 2);
	/* not usage: the request was fine */
	cr_assert_eq(mon_gcctl("-p", p, "send", "mem-alloc", NULL)->status, 0);
}

Test(cli, timeout_bounds_the_wait)
{
	pid_t pid = start_sleeper(NULL);
	struct mon_result *r;
	long long t0;

	kill(pid, SIGSTOP);
	t0 = now_ms();
	r = mon_gcctl("-p", mon_pid(pid), "--timeout", "300ms", "mem-alloc", NULL);
	kill(pid, SIGCONT);
	cr_assert_eq(r->status, 3, "%s", r->err);
	cr_assert(strstr(r->err, "within 300 ms"), "%s", r->err);
	cr_assert_lt(now_ms() - t0, 4000, "gcctl waited %lld ms", now_ms() - t0);
}

Test(cli, collection_names_the_thread_that_did_not_stop)
{
	char *argv[] = { build_path("tests/fixtures/stuck_thread"), NULL };
	pid_t pid = mon_start(argv, (char *[]){ "GCSHIM_STOP_TIMEOUT=200", NULL });
	struct mon_result *r;

	mon_wait_answering(pid);
	poll(NULL, 0, 300);   /* the thread is in vfork() */
	r = mon_gcctl("-p", mon_pid(pid), "collect", NULL);
	cr_assert_eq(r->status, 1, "%s%s", r->out, r->err);
	cr_assert(strstr(r->err, "(vforker) did not stop within GCSHIM_STOP_TIMEOUT"), "%s", r->err);
	cr_assert(strstr(r->err, "nothing was freed"), "%s", r->err);
}

Test(cli, misspelt_variables_are_named)
{
	struct mon_result *r = preloaded((char *[]){ "GCSHIM_TRESHOLD=1M", "GCSHIM_FOO=1",
						     "GCSHIM_LIB=/x", NULL },
					 (char *[]){ "true", NULL });

	cr_assert_eq(r->status, 0);
	cr_assert(strstr(r->err, "GCSHIM_TRESHOLD is not an option; did you mean GCSHIM_THRESHOLD?"),
		  "%s", r->err);
	cr_assert(strstr(r->err, "GCSHIM_FOO is not an option; ignored"), "%s", r->err);
	cr_assert(!strstr(r->err, "GCSHIM_LIB"), "gcctl's own variable reported: %s", r->err);
	cr_assert_eq(mon_count(r->err, "\n"), 2, "%s", r->err);
}

Test(cli, unopenable_log_falls_back_to_stderr)
{
	char missing[PATH_MAX + 16], log_env[PATH_MAX + 32];
	struct mon_result *r;

	snprintf(missing, sizeof(missing), "GCSHIM_LOG=%s/no/such/dir.log", mon_dir());
	r = preloaded((char *[]){ missing, "GCSHIM_HEAP_LIMIT=lots", NULL }, (char *[]){ "true", NULL });
	cr_assert_eq(r->status, 0);
	cr_assert_eq(mon_count(r->err, "cannot open GCSHIM_LOG"), 1, "%s", r->err);
	cr_assert(strstr(r->err, "no such file or directory"), "%s", r->err);
	cr_assert(strstr(r->err, "GCSHIM_HEAP_LIMIT='lots'"), "the bad value went unsaid: %s", r->err);

	snprintf(log_env, sizeof(log_env), "GCSHIM_LOG=%s", mon_dir());
	r = preloaded((char *[]){ log_env, "GCSHIM_THRESHOLD=x", NULL }, (char *[]){ "true", NULL });
	cr_assert(strstr(r->err, "it is a directory") && strstr(r->err, "GCSHIM_THRESHOLD='x'"),
		  "%s", r->err);
}

Test(cli, threshold_zero_is_off)
{
	pid_t pid = start_sleeper((char *[]){ "GCSHIM_THRESHOLD=0", NULL });
	struct mon_result *r;

	cr_assert_eq(stat_of(pid, "threshold"), -1);
	cr_assert_eq(mon_gcctl("-p", mon_pid(pid), "threshold", "64M", NULL)->status, 0);
	cr_assert_eq(stat_of(pid, "threshold"), 64LL << 20);
	r = mon_gcctl("-p", mon_pid(pid), "threshold", "0", NULL);
	cr_assert_eq(r->status, 0, "%s", r->err);
	cr_assert(strstr(r->out, "threshold  off (-1)"), "%s", r->out);
	cr_assert_eq(mon_gcctl("-p", mon_pid(pid), "send", "threshold", "0", NULL)->status, 0);
	cr_assert_eq(stat_of(pid, "threshold"), -1);
}

Test(cli, run_takes_sizes_as_the_library_does)
{
	char out[PATH_MAX];
	struct mon_result *r;

	snprintf(out, sizeof(out), "%s/env", mon_dir());
	r = mon_gcctl("run", "--heap-limit", " 64M", "--roots", "minimal", "--", "sh", "-c",
		      "env > \"$0\"", out, NULL);
	cr_assert_eq(r->status, 0, "%s", r->err);
	r = mon_run((char *[]){ "grep", "-c", "^GCSHIM_HEAP_LIMIT= 64M$\\|^GCSHIM_ROOTS=minimal$",
				out, NULL }, NULL, NULL);
	cr_assert_str_eq(r->out, "2\n");
	cr_assert_eq(mon_gcctl("run", "--roots", "some", "--", "true", NULL)->status, 2);
}

Test(cli, bash_completion_offers_verbs_and_pids)
{
	pid_t pid = start_sleeper(NULL);
	char script[PATH_MAX], cmd[PATH_MAX * 2];
	struct mon_result *r;

	snprintf(script, sizeof(script), "%s/tools/gcctl.bash-completion", env_or("top_srcdir", "."));
	snprintf(cmd, sizeof(cmd),
		 "source '%s'; PATH=\"%s:$PATH\"\n"
		 "COMP_WORDS=(gcctl col); COMP_CWORD=1; _gcctl; echo \"${COMPREPLY[*]}\"\n"
		 "COMP_WORDS=(gcctl -p ''); COMP_CWORD=2; _gcctl; echo \"${COMPREPLY[*]}\"\n"
		 "COMP_WORDS=(gcctl top --s); COMP_CWORD=2; _gcctl; echo \"${COMPREPLY[*]}\"\n",
		 script, env_or("top_builddir", "."));
	r = mon_run((char *[]){ "bash", "-c", cmd, NULL }, NULL, NULL);
	cr_assert_eq(r->status, 0, "%s", r->err);
	cr_assert(!strncmp(r->out, "collect\n", 8), "%s", r->out);
	cr_assert(strstr(r->out, mon_pid(pid)), "the PID is not offered: %s", r->out);
	cr_assert(strstr(r->out, "--sort"), "%s", r->out);
}
