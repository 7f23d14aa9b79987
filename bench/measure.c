/* measure [NAME=VALUE]... PROGRAM [ARG]...
 *
 * Runs PROGRAM with the given variables added to its environment and its
 * standard output discarded, then prints "SECONDS MAXRSS_KIB CPU_SECONDS":
 * the wall time from fork to exit, the child's peak resident set and the
 * processor time it used (user and system; on a machine others load, the
 * steadier figure).  The
 * variables are set only in the child, so that an LD_PRELOAD measured
 * here never loads into this process.  Exits non-zero, with a message,
 * when PROGRAM does not exit with status 0. */
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* The variables are the leading arguments; the program is the first
 * argument without '='. */
static char **program_args(char **argv)
{
	while (*argv && strchr(*argv, '='))
		argv++;
	return argv;
}

static void run_child(char **vars, char **prog)
{
	int null = open("/dev/null", O_WRONLY);

	for (; vars < prog; vars++)
		putenv(*vars);
	if (null >= 0)
		dup2(null, STDOUT_FILENO);
	execvp(*prog, prog);
	fprintf(stderr, "measure: cannot run %s: %m\n", *prog);
	_exit(127);
}

static int report_failure(const char *prog, int status)
{
	if (WIFSIGNALED(status))
		fprintf(stderr, "measure: %s killed by signal %d\n", prog,
			WTERMSIG(status));
	else
		fprintf(stderr, "measure: %s exited with status %d\n", prog,
			WEXITSTATUS(status));
	return 1;
}

int main(int argc, char **argv)
{
	char **prog = program_args(argv + 1);
	struct rusage ru;
	double start;
	int status;
	pid_t pid;

	if (!*prog) {
		fprintf(stderr, "usage: measure [NAME=VALUE]... PROGRAM [ARG]...\n");
		return 2;
	}
	start = now();
	pid = fork();
	if (pid < 0) {
		perror("measure: fork");
		return 1;
	}
	if (pid == 0)
		run_child(argv + 1, prog);
	if (wait4(pid, &status, 0, &ru) < 0) {
		perror("measure: wait4");
		return 1;
	}
	if (!WIFEXITED(status) || WEXITSTATUS(status))
		return report_failure(*prog, status);
	printf("%.3f %ld %.3f\n", now() - start, ru.ru_maxrss,
	       (double)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
	       (double)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6);
	return 0;
}
