/* SPDX-License-Identifier: MIT */
/*
 * cmd/bench/ebizzy.c - ebizzy's semantics ("a web server workload":
 * ebizzy -m -T, the benchmark the SPF series' headline +70-100% was
 * measured with), written here.
 *
 * Before the workers start, one region of --size holds the chunks: each
 * --chunk-size bytes of sorted 64-bit records.  Each worker loops until
 * --duration (or --loops): pick a chunk at random, map a private
 * anonymous copy of its size (ebizzy -m: always mmap, never the heap),
 * write every page of it (-T: the faults this measures), copy the chunk
 * in, look up --chunk-size / 64 random records of the source in the copy
 * by binary search, unmap it.  All workers share one address space, so
 * each map and unmap is an mmap_lock writer among the others' faults.
 * ops counts the records found (ebizzy's records/s); faults/s the pages
 * written.
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "cmd/bench/bench.h"

static uint64_t splitmix64(uint64_t *s)
{
	uint64_t z = (*s += 0x9e3779b97f4a7c15ULL);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

/* The chunks: record i of chunk c is (c << 32 | i) * 2 + 1: sorted, odd, distinct. */
static int ebizzy_setup(struct bench_run *r)
{
	size_t chunk = r->o->chunk_size, nrec = chunk / sizeof(uint64_t), c, i;
	uint64_t *rec;
	int ret;

	if (r->o->size < chunk)
		return -EINVAL;
	ret = bench_region_setup(r);
	if (ret)
		return ret;
	for (c = 0; c < r->region_size / chunk; c++) {
		rec = (uint64_t *)(r->region + c * chunk);
		for (i = 0; i < nrec; i++)
			rec[i] = (((uint64_t)c << 32) | i) * 2 + 1;
	}
	return 0;
}

static bool found(const uint64_t *rec, size_t n, uint64_t key)
{
	size_t lo = 0, hi = n;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (rec[mid] == key)
			return true;
		if (rec[mid] < key)
			lo = mid + 1;
		else
			hi = mid;
	}
	return false;
}

static int ebizzy_fault(struct bench_worker *w)
{
	const struct bench_run *r = w->run;
	size_t chunk = r->o->chunk_size, pg = bench_page_size(), pages = chunk / pg;
	size_t nrec = chunk / sizeof(uint64_t), chunks = r->region_size / chunk, i;
	uint64_t seed = r->o->seed ^ ((uint64_t)(w->id + 1) << 40), loops = 0, records = 0;
	const uint64_t *src;
	bool stop = false;
	char *p;
	int ret;

	while (!stop && bench_more_loops(w, loops)) {
		src = (const uint64_t *)(r->region + (splitmix64(&seed) % chunks) * chunk);
		ret = bench_as_map(w->as, chunk, -1, (void **)&p);
		if (ret)
			return ret;
		for (i = 0; i < pages && !stop; i++)
			stop = bench_expired(w, bench_touch_page(w, p + i * pg));
		if (i == pages) {
			memcpy(p, src, chunk);
			for (i = 0; i < nrec / 8; i++)
				records += found((const uint64_t *)p, nrec,
						 src[splitmix64(&seed) % nrec]);
			loops++;
		}
		ret = bench_as_unmap(w->as, p, chunk);
		if (ret)
			return ret;
	}
	w->ops = records;
	return 0;
}

const struct bench_wl bench_wl_ebizzy = {
	.id = BENCH_EBIZZY,
	.name = "ebizzy",
	.timed = true,
	.ops_name = "records",
	.setup = ebizzy_setup,
	.teardown = bench_region_teardown,
	.fault = ebizzy_fault,
};
