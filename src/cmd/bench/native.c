/* SPDX-License-Identifier: MIT */
/*
 * cmd/bench/native.c - the `native` reference: the pft workload on plain
 * mmap(MAP_PRIVATE | MAP_ANONYMOUS) memory, no userfaultfd.  The kernel
 * resolves every fault itself; this is the cost uspf's figures are divided
 * by.  Transparent huge pages are turned off for the region
 * (MADV_NOHUGEPAGE) so that, as on a registered range, every 4 KiB page is
 * one fault.  The row's "minflt" counter is the process's minor-fault
 * count over the runs (getrusage), a check that every page did fault.
 *
 * With uspf installing several pages per fault (folio_pages > 1, the
 * analogue of a large anonymous folio), a second native row faults the
 * region in folios of the same size where the host offers them (mTHP,
 * /sys/kernel/mm/transparent_hugepage/hugepages-<size>kB/enabled): a
 * 16-page uspf row beside a 16-page kernel row.
 */
#include <errno.h>
#include <limits.h>
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

#define THP_DIR "/sys/kernel/mm/transparent_hugepage"

/* The [bracketed] word of a THP "enabled" file, or "" */
static void thp_mode(const char *path, char *mode, size_t len)
{
	char buf[128], *l, *r;
	FILE *f = fopen(path, "re");

	mode[0] = '\0';
	if (!f)
		return;
	if (fgets(buf, sizeof(buf), f) && (l = strchr(buf, '[')) && (r = strchr(l, ']'))) {
		*r = '\0';
		snprintf(mode, len, "%s", l + 1);
	}
	fclose(f);
}

/* Whether an MADV_HUGEPAGE region may get folios of kb KiB. */
static bool folio_size_on(const char *dir, unsigned long kb, char *mode, size_t len)
{
	char path[PATH_MAX];

	snprintf(path, sizeof(path), "%s/hugepages-%lukB/enabled", dir, kb);
	thp_mode(path, mode, len);
	if (!strcmp(mode, "inherit")) {
		snprintf(path, sizeof(path), "%s/enabled", dir);
		thp_mode(path, mode, len);
	}
	return !strcmp(mode, "always") || !strcmp(mode, "madvise");
}

bool bench_native_folios_offered(unsigned int pages, char *why, size_t len)
{
	return bench_folios_offered_in(THP_DIR, pages, why, len);
}

bool bench_folios_offered_in(const char *dir, unsigned int pages, char *why, size_t len)
{
	unsigned long kb = pages * (bench_page_size() / 1024), k;
	char mode[32];

	if (!folio_size_on(dir, kb, mode, sizeof(mode))) {
		snprintf(why, len, "the host does not offer them (hugepages-%lukB/enabled: %s)",
			 kb, mode[0] ? mode : "absent");
		return false;
	}
	/* A larger size on as well: the kernel would fault those, not these. */
	for (k = kb * 2; k <= 2048; k *= 2) {
		if (folio_size_on(dir, k, mode, sizeof(mode))) {
			snprintf(why, len, "a larger size is on too (hugepages-%lukB/enabled: %s)",
				 k, mode);
			return false;
		}
	}
	snprintf(why, len, "hugepages-%lukB", kb);
	return true;
}

static int native_iteration(const struct bench_opts *o, unsigned int threads,
			    struct bench_touch *touch, uint64_t *minflt, bool folios)
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
	if (madvise(base, o->size, folios ? MADV_HUGEPAGE : MADV_NOHUGEPAGE) && errno != EINVAL) {
		ret = -errno;
		fprintf(stderr, "uspf bench: native: madvise(%s): %s\n",
			folios ? "MADV_HUGEPAGE" : "MADV_NOHUGEPAGE", strerror(-ret));
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

int bench_native_run(const struct bench_opts *o, unsigned int threads, bool folios,
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
		ret = native_iteration(o, threads, touch, &minflt, folios);
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
