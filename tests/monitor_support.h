/* Helpers of the suites that run gcctl against real processes under the
 * shim: a private socket directory per test, processes started preloaded
 * and ended at teardown, commands run with their output collected. */
#ifndef GCSHIM_TESTS_MONITOR_SUPPORT_H
#define GCSHIM_TESTS_MONITOR_SUPPORT_H

#include <stdbool.h>
#include <sys/types.h>

struct mon_result {
	int status;        /* exit status, 128 + signal, or -1 */
	char *out, *err;   /* everything written, NUL-terminated */
};

void mon_setup(void);
void mon_teardown(void);

/* The test's private directory (also its socket directory). */
const char *mon_dir(void);
const char *mon_lib(void);
const char *mon_pid(pid_t pid);

/* argv under the shim, with env (NAME=VALUE, NULL-terminated) added. */
pid_t mon_start(char *const argv[], char *const env[]);
/* gcctl in the background (an exporter), ended at teardown. */
pid_t mon_start_gcctl(char *const args[]);
void mon_kill(pid_t pid);
/* Kills pid after ms milliseconds, from another process. */
void mon_kill_after(pid_t pid, int ms);
/* Kills pid, from another process, once done(arg) holds (asked every
 * 50 ms), or after deadline_ms whatever it says: a slow machine takes
 * longer, and only a hang reaches the deadline. */
void mon_kill_when(pid_t pid, bool (*done)(void *arg), void *arg, int deadline_ms);

/* Runs argv to its end, stdin_text on its standard input (NULL: none). */
struct mon_result *mon_run(char *const argv[], char *const env[], const char *stdin_text);
/* gcctl with the arguments, NULL-terminated. */
struct mon_result *mon_gcctl(const char *arg, ...) __attribute__((sentinel));

void mon_wait_answering(pid_t pid);
/* Until the process has run at least n collections. */
void mon_wait_collections(pid_t pid, long n);
void mon_wait_port(int port);

int mon_count(const char *text, const char *needle);

#endif
