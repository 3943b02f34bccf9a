/* SPDX-License-Identifier: MIT */
/*
 * tests/mm/test_vma_index.c - the RCU-walked index of VMAs by address, through its API
 * (the B-tree's own boundaries are in tests/mm/test_vma_index_btree.c).
 *
 * Scenario tests draw the address space as the kernel's tools/testing/vma
 * does: one character per page, a letter per range (the letter is also the
 * range's entry), a space where nothing is mapped.  Then a randomized run
 * against a sorted-array reference, concurrent readers against one writer,
 * and a run big enough to expose quadratic behaviour.
 */
#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <criterion/criterion.h>
#include <criterion/parameterized.h>
#include <urcu-bp.h>

#include "mm/call_rcu.h"
#include "mm/vma_index.h"
#include "tests/mm/vma_index_ref.h"

#define PG(x)		((unsigned long)(x) << 12)
#define E(c)		((void *)(uintptr_t)(c))
#define LAYOUT_MAX	64

TestSuite(vma_index, .timeout = 60);

static uint64_t xorshift(uint64_t *s)
{
	uint64_t x = *s;

	x ^= x << 13;
	x ^= x >> 7;
	x ^= x << 17;
	*s = x;
	return x;
}

static void *lookup(struct vma_index *idx, unsigned long addr)
{
	void *e;

	rcu_read_lock();
	e = vma_index_lookup(idx, addr);
	rcu_read_unlock();
	return e;
}

static void *find(struct vma_index *idx, unsigned long addr,
		  unsigned long *start, unsigned long *end)
{
	void *e;

	rcu_read_lock();
	e = vma_index_find(idx, addr, start, end);
	rcu_read_unlock();
	return e;
}

/* Insert one range per run of equal letters in map. */
static void layout_insert(struct vma_index *idx, const char *map)
{
	size_t i = 0, j, len = strlen(map);

	while (i < len) {
		for (j = i + 1; j < len && map[j] == map[i]; j++)
			;
		if (map[i] != ' ')
			cr_assert_eq(vma_index_insert(idx, PG(i), PG(j), E(map[i])), 0,
				     "insert %c at [%zx, %zx)", map[i], i, j);
		i = j;
	}
}

/*
 * Draw the index as a map, page by page, and check it against expect.
 * Every page is looked up at both ends, and the find() chain from 0 must
 * visit the same ranges, in order, as many as vma_index_count() says.
 */
static void assert_layout(struct vma_index *idx, const char *expect)
{
	char got[LAYOUT_MAX + 1];
	unsigned long start, end, addr = 0;
	size_t p, n = 0, runs = 0;
	void *e;

	for (p = 0; p < LAYOUT_MAX; p++) {
		e = lookup(idx, PG(p));
		cr_assert_eq(lookup(idx, PG(p + 1) - 1), e, "page %zx looked up at both ends", p);
		got[p] = e ? (char)(uintptr_t)e : ' ';
	}
	while (p > 0 && got[p - 1] == ' ')
		p--;
	got[p] = '\0';
	cr_assert_str_eq(got, expect);

	for (p = 0; expect[p]; p++)
		runs += expect[p] != ' ' && (p == 0 || expect[p - 1] != expect[p]);
	while ((e = find(idx, addr, &start, &end))) {
		cr_assert_gt(end, addr);
		cr_assert_lt(start, end);
		cr_assert_eq(lookup(idx, start), e);
		cr_assert_eq(lookup(idx, end - 1), e);
		addr = end;
		n++;
	}
	cr_assert_eq(n, runs);
	cr_assert_eq(vma_index_count(idx), runs);
}

Test(vma_index, empty)
{
	struct vma_index idx;

	cr_assert_eq(vma_index_init(&idx, 0), 0);
	cr_assert_eq(vma_index_count(&idx), 0);
	cr_assert_null(lookup(&idx, 0));
	cr_assert_null(lookup(&idx, ULONG_MAX));
	cr_assert_null(find(&idx, 0, NULL, NULL));
	cr_assert_null(vma_index_erase(&idx, 0));
	cr_assert_eq(vma_index_set_range(&idx, 0, 0, PG(1)), -ENOENT);
	assert_layout(&idx, "");
	vma_index_destroy(&idx);
	vma_index_destroy(&idx);	/* a destroyed index stays destroyable */
}

Test(vma_index, insert_lookup_find)
{
	unsigned long start = 0, end = 0;
	struct vma_index idx;

	cr_assert_eq(vma_index_init(&idx, 1), 0);
	/*
	 * 0123456789abc
	 * AA B       CC
	 */
	layout_insert(&idx, "AA B       CC");
	assert_layout(&idx, "AA B       CC");

	cr_assert_eq(lookup(&idx, 0), E('A'));
	cr_assert_eq(lookup(&idx, PG(2) - 1), E('A'));
	cr_assert_null(lookup(&idx, PG(2)));
	cr_assert_eq(lookup(&idx, PG(3) + 123), E('B'));
	cr_assert_null(lookup(&idx, PG(4)));
	cr_assert_eq(lookup(&idx, PG(0xd) - 1), E('C'));
	cr_assert_null(lookup(&idx, PG(0xd)));
	cr_assert_null(lookup(&idx, ULONG_MAX));

	/* find_vma(): the range containing addr, else the next one up. */
	cr_assert_eq(find(&idx, PG(1), &start, &end), E('A'));
	cr_assert_eq(start, 0);
	cr_assert_eq(end, PG(2));
	cr_assert_eq(find(&idx, PG(2), &start, &end), E('B'));
	cr_assert_eq(start, PG(3));
	cr_assert_eq(end, PG(4));
	cr_assert_eq(find(&idx, PG(5), NULL, &end), E('C'));
	cr_assert_eq(end, PG(0xd));
	cr_assert_eq(find(&idx, PG(0xc), &start, NULL), E('C'));
	cr_assert_eq(start, PG(0xb));
	cr_assert_null(find(&idx, PG(0xd), NULL, NULL));
	vma_index_destroy(&idx);
}

Test(vma_index, insert_rejects_overlap)
{
	struct vma_index idx;

	cr_assert_eq(vma_index_init(&idx, 2), 0);
	/*
	 * 0123456789abc
	 * AA B       CC
	 */
	layout_insert(&idx, "AA B       CC");

	cr_assert_eq(vma_index_insert(&idx, PG(1), PG(3), E('x')), -EEXIST);	/* A's tail */
	cr_assert_eq(vma_index_insert(&idx, PG(3), PG(5), E('x')), -EEXIST);	/* B */
	cr_assert_eq(vma_index_insert(&idx, PG(3), PG(4), E('x')), -EEXIST);	/* B exactly */
	cr_assert_eq(vma_index_insert(&idx, PG(5), PG(0xc), E('x')), -EEXIST);	/* C's head */
	cr_assert_eq(vma_index_insert(&idx, PG(0xc), PG(0xc) + 1, E('x')), -EEXIST);
	cr_assert_eq(vma_index_insert(&idx, 0, PG(0x10), E('x')), -EEXIST);	/* all */
	cr_assert_eq(vma_index_insert(&idx, PG(6), PG(6), E('x')), -EINVAL);
	cr_assert_eq(vma_index_insert(&idx, PG(7), PG(6), E('x')), -EINVAL);
	assert_layout(&idx, "AA B       CC");

	/*
	 * Touching both neighbours is not overlapping them.
	 * 0123456789abc
	 * AADBEEEEEEECC
	 */
	cr_assert_eq(vma_index_insert(&idx, PG(2), PG(3), E('D')), 0);
	cr_assert_eq(vma_index_insert(&idx, PG(4), PG(0xb), E('E')), 0);
	assert_layout(&idx, "AADBEEEEEEECC");
	vma_index_destroy(&idx);
}

Test(vma_index, set_range)
{
	struct vma_index idx;

	cr_assert_eq(vma_index_init(&idx, 3), 0);
	/*
	 * 0123456789abc
	 * AA B       CC
	 */
	layout_insert(&idx, "AA B       CC");

	/* Grow B right, then left up to A. */
	cr_assert_eq(vma_index_set_range(&idx, PG(3), PG(3), PG(6)), 0);
	assert_layout(&idx, "AA BBB     CC");
	cr_assert_eq(vma_index_set_range(&idx, PG(3), PG(2), PG(6)), 0);
	assert_layout(&idx, "AABBBB     CC");

	/* Into a neighbour: refused, nothing changes. */
	cr_assert_eq(vma_index_set_range(&idx, PG(2), PG(1), PG(6)), -EEXIST);
	cr_assert_eq(vma_index_set_range(&idx, PG(2), PG(2), PG(0xc)), -EEXIST);
	cr_assert_eq(vma_index_set_range(&idx, PG(0xb), PG(5), PG(0xd)), -EEXIST);
	/* Jumping over a neighbour would reorder the index: refused too. */
	cr_assert_eq(vma_index_set_range(&idx, PG(2), PG(0xd), PG(0xe)), -EEXIST);
	assert_layout(&idx, "AABBBB     CC");

	/* Up to C, then shrink from both ends. */
	cr_assert_eq(vma_index_set_range(&idx, PG(2), PG(2), PG(0xb)), 0);
	assert_layout(&idx, "AABBBBBBBBBCC");
	cr_assert_eq(vma_index_set_range(&idx, PG(2), PG(6), PG(8)), 0);
	assert_layout(&idx, "AA    BB   CC");

	/*
	 * Move B without touching where it was, and shrink A from the left.
	 * 0123456789abc
	 *  A       BBCC
	 */
	cr_assert_eq(vma_index_set_range(&idx, PG(6), PG(9), PG(0xb)), 0);
	cr_assert_eq(vma_index_set_range(&idx, 0, PG(1), PG(2)), 0);
	assert_layout(&idx, " A       BBCC");

	/* The range is now known by its new start only. */
	cr_assert_eq(vma_index_set_range(&idx, 0, 0, PG(1)), -ENOENT);
	cr_assert_eq(vma_index_set_range(&idx, PG(6), PG(6), PG(7)), -ENOENT);
	cr_assert_eq(vma_index_set_range(&idx, PG(1), PG(1), PG(1)), -EINVAL);
	cr_assert_eq(vma_index_set_range(&idx, PG(1), PG(1), PG(2)), 0);	/* no-op */
	cr_assert_null(vma_index_erase(&idx, 0));
	cr_assert_eq(vma_index_erase(&idx, PG(1)), E('A'));
	assert_layout(&idx, "         BBCC");
	vma_index_destroy(&idx);
}

Test(vma_index, split_and_merge)
{
	struct vma_index idx;
	unsigned long i;
	char name[2];

	cr_assert_eq(vma_index_init(&idx, 3), 0);
	/*
	 * 0123456789abc
	 * AAAAAA  CC
	 */
	layout_insert(&idx, "AAAAAA  CC");
	cr_assert_eq(vma_index_split(&idx, 0, PG(2), E('B')), 0);
	assert_layout(&idx, "AABBBB  CC");
	cr_assert_eq(vma_index_split(&idx, PG(2), PG(5), E('D')), 0);
	assert_layout(&idx, "AABBBD  CC");
	/* Not at a start, at an edge, or outside: refused, nothing changes. */
	cr_assert_eq(vma_index_split(&idx, PG(1), PG(2), E('X')), -ENOENT);
	cr_assert_eq(vma_index_split(&idx, PG(2), PG(2), E('X')), -EINVAL);
	cr_assert_eq(vma_index_split(&idx, PG(2), PG(5), E('X')), -EINVAL);
	assert_layout(&idx, "AABBBD  CC");
	/* Merge back; not adjacent, or no range there: refused. */
	cr_assert_eq(vma_index_merge(&idx, PG(2), PG(5)), 0);
	assert_layout(&idx, "AABBBB  CC");
	cr_assert_eq(vma_index_merge(&idx, PG(2), PG(8)), -ENOENT);
	cr_assert_eq(vma_index_merge(&idx, PG(1), PG(2)), -ENOENT);
	cr_assert_eq(vma_index_merge(&idx, 0, PG(2)), 0);
	assert_layout(&idx, "AAAAAA  CC");
	vma_index_destroy(&idx);

	/* Enough ranges for several leaves: a merge across two is -EXDEV, a split anywhere works. */
	cr_assert_eq(vma_index_init(&idx, 3), 0);
	for (i = 0; i < 60; i++)
		cr_assert_eq(vma_index_insert(&idx, PG(i), PG(i + 1), E('a' + i % 26)), 0);
	for (i = 0; i + 1 < 60; i++) {
		int ret = vma_index_merge(&idx, PG(i), PG(i + 1));

		cr_assert(ret == 0 || ret == -EXDEV, "merge at %lu: %d", i, ret);
		if (ret == 0) {
			cr_assert_eq(vma_index_split(&idx, PG(i), PG(i + 1), E('a' + (i + 1) % 26)), 0);
		}
	}
	for (i = 0; i < 60; i++) {
		name[0] = (char)('a' + i % 26);
		cr_assert_eq(lookup(&idx, PG(i)), E(name[0]), "page %lu", i);
	}
	cr_assert_eq(vma_index_count(&idx), 60);
	vma_index_destroy(&idx);
}

Test(vma_index, erase)
{
	struct vma_index idx;

	cr_assert_eq(vma_index_init(&idx, 4), 0);
	/*
	 * 0123456789abc
	 * AA BDD     CC
	 */
	layout_insert(&idx, "AA BDD     CC");

	cr_assert_null(vma_index_erase(&idx, PG(5)));	/* inside D, not its start */
	cr_assert_null(vma_index_erase(&idx, PG(2)));	/* a hole */
	cr_assert_eq(vma_index_erase(&idx, PG(4)), E('D'));
	cr_assert_null(vma_index_erase(&idx, PG(4)));
	assert_layout(&idx, "AA B       CC");
	cr_assert_eq(vma_index_erase(&idx, 0), E('A'));
	assert_layout(&idx, "   B       CC");
	cr_assert_eq(vma_index_erase(&idx, PG(0xb)), E('C'));
	assert_layout(&idx, "   B");
	cr_assert_eq(vma_index_erase(&idx, PG(3)), E('B'));
	assert_layout(&idx, "");

	/* The hole can be filled again. */
	layout_insert(&idx, "EEEEEEEEEEEEE");
	assert_layout(&idx, "EEEEEEEEEEEEE");
	vma_index_destroy(&idx);
	mm_rcu_barrier();
}

Test(vma_index, address_space_edges)
{
	unsigned long start, end;
	struct vma_index idx;

	cr_assert_eq(vma_index_init(&idx, 5), 0);
	cr_assert_eq(vma_index_insert(&idx, 0, 1, E('z')), 0);
	cr_assert_eq(vma_index_insert(&idx, ULONG_MAX - PG(1), ULONG_MAX, E('t')), 0);
	cr_assert_eq(lookup(&idx, 0), E('z'));
	cr_assert_null(lookup(&idx, 1));
	cr_assert_eq(lookup(&idx, ULONG_MAX - 1), E('t'));
	cr_assert_null(lookup(&idx, ULONG_MAX));
	cr_assert_eq(find(&idx, 1, &start, &end), E('t'));
	cr_assert_eq(start, ULONG_MAX - PG(1));
	cr_assert_eq(end, ULONG_MAX);
	cr_assert_null(find(&idx, ULONG_MAX, NULL, NULL));
	cr_assert_eq(vma_index_insert(&idx, ULONG_MAX - 1, ULONG_MAX, E('x')), -EEXIST);
	vma_index_destroy(&idx);
}

/* ---- randomized, against a sorted array ---- */

#define REF_SPAN	65536ul		/* a small space: overlaps are common */
#define REF_LEN		1024ul

/* The whole index, range by range, and each range's edges. */
static void ref_check(struct vma_index *idx, const struct ref *ref, uint64_t *rng)
{
	unsigned long start, end, addr = 0, a;
	size_t i;
	void *e;

	cr_assert_eq(vma_index_count(idx), ref->n);
	for (i = 0; i < ref->n; i++) {
		const struct ref_range *r = &ref->r[i];

		e = find(idx, addr, &start, &end);
		cr_assert_eq(e, r->entry, "range %zu of %zu", i, ref->n);
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
	a = xorshift(rng) % (REF_SPAN + REF_LEN);
	cr_assert_eq(lookup(idx, a), ref_lookup(ref, a));
}

static unsigned long rand_start(uint64_t *rng, const struct ref *ref)
{
	/* Mostly a present start, sometimes anything. */
	if (ref->n && xorshift(rng) % 4)
		return ref->r[xorshift(rng) % ref->n].start;
	return xorshift(rng) % REF_SPAN;
}

static void random_op(struct vma_index *idx, struct ref *ref, uint64_t *rng,
		      uintptr_t *serial)
{
	unsigned long start, end, a, s1, e1;
	unsigned int op = xorshift(rng) % 100;
	size_t i;

	if (op < 35) {
		start = xorshift(rng) % REF_SPAN;
		end = start + xorshift(rng) % REF_LEN;	/* may be empty: -EINVAL */
		++*serial;
		cr_assert_eq(vma_index_insert(idx, start, end, E(*serial)),
			     ref_insert(ref, start, end, E(*serial)));
	} else if (op < 60) {
		start = rand_start(rng, ref);
		cr_assert_eq(vma_index_erase(idx, start), ref_erase(ref, start));
	} else if (op < 80) {
		a = rand_start(rng, ref);
		start = a + xorshift(rng) % 512 - 256;
		end = a + xorshift(rng) % 2048 - 256;
		cr_assert_eq(vma_index_set_range(idx, a, start, end),
			     ref_set_range(ref, a, start, end));
	} else if (op < 90) {
		a = xorshift(rng) % (REF_SPAN + REF_LEN);
		cr_assert_eq(lookup(idx, a), ref_lookup(ref, a));
	} else {
		a = xorshift(rng) % (REF_SPAN + REF_LEN);
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

ParameterizedTestParameters(vma_index, randomized)
{
	static uint64_t seeds[] = { 1, 42, 0x5eed5eed };

	return cr_make_param_array(uint64_t, seeds, sizeof(seeds) / sizeof(seeds[0]));
}

ParameterizedTest(uint64_t *seed, vma_index, randomized)
{
	struct ref *ref = calloc(1, sizeof(*ref));
	uint64_t rng = *seed;
	uintptr_t serial = 0;
	struct vma_index idx;
	int i;

	cr_assert_not_null(ref);
	cr_assert_eq(vma_index_init(&idx, *seed), 0);
	for (i = 0; i < 20000; i++) {
		random_op(&idx, ref, &rng, &serial);
		ref_check(&idx, ref, &rng);
	}
	vma_index_destroy(&idx);
	free(ref);
}

/* ---- one writer, concurrent readers ---- */

/*
 * The space is cut into slots of SLOT pages.  Odd slots hold one stable
 * range that never changes; the writer churns one range in each even slot.
 * An entry encodes a range it promises to lie within, as start | pages:
 * its exact range, or, when the writer also resizes, its whole slot.
 */
#define SLOT_PAGES	16
#define NSLOTS		256
#define SPACE_BASE	PG(0x100000)
#define SLOT_BASE(s)	(SPACE_BASE + PG((unsigned long)(s) * SLOT_PAGES))
#define STABLE_START(s)	(SLOT_BASE(s) + PG(2))
#define STABLE_END(s)	(SLOT_BASE(s) + PG(10))
#define RUN_NS		500000000l

struct churn {
	struct vma_index idx;
	bool resize;
	atomic_bool stop;
	atomic_ulong reads, hits, writes, errors;
};

static void *tag(unsigned long start, unsigned long end)
{
	return E(start | ((end - start) >> 12));
}

static void untag(void *e, unsigned long *start, unsigned long *end)
{
	uintptr_t v = (uintptr_t)e;

	*start = v & ~0xffful;
	*end = *start + PG(v & 0xfff);
}

static void *stable_tag(unsigned int s)
{
	return tag(STABLE_START(s), STABLE_END(s));
}

static void churn_insert(struct churn *c, unsigned int s, uint64_t *rng, unsigned long *cur)
{
	unsigned long a = xorshift(rng) % SLOT_PAGES;
	unsigned long b = a + 1 + xorshift(rng) % (SLOT_PAGES - a);
	void *e = c->resize ? tag(SLOT_BASE(s), SLOT_BASE(s + 1)) :
			      tag(SLOT_BASE(s) + PG(a), SLOT_BASE(s) + PG(b));

	if (vma_index_insert(&c->idx, SLOT_BASE(s) + PG(a), SLOT_BASE(s) + PG(b), e))
		atomic_fetch_add(&c->errors, 1);
	*cur = SLOT_BASE(s) + PG(a);
}

static void churn_resize(struct churn *c, unsigned int s, uint64_t *rng, unsigned long *cur)
{
	unsigned long a = xorshift(rng) % SLOT_PAGES;
	unsigned long b = a + 1 + xorshift(rng) % (SLOT_PAGES - a);

	if (vma_index_set_range(&c->idx, *cur, SLOT_BASE(s) + PG(a), SLOT_BASE(s) + PG(b)))
		atomic_fetch_add(&c->errors, 1);
	*cur = SLOT_BASE(s) + PG(a);
}

static void *churn_writer(void *arg)
{
	static unsigned long cur[NSLOTS];	/* start of the churned range, 0 if none */
	struct churn *c = arg;
	uint64_t rng = 0x77;
	unsigned long n = 0;

	memset(cur, 0, sizeof(cur));
	while (!atomic_load(&c->stop)) {
		unsigned int s = 2 * (xorshift(&rng) % (NSLOTS / 2));

		if (!cur[s])
			churn_insert(c, s, &rng, &cur[s]);
		else if (c->resize && xorshift(&rng) % 3)
			churn_resize(c, s, &rng, &cur[s]);
		else if (!vma_index_erase(&c->idx, cur[s]))
			atomic_fetch_add(&c->errors, 1);
		else
			cur[s] = 0;
		n++;
	}
	atomic_fetch_add(&c->writes, n);
	return NULL;
}

/* The first stable range ending above addr: find() must not skip it. */
static unsigned long next_stable_start(unsigned long addr)
{
	unsigned long s = (addr - SPACE_BASE) / PG(SLOT_PAGES);

	if (s % 2 == 0 || addr >= STABLE_END(s))
		s += s % 2 ? 2 : 1;
	return s < NSLOTS ? STABLE_START(s) : ULONG_MAX;
}

/* One lookup and one find at addr; the number of broken promises. */
static unsigned long check_read(struct churn *c, unsigned long addr, unsigned long *hits)
{
	unsigned long s = (addr - SPACE_BASE) / PG(SLOT_PAGES);
	unsigned long ts, te, fs, fe, bad = 0;
	void *e, *f;

	rcu_read_lock();
	e = vma_index_lookup(&c->idx, addr);
	f = vma_index_find(&c->idx, addr, &fs, &fe);
	rcu_read_unlock();

	if (s % 2 && addr >= STABLE_START(s) && addr < STABLE_END(s))
		bad += e != stable_tag(s);
	if (e) {
		untag(e, &ts, &te);
		bad += addr < ts || addr >= te;
		++*hits;
	}
	if (!f)
		return bad + (next_stable_start(addr) != ULONG_MAX);
	untag(f, &ts, &te);
	bad += te <= addr || ts > next_stable_start(addr);
	bad += fs < ts || fe > te;	/* what find() saw lies within the promise */
	if (!c->resize)
		bad += fs != ts || fe != te;
	return bad;
}

static void *churn_reader(void *arg)
{
	struct churn *c = arg;
	uint64_t rng = (uintptr_t)&rng | 1;
	unsigned long n = 0, hits = 0, bad = 0;

	while (!atomic_load(&c->stop)) {
		bad += check_read(c, SPACE_BASE + xorshift(&rng) % PG(NSLOTS * SLOT_PAGES), &hits);
		n++;
	}
	atomic_fetch_add(&c->reads, n);
	atomic_fetch_add(&c->hits, hits);
	atomic_fetch_add(&c->errors, bad);
	return NULL;
}

static void churn_run(bool resize)
{
	struct timespec run = { 0, RUN_NS };
	unsigned long writes, hits, errors;
	static struct churn c;
	pthread_t w, r[2];
	unsigned int s;
	int i;

	c.resize = resize;
	cr_assert_eq(vma_index_init(&c.idx, 99), 0);
	for (s = 1; s < NSLOTS; s += 2)
		cr_assert_eq(vma_index_insert(&c.idx, STABLE_START(s), STABLE_END(s),
					      stable_tag(s)), 0);

	cr_assert_eq(pthread_create(&w, NULL, churn_writer, &c), 0);
	for (i = 0; i < 2; i++)
		cr_assert_eq(pthread_create(&r[i], NULL, churn_reader, &c), 0);
	nanosleep(&run, NULL);
	atomic_store(&c.stop, true);
	pthread_join(w, NULL);
	for (i = 0; i < 2; i++)
		pthread_join(r[i], NULL);

	writes = atomic_load(&c.writes);
	hits = atomic_load(&c.hits);
	errors = atomic_load(&c.errors);
	cr_log_info("%lu writes, %lu reads, %lu hits", writes, atomic_load(&c.reads), hits);
	cr_assert_eq(errors, 0, "%lu failed updates or broken promises", errors);
	cr_assert_gt(writes, 0);
	cr_assert_gt(hits, 0);
	vma_index_destroy(&c.idx);
	mm_rcu_barrier();
}

Test(vma_index, concurrent_readers_insert_erase)
{
	churn_run(false);
}

Test(vma_index, concurrent_readers_set_range)
{
	churn_run(true);
}

/* ---- scale ---- */

#define SCALE_N		50000

/* Behaviour, not timing: a quadratic index would not finish in .timeout. */
Test(vma_index, fifty_thousand)
{
	unsigned long *order = calloc(SCALE_N, sizeof(*order));
	uint64_t rng = 7;
	struct vma_index idx;
	size_t i, j;

	cr_assert_not_null(order);
	for (i = 0; i < SCALE_N; i++)
		order[i] = i;
	for (i = SCALE_N - 1; i > 0; i--) {
		unsigned long t = order[i];

		j = xorshift(&rng) % (i + 1);
		order[i] = order[j];
		order[j] = t;
	}

	cr_assert_eq(vma_index_init(&idx, 8), 0);
	for (i = 0; i < SCALE_N; i++)
		cr_assert_eq(vma_index_insert(&idx, PG(2 * order[i]), PG(2 * order[i] + 1),
					      E(order[i] + 1)), 0);
	cr_assert_eq(vma_index_count(&idx), SCALE_N);
	for (i = 0; i < SCALE_N; i++) {
		cr_assert_eq(lookup(&idx, PG(2 * i)), E(i + 1));
		cr_assert_null(lookup(&idx, PG(2 * i + 1)));
	}
	for (i = 0; i < SCALE_N; i++)
		cr_assert_eq(vma_index_erase(&idx, PG(2 * i)), E(i + 1));
	cr_assert_eq(vma_index_count(&idx), 0);
	assert_layout(&idx, "");
	vma_index_destroy(&idx);
	free(order);
}

/* Erased nodes still waiting for their grace period when the index goes. */
Test(vma_index, destroy_with_callbacks_pending)
{
	struct vma_index idx;
	int round, i;

	for (round = 0; round < 4; round++) {
		cr_assert_eq(vma_index_init(&idx, round), 0);
		for (i = 0; i < 1000; i++)
			cr_assert_eq(vma_index_insert(&idx, PG(i), PG(i + 1), E(i + 1)), 0);
		for (i = 0; i < 1000; i += 2)
			cr_assert_eq(vma_index_erase(&idx, PG(i)), E(i + 1));
		vma_index_destroy(&idx);
	}
	mm_rcu_barrier();
}
