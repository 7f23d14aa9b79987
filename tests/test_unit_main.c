/* main() of the unit suites.
 *
 * The shim linked into each suite reads its GCSHIM_* options in a
 * constructor, before main.  To run without the control thread (and its
 * socket), the program executes itself again with GCSHIM_SOCKET=0 unless
 * the caller chose a value.
 *
 * "PROGRAM --unit-mode MODE" runs the suite's unit_mode(MODE) instead of
 * Criterion: a suite starts itself that way, with a different environment,
 * to test what only start-up can set (e.g. GCSHIM_HEAP_LIMIT). */
#define _GNU_SOURCE
#include <criterion/criterion.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;

int unit_mode(const char *mode) __attribute__((weak));

/* Runs this program as "--unit-mode MODE" with the environment plus
 * `extra` (NAME=VALUE strings, NULL-terminated; they take precedence),
 * collects its standard output into out, and returns its exit status
 * (-1 if it did not exit normally). */
int unit_spawn(const char *mode, const char *const *extra, char *out, size_t cap)
{
	size_t n = 0, ne = 0, nx = 0;
	char **env;
	int fd[2], status;
	pid_t pid;
	ssize_t r;

	while (environ[ne])
		ne++;
	while (extra && extra[nx])
		nx++;
	env = calloc(ne + nx + 1, sizeof(*env));
	if (!env || pipe(fd) < 0)
		return -1;
	for (size_t i = 0; i < nx; i++)
		env[i] = (char *)extra[i];
	for (size_t i = 0, k = nx; i < ne; i++) {
		size_t len = strcspn(environ[i], "=");
		int shadowed = 0;

		for (size_t j = 0; j < nx; j++)
			shadowed |= !strncmp(extra[j], environ[i], len) && extra[j][len] == '=';
		/* BoxFort marks its sandboxed workers with BXFI_MAP: a child
		 * that inherits it takes itself for one and aborts. */
		shadowed |= !strncmp(environ[i], "BXFI_", 5);
		if (!shadowed)
			env[k++] = environ[i];
	}
	fflush(NULL);
	pid = fork();
	if (pid < 0)
		return -1;
	if (pid == 0) {
		char *argv[] = { "unit-mode", "--unit-mode", (char *)mode, NULL };

		dup2(fd[1], 1);
		close(fd[0]);
		close(fd[1]);
		execve("/proc/self/exe", argv, env);
		_exit(127);
	}
	close(fd[1]);
	for (;;) {
		char sink[256];

		if (n + 1 < cap)
			r = read(fd[0], out + n, cap - 1 - n);
		else
			r = read(fd[0], sink, sizeof(sink)); /* drain what does not fit */
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			break;
		if (n + 1 < cap)
			n += (size_t)r;
	}
	if (cap)
		out[n] = '\0';
	close(fd[0]);
	free(env);
	if (waitpid(pid, &status, 0) < 0)
		return -1;
	if (!WIFEXITED(status)) {
		if (cap && n + 40 < cap)
			snprintf(out + n, cap - n, "[killed by signal %d]\n",
				 WIFSIGNALED(status) ? WTERMSIG(status) : 0);
		return -1;
	}
	return WEXITSTATUS(status);
}

int main(int argc, char **argv)
{
	struct criterion_test_set *tests;
	int result = 0;

	if (!getenv("GCSHIM_SOCKET")) {
		setenv("GCSHIM_SOCKET", "0", 1);
		execv("/proc/self/exe", argv);
		perror("execv /proc/self/exe");
		return 99;
	}
	if (argc == 3 && !strcmp(argv[1], "--unit-mode"))
		return unit_mode ? unit_mode(argv[2]) : 99;
	tests = criterion_initialize();
	if (criterion_handle_args(argc, argv, true))
		result = !criterion_run_all_tests(tests);
	criterion_finalize(tests);
	return result;
}
