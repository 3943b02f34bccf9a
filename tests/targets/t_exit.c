/*
 * t_exit: fault on a fresh mapping, then leave by the way argv[1] names:
 * "return" (exit(3)), "_exit", "_Exit", "vfork" (a vfork()ed child _exits,
 * the parent returns), "fork" (a forked child faults too and _exits).
 * Each process under USPF_STATS writes one line, however it leaves.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#define LEN (256u << 10)

static unsigned long touch(void)
{
	unsigned char *p = mmap(NULL, LEN, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS,
				-1, 0);
	unsigned long s = 0, i;

	if (p == MAP_FAILED)
		exit(1);
	for (i = 0; i < LEN; i += 4096)
		s += p[i];		/* fresh: zero */
	for (i = 0; i < LEN; i += 4096)
		p[i] = (unsigned char)(i >> 12);
	for (i = 0; i < LEN; i += 4096)
		s += p[i];
	return s;
}

int main(int argc, char **argv)
{
	const char *how = argc > 1 ? argv[1] : "return";
	int status;
	pid_t pid;

	printf("%s: sum %lu\n", how, touch());
	fflush(stdout);
	if (!strcmp(how, "_exit"))
		_exit(0);
	if (!strcmp(how, "_Exit"))
		_Exit(0);
	if (!strcmp(how, "vfork")) {
		pid = vfork();
		if (pid < 0)
			return 1;
		if (pid == 0)
			_exit(7);
		if (waitpid(pid, &status, 0) != pid || !WIFEXITED(status) ||
		    WEXITSTATUS(status) != 7)
			return 2;
	}
	if (!strcmp(how, "fork")) {
		pid = fork();
		if (pid < 0)
			return 1;
		if (pid == 0) {
			touch();
			_exit(0);
		}
		if (waitpid(pid, &status, 0) != pid || !WIFEXITED(status) ||
		    WEXITSTATUS(status) != 0)
			return 2;
	}
	return 0;
}
