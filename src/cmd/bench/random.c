/* SPDX-License-Identifier: MIT */
/*
 * cmd/bench/random.c - random-access first touch: mmtests pft (one private
 * anonymous region of --size mapped before the workers start, one
 * contiguous slice per worker), but each worker writes the pages of its
 * slice in a random order of its own (a Fisher-Yates permutation drawn
 * from --seed and the worker's number before the start gate).  No page's
 * neighbour is the next one touched, so fault-around and any prefetching
 * in the handler gain nothing from locality: the cost per fault of a
 * scattered working set, as a large hash table or heap fills.
 */
#include <errno.h>
#include <stdlib.h>

#include "cmd/bench/bench.h"

struct random_slice {
	char *start;
	size_t n;
	size_t perm[];
};

static uint64_t splitmix64(uint64_t *s)
{
	uint64_t z = (*s += 0x9e3779b97f4a7c15ULL);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

static int random_prepare(struct bench_worker *w)
{
	const struct bench_run *r = w->run;
	size_t pg = bench_page_size(), pages = r->region_size / pg;
	size_t per = pages / r->threads, extra = pages % r->threads;
	size_t first = w->id * per + (w->id < extra ? w->id : extra);
	size_t n = per + (w->id < extra), i, j, t;
	uint64_t seed = r->o->seed ^ ((uint64_t)w->id << 32);
	struct random_slice *s;

	s = malloc(sizeof(*s) + n * sizeof(s->perm[0]));
	if (!s)
		return -ENOMEM;
	s->start = r->region + first * pg;
	s->n = n;
	for (i = 0; i < n; i++)
		s->perm[i] = i;
	for (i = n; i > 1; i--) {
		j = (size_t)(splitmix64(&seed) % i);
		t = s->perm[i - 1];
		s->perm[i - 1] = s->perm[j];
		s->perm[j] = t;
	}
	w->priv = s;
	return 0;
}

static void random_finish(struct bench_worker *w)
{
	free(w->priv);
	w->priv = NULL;
}

static int random_fault(struct bench_worker *w)
{
	const struct random_slice *s = w->priv;
	size_t pg = bench_page_size(), i;

	for (i = 0; i < s->n; i++)
		bench_touch_page(w, s->start + s->perm[i] * pg);
	return 0;
}

const struct bench_wl bench_wl_random = {
	.id = BENCH_RANDOM,
	.name = "random",
	.setup = bench_region_setup,
	.teardown = bench_region_teardown,
	.prepare = random_prepare,
	.finish = random_finish,
	.fault = random_fault,
};
