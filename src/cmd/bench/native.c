/* SPDX-License-Identifier: MIT */
/*
 * cmd/bench/native.c - the `native` reference: the pft workload on plain
 * mmap(MAP_PRIVATE | MAP_ANONYMOUS) memory, no userfaultfd.  The kernel
 * resolves every fault itself; this is the cost uspf's figures are divided
 * by.  Transparent huge pages are turned off for the region
 * (MADV_NOHUGEPAGE) so that, as on a registered range, every 4 KiB page is
 * one fault.  The row's "minflt" counter is the process's minor-fault
 * count over the runs (getrusage), a check that every page did fault.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>

#include "cmd/bench/bench.h"

static uint64_t minflt_now(void)
{
	struct rusage ru;

	if (getrusage(RUSAGE_SELF, &ru))
		return 0;
	return (uint64_t)ru.ru_minflt;
}

static int native_iteration(const struct bench_opts *o, unsigned int threads,
			    struct bench_touch *touch, uint64_t *minflt)
{
	uint64_t before;
	void *base;
	int ret;

	base = mmap(NULL, o->size, PROT_READ | PROT_WRITE,
		    MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (base == MAP_FAILED) {
		ret = -errno;
		fprintf(stderr, "uspf bench: native: mmap of %zu bytes: %s\n",
			o->size, strerror(-ret));
		return ret;
	}
	if (madvise(base, o->size, MADV_NOHUGEPAGE) && errno != EINVAL) {
		ret = -errno;
		fprintf(stderr, "uspf bench: native: madvise(MADV_NOHUGEPAGE): %s\n",
			strerror(-ret));
		munmap(base, o->size);
		return ret;
	}
	before = minflt_now();
	ret = bench_touch_run(base, o->size, threads, touch);
	*minflt += minflt_now() - before;
	if (munmap(base, o->size)) {
		ret = ret ? ret : -errno;
		fprintf(stderr, "uspf bench: native: munmap: %s\n", strerror(errno));
	}
	return ret;
}

int bench_native_run(const struct bench_opts *o, unsigned int threads,
		     struct bench_pft_row *row)
{
	struct bench_touch *touch;
	struct bench_hist *lat;
	uint64_t minflt = 0;
	double *rates;
	unsigned int it;
	int ret = -ENOMEM;

	touch = malloc(sizeof(*touch));
	lat = calloc(1, sizeof(*lat));
	rates = calloc(o->iterations, sizeof(*rates));
	if (!touch || !lat || !rates) {
		fprintf(stderr, "uspf bench: native: %s\n", strerror(ENOMEM));
		goto out;
	}
	row->policy = "native";
	row->threads = threads;
	row->faults = o->size / bench_page_size();
	for (it = 0; it < o->iterations; it++) {
		bench_progress_iteration(it, o->iterations);
		ret = native_iteration(o, threads, touch, &minflt);
		if (ret)
			goto out;
		rates[it] = (double)touch->pages * 1e9 / (double)touch->wall_ns;
		bench_hist_merge(lat, &touch->hist);
	}
	bench_rates_fold(rates, o->iterations, row);
	bench_row_latency(row, lat);
	bench_pft_row_counter(row, "minflt", minflt);
out:
	free(rates);
	free(lat);
	free(touch);
	return ret;
}
