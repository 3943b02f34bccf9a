/* SPDX-License-Identifier: MIT */
/*
 * bench.h - `uspf bench`: the options, the result rows and the workloads.
 *
 * bench.c parses the options and runs the loop; bench_pft.c is the mmtests
 * pft workload on uspf (and the timed touch loop the references share);
 * bench_native.c and bench_naive.c are the two references measured in the
 * same run (plain kernel faults; a one-thread poll/read/copy userfaultfd
 * handler); bench_report.c prints the rows as a table or JSON and holds the
 * latency histogram.
 */
#ifndef USPF_BENCH_H
#define USPF_BENCH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "uspf.h"

/* Subcommands, called with argv[0] = the subcommand's name. */
int cmd_bench(int argc, char **argv);

enum bench_workload {
	BENCH_PFT = 0,		/* mmtests pft: one region, one slice per thread */
	BENCH_VMAS,		/* map and unmap N one-page regions */
	BENCH_INDEX,		/* the VMA index alone: insert, lookup, erase */
};

enum bench_format {
	BENCH_TABLE = 0,
	BENCH_JSON,
};

#define BENCH_MAX_LIST		64
#define BENCH_MAX_THREADS	1024

struct bench_opts {
	enum bench_workload workload;
	enum uspf_policy_id policies[USPF_NR_POLICIES];
	unsigned int nr_policies;
	unsigned int threads[BENCH_MAX_LIST];
	unsigned int nr_threads;
	size_t size;			/* pft region, bytes */
	unsigned int iterations;
	struct uspf_config cfg;		/* policy set per run */
	enum bench_format format;
	bool references;		/* measure native and naive */
	size_t vmas[BENCH_MAX_LIST];	/* N for --workload vmas */
	unsigned int nr_vmas;
	size_t index_sizes[BENCH_MAX_LIST];	/* n for --workload index */
	unsigned int nr_index_sizes;
	uint64_t seed;			/* --workload index */
};

/* ---- latency histogram: log2 buckets of ns, 8 linear sub-buckets each ---- */

#define BENCH_HIST_SUB		8
#define BENCH_HIST_BUCKETS	(64 * BENCH_HIST_SUB)

struct bench_hist {
	uint64_t count;
	uint64_t bucket[BENCH_HIST_BUCKETS];
};

static inline unsigned int bench_hist_index(uint64_t ns)
{
	unsigned int msb;

	if (ns < BENCH_HIST_SUB)
		return (unsigned int)ns;
	msb = 63 - (unsigned int)__builtin_clzll(ns);
	return (msb - 2) * BENCH_HIST_SUB + (unsigned int)((ns >> (msb - 3)) & 7);
}

static inline void bench_hist_add(struct bench_hist *h, uint64_t ns)
{
	h->bucket[bench_hist_index(ns)]++;
	h->count++;
}

void bench_hist_merge(struct bench_hist *dst, const struct bench_hist *src);
uint64_t bench_hist_percentile(const struct bench_hist *h, double pct);

/* ---- result rows ---- */

#define BENCH_MAX_COUNTERS	(USPF_NR_COUNTERS + 8)

struct bench_counter {
	const char *name;
	uint64_t value;
};

enum bench_row_kind {
	BENCH_ROW_PFT = 0,
	BENCH_ROW_VMAS,
	BENCH_ROW_INDEX,
};

struct bench_pft_row {
	const char *policy;		/* a uspf policy, "native" or "naive" */
	unsigned int threads;		/* faulting threads */
	unsigned int handlers;		/* fault-handling threads; 0 for native */
	const char *intake;		/* NULL for native */
	bool user_mode_only;
	uint64_t faults;		/* pages touched per iteration */
	double hmean;			/* faults/sec, harmonic mean over iterations */
	double min, max;		/* faults/sec, spread over iterations */
	uint64_t p50_ns, p99_ns;	/* touch latency seen by the faulting threads */
	bool has_handler_lat;
	uint64_t handler_p50_ns, handler_p99_ns;	/* uspf: message -> resolved */
	struct bench_counter counters[BENCH_MAX_COUNTERS];	/* totals, non-zero */
	unsigned int nr_counters;
	double ratio_native, ratio_naive;	/* NaN where no reference */
};

struct bench_vmas_row {
	const char *policy;
	size_t n;
	double map_ns, unmap_ns;	/* per operation */
	uint64_t model_vmas;		/* VMAs in the model after the N maps */
};

struct bench_index_row {
	size_t n;
	double insert_ns, lookup_ns, erase_ns;
};

struct bench_row {
	enum bench_row_kind kind;
	union {
		struct bench_pft_row pft;
		struct bench_vmas_row vmas;
		struct bench_index_row index;
	};
};

struct bench_report {
	const struct bench_opts *opts;
	unsigned int cpus;
	struct bench_row *rows;
	size_t nr_rows, cap_rows;
};

struct bench_row *bench_report_add(struct bench_report *rep, enum bench_row_kind kind);
void bench_report_free(struct bench_report *rep);
void bench_report_ratios(struct bench_report *rep);
int bench_report_print(const struct bench_report *rep, FILE *out);
void bench_pft_row_counter(struct bench_pft_row *row, const char *name, uint64_t value);

/* ---- the timed touch loop shared by pft, native and naive ---- */

struct bench_touch {
	uint64_t pages;			/* pages touched */
	uint64_t wall_ns;		/* first worker released -> last worker done */
	struct bench_hist hist;		/* every touch of every worker */
};

/*
 * Start `threads` workers; after a start gate each writes one byte to every
 * page of its own contiguous slice of [base, base + size), timing each
 * touch.  Returns 0 or a negative errno.
 */
int bench_touch_run(char *base, size_t size, unsigned int threads,
		    struct bench_touch *out);

/* One pft row (all iterations) per call. */
int bench_pft_run(const struct bench_opts *o, enum uspf_policy_id policy,
		  unsigned int threads, struct bench_pft_row *row);
int bench_native_run(const struct bench_opts *o, unsigned int threads,
		     struct bench_pft_row *row);
int bench_naive_run(const struct bench_opts *o, unsigned int threads,
		    struct bench_pft_row *row);

/* Fold per-iteration rates into hmean, min and max. */
void bench_rates_fold(const double *rates, unsigned int n, struct bench_pft_row *row);

uint64_t bench_now_ns(void);
size_t bench_page_size(void);

/* ---- the naive handler, for any number of mappings (bench_naive.c) ---- */

struct bench_naive;

struct bench_naive_counts {
	uint64_t faults, pages, eexist, wakes, copy_errors;
};

/* A userfaultfd and its one handler thread; no mapping yet. */
int bench_naive_open(struct bench_naive **out);
/*
 * Map len bytes (anonymous; fd >= 0: the handler fills each page from fd,
 * offset 0) and register them; any thread, while the handler runs.
 */
int bench_naive_map(struct bench_naive *n, size_t len, int fd, void **out);
int bench_naive_unmap(struct bench_naive *n, void *addr, size_t len);
/* Stop the handler, unmap what is left; adds the counts to *acc; first handler error. */
int bench_naive_close(struct bench_naive *n, struct bench_naive_counts *acc);
void bench_naive_row_counters(struct bench_pft_row *row, const struct bench_naive_counts *c);

#endif
