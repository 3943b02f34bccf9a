/*
 * t_fork_threads: fork 100 times while 3 threads churn mappings (mmap,
 * touch, malloc, mprotect, madvise, munmap); each child checks the data it
 * inherited, maps and allocates on its own, and exits.  A fork handler
 * that deadlocks, or a child that inherits a half-changed model, hangs or
 * fails here.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

static volatile int stop;

static void *churn(void *arg)
{
	while (!stop) {
		size_t len = 1 << 20, i;
		char *p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		void *m;

		if (p == MAP_FAILED)
			return (void *)1;
		for (i = 0; i < len; i += 4096)
			p[i] = 1;
		m = malloc(100000);
		if (m)
			memset(m, 1, 100000);
		free(m);
		mprotect(p, len / 2, PROT_READ);
		madvise(p + len / 2, len / 4, MADV_DONTNEED);
		munmap(p, len);
	}
	return arg;
}

int main(void)
{
	char *shared = mmap(NULL, 1 << 20, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	pthread_t t[3];
	int i, bad = 0;

	if (shared == MAP_FAILED)
		return 1;
	memset(shared, 0x42, 1 << 19);
	for (i = 0; i < 3; i++)
		pthread_create(&t[i], NULL, churn, NULL);
	for (i = 0; i < 100; i++) {
		pid_t pid = fork();
		int st;

		if (!pid) {
			int ok = shared[100] == 0x42 && shared[(1 << 19) + 5] == 0;
			char *q = mmap(NULL, 1 << 20, PROT_READ | PROT_WRITE,
				       MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
			char *m;

			if (q == MAP_FAILED)
				_exit(2);
			memset(q, 3, 1 << 20);
			m = malloc(1 << 16);
			if (m)
				memset(m, 2, 1 << 16);
			free(m);
			_exit(ok && q[5] == 3 ? 0 : 1);
		}
		if (pid < 0 || waitpid(pid, &st, 0) != pid || !WIFEXITED(st) || WEXITSTATUS(st))
			bad++;
	}
	stop = 1;
	for (i = 0; i < 3; i++)
		pthread_join(t[i], NULL);
	printf("forks: 100, bad: %d\n", bad);
	return bad != 0;
}
