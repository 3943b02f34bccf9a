/* SPDX-License-Identifier: MIT */
/*
 * tests/mm/test_ptl.c - striped page-table locks: the 2 MiB hash, trylock, range
 * locking of exactly the stripes a range touches, and mutual exclusion.
 *
 * Lock states are probed from another thread with ptl_trylock(), as a
 * fault's commit would meet them.
 */
#include <criterion/criterion.h>
#include <pthread.h>
#include <stdatomic.h>
#include <string.h>

#include "mm/ptl.h"

TestSuite(ptl, .timeout = 30);

#define BASE	0x7f1234400000ul	/* 2 MiB aligned, like a typical mmap */

static struct ptl_table table;

Test(ptl, index_per_2mib_block)
{
	unsigned int idx = ptl_index(BASE);

	cr_assert_lt(idx, PTL_STRIPES);
	cr_assert_eq(ptl_index(BASE + 4096), idx);
	cr_assert_eq(ptl_index(BASE + PMD_SIZE / 2), idx);
	cr_assert_eq(ptl_index(BASE + PMD_SIZE - 1), idx);
	cr_assert_neq(ptl_index(BASE + PMD_SIZE), idx, "the next page table");
	cr_assert_neq(ptl_index(BASE - 1), idx, "the previous page table");
}

Test(ptl, trylock_fails_when_held)
{
	unsigned int i;

	ptl_init(&table);
	for (i = 0; i < PTL_STRIPES; i++) {
		cr_assert(ptl_trylock(&table, i), "stripe %u free after init", i);
		ptl_unlock(&table, i);
	}
	ptl_lock(&table, 7);
	cr_assert(!ptl_trylock(&table, 7));
	cr_assert(ptl_trylock(&table, 8), "stripes are independent");
	ptl_unlock(&table, 8);
	ptl_unlock(&table, 7);
	cr_assert(ptl_trylock(&table, 7));
	ptl_unlock(&table, 7);
}

/* Which stripes another thread finds held (it releases any it gets). */
static bool probed[PTL_STRIPES];

static void *probe_fn(void *arg)
{
	unsigned int i;

	for (i = 0; i < PTL_STRIPES; i++) {
		probed[i] = !ptl_trylock(&table, i);
		if (!probed[i])
			ptl_unlock(&table, i);
	}
	return NULL;
}

static void probe(void)
{
	pthread_t tid;

	cr_assert_eq(pthread_create(&tid, NULL, probe_fn, NULL), 0);
	pthread_join(tid, NULL);
}

/* The stripes of [start, end), computed independently; returns how many. */
static unsigned int expected_stripes(unsigned long start, unsigned long end,
				     bool want[PTL_STRIPES])
{
	unsigned long addr;
	unsigned int i, n = 0;

	memset(want, 0, PTL_STRIPES * sizeof(want[0]));
	if (end <= start)
		return 0;
	if ((end - 1) / PMD_SIZE - start / PMD_SIZE + 1 >= PTL_STRIPES)
		memset(want, 1, PTL_STRIPES * sizeof(want[0]));
	else
		for (addr = start & PMD_MASK; addr < end; addr += PMD_SIZE)
			want[ptl_index(addr)] = true;
	for (i = 0; i < PTL_STRIPES; i++)
		n += want[i];
	return n;
}

/* Lock [start, end), check exactly its stripes are held, unlock, check all free. */
static void check_range(unsigned long start, unsigned long end, unsigned int nr)
{
	bool want[PTL_STRIPES];
	unsigned int i;

	cr_assert_eq(expected_stripes(start, end, want), nr,
		     "[%#lx, %#lx) should cover %u stripes", start, end, nr);
	ptl_lock_range(&table, start, end);
	probe();
	for (i = 0; i < PTL_STRIPES; i++)
		cr_assert_eq(probed[i], want[i], "[%#lx, %#lx): stripe %u %s",
			     start, end, i, want[i] ? "not held" : "held, outside the range");
	ptl_unlock_range(&table, start, end);
	probe();
	for (i = 0; i < PTL_STRIPES; i++)
		cr_assert(!probed[i], "stripe %u still held after unlock_range", i);
}

Test(ptl, range_one_page)
{
	ptl_init(&table);
	check_range(BASE + 4096, BASE + 8192, 1);
}

Test(ptl, range_one_block_end_exclusive)
{
	ptl_init(&table);
	check_range(BASE, BASE + PMD_SIZE, 1);
}

Test(ptl, range_straddles_two_blocks)
{
	ptl_init(&table);
	check_range(BASE + PMD_SIZE - 4096, BASE + PMD_SIZE + 4096, 2);
}

Test(ptl, range_empty_locks_nothing)
{
	ptl_init(&table);
	check_range(BASE, BASE, 0);
}

/*
 * The hash folds pmd >> 10 in, so a range can meet one stripe twice: here
 * blocks 1000..1023 of the 1023rd group of 1024 (stripes 23..0) and blocks
 * 0..500 of the next group (stripes 0..500).  Each shared stripe must be
 * taken once only (a second ptl_lock of a held stripe would spin for ever).
 */
Test(ptl, range_with_shared_stripes)
{
	unsigned long start = (1023ul * 1024 + 1000) << PMD_SHIFT;
	unsigned long end = (1024ul * 1024 + 501) << PMD_SHIFT;
	bool want[PTL_STRIPES];

	ptl_init(&table);
	cr_assert_eq(expected_stripes(start, end, want), 501, "24 stripes shared");
	check_range(start + 123, end - 456, 501);
}

Test(ptl, range_of_ptl_stripes_blocks_locks_all)
{
	ptl_init(&table);
	check_range(BASE, BASE + (unsigned long)PTL_STRIPES * PMD_SIZE, PTL_STRIPES);
	check_range(BASE + 4096, BASE + 2ul * PTL_STRIPES * PMD_SIZE, PTL_STRIPES);
}

/*
 * mremap's two ranges: the union of their stripes, each once (a range
 * whose blocks share stripes with the other's must not be taken twice),
 * and nothing else - a stripe of neither range stays free.
 */
Test(ptl, two_ranges_take_their_union_once)
{
	unsigned long s1 = BASE, e1 = BASE + 3 * PMD_SIZE;
	/* A block of another group whose stripe is one of the first range's, and three more. */
	unsigned long s2 = BASE + ((unsigned long)PTL_STRIPES * PTL_STRIPES + 2) * PMD_SIZE;
	unsigned long e2 = s2 + 4 * PMD_SIZE, a;
	bool want[PTL_STRIPES] = { false };
	unsigned int k, n = 0;

	for (a = s1; a < e1; a += PMD_SIZE)
		want[ptl_index(a)] = true;
	for (a = s2; a < e2; a += PMD_SIZE)
		want[ptl_index(a)] = true;
	for (k = 0; k < PTL_STRIPES; k++)
		n += want[k];
	cr_assert_lt(n, 7, "the two ranges share a stripe (%u for 7 blocks)", n);
	ptl_init(&table);
	ptl_lock_two_ranges(&table, s1, e1, s2, e2);
	for (k = 0; k < PTL_STRIPES; k++) {
		bool got = ptl_trylock(&table, k);

		cr_assert_eq(!got, want[k], "stripe %u: %s", k, got ? "free" : "held");
		if (got)
			ptl_unlock(&table, k);
	}
	ptl_unlock_two_ranges(&table, s1, e1, s2, e2);
	for (k = 0; k < PTL_STRIPES; k++) {
		cr_assert(ptl_trylock(&table, k), "stripe %u left held", k);
		ptl_unlock(&table, k);
	}
}

/* ---- mutual exclusion: single-stripe and range lockers on one stripe ---- */

#define MUTEX_THREADS	4
#define MUTEX_LOOPS	100000

static unsigned long shared_counter;	/* protected by the stripe of BASE */

static void *increment_fn(void *arg)
{
	unsigned int idx = ptl_index(BASE);
	int i;

	for (i = 0; i < MUTEX_LOOPS; i++) {
		if (i % 16) {
			ptl_lock(&table, idx);
			shared_counter++;
			ptl_unlock(&table, idx);
			continue;
		}
		/* A zap-like writer: a range that contains BASE's block. */
		ptl_lock_range(&table, BASE - 3 * PMD_SIZE, BASE + 5 * PMD_SIZE);
		shared_counter++;
		ptl_unlock_range(&table, BASE - 3 * PMD_SIZE, BASE + 5 * PMD_SIZE);
	}
	return NULL;
}

Test(ptl, mutual_exclusion)
{
	pthread_t tid[MUTEX_THREADS];
	int i;

	ptl_init(&table);
	for (i = 0; i < MUTEX_THREADS; i++)
		cr_assert_eq(pthread_create(&tid[i], NULL, increment_fn, NULL), 0);
	for (i = 0; i < MUTEX_THREADS; i++)
		pthread_join(tid[i], NULL);
	cr_assert_eq(shared_counter, (unsigned long)MUTEX_THREADS * MUTEX_LOOPS);
	probe();
	for (i = 0; i < PTL_STRIPES; i++)
		cr_assert(!probed[i], "stripe %d left held", i);
}
