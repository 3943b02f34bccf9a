/* SPDX-License-Identifier: MIT */
/*
 * tests/mm/test_vma_index_btree.c - the VMA index as a B-tree: what tests/mm/test_vma_index.c
 * cannot see from the API alone.
 *
 * - Node boundaries: the first split, a leaf that shares its slots with a
 *   sibling instead of splitting, a merge, a borrow, levels added and
 *   removed - each checked with vma_index_check(), which walks the whole
 *   structure (depth, fill, pivots, order, count).
 * - Thousands of random inserts, erases and set_range() against a sorted
 *   array, the structure checked after every operation.
 * - Erase without memory: kmem_cache_alloc() fails on demand (the binary
 *   is linked with -Wl,--wrap=kmem_cache_alloc), erase leaves a hole in
 *   place, and every operation after it must still be right.
 * - Readers write nothing: lookups and finds with the node caches
 *   read-only (vma_index_protect()).
 * - Readers under RCU while a writer churns an index several levels deep:
 *   they never miss a range that stays, never see one overlap another.
 *
 * Ranges here are one page at PG(4 * i) unless a test says otherwise, so
 * there is always room to insert between two of them.
 */
#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>

#include <criterion/criterion.h>
#include <criterion/parameterized.h>
#include <urcu-bp.h>

#include "mm/call_rcu.h"
#include "mm/kmem.h"
#include "mm/vma_index.h"
#include "tests/mm/vma_index_ref.h"

#define PG(x)		((unsigned long)(x) << 12)
#define E(i)		((void *)(uintptr_t)((i) + 1))
#define LEAF		VMA_INDEX_LEAF_SLOTS
#define NODE		VMA_INDEX_NODE_SLOTS

TestSuite(btree, .timeout = 60);

/* ---- allocation failures on demand ---- */

void *__real_kmem_cache_alloc(struct kmem_cache *c);

static atomic_uint fail_percent;	/* 0: never, 100: always */
static _Thread_local uint64_t fail_rng = 0x2545f4914f6cdd1dull;

static uint64_t xorshift(uint64_t *s)
{
	uint64_t x = *s;

	x ^= x << 13;
	x ^= x >> 7;
	x ^= x << 17;
	*s = x;
	return x;
}

void *__wrap_kmem_cache_alloc(struct kmem_cache *c)
{
	unsigned int pct = atomic_load_explicit(&fail_percent, memory_order_relaxed);

	if (pct && xorshift(&fail_rng) % 100 < pct)
		return NULL;
	return __real_kmem_cache_alloc(c);
}

/* ---- helpers ---- */

static void *lookup(struct vma_index *idx, unsigned long addr)
{
	void *e;

	rcu_read_lock();
	e = vma_index_lookup(idx, addr);
	rcu_read_unlock();
	return e;
}

static void *find(struct vma_index *idx, unsigned long addr, unsigned long *start,
		  unsigned long *end)
{
	void *e;

	rcu_read_lock();
	e = vma_index_find(idx, addr, start, end);
	rcu_read_unlock();
	return e;
}

static struct vma_index_shape check_at(struct vma_index *idx, int line)
{
	struct vma_index_shape shape;

	cr_assert_eq(vma_index_check(idx, &shape), 0, "the structure is broken (line %d)", line);
	return shape;
}

#define check(idx)	check_at(idx, __LINE__)

/* A B-tree's fill invariant: non-root nodes at least half full. */
static void check_fill_at(struct vma_index *idx, int line)
{
	struct vma_index_shape shape = check_at(idx, line);

	if (shape.leaf_min)
		cr_assert_geq(shape.leaf_min, LEAF / 2, "a leaf with %u slots", shape.leaf_min);
	if (shape.node_min)
		cr_assert_geq(shape.node_min, NODE / 2, "a node with %u children",
			      shape.node_min);
}

#define check_fill(idx)	check_fill_at(idx, __LINE__)

static void ins(struct vma_index *idx, unsigned long page, void *entry)
{
	cr_assert_eq(vma_index_insert(idx, PG(page), PG(page + 1), entry), 0,
		     "insert at page %#lx", page);
}

/* Range i of the usual layout: one page at PG(4 * i). */
static void ins_i(struct vma_index *idx, unsigned long i)
{
	ins(idx, 4 * i, E(i));
}

/* The one-page ranges at the given pages, in order, and nothing else. */
static void assert_pages(struct vma_index *idx, const unsigned long *pages, size_t n)
{
	unsigned long start, end, addr = 0;
	size_t i;
	void *e;

	cr_assert_eq(vma_index_count(idx), n);
	for (i = 0; i < n; i++) {
		e = find(idx, addr, &start, &end);
		cr_assert_not_null(e, "range %zu of %zu missing", i, n);
		cr_assert_eq(start, PG(pages[i]), "range %zu starts at %#lx", i, start);
		cr_assert_eq(end, PG(pages[i] + 1));
		cr_assert_eq(lookup(idx, start), e);
		cr_assert_eq(lookup(idx, end - 1), e);
		cr_assert_null(lookup(idx, end));
		addr = end;
	}
	cr_assert_null(find(idx, addr, NULL, NULL));
}

static void assert_usual(struct vma_index *idx, unsigned long n)
{
	unsigned long pages[4096], i;

	for (i = 0; i < n; i++)
		pages[i] = 4 * i;
	assert_pages(idx, pages, n);
}

/* ---- node boundaries ---- */

/*
 * One leaf holds LEAF ranges; the next one splits it in two halves under
 * a new root.  Across the boundary between the two leaves, find() goes on
 * from the left leaf's last range to the right leaf's first.
 */
Test(btree, first_split)
{
	struct vma_index_shape shape;
	struct vma_index idx;
	unsigned long start, end, i;

	cr_assert_eq(vma_index_init(&idx, 0), 0);
	for (i = 0; i < LEAF; i++)
		ins_i(&idx, i);
	shape = check(&idx);
	cr_assert_eq(shape.height, 1);
	cr_assert_eq(shape.leaves, 1);

	ins_i(&idx, LEAF);
	shape = check(&idx);
	cr_assert_eq(shape.height, 2);
	cr_assert_eq(shape.leaves, 2);
	cr_assert_eq(shape.nodes, 1);
	cr_assert_eq(shape.leaf_min, (LEAF + 1) / 2);
	assert_usual(&idx, LEAF + 1);

	/* The gap after the left leaf's last range: found in the right leaf. */
	i = (LEAF + 1) / 2 - 1;
	cr_assert_null(lookup(&idx, PG(4 * i + 1)));
	cr_assert_eq(find(&idx, PG(4 * i + 1), &start, &end), E(i + 1));
	cr_assert_eq(start, PG(4 * (i + 1)));
	cr_assert_eq(find(&idx, PG(4 * i + 1) - 1, &start, &end), E(i));
	vma_index_destroy(&idx);
}

/*
 * A full leaf with a sibling that has room does not split: the two share
 * the slots, evenly.
 *
 *   left [0..7] right [8..15]   -> fill left with 7 more: left holds 15
 *   one more in left             -> 16 + 8 shared as 12 + 12, still 2 leaves
 */
Test(btree, overflow_shares_with_sibling)
{
	struct vma_index_shape shape;
	struct vma_index idx;
	unsigned long i;

	cr_assert_eq(vma_index_init(&idx, 0), 0);
	for (i = 0; i <= LEAF; i++)
		ins_i(&idx, i);
	for (i = 0; i < 7; i++)
		ins(&idx, 4 * i + 2, E(100 + i));
	shape = check(&idx);
	cr_assert_eq(shape.leaves, 2);
	cr_assert_eq(shape.leaf_min, 8);

	ins(&idx, 3, E(200));	/* between ranges 0 and 1: the left leaf */
	shape = check(&idx);
	cr_assert_eq(shape.height, 2);
	cr_assert_eq(shape.leaves, 2);
	cr_assert_eq(shape.leaf_min, 12);
	cr_assert_eq(vma_index_count(&idx), LEAF + 1 + 8);
	cr_assert_eq(lookup(&idx, PG(3)), E(200));
	for (i = 0; i < 7; i++)
		cr_assert_eq(lookup(&idx, PG(4 * i + 2)), E(100 + i));
	for (i = 0; i <= LEAF; i++)
		cr_assert_eq(lookup(&idx, PG(4 * i)), E(i));
	vma_index_destroy(&idx);
}

/*
 *   left [0..7] right [8..15]
 *   erase 0: left holds 7, the minimum: nothing moves
 *   erase 1: left holds 6: merged with right (6 + 8), the root goes
 */
Test(btree, underflow_merges)
{
	struct vma_index_shape shape;
	struct vma_index idx;
	unsigned long i;

	cr_assert_eq(vma_index_init(&idx, 0), 0);
	for (i = 0; i <= LEAF; i++)
		ins_i(&idx, i);
	cr_assert_eq(vma_index_erase(&idx, PG(0)), E(0));
	shape = check(&idx);
	cr_assert_eq(shape.leaves, 2);
	cr_assert_eq(shape.leaf_min, 7);

	cr_assert_eq(vma_index_erase(&idx, PG(4)), E(1));
	shape = check(&idx);
	cr_assert_eq(shape.height, 1);
	cr_assert_eq(shape.leaves, 1);
	cr_assert_eq(vma_index_count(&idx), LEAF + 1 - 2);
	for (i = 2; i <= LEAF; i++)
		cr_assert_eq(lookup(&idx, PG(4 * i)), E(i));
	vma_index_destroy(&idx);
}

/*
 *   left [0..7] right [8..15] + 7 more in right: right holds 15
 *   erase 0, 1: left holds 6: 6 + 15 do not fit one leaf: 10 + 11
 */
Test(btree, underflow_borrows)
{
	struct vma_index_shape shape;
	struct vma_index idx;
	unsigned long i;

	cr_assert_eq(vma_index_init(&idx, 0), 0);
	for (i = 0; i <= LEAF; i++)
		ins_i(&idx, i);
	for (i = 8; i < 15; i++)
		ins(&idx, 4 * i + 2, E(100 + i));
	cr_assert_eq(vma_index_erase(&idx, PG(0)), E(0));
	cr_assert_eq(vma_index_erase(&idx, PG(4)), E(1));
	shape = check(&idx);
	cr_assert_eq(shape.height, 2);
	cr_assert_eq(shape.leaves, 2);
	cr_assert_eq(shape.leaf_min, 10);
	for (i = 2; i <= LEAF; i++)
		cr_assert_eq(lookup(&idx, PG(4 * i)), E(i));
	for (i = 8; i < 15; i++)
		cr_assert_eq(lookup(&idx, PG(4 * i + 2)), E(100 + i));
	vma_index_destroy(&idx);
}

/* The last range of a leaf sets the pivot above: move its end both ways. */
Test(btree, set_range_moves_a_pivot)
{
	struct vma_index idx;
	unsigned long s, e, i, last = (LEAF + 1) / 2 - 1;	/* the left leaf's last */

	cr_assert_eq(vma_index_init(&idx, 0), 0);
	for (i = 0; i <= LEAF; i++)
		ins_i(&idx, i);

	/* Grow to touch the right leaf's first range, then shrink to a page. */
	cr_assert_eq(vma_index_set_range(&idx, PG(4 * last), PG(4 * last), PG(4 * last + 4)), 0);
	check(&idx);
	cr_assert_eq(lookup(&idx, PG(4 * last + 3)), E(last));
	cr_assert_eq(find(&idx, PG(4 * last + 3), &s, &e), E(last));
	cr_assert_eq(e, PG(4 * last + 4));
	cr_assert_eq(vma_index_set_range(&idx, PG(4 * last), PG(4 * last + 2), PG(4 * last + 3)), 0);
	check(&idx);
	cr_assert_null(lookup(&idx, PG(4 * last)));
	cr_assert_eq(lookup(&idx, PG(4 * last + 2)), E(last));
	cr_assert_eq(find(&idx, PG(4 * last + 3), &s, &e), E(last + 1));
	cr_assert_eq(s, PG(4 * last + 4));

	/* The right leaf's first range grows down to it. */
	cr_assert_eq(vma_index_set_range(&idx, PG(4 * last + 4), PG(4 * last + 3),
					 PG(4 * last + 5)), 0);
	check(&idx);
	cr_assert_eq(lookup(&idx, PG(4 * last + 3)), E(last + 1));
	vma_index_destroy(&idx);
}

/*
 * In ascending order, leaves fill one after another and the index grows a
 * level at a time; erased in random order, it shrinks back to nothing,
 * every node at least half full at every step.
 */
Test(btree, levels_grow_and_shrink)
{
	static unsigned long order[4096];
	unsigned int last_height = 0, grew = 0, shrank = 0;
	struct vma_index_shape shape;
	struct vma_index idx;
	uint64_t rng = 3;
	unsigned long i, j, n = 0;

	cr_assert_eq(vma_index_init(&idx, 0), 0);
	while (last_height < 4) {
		ins_i(&idx, n++);
		check_fill(&idx);
		shape = check(&idx);
		grew += shape.height != last_height;
		last_height = shape.height;
		cr_assert_lt(n, 4096);
	}
	cr_assert_eq(grew, 4);
	assert_usual(&idx, n);

	for (i = 0; i < n; i++)
		order[i] = i;
	for (i = n - 1; i > 0; i--) {
		unsigned long t = order[i];

		j = xorshift(&rng) % (i + 1);
		order[i] = order[j];
		order[j] = t;
	}
	for (i = 0; i < n; i++) {
		cr_assert_eq(vma_index_erase(&idx, PG(4 * order[i])), E(order[i]));
		check_fill(&idx);
		shape = check(&idx);
		shrank += shape.height != last_height;
		last_height = shape.height;
	}
	cr_assert_eq(last_height, 0);
	cr_assert_eq(shrank, 4);
	cr_assert_eq(vma_index_count(&idx), 0);
	vma_index_destroy(&idx);
	mm_rcu_barrier();
}

/* ---- randomized, against a sorted array ---- */

#define RSPAN		(1ul << 22)	/* pages: room for REF_MAX ranges */
#define RLEN		8ul

/* Every range, both ends, the gaps beside it, and the find() chain. */
static void ref_compare(struct vma_index *idx, const struct ref *ref)
{
	unsigned long start, end, addr = 0;
	size_t i;

	cr_assert_eq(vma_index_count(idx), ref->n);
	for (i = 0; i < ref->n; i++) {
		const struct ref_range *r = &ref->r[i];

		cr_assert_eq(find(idx, addr, &start, &end), r->entry, "range %zu of %zu", i,
			     ref->n);
		cr_assert_eq(start, r->start);
		cr_assert_eq(end, r->end);
		cr_assert_eq(lookup(idx, r->start), r->entry);
		cr_assert_eq(lookup(idx, r->end - 1), r->entry);
		cr_assert_eq(lookup(idx, r->end), ref_lookup(ref, r->end));
		if (r->start)
			cr_assert_eq(lookup(idx, r->start - 1), ref_lookup(ref, r->start - 1));
		addr = end;
	}
	cr_assert_null(find(idx, addr, NULL, NULL));
}

static unsigned long some_start(uint64_t *rng, const struct ref *ref)
{
	if (ref->n && xorshift(rng) % 8)
		return ref->r[xorshift(rng) % ref->n].start;
	return PG(xorshift(rng) % RSPAN);
}

/*
 * One random operation on both.  Inserts lean on the index's population:
 * it grows to a few thousand ranges, then churns.  With nomem, an insert
 * may fail with -ENOMEM (and must then change nothing); nothing else may.
 */
static void random_op(struct vma_index *idx, struct ref *ref, uint64_t *rng,
		      uintptr_t *serial, bool nomem)
{
	unsigned long a, start, end, s1, e1;
	unsigned int op = xorshift(rng) % 100;
	size_t i;
	int ret;

	unsigned int ins = ref->n < REF_MAX / 2 ? 45 : 20;

	if (op < ins) {
		start = PG(xorshift(rng) % RSPAN) + xorshift(rng) % 3;
		end = start + PG(xorshift(rng) % RLEN) + xorshift(rng) % 3;
		++*serial;
		ret = vma_index_insert(idx, start, end, (void *)*serial);
		if (ret == -ENOMEM) {
			/* Only an insert that would have worked runs out of memory. */
			cr_assert(nomem);
			cr_assert_eq(ref_insert(ref, start, end, (void *)*serial), 0);
			cr_assert_eq(ref_erase(ref, start), (void *)*serial);
			return;
		}
		cr_assert_eq(ret, ref_insert(ref, start, end, (void *)*serial));
	} else if (op < ins + 25) {
		start = some_start(rng, ref);
		cr_assert_eq(vma_index_erase(idx, start), ref_erase(ref, start));
	} else if (op < ins + 45) {
		a = some_start(rng, ref);
		start = a + PG(xorshift(rng) % 8) - PG(4);
		end = a + PG(xorshift(rng) % 16) - PG(2);
		cr_assert_eq(vma_index_set_range(idx, a, start, end),
			     ref_set_range(ref, a, start, end));
	} else if (op < ins + 60) {
		a = PG(xorshift(rng) % RSPAN) + xorshift(rng) % PG(1);
		cr_assert_eq(lookup(idx, a), ref_lookup(ref, a));
	} else {
		a = PG(xorshift(rng) % RSPAN) + xorshift(rng) % PG(1);
		i = ref_find(ref, a);
		if (i == ref->n) {
			cr_assert_null(find(idx, a, NULL, NULL));
			return;
		}
		cr_assert_eq(find(idx, a, &s1, &e1), ref->r[i].entry);
		cr_assert_eq(s1, ref->r[i].start);
		cr_assert_eq(e1, ref->r[i].end);
	}
}

static void random_run(uint64_t seed, unsigned int fail_pct)
{
	struct ref *ref = calloc(1, sizeof(*ref));
	uintptr_t serial = 0;
	struct vma_index idx;
	uint64_t rng = seed;
	int i;

	cr_assert_not_null(ref);
	cr_assert_eq(vma_index_init(&idx, seed), 0);
	for (i = 0; i < 20000; i++) {
		atomic_store(&fail_percent, fail_pct && i % 1000 < 500 ? fail_pct : 0);
		random_op(&idx, ref, &rng, &serial, fail_pct != 0);
		atomic_store(&fail_percent, 0);
		if (fail_pct)
			check(&idx);
		else
			check_fill(&idx);
		if (i % 1000 == 999)
			ref_compare(&idx, ref);
	}
	ref_compare(&idx, ref);
	cr_log_info("%zu ranges, height %u, %zu holes", ref->n, idx.height, idx.holes);
	vma_index_destroy(&idx);
	free(ref);
}

ParameterizedTestParameters(btree, randomized)
{
	static uint64_t seeds[] = { 1, 2, 0xb7ee };

	return cr_make_param_array(uint64_t, seeds, sizeof(seeds) / sizeof(seeds[0]));
}

ParameterizedTest(uint64_t *seed, btree, randomized)
{
	random_run(*seed, 0);
}

/* The same, half the time with a third of all allocations failing. */
ParameterizedTestParameters(btree, randomized_without_memory)
{
	static uint64_t seeds[] = { 3, 4, 0xfa11 };

	return cr_make_param_array(uint64_t, seeds, sizeof(seeds) / sizeof(seeds[0]));
}

ParameterizedTest(uint64_t *seed, btree, randomized_without_memory)
{
	random_run(*seed, 33);
}

/* ---- erase without memory ---- */

/*
 * Forty ranges, three leaves.  With no memory at all, erase still works:
 * it leaves holes in place - one inside a leaf, one at a leaf's end (its
 * end is a pivot) - and find() and lookup() pass over them; set_range()
 * moves ranges over the holes' space; insert fails and changes nothing.
 * With memory back, an insert into a hole's space works and every hole
 * goes away as its leaf is copied.
 */
Test(btree, erase_without_memory)
{
	struct vma_index_shape shape;
	unsigned long s, e, i;
	struct vma_index idx;

	cr_assert_eq(vma_index_init(&idx, 0), 0);
	for (i = 0; i < 40; i++)
		ins_i(&idx, i);
	shape = check(&idx);
	cr_assert_eq(shape.height, 2);
	cr_assert_eq(shape.leaves, 3);

	atomic_store(&fail_percent, 100);
	cr_assert_eq(vma_index_insert(&idx, PG(1), PG(2), E(99)), -ENOMEM);
	check(&idx);
	cr_assert_eq(vma_index_count(&idx), 40);

	/* A hole inside a leaf. */
	cr_assert_eq(vma_index_erase(&idx, PG(4 * 5)), E(5));
	shape = check(&idx);
	cr_assert_eq(idx.holes, 1);
	cr_assert_eq(vma_index_count(&idx), 39);
	cr_assert_null(lookup(&idx, PG(4 * 5)));
	cr_assert_null(vma_index_erase(&idx, PG(4 * 5)));
	cr_assert_eq(vma_index_set_range(&idx, PG(4 * 5), PG(4 * 5), PG(4 * 5 + 1)), -ENOENT);
	cr_assert_eq(find(&idx, PG(4 * 4 + 1), &s, &e), E(6));
	cr_assert_eq(s, PG(4 * 6));

	/* Every range from 10 on: holes at leaf ends and whole leaves of them. */
	for (i = 10; i < 30; i++)
		cr_assert_eq(vma_index_erase(&idx, PG(4 * i)), E(i));
	check(&idx);
	cr_assert_eq(idx.holes, 21);
	cr_assert_eq(find(&idx, PG(4 * 9 + 1), &s, &e), E(30));
	cr_assert_eq(s, PG(4 * 30));
	for (i = 10; i < 30; i++)
		cr_assert_null(lookup(&idx, PG(4 * i)));

	/* Range 4 grows over 5's space, 9 over 10..19, 30 down over 20..29. */
	cr_assert_eq(vma_index_set_range(&idx, PG(16), PG(16), PG(4 * 6)), 0);
	cr_assert_eq(vma_index_set_range(&idx, PG(36), PG(36), PG(4 * 20)), 0);
	cr_assert_eq(vma_index_set_range(&idx, PG(4 * 30), PG(4 * 20), PG(4 * 30 + 1)), 0);
	check(&idx);
	cr_assert_eq(lookup(&idx, PG(4 * 5)), E(4));
	cr_assert_eq(lookup(&idx, PG(4 * 15)), E(9));
	cr_assert_eq(lookup(&idx, PG(4 * 25)), E(30));
	cr_assert_eq(find(&idx, PG(4 * 20 - 1), &s, &e), E(9));
	cr_assert_eq(find(&idx, PG(4 * 20), &s, &e), E(30));
	cr_assert_eq(s, PG(4 * 20));
	cr_assert_eq(vma_index_set_range(&idx, PG(36), PG(36), PG(4 * 20 + 1)), -EEXIST);
	/* Back, leaving the space free again. */
	cr_assert_eq(vma_index_set_range(&idx, PG(36), PG(36), PG(37)), 0);
	cr_assert_eq(vma_index_set_range(&idx, PG(4 * 20), PG(4 * 30), PG(4 * 30 + 1)), 0);
	cr_assert_eq(vma_index_set_range(&idx, PG(16), PG(16), PG(17)), 0);
	check(&idx);
	cr_assert_eq(vma_index_insert(&idx, PG(4 * 15), PG(4 * 15 + 1), E(15)), -ENOMEM);

	atomic_store(&fail_percent, 0);
	/* Across the space the holes still take: they move out of its way. */
	cr_assert_eq(vma_index_insert(&idx, PG(4 * 10), PG(4 * 30), E(77)), 0);
	check(&idx);
	cr_assert_eq(lookup(&idx, PG(4 * 12)), E(77));
	cr_assert_eq(lookup(&idx, PG(4 * 29)), E(77));
	cr_assert_eq(find(&idx, PG(4 * 9 + 1), &s, &e), E(77));
	cr_assert_eq(vma_index_erase(&idx, PG(4 * 10)), E(77));
	/* Each write with memory copies a leaf with holes: all gone by now. */
	cr_assert_eq(idx.holes, 0, "%zu holes left", idx.holes);
	ins_i(&idx, 5);
	for (i = 10; i < 30; i++)
		ins_i(&idx, i);
	check_fill(&idx);
	assert_usual(&idx, 40);
	for (i = 0; i < 40; i++)
		cr_assert_eq(vma_index_erase(&idx, PG(4 * i)), E(i));
	check(&idx);
	cr_assert_null(idx.root);
	vma_index_destroy(&idx);
	mm_rcu_barrier();
}

/* ---- readers write nothing ---- */

/*
 * With every node read-only, lookups and finds still work: the read side
 * stores nothing in the index (the spf fast path relies on it).
 */
Test(btree, readers_write_nothing)
{
	struct vma_index idx;
	unsigned long s, e, i;

	cr_assert_eq(vma_index_init(&idx, 0), 0);
	for (i = 0; i < 1000; i++)
		ins_i(&idx, i);
	mm_rcu_barrier();	/* no node is freed while the caches are read-only */
	cr_assert_eq(vma_index_protect(PROT_READ), 0);
	for (i = 0; i < 1000; i++) {
		cr_assert_eq(lookup(&idx, PG(4 * i)), E(i));
		cr_assert_null(lookup(&idx, PG(4 * i + 2)));
		cr_assert_eq(find(&idx, PG(4 * i + 2), &s, &e), i + 1 < 1000 ? E(i + 1) : NULL);
	}
	cr_assert_eq(vma_index_protect(PROT_READ | PROT_WRITE), 0);
	vma_index_destroy(&idx);
}

/* ---- one writer, concurrent readers ---- */

/*
 * NSLOTS slots of SLOT_PAGES pages, enough for an index four levels deep.
 * Odd slots hold a stable range [2, 10) that never changes; the writer
 * churns one range in each even slot (insert, set_range within the slot,
 * erase), sometimes with allocations failing, so erases leave holes.  An
 * entry encodes its slot (stable or churned) as slot + 1.
 */
#define SLOT_PAGES	16
#define NSLOTS		8192
#define BASE		PG(0x100000)
#define SLOT(s)		(BASE + PG((unsigned long)(s) * SLOT_PAGES))
#define STABLE_START(s)	(SLOT(s) + PG(2))
#define STABLE_END(s)	(SLOT(s) + PG(10))
#define RUN_NS		700000000l

struct churn {
	struct vma_index idx;
	unsigned int fail_pct;
	size_t max_holes;		/* the most the writer saw at once */
	atomic_bool stop;
	atomic_ulong reads, scans, writes, errors;
};

static void *slot_tag(unsigned long s)
{
	return E(s);
}

static unsigned long tag_slot(void *e)
{
	return (uintptr_t)e - 1;
}

static void *churn_writer(void *arg)
{
	static unsigned long cur[NSLOTS];	/* start of the churned range, 0 if none */
	struct churn *c = arg;
	uint64_t rng = 0x5157;
	unsigned long n = 0, a, b;

	memset(cur, 0, sizeof(cur));
	atomic_store(&fail_percent, c->fail_pct);
	while (!atomic_load(&c->stop)) {
		unsigned long s = 2 * (xorshift(&rng) % (NSLOTS / 2));
		unsigned int op = xorshift(&rng) % 3;

		a = xorshift(&rng) % SLOT_PAGES;
		b = a + 1 + xorshift(&rng) % (SLOT_PAGES - a);
		if (!cur[s]) {
			int ret = vma_index_insert(&c->idx, SLOT(s) + PG(a), SLOT(s) + PG(b),
						   slot_tag(s));

			if (!ret)
				cur[s] = SLOT(s) + PG(a);
			else if (ret != -ENOMEM || !c->fail_pct)
				atomic_fetch_add(&c->errors, 1);
		} else if (op) {
			if (vma_index_set_range(&c->idx, cur[s], SLOT(s) + PG(a), SLOT(s) + PG(b)))
				atomic_fetch_add(&c->errors, 1);
			cur[s] = SLOT(s) + PG(a);
		} else {
			if (vma_index_erase(&c->idx, cur[s]) != slot_tag(s))
				atomic_fetch_add(&c->errors, 1);
			cur[s] = 0;
		}
		if (c->idx.holes > c->max_holes)
			c->max_holes = c->idx.holes;
		n++;
	}
	atomic_store(&fail_percent, 0);
	atomic_fetch_add(&c->writes, n);
	return NULL;
}

/* The first stable range ending above addr. */
static unsigned long next_stable(unsigned long addr)
{
	unsigned long s = (addr - BASE) / PG(SLOT_PAGES);

	if (s % 2 == 0 || addr >= STABLE_END(s))
		s += s % 2 ? 2 : 1;
	return s;
}

/* A range a reader saw for the entry of slot s: inside what s promises. */
static unsigned long bad_range(void *e, unsigned long start, unsigned long end)
{
	unsigned long s = tag_slot(e);

	if (start >= end)
		return 1;
	if (s % 2)
		return start != STABLE_START(s) || end != STABLE_END(s);
	return start < SLOT(s) || end > SLOT(s + 1);
}

static unsigned long check_read(struct churn *c, unsigned long addr)
{
	unsigned long s = (addr - BASE) / PG(SLOT_PAGES), ns = next_stable(addr);
	unsigned long fs, fe, bad = 0;
	void *e, *f;

	rcu_read_lock();
	e = vma_index_lookup(&c->idx, addr);
	f = vma_index_find(&c->idx, addr, &fs, &fe);
	rcu_read_unlock();

	if (s % 2 && addr >= STABLE_START(s) && addr < STABLE_END(s))
		bad += e != slot_tag(s);
	if (e)
		bad += tag_slot(e) != s;
	if (!f)
		return bad + (ns < NSLOTS);
	/* find(): ends above addr, inside its promise, and skips no stable range. */
	bad += fe <= addr || bad_range(f, fs, fe) || tag_slot(f) > ns;
	return bad;
}

/*
 * find() from the bottom up: every stable range, in order, none overlapped
 * by another entry (the same churned range may come twice: it grew).
 */
static unsigned long check_scan(struct churn *c)
{
	unsigned long addr = BASE, start, end, prev_end = 0, expect = 1, bad = 0;
	void *e, *prev = NULL;

	rcu_read_lock();
	while ((e = vma_index_find(&c->idx, addr, &start, &end))) {
		unsigned long s = tag_slot(e);

		bad += end <= addr || bad_range(e, start, end);
		bad += e != prev && start < prev_end;
		if (s % 2) {
			bad += s != expect;	/* a stable range skipped */
			expect = s + 2;
		}
		prev = e;
		prev_end = end;
		addr = end;
	}
	rcu_read_unlock();
	return bad + (expect != NSLOTS + 1);
}

static void *churn_reader(void *arg)
{
	struct churn *c = arg;
	uint64_t rng = (uintptr_t)&rng | 1;
	unsigned long n = 0, scans = 0, bad = 0;

	while (!atomic_load(&c->stop)) {
		bad += check_read(c, BASE + xorshift(&rng) % PG(NSLOTS * SLOT_PAGES));
		if (++n % 4096 == 0) {
			bad += check_scan(c);
			scans++;
		}
	}
	atomic_fetch_add(&c->reads, n);
	atomic_fetch_add(&c->scans, scans);
	atomic_fetch_add(&c->errors, bad);
	return NULL;
}

static void churn_run(unsigned int fail_pct)
{
	struct timespec run = { 0, RUN_NS };
	static struct churn c;
	unsigned long s, errors;
	pthread_t w, r[2];
	int i;

	c.fail_pct = fail_pct;
	cr_assert_eq(vma_index_init(&c.idx, 0), 0);
	for (s = 1; s < NSLOTS; s += 2)
		cr_assert_eq(vma_index_insert(&c.idx, STABLE_START(s), STABLE_END(s),
					      slot_tag(s)), 0);
	cr_assert_geq(check(&c.idx).height, 3);

	cr_assert_eq(pthread_create(&w, NULL, churn_writer, &c), 0);
	for (i = 0; i < 2; i++)
		cr_assert_eq(pthread_create(&r[i], NULL, churn_reader, &c), 0);
	nanosleep(&run, NULL);
	atomic_store(&c.stop, true);
	pthread_join(w, NULL);
	for (i = 0; i < 2; i++)
		pthread_join(r[i], NULL);

	errors = atomic_load(&c.errors);
	cr_log_info("%lu writes, %lu reads, %lu scans, height %u, up to %zu holes",
		    atomic_load(&c.writes), atomic_load(&c.reads), atomic_load(&c.scans),
		    c.idx.height, c.max_holes);
	cr_assert_eq(errors, 0, "%lu failed updates or broken promises", errors);
	cr_assert_gt(atomic_load(&c.writes), 0);
	cr_assert_gt(atomic_load(&c.scans), 0);
	if (fail_pct)
		cr_assert_gt(c.max_holes, 0, "no erase ran out of memory");
	check(&c.idx);
	vma_index_destroy(&c.idx);
	mm_rcu_barrier();
}

Test(btree, concurrent_readers)
{
	churn_run(0);
}

/* Erases leave holes and readers must pass over them. */
Test(btree, concurrent_readers_without_memory)
{
	churn_run(20);
}
