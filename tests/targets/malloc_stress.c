/* SPDX-License-Identifier: MIT */
/*
 * malloc_stress - a plain C program that hammers the malloc family.
 *
 * Four threads do random malloc/calloc/realloc/posix_memalign/free of
 * 1 byte .. 1 MiB; every block carries a stamp (header words and a fill
 * byte over its whole content) that is checked before it is freed or
 * resized; some blocks are handed to other threads through a shared ring
 * and freed there.  The edge cases of the API are checked first, and a
 * forked child allocates too.  Prints a checksum that depends only on the
 * seeds (not on timing), so runs with and without an interposed allocator
 * must print the same line.  Exit 0 on success.
 *
 * Usage: malloc_stress [ops-per-thread]   (default 200000)
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <inttypes.h>
#include <malloc.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#define NTHREADS 4
#define SLOTS 512
#define RING 256
#define MAXSZ (1u << 20)

static long ops_per_thread = 200000;

struct hdr {
	uint64_t magic;
	uint64_t size;
	uint64_t id;
};

#define MAGIC 0x5f5350465f4d414cULL

static void die(const char *what)
{
	fprintf(stderr, "malloc_stress: FAIL: %s\n", what);
	fflush(stderr);
	_exit(1);
}

static inline uint64_t xs(uint64_t *s)
{
	uint64_t x = *s;
	x ^= x << 13;
	x ^= x >> 7;
	x ^= x << 17;
	return *s = x;
}

static inline uint64_t mix(uint64_t h, uint64_t v)
{
	h ^= v + 0x9e3779b97f4a7c15ULL + (h << 6) + (h >> 2);
	return h;
}

static inline uint8_t fill_of(uint64_t id)
{
	return (uint8_t)(id * 131 + 7) | 1;
}

/* Sizes: mostly small, log-uniform up to 1 MiB. */
static size_t pick_size(uint64_t *s)
{
	uint64_t r = xs(s);
	unsigned bits = (r & 0xff) < 200 ? 1 + (r >> 8) % 10 : 1 + (r >> 8) % 20;
	size_t max = (size_t)1 << bits;
	size_t n = 1 + (xs(s) % max);
	return n > MAXSZ ? MAXSZ : n;
}

/* Stamp a block: header (when it fits) and the fill byte everywhere else. */
static void stamp(void *p, size_t size, uint64_t id)
{
	uint8_t f = fill_of(id);
	if (size >= sizeof(struct hdr)) {
		struct hdr h = { MAGIC, size, id };
		memcpy(p, &h, sizeof(h));
		memset((char *)p + sizeof(h), f, size - sizeof(h));
	} else {
		memset(p, f, size);
	}
}

/* Check a block's stamp over its first `upto` bytes. */
static void check(const void *p, size_t size, uint64_t id, size_t upto)
{
	const uint8_t *b = p;
	uint8_t f = fill_of(id);
	size_t i = 0;
	if (upto > size)
		upto = size;
	if (size >= sizeof(struct hdr)) {
		struct hdr h;
		memcpy(&h, p, sizeof(h));
		if (upto >= sizeof(h) && (h.magic != MAGIC || h.size != size || h.id != id))
			die("header stamp damaged");
		i = sizeof(h);
	}
	for (; i < upto; i++)
		if (b[i] != f)
			die("content stamp damaged");
}

struct blk {
	void *p;
	size_t size;
	uint64_t id;
};

static struct {
	pthread_mutex_t lock;
	struct blk b[RING];
	unsigned head, n;
} ring = { .lock = PTHREAD_MUTEX_INITIALIZER };

static bool ring_push(struct blk *b)
{
	bool ok = false;
	pthread_mutex_lock(&ring.lock);
	if (ring.n < RING) {
		ring.b[(ring.head + ring.n++) % RING] = *b;
		ok = true;
	}
	pthread_mutex_unlock(&ring.lock);
	return ok;
}

static bool ring_pop(struct blk *b)
{
	bool ok = false;
	pthread_mutex_lock(&ring.lock);
	if (ring.n) {
		*b = ring.b[ring.head];
		ring.head = (ring.head + 1) % RING;
		ring.n--;
		ok = true;
	}
	pthread_mutex_unlock(&ring.lock);
	return ok;
}

static void free_checked(struct blk *b)
{
	check(b->p, b->size, b->id, b->size);
	if (malloc_usable_size(b->p) < b->size)
		die("malloc_usable_size below the request");
	free(b->p);
	b->p = NULL;
}

static void *worker(void *arg)
{
	unsigned t = (unsigned)(uintptr_t)arg;
	uint64_t seed = 0x1234567ULL * (t + 1) + 0x9abcdefULL;
	uint64_t sum = t;
	uint64_t next_id = (uint64_t)t << 40;
	struct blk slot[SLOTS];

	memset(slot, 0, sizeof(slot));
	for (long i = 0; i < ops_per_thread; i++) {
		uint64_t r = xs(&seed);
		struct blk *b = &slot[(r >> 8) % SLOTS];
		unsigned op = r % 100;

		if (op < 5) {
			/* take a block another thread left, check it, free it */
			struct blk o;
			if (ring_pop(&o))
				free_checked(&o);
			continue;
		}
		if (b->p) {
			if (op < 30) {
				/* realloc: the common prefix must survive */
				size_t n = pick_size(&seed);
				uint64_t id = ++next_id;
				check(b->p, b->size, b->id, b->size);
				void *q = realloc(b->p, n);
				if (!q)
					die("realloc returned NULL");
				size_t keep = n < b->size ? n : b->size;
				/* the header moved with the data: check the fill past it */
				if (keep > sizeof(struct hdr)) {
					const uint8_t *c = q;
					for (size_t k = sizeof(struct hdr); k < keep; k++)
						if (c[k] != fill_of(b->id))
							die("realloc lost content");
				}
				b->p = q;
				b->size = n;
				b->id = id;
				stamp(q, n, id);
				sum = mix(sum, n * 3 + 1);
			} else if (op < 40) {
				/* hand it to whichever thread looks next */
				if (!ring_push(b))
					free_checked(b);
				b->p = NULL;
				sum = mix(sum, 5);
			} else {
				free_checked(b);
				sum = mix(sum, 7);
			}
			continue;
		}
		size_t n = pick_size(&seed);
		uint64_t id = ++next_id;
		void *p;
		if (op < 60) {
			p = malloc(n);
		} else if (op < 75) {
			p = calloc(1, n);
			if (p)
				for (size_t k = 0; k < n; k += (k < 4096 ? 1 : 61))
					if (((char *)p)[k])
						die("calloc memory not zero");
		} else {
			size_t al = (size_t)16 << (xs(&seed) % 9);	/* 16 .. 4096 */
			int ret = posix_memalign(&p, al, n);
			if (ret)
				die("posix_memalign failed");
			if ((uintptr_t)p & (al - 1))
				die("posix_memalign misaligned");
		}
		if (!p)
			die("allocation returned NULL");
		if ((uintptr_t)p & 15)
			die("allocation not 16-byte aligned");
		stamp(p, n, id);
		b->p = p;
		b->size = n;
		b->id = id;
		sum = mix(sum, n * 2);
	}
	for (unsigned k = 0; k < SLOTS; k++)
		if (slot[k].p)
			free_checked(&slot[k]);
	return (void *)(uintptr_t)sum;
}

static void edge_cases(void)
{
	void *p;
	/* volatile: keep the compiler from folding the overflow cases */
	static volatile size_t half = SIZE_MAX / 2, huge = SIZE_MAX - 4096, three = 3;

	free(NULL);
	errno = 0;
	if (calloc(half, three) || errno != ENOMEM)
		die("calloc overflow not refused with ENOMEM");
	errno = 0;
	if (reallocarray(NULL, half, three) || errno != ENOMEM)
		die("reallocarray overflow not refused with ENOMEM");
	errno = 0;
	if (malloc(huge) || errno != ENOMEM)
		die("huge malloc not refused with ENOMEM");
	if (posix_memalign(&p, 3, 16) != EINVAL || posix_memalign(&p, 4, 16) != EINVAL)
		die("posix_memalign accepted a bad alignment");
	p = malloc(0);
	if (!p)
		die("malloc(0) returned NULL");
	free(p);
	p = malloc(100);
	if (!p || malloc_usable_size(p) < 100)
		die("malloc_usable_size");
	if (realloc(p, 0) != NULL)
		die("realloc(p, 0) did not free");
	p = realloc(NULL, 50);
	if (!p)
		die("realloc(NULL, n)");
	free(p);
	size_t aligns[] = { 8, 16, 64, 256, 4096, 65536, 1 << 21 };
	for (unsigned i = 0; i < sizeof(aligns) / sizeof(aligns[0]); i++) {
		size_t a = aligns[i];
		void *q[4];
		q[0] = aligned_alloc(a, 3 * a);
		q[1] = memalign(a, 100);
		if (posix_memalign(&q[2], a < sizeof(void *) ? sizeof(void *) : a, 70000))
			die("posix_memalign");
		q[3] = memalign(a, 1);
		for (int k = 0; k < 4; k++) {
			if (!q[k] || ((uintptr_t)q[k] & (a - 1)))
				die("aligned allocation misaligned");
			memset(q[k], 0xab, 1);
			free(q[k]);
		}
	}
	p = valloc(10);
	if (!p || ((uintptr_t)p & 4095))
		die("valloc");
	free(p);
	p = pvalloc(10);
	if (!p || ((uintptr_t)p & 4095) || malloc_usable_size(p) < 4096)
		die("pvalloc");
	free(p);
	/* grow a block by realloc through every size class and into large sizes */
	char *s = NULL;
	for (size_t n = 1; n <= (4u << 20); n = n * 5 / 4 + 1) {
		char *t = realloc(s, n);
		if (!t)
			die("realloc growth");
		if (s)
			for (size_t k = 0; k < n * 4 / 5 - 1 && k < n; k += 97)
				if (t[k] != (char)(k * 7))
					die("realloc growth lost content");
		for (size_t k = 0; k < n; k++)
			t[k] = (char)(k * 7);
		s = t;
	}
	free(s);
}

static void fork_check(void)
{
	char *before = malloc(100000);
	memset(before, 0x5a, 100000);
	pid_t pid = fork();
	if (pid < 0)
		die("fork");
	if (!pid) {
		for (int k = 0; k < 100000; k++)
			if (before[k] != 0x5a)
				_exit(3);
		free(before);
		for (int k = 0; k < 10000; k++) {
			char *q = malloc(1 + k % 5000);
			memset(q, k, 1 + k % 5000);
			free(q);
		}
		_exit(0);
	}
	int st;
	if (waitpid(pid, &st, 0) != pid || !WIFEXITED(st) || WEXITSTATUS(st))
		die("forked child failed");
	free(before);
}

int main(int argc, char **argv)
{
	pthread_t th[NTHREADS];
	uint64_t total = 0;

	if (argc > 1)
		ops_per_thread = strtol(argv[1], NULL, 0);
	edge_cases();
	fork_check();
	for (unsigned t = 0; t < NTHREADS; t++)
		if (pthread_create(&th[t], NULL, worker, (void *)(uintptr_t)t))
			die("pthread_create");
	for (unsigned t = 0; t < NTHREADS; t++) {
		void *r;
		pthread_join(th[t], &r);
		total = mix(total, (uint64_t)(uintptr_t)r);
	}
	struct blk o;
	while (ring_pop(&o))
		free_checked(&o);
	fork_check();
	printf("malloc_stress: %d threads x %ld ops: checksum %016" PRIx64 "\n", NTHREADS,
	       ops_per_thread, total);
	return 0;
}
