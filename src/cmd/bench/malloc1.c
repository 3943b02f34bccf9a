/* SPDX-License-Identifier: MIT */
/*
 * cmd/bench/malloc1.c - will-it-scale malloc1 ("malloc/free of 128MB",
 * tests/malloc1.c) as churn beside faulting threads.
 *
 * malloc1 itself only mallocs and frees a 128 MiB block in a loop: for a
 * block that large glibc's malloc calls mmap and free calls munmap, so each
 * loop is two mmap_lock writers and no fault (the SPF series reported
 * +470% on it, LKP).  What the speculative and per-VMA paths are about is
 * the faults that run beside such writers (seed claim (a)): here the
 * faulting workers run mmtests pft - one long-lived private anonymous
 * region of --size, mapped before they start, each writing one byte to
 * every page of its own slice - while --churn-threads extra threads map and
 * unmap untouched blocks of --churn-size (as malloc/free of a large block
 * does) until every faulting worker is done.  faults/s and the latency
 * percentiles are the faulting workers'; ops_per_sec is the churn rate
 * (map+unmap pairs per second over the same wall time).
 */

#include "cmd/bench/bench.h"

/* pft's slice: the pages split as evenly as they go, the first ones one more. */
static int malloc1_fault(struct bench_worker *w)
{
	const struct bench_run *r = w->run;
	size_t pg = bench_page_size(), pages = r->region_size / pg;
	size_t per = pages / r->threads, extra = pages % r->threads;
	size_t first = w->id * per + (w->id < extra ? w->id : extra);
	size_t n = per + (w->id < extra), i;

	for (i = 0; i < n; i++)
		bench_touch_page(w, r->region + (first + i) * pg);
	return 0;
}

static unsigned int malloc1_nr_extra(const struct bench_opts *o)
{
	return o->churn_threads;
}

static int malloc1_churn(struct bench_worker *w)
{
	size_t len = w->run->o->churn_size;
	void *p;
	int ret;

	while (!bench_faulting_done(w)) {
		ret = bench_as_map(w->as, len, -1, &p);
		if (ret)
			return ret;
		ret = bench_as_unmap(w->as, p, len);
		if (ret)
			return ret;
		w->ops++;
	}
	return 0;
}

const struct bench_wl bench_wl_malloc1 = {
	.id = BENCH_MALLOC1,
	.name = "malloc1",
	.ops_name = "churn",
	.ops_from_extra = true,
	.setup = bench_region_setup,
	.teardown = bench_region_teardown,
	.fault = malloc1_fault,
	.nr_extra = malloc1_nr_extra,
	.extra = malloc1_churn,
};
