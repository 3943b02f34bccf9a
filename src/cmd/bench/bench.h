/* SPDX-License-Identifier: MIT */
/*
 * bench.h - `uspf bench`: the options, the result rows and the workloads.
 *
 * bench.c parses the options and runs the loop; cmd/bench/pft.c is the mmtests
 * pft workload on uspf (and the timed touch loop the references share);
 * cmd/bench/native.c and cmd/bench/naive.c are the two references measured in the
 * same run (plain kernel faults; a one-thread poll/read/copy userfaultfd
 * handler); cmd/bench/report.c prints the rows as a table, JSON or CSV and holds
 * the latency histogram; cmd/bench/plot.c draws faults/sec vs threads with
 * gnuplot (--plot).
 *
 * The field's other benchmarks (page_fault1, malloc1, spf_test, execl,
 * random) share a harness, cmd/bench/work.c: one address-space interface over
 * native memory, the naive handler and a uspf runtime, workers released by
 * a start gate (threads, or processes where each worker is its own address
 * space), one pft-like row per (workload, policy, threads).  Each lives in
 * its own file, bench_<name>.c.
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
	BENCH_PAGE_FAULT1,	/* will-it-scale page_fault1: map, write every page, unmap */
	BENCH_MALLOC1,		/* pft with malloc1-style mmap/munmap churn beside it */
	BENCH_SPF_TEST,		/* spf_test: many small mappings per thread */
	BENCH_EXECL,		/* UnixBench Execl-style: short-lived maps of one shared file */
	BENCH_RANDOM,		/* pft in a random page order */
	BENCH_EBIZZY,		/* ebizzy -m -T: copy random chunks into fresh mappings, search them */
	BENCH_NR_WORKLOADS
};

const char *bench_workload_name(enum bench_workload w);

/* --immap-reorder: which i_mmap lock orders the execl rows run. */
enum bench_immap {
	BENCH_IMMAP_BOTH = 0,	/* execl: a row with and a row without the reordering */
	BENCH_IMMAP_ON,
	BENCH_IMMAP_OFF,
};

enum bench_format {
	BENCH_TABLE = 0,
	BENCH_JSON,
	BENCH_CSV,
};

#define BENCH_MAX_LIST		64
#define BENCH_MAX_THREADS	1024
#define BENCH_MAX_VARIANTS	8

struct bench_opts {
	enum bench_workload workload;	/* the first of workloads[] */
	enum bench_workload workloads[BENCH_NR_WORKLOADS];	/* in run order */
	unsigned int nr_workloads;
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
	uint64_t seed;			/* --workload index and random */
	uint64_t duration_ns;		/* page_fault1, spf_test, execl: per iteration */
	uint64_t loops;			/* ... or this many loops per worker (0: duration) */
	size_t map_size;		/* page_fault1: bytes each worker maps per loop */
	size_t chunk_size;		/* ebizzy: bytes per chunk (and per copy mapped) */
	unsigned int churn_threads;	/* malloc1: mmap/munmap threads beside the faulting ones */
	size_t churn_size;		/* malloc1: bytes per churn mapping */
	unsigned int spf_vmas;		/* spf_test: mappings per loop */
	unsigned int spf_pages;		/* spf_test: pages per mapping */
	size_t file_size;		/* execl: the shared file */
	unsigned int touch_pages;	/* execl: pages written per mapping */
	enum bench_immap immap;		/* execl: reorder on, off or both */
	const char *plot;		/* --plot FILE (.svg or .png), or NULL */
	int pm_qos_us;			/* --pm-qos: cpu_dma_latency to hold; -1: off */
	/*
	 * Handler settings to compare in one run: every combination of these
	 * gives its own raw row and row per policy (cfg holds the first).
	 */
	unsigned int handler_counts[BENCH_MAX_VARIANTS];
	unsigned int nr_handler_counts;
	enum uspf_intake intakes[USPF_NR_INTAKES];
	unsigned int nr_intakes;
	unsigned int spins_us[BENCH_MAX_VARIANTS];
	unsigned int nr_spins_us;
};

/* The handler settings of variant v of o (0 <= v < bench_nr_variants(o)), into cfg. */
unsigned int bench_nr_variants(const struct bench_opts *o);
void bench_variant_cfg(const struct bench_opts *o, unsigned int v, struct uspf_config *cfg);
/* Its label ("handlers=1 spin_us=50": the settings given as lists), or NULL for one variant. */
const char *bench_variant_label(const struct bench_opts *o, unsigned int v);

/* ---- latency histogram: log2 buckets of ns, 8 linear sub-buckets each ---- */

#define BENCH_HIST_SUB		8
#define BENCH_HIST_BUCKETS	(64 * BENCH_HIST_SUB)

struct bench_hist {
	uint64_t count;
	uint64_t max;			/* exact, unlike the percentiles */
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
	if (ns > h->max)
		h->max = ns;
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
	const char *workload;		/* NULL: "pft" */
	const char *variant;		/* NULL, or the config the row differs in */
	const char *handlers_variant;	/* NULL, or its handler settings' label (raw's match) */
	unsigned int spin_us;		/* uspf rows: the handlers' spin budget */
	const char *policy;		/* a uspf policy, "native" or "naive" */
	unsigned int threads;		/* faulting threads */
	unsigned int handlers;		/* fault-handling threads; 0 for native */
	const char *intake;		/* NULL for native */
	bool user_mode_only;
	uint64_t faults;		/* pages touched per iteration */
	double hmean;			/* faults/sec, harmonic mean over iterations */
	double min, max;		/* faults/sec, spread over iterations */
	double stddev;			/* faults/sec, sample stddev over iterations */
	double cov_pct;			/* stddev / arithmetic mean, in percent */
	/* touch latency seen by the faulting threads (bench_row_latency()) */
	uint64_t p50_ns, p90_ns, p99_ns, max_ns;
	bool has_handler_lat;
	/* uspf: message -> resolved */
	uint64_t handler_p50_ns, handler_p90_ns, handler_p99_ns, handler_max_ns;
	struct bench_counter counters[BENCH_MAX_COUNTERS];	/* totals, every one */
	unsigned int nr_counters;
	double ratio_native, ratio_naive;	/* NaN where no reference */
	double ratio_raw;		/* uspf rows of pft: faults/s / raw's (NaN: none) */
	const char *ops_name;		/* NULL, or what ops_per_sec counts */
	double ops_per_sec;		/* e.g. churn map+unmap pairs/s, Hmean */
};

/* A pft-like row's workload name ("pft" when the row does not say). */
static inline const char *bench_row_workload(const struct bench_pft_row *r)
{
	return r->workload ? r->workload : "pft";
}

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
	char pm_qos[160];		/* what --pm-qos did, for the header */
	bool native_folios;		/* a native row at the uspf folio size ran */
	char native_folio_why[160];	/* ... or why not, for the header */
	char native_folio_label[32];	/* "folio=64K" */
	struct bench_row *rows;
	size_t nr_rows, cap_rows;
};

struct bench_row *bench_report_add(struct bench_report *rep, enum bench_row_kind kind);
void bench_report_free(struct bench_report *rep);
void bench_report_ratios(struct bench_report *rep);
int bench_report_print(const struct bench_report *rep, FILE *out);
void bench_pft_row_counter(struct bench_pft_row *row, const char *name, uint64_t value);
/* p50, p90, p99 and max of the touch latency from the merged histogram. */
void bench_row_latency(struct bench_pft_row *row, const struct bench_hist *lat);

/*
 * The progress line: on a terminal only (isatty(stderr)), and only once the
 * run has lasted a few seconds: "\r[row/rows] workload policy threads=N
 * iteration i/n" on stderr, erased by bench_progress_end().  Rows count
 * from bench_progress_start(); a total of 0 leaves out "[row/rows]".
 */
void bench_progress_start(unsigned int rows);
void bench_progress_row(const char *workload, const char *policy, unsigned int threads);
void bench_progress_iteration(unsigned int it, unsigned int iterations);	/* it from 0 */
void bench_progress_end(void);

/* ---- --plot (cmd/bench/plot.c) ---- */

/* After parsing: -1 to go on, or 2 after a one-line error (before any run). */
int bench_plot_check(const struct bench_opts *o);
/* Draw faults/sec vs threads into o->plot; 0, or a negative errno (reported). */
int bench_plot_write(const struct bench_report *rep);

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
/*
 * The raw reference: pft on a uspf runtime with the same configuration
 * (intake, handlers, fault-around) whose faults skip the model
 * (runtime_set_raw()): what a policy adds over it is its protocol.
 */
int bench_raw_run(const struct bench_opts *o, unsigned int threads, struct bench_pft_row *row);
/*
 * folios: fault the region in large folios of o->cfg.folio_pages pages
 * (MADV_HUGEPAGE), where bench_native_folios_offered() said the host
 * offers that size and no larger one (why: the reason either way).
 */
int bench_native_run(const struct bench_opts *o, unsigned int threads, bool folios,
		     struct bench_pft_row *row);
bool bench_native_folios_offered(unsigned int pages, char *why, size_t len);
/* The same, reading THP's sysfs files under dir (a test's copy). */
bool bench_folios_offered_in(const char *dir, unsigned int pages, char *why, size_t len);
int bench_naive_run(const struct bench_opts *o, unsigned int threads,
		    struct bench_pft_row *row);

/* Fold per-iteration rates into hmean, min, max, stddev and cov_pct. */
void bench_rates_fold(const double *rates, unsigned int n, struct bench_pft_row *row);

uint64_t bench_now_ns(void);
size_t bench_page_size(void);

/* uspf rows' counters (cmd/bench/pft.c), shared with cmd/bench/work.c. */
int bench_settled_stats(struct uspf *u, uint64_t pages, struct uspf_stats *st);
void bench_stats_accumulate(struct uspf_stats *acc, const struct uspf_stats *st);
void bench_pft_fill_row(struct bench_pft_row *row, const struct uspf_stats *acc,
			const struct bench_hist *lat);

/* ---- the naive handler, for any number of mappings (cmd/bench/naive.c) ---- */

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

/* ---- the harness of the field's other workloads (cmd/bench/work.c) ---- */

enum bench_as_kind {
	BENCH_AS_NATIVE = 0,	/* plain mmap(2): the kernel faults */
	BENCH_AS_NAIVE,		/* registered, served by the naive handler */
	BENCH_AS_USPF,		/* a uspf runtime */
};

/* One address space that workloads map in and fault on. */
struct bench_as {
	enum bench_as_kind kind;
	struct uspf *u;			/* BENCH_AS_USPF */
	struct bench_naive *naive;	/* BENCH_AS_NAIVE */
};

/*
 * Map len bytes readable and writable, private: zero-filled anonymous
 * memory (fd < 0) or a private copy of the file fd from offset 0.
 */
int bench_as_map(struct bench_as *as, size_t len, int fd, void **out);
int bench_as_unmap(struct bench_as *as, void *addr, size_t len);

struct bench_run;

/* One worker: a faulting one (id < threads) or an extra one (churn). */
struct bench_worker {
	struct bench_run *run;
	struct bench_as *as;		/* the address space it maps in */
	unsigned int id;
	uint64_t deadline_ns;		/* timed workloads without --loops; else 0 */
	void *priv;			/* the workload's own, from prepare() */
	/* results */
	uint64_t pages;			/* pages touched */
	uint64_t ops;			/* loops, or churn map+unmap pairs */
	uint64_t t_start, t_end;
	int error;			/* -errno */
	struct bench_naive_counts naive;	/* a forked worker's own handler */
	struct bench_hist hist;		/* every timed touch */
} __attribute__((aligned(64)));

/* A workload run by the harness. */
struct bench_wl {
	enum bench_workload id;
	const char *name;
	bool own_mm;		/* each worker its own address space (threads: a runtime each; references: a process each) */
	bool timed;		/* loops until --duration, or --loops loops */
	const char *ops_name;	/* what ops counts, for ops_per_sec; NULL: not reported */
	bool ops_from_extra;	/* ops_per_sec counts the extra workers' ops */
	/* Before the workers start / after they are done, in the shared address space. */
	int (*setup)(struct bench_run *r);
	void (*teardown)(struct bench_run *r);
	/* In the worker, before the start gate / after its body. */
	int (*prepare)(struct bench_worker *w);
	void (*finish)(struct bench_worker *w);
	int (*fault)(struct bench_worker *w);	/* a faulting worker's body */
	unsigned int (*nr_extra)(const struct bench_opts *o);
	int (*extra)(struct bench_worker *w);	/* runs until every faulting worker is done */
};

struct bench_run {
	const struct bench_opts *o;
	const struct bench_wl *wl;
	unsigned int threads, nr_extra;
	struct bench_as as;		/* the shared address space (not own_mm) */
	char *region;			/* setup()'s long-lived region, or NULL */
	size_t region_size;
	int fd;				/* execl's shared file, or -1 */
	struct bench_ctl *ctl;		/* shared with forked workers */
};

extern const struct bench_wl bench_wl_page_fault1;
extern const struct bench_wl bench_wl_malloc1;
extern const struct bench_wl bench_wl_spf_test;
extern const struct bench_wl bench_wl_execl;
extern const struct bench_wl bench_wl_random;
extern const struct bench_wl bench_wl_ebizzy;

/* The harness's workload for id, or NULL (pft, vmas, index). */
const struct bench_wl *bench_wl_of(enum bench_workload id);

/*
 * One row (all iterations) of wl on native memory, the naive handler, or
 * uspf with cfg (its policy and other fields as given).
 */
int bench_work_row(const struct bench_opts *o, const struct bench_wl *wl,
		   enum bench_as_kind kind, const struct uspf_config *cfg,
		   unsigned int threads, struct bench_pft_row *row);

/* setup()/teardown() of the workloads that fault on one --size region (malloc1, random). */
int bench_region_setup(struct bench_run *r);
void bench_region_teardown(struct bench_run *r);

/* Have the faulting workers of w's run all finished?  (For extra workers.) */
bool bench_faulting_done(const struct bench_worker *w);
/* Another loop? (--loops, else until the deadline.) */
bool bench_more_loops(const struct bench_worker *w, uint64_t loops_done);

/* Write one byte at p, timed into w's histogram; returns the time after. */
static inline uint64_t bench_touch_page(struct bench_worker *w, volatile char *p)
{
	uint64_t t0 = bench_now_ns(), t1;

	*p = 1;
	t1 = bench_now_ns();
	bench_hist_add(&w->hist, t1 - t0);
	w->pages++;
	return t1;
}

/* The deadline has passed (timed workloads without --loops). */
static inline bool bench_expired(const struct bench_worker *w, uint64_t now)
{
	return w->deadline_ns && now >= w->deadline_ns;
}

#endif
