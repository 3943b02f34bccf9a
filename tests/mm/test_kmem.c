/* SPDX-License-Identifier: MIT */
/*
 * tests/mm/test_kmem.c - the runtime's own memory: raw mappings and the slab cache
 * (zeroed, aligned, distinct objects; reuse; in-use counts; concurrency;
 * argument checks).
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "mm/kmem.h"

TestSuite(kmem, .timeout = 30);

static bool all_zero(const void *p, size_t len)
{
	const unsigned char *c = p;
	size_t i;

	for (i = 0; i < len; i++)
		if (c[i])
			return false;
	return true;
}

static int cmp_ptr(const void *a, const void *b)
{
	uintptr_t x = (uintptr_t)*(void *const *)a, y = (uintptr_t)*(void *const *)b;

	return x < y ? -1 : x > y;
}

Test(kmem, map_is_zeroed_and_page_aligned)
{
	size_t pg = (size_t)sysconf(_SC_PAGESIZE);
	size_t lens[] = { 1, pg, 3 * pg + 1 };
	unsigned int i;

	for (i = 0; i < sizeof(lens) / sizeof(lens[0]); i++) {
		size_t rounded = (lens[i] + pg - 1) / pg * pg;
		unsigned char *p = kmem_map(lens[i]);

		cr_assert_not_null(p, "kmem_map(%zu)", lens[i]);
		cr_assert_eq((uintptr_t)p % pg, 0);
		cr_assert(all_zero(p, rounded), "kmem_map(%zu) not zeroed", lens[i]);
		memset(p, 0xa5, rounded);	/* writable up to the rounded length */
		kmem_unmap(p, lens[i]);
	}
	kmem_unmap(NULL, pg);			/* a no-op */
}

Test(kmem, map_keeps_errno)
{
	errno = 1234;
	kmem_unmap(kmem_map(4096), 4096);
	cr_assert_eq(errno, 1234);
}

#define NOBJ 1000

Test(kmem, cache_objects_zeroed_aligned_distinct)
{
	static void *obj[NOBJ];
	struct kmem_cache *c = kmem_cache_create("test", 24, 16);
	int i;

	cr_assert_not_null(c);
	for (i = 0; i < NOBJ; i++) {
		obj[i] = kmem_cache_alloc(c);
		cr_assert_not_null(obj[i]);
		cr_assert_eq((uintptr_t)obj[i] % 16, 0, "object %d misaligned", i);
		cr_assert(all_zero(obj[i], 24), "object %d not zeroed", i);
		memset(obj[i], 0xff, 24);
	}
	cr_assert_eq(kmem_cache_in_use(c), NOBJ);

	/* Sorted, consecutive objects must not overlap. */
	qsort(obj, NOBJ, sizeof(obj[0]), cmp_ptr);
	for (i = 1; i < NOBJ; i++)
		cr_assert_geq((uintptr_t)obj[i] - (uintptr_t)obj[i - 1], 24,
			      "objects %p and %p overlap", obj[i - 1], obj[i]);

	for (i = 0; i < NOBJ; i++)
		kmem_cache_free(c, obj[i]);
	cr_assert_eq(kmem_cache_in_use(c), 0);
	kmem_cache_destroy(c);
}

Test(kmem, free_then_alloc_reuses_zeroed)
{
	static void *first[NOBJ], *again[NOBJ];
	struct kmem_cache *c = kmem_cache_create("reuse", 64, 0);
	int i;

	cr_assert_not_null(c);
	for (i = 0; i < NOBJ; i++) {
		first[i] = kmem_cache_alloc(c);
		cr_assert_not_null(first[i]);
		memset(first[i], 0x5a, 64);
	}
	cr_assert_eq(kmem_cache_in_use(c), NOBJ);
	for (i = 0; i < NOBJ / 2; i++)
		kmem_cache_free(c, first[i]);
	cr_assert_eq(kmem_cache_in_use(c), NOBJ - NOBJ / 2);
	for (i = NOBJ / 2; i < NOBJ; i++)
		kmem_cache_free(c, first[i]);
	cr_assert_eq(kmem_cache_in_use(c), 0);

	/* As many again: all from the freed objects, wiped clean. */
	for (i = 0; i < NOBJ; i++) {
		again[i] = kmem_cache_alloc(c);
		cr_assert_not_null(again[i]);
		cr_assert(all_zero(again[i], 64), "reused object %d not zeroed", i);
	}
	qsort(first, NOBJ, sizeof(first[0]), cmp_ptr);
	for (i = 0; i < NOBJ; i++)
		cr_assert_not_null(bsearch(&again[i], first, NOBJ, sizeof(first[0]), cmp_ptr),
				   "object %p is new, not reused", again[i]);
	cr_assert_eq(kmem_cache_in_use(c), NOBJ);
	for (i = 0; i < NOBJ; i++)
		kmem_cache_free(c, again[i]);
	kmem_cache_free(c, NULL);		/* a no-op */
	cr_assert_eq(kmem_cache_in_use(c), 0);
	kmem_cache_destroy(c);
}

Test(kmem, create_rejects_bad_arguments)
{
	struct kmem_cache *c;

	errno = 0;
	cr_assert_null(kmem_cache_create("npot", 32, 24));
	cr_assert_eq(errno, EINVAL);
	errno = 0;
	cr_assert_null(kmem_cache_create("zero", 0, 8));
	cr_assert_eq(errno, EINVAL);
	errno = 0;
	cr_assert_null(kmem_cache_create("huge", 1 << 20, 8));
	cr_assert_eq(errno, EINVAL);
	/* Slabs are page aligned: larger alignments cannot be honoured. */
	errno = 0;
	cr_assert_null(kmem_cache_create("overaligned", 64, 8192));
	cr_assert_eq(errno, EINVAL);
	c = kmem_cache_create("page", 64, 4096);
	cr_assert_not_null(c);
	cr_assert_eq((uintptr_t)kmem_cache_alloc(c) % 4096, 0);
	cr_assert_eq((uintptr_t)kmem_cache_alloc(c) % 4096, 0);
	kmem_cache_destroy(c);

	/* Small alignments are raised to a pointer's. */
	c = kmem_cache_create("tiny", 1, 1);
	cr_assert_not_null(c);
	cr_assert_eq((uintptr_t)kmem_cache_alloc(c) % sizeof(void *), 0);
	kmem_cache_destroy(c);
	kmem_cache_destroy(NULL);		/* a no-op */
}

/*
 * Threads allocate batches, stamp each object with their id, check the
 * stamps survived, free.  An object handed to two threads at once would
 * carry the other thread's stamp.
 */
#define KM_THREADS	4
#define KM_ROUNDS	2000
#define KM_BATCH	32

struct stamp {
	unsigned long owner, seq;
	char pad[48];
};

static struct kmem_cache *shared_cache;

static void *churn_fn(void *arg)
{
	unsigned long me = (unsigned long)(uintptr_t)arg, bad = 0;
	struct stamp *batch[KM_BATCH];
	int r, i;

	for (r = 0; r < KM_ROUNDS; r++) {
		for (i = 0; i < KM_BATCH; i++) {
			batch[i] = kmem_cache_alloc(shared_cache);
			if (!batch[i] || !all_zero(batch[i], sizeof(*batch[i])))
				return (void *)-1ul;
			batch[i]->owner = me;
			batch[i]->seq = (unsigned long)i;
		}
		for (i = 0; i < KM_BATCH; i++) {
			if (batch[i]->owner != me || batch[i]->seq != (unsigned long)i)
				bad++;
			kmem_cache_free(shared_cache, batch[i]);
		}
	}
	return (void *)bad;
}

Test(kmem, concurrent_alloc_free)
{
	pthread_t tid[KM_THREADS];
	void *ret;
	int i;

	shared_cache = kmem_cache_create("churn", sizeof(struct stamp), 0);
	cr_assert_not_null(shared_cache);
	for (i = 0; i < KM_THREADS; i++)
		cr_assert_eq(pthread_create(&tid[i], NULL, churn_fn,
					    (void *)(uintptr_t)(i + 1)), 0);
	for (i = 0; i < KM_THREADS; i++) {
		pthread_join(tid[i], &ret);
		cr_assert_eq((unsigned long)ret, 0, "thread %d: %ld bad objects "
			     "(-1: an allocation failed or was not zeroed)", i, (long)ret);
	}
	cr_assert_eq(kmem_cache_in_use(shared_cache), 0);
	kmem_cache_destroy(shared_cache);
}

/*
 * fork() while another thread is inside the allocator: the child must find
 * every kmem lock free (it allocates, grows a cache and makes a new one).
 * Without the fork hooks a child forked while the churner held the cache's
 * lock waits for ever; the parent's waitpid() would then time out.
 */
struct churn {
	struct kmem_cache *c;
	atomic_bool stop;
};

static void *churner(void *arg)
{
	struct churn *ch = arg;
	void *objs[64];

	while (!atomic_load(&ch->stop)) {
		for (int i = 0; i < 64; i++)
			objs[i] = kmem_cache_alloc(ch->c);
		for (int i = 0; i < 64; i++)
			kmem_cache_free(ch->c, objs[i]);
	}
	return NULL;
}

static int child_allocates(struct kmem_cache *c)
{
	struct kmem_cache *fresh;
	void *objs[2048];
	int i;

	/* More than a slab's worth: the cache grows from the arena too. */
	for (i = 0; i < 2048; i++)
		if (!(objs[i] = kmem_cache_alloc(c)))
			return 1;
	for (i = 0; i < 2048; i++)
		kmem_cache_free(c, objs[i]);
	fresh = kmem_cache_create("child", 48, 8);
	if (!fresh || !kmem_cache_alloc(fresh))
		return 2;
	return 0;
}

/* Waits up to 10 s; a child still running then is deadlocked: kill it. */
static bool wait_child(pid_t pid, int *status)
{
	for (int ms = 0; ms < 10000; ms++) {
		if (waitpid(pid, status, WNOHANG) == pid)
			return true;
		usleep(1000);
	}
	kill(pid, SIGKILL);
	waitpid(pid, status, 0);
	return false;
}

Test(kmem, fork_while_another_thread_allocates)
{
	struct churn ch = { .c = kmem_cache_create("churn", 128, 64) };
	pthread_t t;
	int i, status;

	cr_assert(ch.c);
	kmem_atfork_register();
	kmem_atfork_register();		/* idempotent */
	cr_assert_eq(pthread_create(&t, NULL, churner, &ch), 0);
	for (i = 0; i < 300; i++) {
		pid_t pid = fork();

		cr_assert_geq(pid, 0);
		if (pid == 0)
			_exit(child_allocates(ch.c));
		cr_assert(wait_child(pid, &status), "child %d deadlocked (killed)", i);
		cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0,
			  "child %d: status %#x", i, status);
	}
	atomic_store(&ch.stop, true);
	pthread_join(t, NULL);
	cr_assert_eq(kmem_cache_in_use(ch.c), 0);
}
