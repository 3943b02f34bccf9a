/* t_fork: the child sees the parent's data, writes its own; both exit clean. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#define LEN (4u << 20)

int main(void)
{
	unsigned char *p = mmap(NULL, LEN, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	unsigned char *c;
	size_t i;
	pid_t pid;
	int st;

	if (p == MAP_FAILED)
		return 1;
	for (i = 0; i < LEN / 2; i += 4096)	/* half populated, half never touched */
		p[i] = (unsigned char)(i >> 12);
	fflush(stdout);
	pid = fork();
	if (pid < 0)
		return 1;
	if (pid == 0) {
		int ok = 1;

		for (i = 0; i < LEN / 2; i += 4096)
			ok &= p[i] == (unsigned char)(i >> 12);
		for (i = LEN / 2; i < LEN; i += 4096)
			ok &= p[i] == 0;
		memset(p, 0xcc, LEN);	/* its own copy */
		c = mmap(NULL, LEN, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		if (c == MAP_FAILED)
			_exit(3);
		memset(c, 0x11, LEN);
		ok &= c[LEN - 1] == 0x11 && p[LEN - 1] == 0xcc;
		munmap(c, LEN);
		munmap(p, LEN);
		printf("child: %s\n", ok ? "ok" : "BAD");
		exit(ok ? 0 : 2);
	}
	if (waitpid(pid, &st, 0) != pid)
		return 1;
	for (i = 0; i < LEN / 2; i += 4096)
		if (p[i] != (unsigned char)(i >> 12))
			return printf("parent: data changed\n"), 1;
	for (i = LEN / 2; i < LEN; i += 4096)
		p[i] = 7;
	printf("parent: ok, child status %d\n", WIFEXITED(st) ? WEXITSTATUS(st) : -1);
	munmap(p, LEN);
	return 0;
}
