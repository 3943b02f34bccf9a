/* t_threads: 4 threads mapping, touching, checking and unmapping in loops. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>

#define THREADS 4
#define ROUNDS 40

static uint64_t result[THREADS];

static void *worker(void *arg)
{
	unsigned int id = (unsigned int)(uintptr_t)arg, r;
	uint64_t acc = 0;

	for (r = 0; r < ROUNDS; r++) {
		size_t len = ((size_t)(r % 7) + 1) << 18, i;	/* 256K..1.75M */
		uint64_t *p = mmap(NULL, len, PROT_READ | PROT_WRITE,
				   MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

		if (p == MAP_FAILED)
			return (void *)1;
		for (i = 0; i < len / 8; i += 512)
			p[i] = id * 1000003u + r * 101u + i;
		for (i = 0; i < len / 8; i += 512) {
			if (p[i] != id * 1000003u + r * 101u + i)
				return (void *)2;
			acc += p[i] + p[i + 1];	/* p[i + 1] reads zero */
		}
		if (r % 3 == 0)
			madvise(p, len / 2, MADV_DONTNEED);
		if (p[0] != (r % 3 == 0 ? 0 : id * 1000003u + r * 101u))
			return (void *)3;
		if (munmap(p, len))
			return (void *)4;
	}
	result[id] = acc;
	return NULL;
}

int main(void)
{
	pthread_t t[THREADS];
	unsigned int i;
	void *ret;
	int bad = 0;

	for (i = 0; i < THREADS; i++)
		pthread_create(&t[i], NULL, worker, (void *)(uintptr_t)i);
	for (i = 0; i < THREADS; i++) {
		pthread_join(t[i], &ret);
		if (ret) {
			printf("thread %u failed: %ld\n", i, (long)(intptr_t)ret);
			bad = 1;
		}
	}
	for (i = 0; i < THREADS; i++)
		printf("thread %u: %llu\n", i, (unsigned long long)result[i]);
	return bad;
}
