/* Helpers the suites that talk to live processes share. */
#ifndef GCSHIM_TESTS_SUPPORT_H
#define GCSHIM_TESTS_SUPPORT_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#define TEXT_MAX (1 << 20)   /* the most read of a file or of a program's output */

long long now_ms(void);

/* NAME's value, or FALLBACK when it is unset or empty. */
const char *env_or(const char *name, const char *fallback);

/* REL under the build directory ($top_builddir, else "."): one of eight
 * buffers, reused in turn. */
char *build_path(const char *rel);

/* One line from fd into line (without its newline), buffering what comes
 * after it in buf/len; false on end of file, a full buffer or timeout. */
bool read_line_fd(int fd, char *buf, size_t *len, size_t cap, char *line, size_t lcap,
		  int timeout_ms);

/* ---- files and text ---------------------------------------------------------- */

/* The file's text (empty when it cannot be read), at most TEXT_MAX - 1
 * bytes: one of four buffers, reused in turn. */
char *read_file(const char *path);
void write_file(const char *path, const char *text);

/* How many times needle occurs in hay, overlapping ones included. */
int count(const char *hay, const char *needle);

/* ---- programs under the shim -------------------------------------------------- */

/* A test's own directory, for the files of the programs it runs. */
struct scratch {
	char dir[64];
	char log[128];    /* the shim's messages (GCSHIM_LOG) */
	char err[128];    /* the program's standard error */
	char sock[128];   /* control sockets, when the test asks for them */
};

/* /tmp/gcshim-NAME-XXXXXX, for a suite's .init; removed by its .fini. */
void scratch_make(struct scratch *s, const char *name);
void scratch_remove(const struct scratch *s);

/* Starts argv with the shim preloaded, its socket off and its log in
 * s->log, then the env entries (NAME=VALUE, NULL-terminated) added;
 * stdout into a pipe (*outfd), stderr into s->err, stdin from a pipe
 * (*infd) or, when infd is NULL, /dev/null. */
pid_t shim_start(const struct scratch *s, char *const argv[], const char *const env[],
		 int *outfd, int *infd);

/* Reads the rest of outfd into out (cap bytes, NUL-terminated) and waits
 * for pid: its exit status, -1 when a signal ended it. */
int shim_finish(pid_t pid, int outfd, char *out, size_t cap);

/* shim_start and shim_finish, nothing on its standard input. */
int shim_run(const struct scratch *s, char *const argv[], const char *const env[], char *out,
	     size_t cap);

/* Reads outfd up to a line "ready PID" and returns PID; the test fails
 * when none comes.  What follows that line is not kept: the fixture must
 * say nothing more until it is told to go on. */
int read_ready(int outfd);

/* gcctl -p pid ARGS (a shell line: redirections allowed), sockets in
 * s->sock; its standard output into out (cap bytes).  Its exit status,
 * -1 when a signal ended it. */
int gcctl_run(const struct scratch *s, int pid, const char *args, char *out, size_t cap);

#endif
