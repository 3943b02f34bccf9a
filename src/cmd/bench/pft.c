/* SPDX-License-Identifier: MIT */
/*
 * cmd/bench/pft.c - the mmtests pft workload on uspf, and the timed touch loop
 * the references share.
 *
 * One iteration: create a runtime with the policy under test, uspf_mmap()
 * one MAP_PRIVATE zero-filled region of --size before any worker starts
 * (one VMA, as in pft), then N workers each write one byte to every page of
 * their own contiguous slice after a start gate.  faults/sec = pages / wall
 * time, from the gate's release (the first worker to start) to the last
 * worker done.  Each worker times every touch into its own histogram.
 * After the run the runtime's counters are read with uspf_stats(), the
 * region unmapped and the runtime destroyed.
 */
#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include "cmd/bench/bench.h"
#include "hooks.h"

uint64_t bench_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

size_t bench_page_size(void)
{
	static size_t pg;

	if (!pg)
		pg = (size_t)sysconf(_SC_PAGESIZE);
	return pg;
}

/* ---- the timed touch loop ---- */

struct touch_gate {
	pthread_mutex_t lock;
	pthread_cond_t cond;
	unsigned int ready;
	bool go;
	bool abort;
};

struct touch_worker {
	pthread_t tid;
	struct touch_gate *gate;
	volatile char *start;
	size_t pages;
	uint64_t t_start, t_end;
	struct bench_hist hist;
} __attribute__((aligned(64)));

/* Returns false when the run was called off before it started. */
static bool gate_wait(struct touch_gate *g)
{
	bool go;

	pthread_mutex_lock(&g->lock);
	g->ready++;
	pthread_cond_broadcast(&g->cond);
	while (!g->go && !g->abort)
		pthread_cond_wait(&g->cond, &g->lock);
	go = g->go;
	pthread_mutex_unlock(&g->lock);
	return go;
}

static void gate_open(struct touch_gate *g, unsigned int nr, bool abort)
{
	pthread_mutex_lock(&g->lock);
	while (!abort && g->ready < nr)
		pthread_cond_wait(&g->cond, &g->lock);
	if (abort)
		g->abort = true;
	else
		g->go = true;
	pthread_cond_broadcast(&g->cond);
	pthread_mutex_unlock(&g->lock);
}

static void *touch_worker_fn(void *arg)
{
	struct touch_worker *w = arg;
	size_t pg = bench_page_size();
	uint64_t t0, t1;
	size_t i;

	if (!gate_wait(w->gate))
		return NULL;
	w->t_start = bench_now_ns();
	t0 = w->t_start;
	for (i = 0; i < w->pages; i++) {
		w->start[i * pg] = 1;
		t1 = bench_now_ns();
		bench_hist_add(&w->hist, t1 - t0);
		t0 = bench_now_ns();
	}
	w->t_end = bench_now_ns();
	return NULL;
}

static void touch_slices(struct touch_worker *w, unsigned int threads, char *base,
			 size_t pages, struct touch_gate *gate)
{
	size_t per = pages / threads, extra = pages % threads, off = 0;
	unsigned int i;

	for (i = 0; i < threads; i++) {
		w[i].gate = gate;
		w[i].pages = per + (i < extra);
		w[i].start = base + off * bench_page_size();
		off += w[i].pages;
	}
}

static void touch_collect(struct touch_worker *w, unsigned int threads,
			  struct bench_touch *out)
{
	uint64_t first = UINT64_MAX, last = 0;
	unsigned int i;

	memset(&out->hist, 0, sizeof(out->hist));
	out->pages = 0;
	for (i = 0; i < threads; i++) {
		if (w[i].t_start < first)
			first = w[i].t_start;
		if (w[i].t_end > last)
			last = w[i].t_end;
		out->pages += w[i].pages;
		bench_hist_merge(&out->hist, &w[i].hist);
	}
	out->wall_ns = last > first ? last - first : 1;
}

int bench_touch_run(char *base, size_t size, unsigned int threads,
		    struct bench_touch *out)
{
	struct touch_gate gate = {
		.lock = PTHREAD_MUTEX_INITIALIZER,
		.cond = PTHREAD_COND_INITIALIZER,
	};
	struct touch_worker *w;
	unsigned int i, started;
	int ret = 0;

	w = aligned_alloc(64, sizeof(*w) * threads);
	if (!w) {
		fprintf(stderr, "uspf bench: %u workers: %s\n", threads, strerror(ENOMEM));
		return -ENOMEM;
	}
	memset(w, 0, sizeof(*w) * threads);	/* also faults the histograms in */
	touch_slices(w, threads, base, size / bench_page_size(), &gate);
	for (started = 0; started < threads; started++) {
		ret = -pthread_create(&w[started].tid, NULL, touch_worker_fn, &w[started]);
		if (ret) {
			fprintf(stderr, "uspf bench: pthread_create: %s\n", strerror(-ret));
			break;
		}
	}
	gate_open(&gate, started, ret != 0);
	for (i = 0; i < started; i++)
		pthread_join(w[i].tid, NULL);
	if (!ret)
		touch_collect(w, threads, out);
	free(w);
	return ret;
}

/* ---- pft on uspf ---- */

/*
 * mmtests' spread: min, max, and the sample standard deviation (n - 1; 0
 * for one iteration) with the coefficient of variation, stddev over the
 * arithmetic mean in percent.
 */
void bench_rates_fold(const double *rates, unsigned int n, struct bench_pft_row *row)
{
	double inv = 0, sum = 0, mean, dev, sq = 0;
	unsigned int i;

	row->min = rates[0];
	row->max = rates[0];
	for (i = 0; i < n; i++) {
		inv += 1.0 / rates[i];
		sum += rates[i];
		if (rates[i] < row->min)
			row->min = rates[i];
		if (rates[i] > row->max)
			row->max = rates[i];
	}
	row->hmean = (double)n / inv;
	mean = sum / n;
	for (i = 0; i < n; i++) {
		dev = rates[i] - mean;
		sq += dev * dev;
	}
	row->stddev = n > 1 ? sqrt(sq / (n - 1)) : 0;
	row->cov_pct = mean > 0 ? row->stddev / mean * 100.0 : 0;
}

/*
 * A faulting thread resumes at the wake, and the handler counts that last
 * fault just after it: the workers can be done before the counters are.
 * faults_ended is counted last, so read until it equals faults (and the
 * pages cover those touched), for at most STATS_SETTLE_TRIES ms.
 */
#define STATS_SETTLE_TRIES	2000

int bench_settled_stats(struct uspf *u, uint64_t pages, struct uspf_stats *st)
{
	unsigned int i;
	int ret;

	for (i = 0; (ret = uspf_stats(u, st)) == 0 && i < STATS_SETTLE_TRIES; i++) {
		if (st->counters[USPF_C_PAGES] >= pages &&
		    st->counters[USPF_C_FAULTS_ENDED] == st->counters[USPF_C_FAULTS])
			break;
		usleep(1000);
	}
	if (ret)
		fprintf(stderr, "uspf bench: uspf_stats: %s\n", strerror(-ret));
	return ret;
}

static int pft_iteration(const struct bench_opts *o, enum uspf_policy_id policy, bool raw,
			 unsigned int threads, struct bench_touch *touch,
			 struct uspf_stats *st)
{
	struct uspf_backing zero = { .kind = USPF_BACKING_ZERO };
	struct uspf_config cfg = o->cfg;
	struct uspf *u;
	void *base;
	int ret, ret2;

	cfg.policy = policy;
	ret = uspf_create(&u, &cfg);
	if (ret) {
		fprintf(stderr, "uspf bench: uspf_create (%s): %s\n",
			uspf_policy_name(policy), strerror(-ret));
		return ret;
	}
	ret = uspf_mmap(u, NULL, o->size, PROT_READ | PROT_WRITE,
			MAP_PRIVATE | MAP_ANONYMOUS, &zero, &base);
	if (ret) {
		fprintf(stderr, "uspf bench: uspf_mmap of %zu bytes: %s\n",
			o->size, strerror(-ret));
		uspf_destroy(u);
		return ret;
	}
	if (raw)
		runtime_set_raw(u, (unsigned long)base, (unsigned long)base + o->size);
	ret = bench_touch_run(base, o->size, threads, touch);
	if (!ret)
		ret = bench_settled_stats(u, touch->pages, st);
	ret2 = uspf_munmap(u, base, o->size);
	if (ret2)
		fprintf(stderr, "uspf bench: uspf_munmap: %s\n", strerror(-ret2));
	uspf_destroy(u);
	return ret ? ret : ret2;
}

/* Sum st into acc: counters and the handling-time histogram. */
void bench_stats_accumulate(struct uspf_stats *acc, const struct uspf_stats *st)
{
	unsigned int i;

	for (i = 0; i < USPF_NR_COUNTERS; i++)
		acc->counters[i] += st->counters[i];
	for (i = 0; i < USPF_HIST_BUCKETS; i++)
		acc->hist[i] += st->hist[i];
	acc->policy = st->policy;
	acc->intake = st->intake;
	acc->handlers = st->handlers;
	acc->user_mode_only = st->user_mode_only;
}

void bench_pft_fill_row(struct bench_pft_row *row, const struct uspf_stats *acc,
			const struct bench_hist *lat)
{
	uint64_t handled = 0;
	unsigned int c;

	row->handlers = acc->handlers;
	row->intake = uspf_intake_name(acc->intake);
	row->user_mode_only = acc->user_mode_only;
	bench_row_latency(row, lat);
	for (c = 0; c < USPF_HIST_BUCKETS; c++)
		handled += acc->hist[c];
	if (handled) {
		row->has_handler_lat = true;
		row->handler_p50_ns = uspf_stats_percentile(acc, 50.0);
		row->handler_p90_ns = uspf_stats_percentile(acc, 90.0);
		row->handler_p99_ns = uspf_stats_percentile(acc, 99.0);
		row->handler_max_ns = uspf_stats_percentile(acc, 100.0);
	}
	for (c = 0; c < USPF_NR_COUNTERS; c++)
		bench_pft_row_counter(row, uspf_counter_name((enum uspf_counter)c),
				      acc->counters[c]);
}

static int pft_run(const struct bench_opts *o, enum uspf_policy_id policy, bool raw,
		   unsigned int threads, struct bench_pft_row *row)
{
	struct bench_touch *touch;
	struct uspf_stats *st, *acc;
	struct bench_hist *lat;
	double *rates;
	unsigned int it;
	int ret = -ENOMEM;

	touch = malloc(sizeof(*touch));
	st = malloc(sizeof(*st));
	acc = calloc(1, sizeof(*acc));
	lat = calloc(1, sizeof(*lat));
	rates = calloc(o->iterations, sizeof(*rates));
	if (!touch || !st || !acc || !lat || !rates) {
		fprintf(stderr, "uspf bench: %s\n", strerror(ENOMEM));
		goto out;
	}
	row->policy = raw ? "raw" : uspf_policy_name(policy);
	row->threads = threads;
	row->faults = o->size / bench_page_size();
	for (it = 0; it < o->iterations; it++) {
		bench_progress_iteration(it, o->iterations);
		ret = pft_iteration(o, policy, raw, threads, touch, st);
		if (ret)
			goto out;
		rates[it] = (double)touch->pages * 1e9 / (double)touch->wall_ns;
		bench_hist_merge(lat, &touch->hist);
		bench_stats_accumulate(acc, st);
	}
	bench_rates_fold(rates, o->iterations, row);
	bench_pft_fill_row(row, acc, lat);
out:
	free(rates);
	free(lat);
	free(acc);
	free(st);
	free(touch);
	return ret;
}

int bench_pft_run(const struct bench_opts *o, enum uspf_policy_id policy,
		  unsigned int threads, struct bench_pft_row *row)
{
	return pft_run(o, policy, false, threads, row);
}

int bench_raw_run(const struct bench_opts *o, unsigned int threads, struct bench_pft_row *row)
{
	return pft_run(o, USPF_POLICY_SPF, true, threads, row);
}
