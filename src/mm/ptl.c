/* SPDX-License-Identifier: MIT */
/*
 * mm/ptl.c - striped page-table spinlocks, as the kernel's split PTE locks
 * (pte_lockptr()): one lock per 2 MiB of address space, hashed onto
 * PTL_STRIPES stripes.
 *
 * Held only across a commit or a real zap, so they spin; but a user-space
 * holder can be preempted, so a waiter yields its CPU after a short spin
 * instead of burning the whole quantum (2 CPUs: the holder may be waiting
 * for exactly this one).
 */
#include <sched.h>
#include <string.h>

#include "mm/ptl.h"

#define PTL_SPINS	128	/* pause rounds before sched_yield() */
#define PTL_LONG_BITS	(8 * sizeof(unsigned long))
#define PTL_MAP_LONGS	(PTL_STRIPES / PTL_LONG_BITS)

_Static_assert(PTL_STRIPES % (8 * sizeof(unsigned long)) == 0,
	       "the range bitmap is whole longs");

static _Atomic uint64_t yields;

static void ptl_yield(void)
{
	atomic_fetch_add_explicit(&yields, 1, memory_order_relaxed);
	sched_yield();
}

void ptl_init(struct ptl_table *t)
{
	unsigned int i;

	for (i = 0; i < PTL_STRIPES; i++)
		atomic_init(&t->stripe[i].locked, false);
}

bool ptl_trylock(struct ptl_table *t, unsigned int idx)
{
	atomic_bool *l = &t->stripe[idx].locked;

	/* Test first: a failed attempt leaves the holder's cacheline shared. */
	if (atomic_load_explicit(l, memory_order_relaxed))
		return false;
	return !atomic_exchange_explicit(l, true, memory_order_acquire);
}

void ptl_lock(struct ptl_table *t, unsigned int idx)
{
	atomic_bool *l = &t->stripe[idx].locked;
	unsigned int spins = 0;

	smp_wmb__before_spin_lock();
	while (atomic_exchange_explicit(l, true, memory_order_acquire)) {
		/* Test-and-test-and-set: spin on a shared copy, not with xchg. */
		while (atomic_load_explicit(l, memory_order_relaxed)) {
			if (++spins < PTL_SPINS) {
				__builtin_ia32_pause();
				continue;
			}
			spins = 0;
			ptl_yield();
		}
	}
}

uint64_t ptl_yields(void)
{
	return atomic_load_explicit(&yields, memory_order_relaxed);
}

void ptl_relax(unsigned int *spins)
{
	if (++*spins < PTL_SPINS) {
		__builtin_ia32_pause();
		return;
	}
	*spins = 0;
	ptl_yield();
}

void ptl_unlock(struct ptl_table *t, unsigned int idx)
{
	atomic_store_explicit(&t->stripe[idx].locked, false, memory_order_release);
}

/*
 * The stripes covering [start, end) as a bitmap.  A range of PTL_STRIPES
 * or more 2 MiB blocks takes every stripe: a superset (the hash need not
 * hit them all) is safe, and it bounds the walk.
 */
static void ptl_range_map(unsigned long start, unsigned long end,
			  unsigned long map[PTL_MAP_LONGS])
{
	unsigned long pmd, first, last;
	unsigned int idx;

	memset(map, 0, PTL_MAP_LONGS * sizeof(map[0]));
	if (end <= start)
		return;
	first = start >> PMD_SHIFT;
	last = (end - 1) >> PMD_SHIFT;
	if (last - first >= PTL_STRIPES - 1) {
		memset(map, 0xff, PTL_MAP_LONGS * sizeof(map[0]));
		return;
	}
	for (pmd = first; pmd <= last; pmd++) {
		idx = ptl_index(pmd << PMD_SHIFT);
		map[idx / PTL_LONG_BITS] |= 1ul << (idx % PTL_LONG_BITS);
	}
}

/* Ascending stripe order: two range lockers can never deadlock. */
void ptl_lock_range(struct ptl_table *t, unsigned long start, unsigned long end)
{
	unsigned long map[PTL_MAP_LONGS], bits;
	unsigned int w;

	ptl_range_map(start, end, map);
	for (w = 0; w < PTL_MAP_LONGS; w++) {
		for (bits = map[w]; bits; bits &= bits - 1)
			ptl_lock(t, w * PTL_LONG_BITS + __builtin_ctzl(bits));
	}
}

/*
 * Two ranges that may share stripes (mremap's source and target): the
 * union of their stripes, each once, in ascending order - no more than
 * the two ranges' page tables, where "every stripe" was the whole table.
 */
static void ptl_two_map(unsigned long s1, unsigned long e1, unsigned long s2, unsigned long e2,
			unsigned long map[PTL_MAP_LONGS])
{
	unsigned long other[PTL_MAP_LONGS];
	unsigned int w;

	ptl_range_map(s1, e1, map);
	ptl_range_map(s2, e2, other);
	for (w = 0; w < PTL_MAP_LONGS; w++)
		map[w] |= other[w];
}

void ptl_lock_two_ranges(struct ptl_table *t, unsigned long s1, unsigned long e1,
			 unsigned long s2, unsigned long e2)
{
	unsigned long map[PTL_MAP_LONGS], bits;
	unsigned int w;

	ptl_two_map(s1, e1, s2, e2, map);
	for (w = 0; w < PTL_MAP_LONGS; w++) {
		for (bits = map[w]; bits; bits &= bits - 1)
			ptl_lock(t, w * PTL_LONG_BITS + __builtin_ctzl(bits));
	}
}

void ptl_unlock_two_ranges(struct ptl_table *t, unsigned long s1, unsigned long e1,
			   unsigned long s2, unsigned long e2)
{
	unsigned long map[PTL_MAP_LONGS], bits;
	unsigned int w;

	ptl_two_map(s1, e1, s2, e2, map);
	for (w = 0; w < PTL_MAP_LONGS; w++) {
		for (bits = map[w]; bits; bits &= bits - 1)
			ptl_unlock(t, w * PTL_LONG_BITS + __builtin_ctzl(bits));
	}
}

void ptl_unlock_range(struct ptl_table *t, unsigned long start, unsigned long end)
{
	unsigned long map[PTL_MAP_LONGS], bits;
	unsigned int w;

	ptl_range_map(start, end, map);
	for (w = 0; w < PTL_MAP_LONGS; w++) {
		for (bits = map[w]; bits; bits &= bits - 1)
			ptl_unlock(t, w * PTL_LONG_BITS + __builtin_ctzl(bits));
	}
}
