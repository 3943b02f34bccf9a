/* SPDX-License-Identifier: MIT */
/*
 * cmd/bench/spf_test.c - Suren Baghdasaryan's spf_test
 * (github.com/surenbaghdasaryan/spf_test: `spf_test [threads=100] [vmas=2]
 * [pages=10]`), the app-launch-like load the per-VMA lock series was tuned
 * on: many threads each mapping a few small regions and first-touching
 * them, so that small mmaps and faults interleave across threads.
 *
 * Each worker loops: for each of --spf-vmas mappings, map --spf-pages
 * private anonymous pages and write one byte to each; then unmap them all.
 * Every new mapping's first write fault finds no anon_vma: the speculative
 * and per-VMA paths must fall back to the mmap_lock to prepare one (seed
 * 001), unless the runtime prepares it at mmap time (--anon-vma-at-mmap,
 * claim (e)) - the fallback counters (spf_vma_noanon,
 * vma_lock_abort, mmap_lock_fallback, anon_vma_prepare) show the
 * difference.  Runs for --duration (or --loops loops); ops_per_sec counts
 * completed loops.
 */
#include <errno.h>
#include <stdlib.h>

#include "cmd/bench/bench.h"

static int spf_prepare(struct bench_worker *w)
{
	w->priv = calloc(w->run->o->spf_vmas, sizeof(void *));
	return w->priv ? 0 : -ENOMEM;
}

static void spf_finish(struct bench_worker *w)
{
	free(w->priv);
	w->priv = NULL;
}

static int spf_fault(struct bench_worker *w)
{
	const struct bench_opts *o = w->run->o;
	size_t pg = bench_page_size(), len = (size_t)o->spf_pages * pg, i;
	char **maps = w->priv;
	unsigned int v, mapped;
	uint64_t loops = 0;
	bool stop = false;
	int ret = 0, ret2;

	while (!stop && !ret && bench_more_loops(w, loops)) {
		for (mapped = 0; mapped < o->spf_vmas && !stop; mapped++) {
			ret = bench_as_map(w->as, len, -1, (void **)&maps[mapped]);
			if (ret)
				break;
			for (i = 0; i < o->spf_pages && !stop; i++)
				stop = bench_expired(w, bench_touch_page(w, maps[mapped] + i * pg));
		}
		for (v = 0; v < mapped; v++) {
			ret2 = bench_as_unmap(w->as, maps[v], len);
			ret = ret ? ret : ret2;
		}
		if (!stop && !ret)
			loops++;
	}
	w->ops = loops;
	return ret;
}

const struct bench_wl bench_wl_spf_test = {
	.id = BENCH_SPF_TEST,
	.name = "spf_test",
	.timed = true,
	.ops_name = "loops",
	.prepare = spf_prepare,
	.finish = spf_finish,
	.fault = spf_fault,
};
