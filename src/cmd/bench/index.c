/* SPDX-License-Identifier: MIT */
/*
 * cmd/bench/index.c - microbenchmark of the VMA index: insert, lookup and erase
 * of n ranges, single-threaded.
 *
 * Range i sits in slot i of BENCH_SLOT_PAGES pages and covers 1 to
 * BENCH_SLOT_PAGES / 2 of them, so ranges never overlap and leave holes
 * between them, as VMAs do.  A range's entry is its slot number + 1, which
 * lets the lookup loop check every answer with arithmetic alone.  Work
 * arrays come from kmem_map(): this may run where malloc is not safe.
 */
#include <errno.h>
#include <time.h>

#include <urcu-bp.h>

#include "mm/call_rcu.h"
#include "cmd/bench/index.h"
#include "mm/kmem.h"
#include "mm/vma_index.h"

#define BENCH_PAGE		4096ul
#define BENCH_SLOT_PAGES	16ul
#define BENCH_BASE		0x100000000ul

struct bench_range {
	unsigned long start, end;
};

struct bench_index_work {
	struct vma_index idx;
	struct bench_range *ranges;	/* in the current (shuffled) order */
	unsigned long *addrs;		/* lookup addresses */
	size_t n;
	uint64_t rng;
};

/* splitmix64: small seeds would start xorshift on nearly-zero words. */
static uint64_t bench_seed(uint64_t seed)
{
	uint64_t z = seed + 0x9e3779b97f4a7c15ull;

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return (z ^ (z >> 31)) | 1;
}

static uint64_t bench_rng(uint64_t *s)
{
	uint64_t x = *s;

	x ^= x << 13;
	x ^= x >> 7;
	x ^= x << 17;
	*s = x;
	return x;
}

static double now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e9 + ts.tv_nsec;
}

static unsigned long slot_of(unsigned long addr)
{
	return (addr - BENCH_BASE) / (BENCH_SLOT_PAGES * BENCH_PAGE);
}

static void shuffle(struct bench_index_work *w)
{
	size_t i, j;

	for (i = w->n; i > 1; i--) {
		struct bench_range t = w->ranges[i - 1];

		j = bench_rng(&w->rng) % i;
		w->ranges[i - 1] = w->ranges[j];
		w->ranges[j] = t;
	}
}

/* Ranges in slot order, then shuffled; lookup addresses inside random ones. */
static void generate(struct bench_index_work *w)
{
	size_t i;

	for (i = 0; i < w->n; i++) {
		unsigned long start = BENCH_BASE + i * BENCH_SLOT_PAGES * BENCH_PAGE;
		unsigned long pages = 1 + bench_rng(&w->rng) % (BENCH_SLOT_PAGES / 2);

		w->ranges[i].start = start;
		w->ranges[i].end = start + pages * BENCH_PAGE;
	}
	for (i = 0; i < w->n; i++) {
		const struct bench_range *r = &w->ranges[bench_rng(&w->rng) % w->n];

		w->addrs[i] = r->start + bench_rng(&w->rng) % (r->end - r->start);
	}
	shuffle(w);
}

static int time_insert(struct bench_index_work *w, double *ns)
{
	double t0 = now_ns();
	size_t i;
	int ret;

	for (i = 0; i < w->n; i++) {
		const struct bench_range *r = &w->ranges[i];

		ret = vma_index_insert(&w->idx, r->start, r->end,
				       (void *)(uintptr_t)(slot_of(r->start) + 1));
		if (ret)
			return ret == -EEXIST ? -EIO : ret;
	}
	*ns = (now_ns() - t0) / w->n;
	return 0;
}

static int time_lookup(struct bench_index_work *w, double *ns)
{
	double t0 = now_ns();
	size_t i, wrong = 0;

	for (i = 0; i < w->n; i++) {
		unsigned long addr = w->addrs[i];
		void *e;

		rcu_read_lock();
		e = vma_index_lookup(&w->idx, addr);
		rcu_read_unlock();
		wrong += e != (void *)(uintptr_t)(slot_of(addr) + 1);
	}
	*ns = (now_ns() - t0) / w->n;
	return wrong ? -EIO : 0;
}

static int time_erase(struct bench_index_work *w, double *ns)
{
	double t0 = now_ns();
	size_t i, wrong = 0;

	for (i = 0; i < w->n; i++)
		wrong += !vma_index_erase(&w->idx, w->ranges[i].start);
	*ns = (now_ns() - t0) / w->n;
	return wrong ? -EIO : 0;
}

static int bench_phases(struct bench_index_work *w, struct bench_index_result *r)
{
	int ret;

	ret = time_insert(w, &r->insert_ns);
	if (ret)
		return ret;
	ret = time_lookup(w, &r->lookup_ns);
	if (ret)
		return ret;
	shuffle(w);	/* erase in an order unrelated to the insert order */
	return time_erase(w, &r->erase_ns);
}

int bench_index_run(size_t n, uint64_t seed, struct bench_index_result *r)
{
	struct bench_index_work w = { .n = n, .rng = bench_seed(seed) };
	int ret;

	if (!n || !r)
		return -EINVAL;
	w.ranges = kmem_map(n * sizeof(*w.ranges));
	w.addrs = kmem_map(n * sizeof(*w.addrs));
	ret = -ENOMEM;
	if (!w.ranges || !w.addrs)
		goto out;
	ret = vma_index_init(&w.idx, seed);
	if (ret)
		goto out;

	generate(&w);
	r->n = n;
	ret = bench_phases(&w, r);
	vma_index_destroy(&w.idx);
	/* Let the erased nodes go back to their caches before the next run. */
	mm_rcu_barrier();
out:
	kmem_unmap(w.addrs, n * sizeof(*w.addrs));
	kmem_unmap(w.ranges, n * sizeof(*w.ranges));
	return ret;
}
