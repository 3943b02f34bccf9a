/* SPDX-License-Identifier: MIT */
/*
 * malloc_bench - time the malloc family's small-object paths.
 *
 * Run it plainly and under the preload library to compare allocators:
 *
 *   tests/targets/malloc_bench
 *   LD_PRELOAD=$PWD/.libs/libuspf-preload.so USPF_HEAP=1 tests/targets/malloc_bench
 *
 * Cases, each printed as nanoseconds per malloc/free pair:
 *  - pair SIZE:   malloc(SIZE) then free() at once, one thread (the hot
 *                 path: the same object comes back from the thread cache);
 *  - batch SIZE:  malloc 1000 objects of SIZE, then free them all (the
 *                 thread cache refills from and flushes to the central lists);
 *  - calloc SIZE: calloc(1, SIZE) then free();
 *  - mixed:       sizes 16..512 from a fixed sequence, 64 live at a time;
 *  - xthread:     one thread mallocs 64 B objects, another frees them
 *                 (batches of 256 handed over through two buffers).
 *
 * Each case also checks what it got (non-NULL, 16-byte aligned, writable,
 * content intact until freed); a failed check prints FAIL and exits 1.
 * Timing is never checked.  "-q" prints only the checks' verdict, so a
 * test can compare the output with and without the preload library.
 *
 * Each case runs five times and the fastest run is printed (this is a
 * shared machine: the minimum is the least disturbed figure).
 *
 * Usage: malloc_bench [-q] [pairs]   (default 2000000 per case)
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static long pairs = 2000000;
static int quiet;
static int reps = 5;		/* each case runs this many times; the best is printed */

static void fail(const char *what, size_t size)
{
	fprintf(stderr, "malloc_bench: FAIL: %s (size %zu)\n", what, size);
	fflush(stderr);
	exit(1);
}

static double now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e9 + ts.tv_nsec;
}

static double best;	/* ns/pair of the fastest run of the current case */

static void report(const char *what, size_t size, double ns, long n)
{
	(void)what;
	(void)size;
	if (best == 0 || ns / n < best)
		best = ns / n;
}

static void print_best(const char *what, size_t size)
{
	if (quiet)
		return;
	if (size)
		printf("%-8s %5zu  %7.2f ns/pair\n", what, size, best);
	else
		printf("%-14s %7.2f ns/pair\n", what, best);
	fflush(stdout);
}

#define RUN(call, what, size)				\
	do {						\
		best = 0;				\
		for (int r_ = 0; r_ < reps; r_++)	\
			call;				\
		print_best(what, size);			\
	} while (0)

/* Stops the compiler from folding malloc/free pairs away. */
static void *volatile sink;

static void check_block(unsigned char *p, size_t size)
{
	if (!p)
		fail("NULL", size);
	if ((uintptr_t)p & 15)
		fail("not 16-byte aligned", size);
}

static void bench_pair(size_t size)
{
	/* warm up, and check the block is usable */
	for (int i = 0; i < 1000; i++) {
		unsigned char *p = malloc(size);
		check_block(p, size);
		memset(p, 0xa5, size);
		if (p[size - 1] != 0xa5)
			fail("content", size);
		free(p);
	}
	double t0 = now_ns();
	for (long i = 0; i < pairs; i++) {
		void *p = malloc(size);
		sink = p;
		free(p);
	}
	report("pair", size, now_ns() - t0, pairs);
	if (!sink)
		fail("NULL", size);
}

static void bench_calloc(size_t size)
{
	double t0 = now_ns();
	for (long i = 0; i < pairs; i++) {
		unsigned char *p = calloc(1, size);
		if (!p || p[0] || p[size - 1])
			fail("calloc not zeroed", size);
		p[0] = p[size - 1] = 1;	/* the next calloc must clear it again */
		free(p);
	}
	report("calloc", size, now_ns() - t0, pairs);
}

#define BATCH 1000

static void bench_batch(size_t size)
{
	static unsigned char *v[BATCH];
	long rounds = pairs / BATCH;
	double t0 = now_ns();
	for (long r = 0; r < rounds; r++) {
		for (int i = 0; i < BATCH; i++) {
			v[i] = malloc(size);
			if (!v[i])
				fail("NULL", size);
			v[i][0] = (unsigned char)i;
		}
		for (int i = 0; i < BATCH; i++) {
			if (v[i][0] != (unsigned char)i)
				fail("content overwritten", size);
			free(v[i]);
		}
	}
	report("batch", size, now_ns() - t0, rounds * BATCH);
}

static void bench_mixed(void)
{
	enum { LIVE = 64 };
	unsigned char *v[LIVE] = { 0 };
	size_t sz[LIVE] = { 0 };
	uint32_t x = 12345;
	double t0 = now_ns();
	for (long i = 0; i < pairs; i++) {
		x ^= x << 13;
		x ^= x >> 17;
		x ^= x << 5;
		unsigned k = x % LIVE;
		if (v[k]) {
			if (v[k][0] != (unsigned char)k || v[k][sz[k] - 1] != (unsigned char)k)
				fail("content overwritten", sz[k]);
			free(v[k]);
		}
		sz[k] = 16 + (x >> 8) % 497;
		v[k] = malloc(sz[k]);
		if (!v[k])
			fail("NULL", sz[k]);
		v[k][0] = v[k][sz[k] - 1] = (unsigned char)k;
	}
	for (unsigned k = 0; k < LIVE; k++)
		free(v[k]);
	report("mixed 16..512", 0, now_ns() - t0, pairs);
}

/* ---- cross-thread: one thread allocates, the other frees ---- */

#define XBATCH 256
struct xbuf {
	void *p[XBATCH];
	_Atomic int full;	/* 1: the consumer owns it */
} __attribute__((aligned(64)));
static struct xbuf xb[2];
static long xrounds;

/* Wait for b->full to become want; yield now and then (two vCPUs may be shared). */
static void wait_full(struct xbuf *b, int want)
{
	unsigned spins = 0;
	while (atomic_load_explicit(&b->full, memory_order_acquire) != want)
		if (++spins % 1024 == 0)
			sched_yield();
}

static void *consumer(void *arg)
{
	(void)arg;
	for (long r = 0; r < xrounds; r++) {
		struct xbuf *b = &xb[r & 1];
		wait_full(b, 1);
		for (int i = 0; i < XBATCH; i++) {
			if (*(uint64_t *)b->p[i] != (uint64_t)r * XBATCH + i)
				fail("cross-thread content", 64);
			free(b->p[i]);
		}
		atomic_store_explicit(&b->full, 0, memory_order_release);
	}
	return NULL;
}

static void bench_xthread(void)
{
	pthread_t t;
	xrounds = pairs / XBATCH;
	double t0 = now_ns();
	if (pthread_create(&t, NULL, consumer, NULL))
		fail("pthread_create", 0);
	for (long r = 0; r < xrounds; r++) {
		struct xbuf *b = &xb[r & 1];
		wait_full(b, 0);
		for (int i = 0; i < XBATCH; i++) {
			uint64_t *p = malloc(64);
			if (!p)
				fail("NULL", 64);
			*p = (uint64_t)r * XBATCH + i;
			b->p[i] = p;
		}
		atomic_store_explicit(&b->full, 1, memory_order_release);
	}
	pthread_join(t, NULL);
	report("xthread 64", 0, now_ns() - t0, xrounds * XBATCH);
}

int main(int argc, char **argv)
{
	static const size_t sizes[] = { 16, 32, 64, 128, 256, 512 };
	int a = 1;

	if (a < argc && !strcmp(argv[a], "-q")) {
		quiet = 1;
		a++;
	}
	if (a < argc)
		pairs = atol(argv[a]);
	if (pairs < BATCH)
		pairs = BATCH;

	for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++)
		RUN(bench_pair(sizes[i]), "pair", sizes[i]);
	for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i += 2)
		RUN(bench_batch(sizes[i]), "batch", sizes[i]);
	RUN(bench_calloc(64), "calloc", 64);
	RUN(bench_calloc(512), "calloc", 512);
	RUN(bench_mixed(), "mixed 16..512", 0);
	RUN(bench_xthread(), "xthread 64", 0);
	printf("malloc_bench: ok\n");
	return 0;
}
