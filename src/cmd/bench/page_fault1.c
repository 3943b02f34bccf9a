/* SPDX-License-Identifier: MIT */
/*
 * cmd/bench/page_fault1.c - will-it-scale page_fault1 ("Anonymous memory page
 * fault", tests/page_fault1.c), in its thread mode.
 *
 * Each worker loops: map --map-size bytes of private anonymous memory
 * (128 MiB in the original), write one byte to every page, unmap.  All the
 * workers share one address space, so every mmap and munmap is an
 * mmap_lock writer that contends with the other workers' faults - what the
 * SPF series measured (+36% on LKP's page_fault1).  The original counts
 * pages touched, sampled each second; here every worker runs until
 * --duration has passed (checked at every page, so a row's time stays
 * bounded however large the mapping) or for --loops loops, and faults/s is
 * the pages touched by all workers over the run's wall time.  ops_per_sec
 * counts the completed loops (each one map and one unmap).
 */
#include "cmd/bench/bench.h"

static int pf1_fault(struct bench_worker *w)
{
	const struct bench_opts *o = w->run->o;
	size_t pg = bench_page_size(), pages = o->map_size / pg, i;
	uint64_t loops = 0;
	bool stop = false;
	char *p;
	int ret;

	while (!stop && bench_more_loops(w, loops)) {
		ret = bench_as_map(w->as, o->map_size, -1, (void **)&p);
		if (ret)
			return ret;
		for (i = 0; i < pages && !stop; i++)
			stop = bench_expired(w, bench_touch_page(w, p + i * pg));
		ret = bench_as_unmap(w->as, p, o->map_size);
		if (ret)
			return ret;
		if (i == pages)
			loops++;
	}
	w->ops = loops;
	return 0;
}

const struct bench_wl bench_wl_page_fault1 = {
	.id = BENCH_PAGE_FAULT1,
	.name = "page_fault1",
	.timed = true,
	.ops_name = "loops",
	.fault = pf1_fault,
};
