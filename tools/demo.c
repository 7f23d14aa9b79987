/* The demo's program: MicroPython's gc example acted out by a C process.
 * It obeys one word per line on stdin and answers one line on stdout, so
 * that a script can interleave gcctl calls between its steps. */
#include <malloc.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

static void *volatile block;

/* Dead stack frames may still hold the address; a conservative collector
 * would rightly keep the block then. */
static __attribute__((noinline)) void forget_stack(void)
{
	volatile char junk[16 * 1024];

	memset((char *)junk, 0, sizeof(junk));
}

int main(void)
{
	char line[64];

	setvbuf(stdout, NULL, _IOLBF, 0);
	printf("ready %d\n", (int)getpid());
	while (fgets(line, sizeof(line), stdin)) {
		if (!strncmp(line, "alloc", 5)) {
			block = malloc(1000);
			memset(block, 0xab, 1000);
			printf("allocated 1000 bytes (a block of %zu)\n",
			       malloc_usable_size(block));
		} else if (!strncmp(line, "drop", 4)) {
			block = NULL;
			forget_stack();
			printf("dropped the only pointer to it\n");
		} else if (!strncmp(line, "quit", 4)) {
			break;
		}
	}
	return 0;
}
