/* SPDX-License-Identifier: MIT */
/*
 * bench.c - `uspf bench`: option parsing, the run loop, and the two small
 * workloads that need no fault path (vmas, index).
 *
 * --workload takes a comma list (or all); the workloads run in the order
 * given.  pft and the harness's workloads (page_fault1, malloc1, spf_test,
 * execl, random: cmd/bench/work.c) run, for every thread count: the native
 * reference, the naive reference, then each selected policy (execl: each
 * with and without the i_mmap reordering), each --iterations times, and
 * print one row per (workload, policy, threads) with ratios to the
 * references of the same workload at the same thread count.
 *
 * vmas maps N one-page regions through uspf_mmap() and unmaps them all,
 * reporting ns per operation for each N: a flat per-op cost shows the VMA
 * index has no quadratic term.  index times the VMA index alone
 * (bench_index_run(), src/bench_index.c).
 */
#include <errno.h>
#include <sys/resource.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "cmd/bench/bench.h"
#include "cmd/cli.h"
#include "cmd/bench/index.h"

#define VMAS_HEADROOM	1024	/* mappings left for the runtime and libc */

enum {
	OPT_WORKLOAD = 256,
	OPT_POLICY,
	OPT_THREADS,
	OPT_SIZE,
	OPT_ITERATIONS,
	OPT_HANDLERS,
	OPT_INTAKE,
	OPT_FOLIO_PAGES,
	OPT_FORMAT,
	OPT_NO_REFERENCES,
	OPT_VMAS,
	OPT_INDEX_SIZES,
	OPT_SEED,
	OPT_PLOT,
	OPT_PM_QOS,
	OPT_DURATION,
	OPT_LOOPS,
	OPT_MAP_SIZE,
	OPT_CHUNK_SIZE,
	OPT_CHURN_THREADS,
	OPT_CHURN_SIZE,
	OPT_SPF_VMAS,
	OPT_SPF_PAGES,
	OPT_FILE_SIZE,
	OPT_TOUCH_PAGES,
	OPT_ANON_VMA_AT_MMAP,
	OPT_WAKE_AFTER_UNLOCK,
	OPT_IMMAP_REORDER,
	OPT_SPIN_US,
};

static const struct option long_options[] = {
	{ "workload",		required_argument,	NULL, OPT_WORKLOAD },
	{ "policy",		required_argument,	NULL, OPT_POLICY },
	{ "threads",		required_argument,	NULL, OPT_THREADS },
	{ "size",		required_argument,	NULL, OPT_SIZE },
	{ "iterations",		required_argument,	NULL, OPT_ITERATIONS },
	{ "handlers",		required_argument,	NULL, OPT_HANDLERS },
	{ "intake",		required_argument,	NULL, OPT_INTAKE },
	{ "folio-pages",	required_argument,	NULL, OPT_FOLIO_PAGES },
	{ "fault-around",	required_argument,	NULL, OPT_FOLIO_PAGES },	/* the old name */
	{ "spin-us",		required_argument,	NULL, OPT_SPIN_US },
	{ "format",		required_argument,	NULL, OPT_FORMAT },
	{ "no-references",	no_argument,		NULL, OPT_NO_REFERENCES },
	{ "vmas",		required_argument,	NULL, OPT_VMAS },
	{ "index-sizes",	required_argument,	NULL, OPT_INDEX_SIZES },
	{ "seed",		required_argument,	NULL, OPT_SEED },
	{ "plot",		required_argument,	NULL, OPT_PLOT },
	{ "pm-qos",		required_argument,	NULL, OPT_PM_QOS },
	{ "duration",		required_argument,	NULL, OPT_DURATION },
	{ "loops",		required_argument,	NULL, OPT_LOOPS },
	{ "map-size",		required_argument,	NULL, OPT_MAP_SIZE },
	{ "chunk-size",		required_argument,	NULL, OPT_CHUNK_SIZE },
	{ "churn-threads",	required_argument,	NULL, OPT_CHURN_THREADS },
	{ "churn-size",		required_argument,	NULL, OPT_CHURN_SIZE },
	{ "spf-vmas",		required_argument,	NULL, OPT_SPF_VMAS },
	{ "spf-pages",		required_argument,	NULL, OPT_SPF_PAGES },
	{ "file-size",		required_argument,	NULL, OPT_FILE_SIZE },
	{ "touch-pages",	required_argument,	NULL, OPT_TOUCH_PAGES },
	{ "anon-vma-at-mmap",	no_argument,		NULL, OPT_ANON_VMA_AT_MMAP },
	{ "wake-after-unlock",	no_argument,		NULL, OPT_WAKE_AFTER_UNLOCK },
	{ "immap-reorder",	required_argument,	NULL, OPT_IMMAP_REORDER },
	{ "help",		no_argument,		NULL, 'h' },
	{ NULL, 0, NULL, 0 },
};

static void bench_usage(FILE *out)
{
	fprintf(out,
"usage: uspf bench [options]\n"
"\n"
"Measure page-fault throughput and latency through uspf's policies, with two\n"
"references measured in the same run: native kernel faults (no userfaultfd)\n"
"and a naive one-thread poll/read/UFFDIO_COPY handler.\n"
"\n"
"  --workload LIST             comma list of workloads, or 'all' (default\n"
"                              pft,page_fault1,malloc1):\n"
"      pft          mmtests pft: one region, one slice per thread\n"
"      page_fault1  will-it-scale: map --map-size, write every page, unmap, loop\n"
"      malloc1      pft beside malloc1-style mmap/munmap churn threads\n"
"      spf_test     spf_test: each loop maps and touches --spf-vmas small regions\n"
"      execl        Execl-style: maps of one shared file, an address space each\n"
"      random       pft with each slice touched in a random order\n"
"      ebizzy       ebizzy's mmap mode: copy a random --chunk-size chunk of --size\n"
"                   into a fresh mapping, search it, unmap; records/s\n"
"      vmas         map/unmap N one-page regions\n"
"      index        the VMA index alone\n"
"  --policy LIST               comma list of policies, or 'all' (default all:");
	for (unsigned int p = 0; p < USPF_NR_POLICIES; p++)
		fprintf(out, " %s", uspf_policy_name((enum uspf_policy_id)p));
	fprintf(out, ")\n"
"  --threads LIST              comma list of faulting thread counts (default\n"
"                              1,2,4,... up to 2 x CPUs)\n"
"  --size BYTES                pft, malloc1 and random region, K/M/G suffixes\n"
"                              (default 16M)\n"
"  --iterations N              runs per row; Hmean, min-max, stddev and CoV over\n"
"                              them (default 2)\n"
"  --duration SECONDS          page_fault1, spf_test, execl: each run's length\n"
"                              (default 0.25)\n"
"  --loops N                   ... or N loops per thread (default 0: --duration)\n"
"  --map-size BYTES            page_fault1: mapped per loop (default 8M)\n"
"  --chunk-size BYTES          ebizzy: a chunk, and each copy mapped (default 512K)\n"
"  --churn-threads N           malloc1: mmap/munmap threads (default 1)\n"
"  --churn-size BYTES          malloc1: bytes per churn mapping (default 128M)\n"
"  --spf-vmas N                spf_test: mappings per loop (default 2)\n"
"  --spf-pages N               spf_test: pages per mapping (default 10)\n"
"  --file-size BYTES           execl: the shared file's size (default 1M)\n"
"  --touch-pages N             execl: pages written per mapping (default 8)\n"
"  --immap-reorder on|off|both execl: i_mmap lock order (default both: two rows)\n"
"  --anon-vma-at-mmap          prepare anon_vma at mmap time, not at first fault\n"
"  --wake-after-unlock         wake a faulting thread only once the policy has\n"
"                              dropped its locks (one UFFDIO_WAKE per fault)\n"
"  --handlers LIST             uspf handler threads (0: one per two online CPUs,\n"
"                              the default; execl: 1); a comma list compares them\n"
"  --intake LIST               how uspf handlers read fault messages: poll (the\n"
"                              default), uring, busy; a comma list compares them\n"
"  --spin-us LIST              how long an idle handler looks for the next fault\n"
"                              before it sleeps, 0..10000 (default 50); a comma\n"
"                              list compares them\n"
"  --folio-pages N             pages uspf installs per fault (default 1, as the\n"
"                              kernel's anonymous faults; more: the analogue of a\n"
"                              large folio, with a native row at that folio size\n"
"                              where the host offers it; --fault-around: the old\n"
"                              name)\n"
"  --pm-qos off|USEC           hold /dev/cpu_dma_latency at USEC during the run, as\n"
"                              cyclictest does (default 0: no deep idle states;\n"
"                              skipped with a note where it cannot be opened)\n"
"  --format table|json|csv     output format (default table); json and csv\n"
"                              give every counter (csv: see uspf(1), OUTPUT)\n"
"  --plot FILE                 also draw faults/sec vs threads, one line per\n"
"                              policy and reference, into FILE, an SVG or PNG\n"
"                              (.svg or .png), with gnuplot (gnuplot-nox)\n"
"  --no-references             skip the native and naive references\n"
"  --vmas LIST                 N for --workload vmas (default 1000,10000,50000)\n"
"  --index-sizes LIST          n for --workload index (default 1000,10000,100000)\n"
"  --seed N                    seed for index and random (default 1)\n"
"  -h, --help                  this text\n");
}

static int bad_value(const char *flag, const char *val, const char *accepts)
{
	return cli_bad_value("bench", flag, val, accepts);
}

static int parse_ull(const char *s, unsigned long long min, unsigned long long max,
		     unsigned long long *out)
{
	return cli_parse_ull(s, min, max, out);
}

static int parse_size(const char *s, size_t *out)
{
	unsigned long long v, mult = 1;
	char *end;

	if (*s < '0' || *s > '9')
		return -EINVAL;
	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno)
		return -EINVAL;
	switch (*end) {
	case 'k': case 'K': mult = 1ULL << 10; end++; break;
	case 'm': case 'M': mult = 1ULL << 20; end++; break;
	case 'g': case 'G': mult = 1ULL << 30; end++; break;
	}
	if (*end || v == 0 || v > (1ULL << 40) / mult)
		return -EINVAL;
	v *= mult;
	if (v % bench_page_size())
		return -EINVAL;
	*out = (size_t)v;
	return 0;
}

/* A comma list of integers in [min, max]; duplicates dropped, order kept. */
static int parse_list(const char *s, unsigned long long min, unsigned long long max,
		      size_t *vals, unsigned int *nr)
{
	char *copy, *tok, *save = NULL;
	unsigned long long v;
	unsigned int i, n = 0;
	int ret = 0;

	copy = strdup(s);
	if (!copy)
		return -ENOMEM;
	if (!*copy || copy[strlen(copy) - 1] == ',' || strstr(copy, ",,"))
		ret = -EINVAL;
	for (tok = strtok_r(copy, ",", &save); tok && !ret;
	     tok = strtok_r(NULL, ",", &save)) {
		ret = parse_ull(tok, min, max, &v);
		if (ret)
			break;
		for (i = 0; i < n && vals[i] != v; i++)
			;
		if (i < n)
			continue;
		if (n == BENCH_MAX_LIST) {
			ret = -E2BIG;
			break;
		}
		vals[n++] = (size_t)v;
	}
	free(copy);
	if (!ret && !n)
		ret = -EINVAL;
	if (!ret)
		*nr = n;
	return ret;
}

static int parse_policies(const char *s, struct bench_opts *o)
{
	char *copy, *tok, *save = NULL;
	enum uspf_policy_id id;
	unsigned int i, n = 0;
	int ret = 0;

	if (!strcmp(s, "all")) {
		for (i = 0; i < USPF_NR_POLICIES; i++)
			o->policies[i] = (enum uspf_policy_id)i;
		o->nr_policies = USPF_NR_POLICIES;
		return 0;
	}
	copy = strdup(s);
	if (!copy)
		return -ENOMEM;
	if (!*copy || copy[strlen(copy) - 1] == ',' || strstr(copy, ",,"))
		ret = -EINVAL;
	for (tok = strtok_r(copy, ",", &save); tok && !ret;
	     tok = strtok_r(NULL, ",", &save)) {
		ret = uspf_policy_from_name(tok, &id);
		if (ret)
			break;
		for (i = 0; i < n && o->policies[i] != id; i++)
			;
		if (i == n)
			o->policies[n++] = id;
	}
	free(copy);
	if (!ret && !n)
		ret = -EINVAL;
	if (!ret)
		o->nr_policies = n;
	return ret ? -EINVAL : 0;
}

static const char *const workload_names[BENCH_NR_WORKLOADS] = {
	[BENCH_PFT] = "pft",
	[BENCH_VMAS] = "vmas",
	[BENCH_INDEX] = "index",
	[BENCH_PAGE_FAULT1] = "page_fault1",
	[BENCH_MALLOC1] = "malloc1",
	[BENCH_SPF_TEST] = "spf_test",
	[BENCH_EXECL] = "execl",
	[BENCH_RANDOM] = "random",
	[BENCH_EBIZZY] = "ebizzy",
};

/* The order of `all`: the fault workloads, then the two without faults. */
static const enum bench_workload all_workloads[BENCH_NR_WORKLOADS] = {
	BENCH_PFT, BENCH_PAGE_FAULT1, BENCH_MALLOC1, BENCH_SPF_TEST, BENCH_EXECL,
	BENCH_RANDOM, BENCH_EBIZZY, BENCH_VMAS, BENCH_INDEX,
};

const char *bench_workload_name(enum bench_workload w)
{
	return (unsigned int)w < BENCH_NR_WORKLOADS ? workload_names[w] : "?";
}

static int parse_workloads(const char *s, struct bench_opts *o)
{
	char *copy, *tok, *save = NULL;
	unsigned int i, w, n = 0;
	int ret = 0;

	if (!strcmp(s, "all")) {
		memcpy(o->workloads, all_workloads, sizeof(all_workloads));
		o->nr_workloads = BENCH_NR_WORKLOADS;
		o->workload = o->workloads[0];
		return 0;
	}
	copy = strdup(s);
	if (!copy)
		return -ENOMEM;
	if (!*copy || copy[strlen(copy) - 1] == ',' || strstr(copy, ",,"))
		ret = -EINVAL;
	for (tok = strtok_r(copy, ",", &save); tok && !ret;
	     tok = strtok_r(NULL, ",", &save)) {
		for (w = 0; w < BENCH_NR_WORKLOADS && strcmp(tok, workload_names[w]); w++)
			;
		if (w == BENCH_NR_WORKLOADS) {
			ret = -EINVAL;
			break;
		}
		for (i = 0; i < n && o->workloads[i] != (enum bench_workload)w; i++)
			;
		if (i == n)
			o->workloads[n++] = (enum bench_workload)w;
	}
	free(copy);
	if (!ret && !n)
		ret = -EINVAL;
	if (ret)
		return -EINVAL;
	o->nr_workloads = n;
	o->workload = o->workloads[0];
	return 0;
}

static bool has_workload(const struct bench_opts *o, enum bench_workload w)
{
	unsigned int i;

	for (i = 0; i < o->nr_workloads; i++) {
		if (o->workloads[i] == w)
			return true;
	}
	return false;
}

/* Seconds, a decimal number in [0.001, 3600]; to ns. */
static int parse_duration(const char *s, uint64_t *ns)
{
	char *end;
	double v;

	if ((*s < '0' || *s > '9') && *s != '.')
		return -EINVAL;
	errno = 0;
	v = strtod(s, &end);
	if (errno || *end || !(v >= 0.001 && v <= 3600))
		return -EINVAL;
	*ns = (uint64_t)(v * 1e9 + 0.5);
	return 0;
}

static void policy_names(char *buf, size_t len)
{
	size_t off = 0;
	unsigned int p;

	buf[0] = '\0';
	off += (size_t)snprintf(buf, len, "a comma list of");
	for (p = 0; p < USPF_NR_POLICIES && off < len; p++)
		off += (size_t)snprintf(buf + off, len - off, " %s%s",
					uspf_policy_name((enum uspf_policy_id)p),
					p + 1 < USPF_NR_POLICIES ? "," : "");
	if (off < len)
		snprintf(buf + off, len - off, "; or all");
}

static unsigned int online_cpus(void)
{
	long n = sysconf(_SC_NPROCESSORS_ONLN);

	return n > 0 ? (unsigned int)n : 1;
}

static void set_defaults(struct bench_opts *o)
{
	unsigned int i, t, max, cpus = online_cpus();

	memset(o, 0, sizeof(*o));
	/* The headline: first faults, then first faults beside writers. */
	o->workloads[o->nr_workloads++] = BENCH_PFT;
	o->workloads[o->nr_workloads++] = BENCH_PAGE_FAULT1;
	o->workloads[o->nr_workloads++] = BENCH_MALLOC1;
	o->workload = o->workloads[0];
	for (i = 0; i < USPF_NR_POLICIES; i++)
		o->policies[i] = (enum uspf_policy_id)i;
	o->nr_policies = USPF_NR_POLICIES;
	/* 1, 2, 4, ... up to twice the CPUs (and 2 x CPUs itself). */
	max = 2 * cpus > BENCH_MAX_THREADS ? BENCH_MAX_THREADS : 2 * cpus;
	for (t = 1; t <= max && o->nr_threads < BENCH_MAX_LIST; t *= 2)
		o->threads[o->nr_threads++] = t;
	if (o->threads[o->nr_threads - 1] != max && o->nr_threads < BENCH_MAX_LIST)
		o->threads[o->nr_threads++] = max;
	o->size = 16UL << 20;
	o->iterations = 2;
	uspf_config_init(&o->cfg);
	/* One page per fault, as the kernel's anonymous faults (uspf_config_init()'s). */
	o->pm_qos_us = 0;
	o->format = BENCH_TABLE;
	o->references = true;
	o->vmas[0] = 1000;
	o->vmas[1] = 10000;
	o->vmas[2] = 50000;
	o->nr_vmas = 3;
	o->index_sizes[0] = 1000;
	o->index_sizes[1] = 10000;
	o->index_sizes[2] = 100000;
	o->nr_index_sizes = 3;
	o->seed = 1;
	o->duration_ns = 250000000ULL;
	o->loops = 0;
	o->map_size = 8UL << 20;
	o->chunk_size = 512UL << 10;
	o->churn_threads = 1;
	o->churn_size = 128UL << 20;
	o->spf_vmas = 2;
	o->spf_pages = 10;
	o->file_size = 1UL << 20;
	o->touch_pages = 8;
	o->immap = BENCH_IMMAP_BOTH;
}

/* Check the config right after one of its fields was set from `flag`. */
static int check_config(const struct bench_opts *o, const char *flag, const char *val)
{
	char msg[256];
	int ret;

	ret = uspf_config_validate(&o->cfg, msg, sizeof(msg));
	if (!ret)
		return 0;
	if (!msg[0])
		snprintf(msg, sizeof(msg), "%s", strerror(-ret));
	fprintf(stderr, "uspf bench: %s '%s': %s\n", flag, val, msg);
	return 2;
}

static int parse_config_flag(struct bench_opts *o, int opt, const char *val)
{
	size_t list[BENCH_MAX_LIST];
	char buf[64], *tok, *save = NULL;
	unsigned long long v;
	enum uspf_intake intake;
	unsigned int i, n;
	int ret;

	switch (opt) {
	case OPT_HANDLERS:
		if (parse_list(val, 0, 1000000, list, &n) || n > BENCH_MAX_VARIANTS)
			return bad_value("--handlers", val, "a comma list of at most 8 thread counts, "
					 "0 for one per two online CPUs");
		for (i = 0; i < n; i++) {
			o->cfg.handlers = (unsigned int)list[i];
			ret = check_config(o, "--handlers", val);
			if (ret)
				return ret;
			o->handler_counts[i] = (unsigned int)list[i];
		}
		o->nr_handler_counts = n;
		o->cfg.handlers = o->handler_counts[0];
		return 0;
	case OPT_INTAKE:
		if (!*val || strlen(val) >= sizeof(buf) || val[strlen(val) - 1] == ',' ||
		    strstr(val, ",,"))
			return bad_value("--intake", val, "a comma list of uring, poll, busy");
		snprintf(buf, sizeof(buf), "%s", val);
		for (n = 0, tok = strtok_r(buf, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
			if (uspf_intake_from_name(tok, &intake))
				return bad_value("--intake", val, "a comma list of uring, poll, busy");
			for (i = 0; i < n && o->intakes[i] != intake; i++)
				;
			if (i == n)
				o->intakes[n++] = intake;
		}
		o->nr_intakes = n;
		o->cfg.intake = o->intakes[0];
		return 0;
	case OPT_SPIN_US:
		if (parse_list(val, 0, 1000000, list, &n) || n > BENCH_MAX_VARIANTS)
			return bad_value("--spin-us", val, "a comma list of at most 8 spin budgets, "
					 "each 0 to 10000 microseconds");
		for (i = 0; i < n; i++) {
			o->cfg.spin_us = (unsigned int)list[i];
			ret = check_config(o, "--spin-us", val);
			if (ret)
				return ret;
			o->spins_us[i] = (unsigned int)list[i];
		}
		o->nr_spins_us = n;
		o->cfg.spin_us = o->spins_us[0];
		return 0;
	case OPT_FOLIO_PAGES:
		if (parse_ull(val, 0, 1000000, &v))
			return bad_value("--folio-pages", val, "a number of pages, 1 to 512");
		o->cfg.folio_pages = (unsigned int)v;
		return check_config(o, "--folio-pages", val);
	}
	return 2;
}

#define SIZE_ACCEPTS "bytes with an optional K, M or G suffix, a positive multiple of the page size, at most 1T"

/* The flags of the harness's workloads. */
static int parse_workload_flag(struct bench_opts *o, int opt, const char *val)
{
	unsigned long long v;

	switch (opt) {
	case OPT_DURATION:
		if (parse_duration(val, &o->duration_ns))
			return bad_value("--duration", val, "seconds, a decimal number 0.001..3600");
		return 0;
	case OPT_LOOPS:
		if (parse_ull(val, 0, 1000000000, &v))
			return bad_value("--loops", val, "a number of loops 0..1000000000, 0 for --duration");
		o->loops = v;
		return 0;
	case OPT_MAP_SIZE:
		if (parse_size(val, &o->map_size))
			return bad_value("--map-size", val, SIZE_ACCEPTS);
		return 0;
	case OPT_CHUNK_SIZE:
		if (parse_size(val, &o->chunk_size))
			return bad_value("--chunk-size", val, SIZE_ACCEPTS);
		return 0;
	case OPT_CHURN_THREADS:
		if (parse_ull(val, 0, BENCH_MAX_THREADS, &v))
			return bad_value("--churn-threads", val, "a number of threads 0..1024");
		o->churn_threads = (unsigned int)v;
		return 0;
	case OPT_CHURN_SIZE:
		if (parse_size(val, &o->churn_size))
			return bad_value("--churn-size", val, SIZE_ACCEPTS);
		return 0;
	case OPT_SPF_VMAS:
		if (parse_ull(val, 1, 1024, &v))
			return bad_value("--spf-vmas", val, "a number of mappings 1..1024");
		o->spf_vmas = (unsigned int)v;
		return 0;
	case OPT_SPF_PAGES:
		if (parse_ull(val, 1, 65536, &v))
			return bad_value("--spf-pages", val, "a number of pages 1..65536");
		o->spf_pages = (unsigned int)v;
		return 0;
	case OPT_FILE_SIZE:
		if (parse_size(val, &o->file_size) || o->file_size > (1UL << 30))
			return bad_value("--file-size", val,
					 "bytes with an optional K, M or G suffix, a positive multiple of the page size, at most 1G");
		return 0;
	case OPT_TOUCH_PAGES:
		if (parse_ull(val, 1, 1UL << 18, &v))
			return bad_value("--touch-pages", val, "a number of pages 1..262144");
		o->touch_pages = (unsigned int)v;
		return 0;
	case OPT_ANON_VMA_AT_MMAP:
		o->cfg.anon_vma_at_mmap = true;
		return 0;
	case OPT_WAKE_AFTER_UNLOCK:
		o->cfg.wake_after_unlock = true;
		return 0;
	case OPT_IMMAP_REORDER:
		if (!strcmp(val, "both")) {
			o->immap = BENCH_IMMAP_BOTH;
			o->cfg.immap_reorder = true;
		} else if (!strcmp(val, "on")) {
			o->immap = BENCH_IMMAP_ON;
			o->cfg.immap_reorder = true;
		} else if (!strcmp(val, "off")) {
			o->immap = BENCH_IMMAP_OFF;
			o->cfg.immap_reorder = false;
		} else {
			return bad_value("--immap-reorder", val, "on, off or both");
		}
		return 0;
	}
	return 2;
}

static int parse_one(struct bench_opts *o, int opt, const char *val)
{
	unsigned long long v;
	size_t list[BENCH_MAX_LIST];
	char names[128];
	unsigned int i, n;

	switch (opt) {
	case OPT_WORKLOAD:
		if (parse_workloads(val, o))
			return bad_value("--workload", val,
					 "a comma list of pft, page_fault1, malloc1, spf_test, execl, random, vmas, index; or all");
		return 0;
	case OPT_POLICY:
		if (parse_policies(val, o)) {
			policy_names(names, sizeof(names));
			return bad_value("--policy", val, names);
		}
		return 0;
	case OPT_THREADS:
		if (parse_list(val, 1, BENCH_MAX_THREADS, list, &n))
			return bad_value("--threads", val,
					 "a comma list of thread counts, each 1..1024 (at most 64)");
		for (i = 0; i < n; i++)
			o->threads[i] = (unsigned int)list[i];
		o->nr_threads = n;
		return 0;
	case OPT_SIZE:
		if (parse_size(val, &o->size))
			return bad_value("--size", val, SIZE_ACCEPTS);
		return 0;
	case OPT_ITERATIONS:
		if (parse_ull(val, 1, 1000, &v))
			return bad_value("--iterations", val, "an integer 1..1000");
		o->iterations = (unsigned int)v;
		return 0;
	case OPT_HANDLERS:
	case OPT_INTAKE:
	case OPT_FOLIO_PAGES:
	case OPT_SPIN_US:
		return parse_config_flag(o, opt, val);
	case OPT_FORMAT:
		if (!strcmp(val, "table"))
			o->format = BENCH_TABLE;
		else if (!strcmp(val, "json"))
			o->format = BENCH_JSON;
		else if (!strcmp(val, "csv"))
			o->format = BENCH_CSV;
		else
			return bad_value("--format", val, "table, json or csv");
		return 0;
	case OPT_NO_REFERENCES:
		o->references = false;
		return 0;
	case OPT_VMAS:
		if (parse_list(val, 1, 1000000, o->vmas, &o->nr_vmas))
			return bad_value("--vmas", val,
					 "a comma list of mapping counts, each 1..1000000 (at most 64)");
		return 0;
	case OPT_INDEX_SIZES:
		if (parse_list(val, 1, 100000000, o->index_sizes, &o->nr_index_sizes))
			return bad_value("--index-sizes", val,
					 "a comma list of sizes, each 1..100000000 (at most 64)");
		return 0;
	case OPT_SEED:
		if (parse_ull(val, 0, UINT64_MAX, &v))
			return bad_value("--seed", val, "a non-negative integer");
		o->seed = v;
		return 0;
	case OPT_PM_QOS:
		if (!strcmp(val, "off")) {
			o->pm_qos_us = -1;
			return 0;
		}
		if (parse_ull(val, 0, 2000000000, &v))
			return bad_value("--pm-qos", val, "off, or a latency in microseconds (0 and up)");
		o->pm_qos_us = (int)v;
		return 0;
	case OPT_PLOT:
		o->plot = val;		/* checked by bench_plot_check() */
		return 0;
	default:
		return parse_workload_flag(o, opt, val);
	}
}

/* Checks across flags, once all are parsed: -1 to go on, or 2. */
static int check_pages_per_thread(const struct bench_opts *o)
{
	unsigned int i, max = 0;
	size_t file_pages = o->file_size / bench_page_size();

	for (i = 0; i < o->nr_threads; i++)
		max = o->threads[i] > max ? o->threads[i] : max;
	if (has_workload(o, BENCH_EXECL) && o->touch_pages > file_pages) {
		fprintf(stderr, "uspf bench: --touch-pages %u: expected at most the %zu pages of --file-size %zu\n",
			o->touch_pages, file_pages, o->file_size);
		return 2;
	}
	if (has_workload(o, BENCH_EBIZZY) && o->chunk_size > o->size) {
		fprintf(stderr, "uspf bench: --chunk-size %zu: expected at most --size %zu (ebizzy's "
			"chunks are cut from it)\n", o->chunk_size, o->size);
		return 2;
	}
	if ((!has_workload(o, BENCH_PFT) && !has_workload(o, BENCH_MALLOC1) &&
	     !has_workload(o, BENCH_RANDOM)) || o->size / bench_page_size() >= max)
		return -1;
	fprintf(stderr, "uspf bench: --size %zu: expected at least one page per thread (%u threads)\n",
		o->size, max);
	return 2;
}

/* Returns -1 to go on, or an exit status. */
static int parse_args(int argc, char **argv, struct bench_opts *o)
{
	int opt, ret;

	set_defaults(o);
	opterr = 0;
	optind = 1;
	while ((opt = getopt_long(argc, argv, ":h", long_options, NULL)) != -1) {
		if (opt == 'h') {
			bench_usage(stdout);
			return 0;
		}
		if (opt == '?' || opt == ':')
			return cli_unknown_option("bench", argv, opt, long_options);
		ret = parse_one(o, opt, optarg);
		if (ret)
			return ret;
	}
	if (optind < argc) {
		fprintf(stderr, "uspf bench: unexpected argument '%s' (bench takes options only; see uspf bench --help)\n",
			argv[optind]);
		return 2;
	}
	ret = check_pages_per_thread(o);
	if (ret >= 0)
		return ret;
	return bench_plot_check(o);
}

static void progress(const char *workload, const char *what, unsigned int threads)
{
	bench_progress_row(workload, what, threads);
}

static void progress_done(void)
{
	bench_progress_end();
}

unsigned int bench_nr_variants(const struct bench_opts *o)
{
	return (o->nr_handler_counts ? o->nr_handler_counts : 1) *
	       (o->nr_intakes ? o->nr_intakes : 1) * (o->nr_spins_us ? o->nr_spins_us : 1);
}

void bench_variant_cfg(const struct bench_opts *o, unsigned int v, struct uspf_config *cfg)
{
	unsigned int nh = o->nr_handler_counts ? o->nr_handler_counts : 1;
	unsigned int ni = o->nr_intakes ? o->nr_intakes : 1;

	if (o->nr_handler_counts)
		cfg->handlers = o->handler_counts[v % nh];
	if (o->nr_intakes)
		cfg->intake = o->intakes[(v / nh) % ni];
	if (o->nr_spins_us)
		cfg->spin_us = o->spins_us[v / (nh * ni)];
}

const char *bench_variant_label(const struct bench_opts *o, unsigned int v)
{
	static char labels[BENCH_MAX_VARIANTS * BENCH_MAX_VARIANTS * USPF_NR_INTAKES][64];
	struct uspf_config cfg = o->cfg;
	char *l;
	int n = 0;

	if (bench_nr_variants(o) < 2 || v >= sizeof(labels) / sizeof(labels[0]))
		return NULL;
	bench_variant_cfg(o, v, &cfg);
	l = labels[v];
	l[0] = '\0';
	if (o->nr_handler_counts > 1)
		n += snprintf(l + n, sizeof(labels[0]) - n, "%shandlers=%u", n ? " " : "", cfg.handlers);
	if (o->nr_intakes > 1)
		n += snprintf(l + n, sizeof(labels[0]) - n, "%sintake=%s", n ? " " : "",
			      uspf_intake_name(cfg.intake));
	if (o->nr_spins_us > 1)
		snprintf(l + n, sizeof(labels[0]) - n, "%sspin_us=%u", n ? " " : "", cfg.spin_us);
	return l;
}

/* A row label: the handler variant's and the config's, either or both. */
static const char *join_variant(const char *a, const char *b)
{
	char *s;

	if (!a || !b)
		return a ? a : b;
	if (asprintf(&s, "%s %s", a, b) < 0)
		return a;
	return s;	/* lives as long as the report: the process */
}

/* What a uspf row's config differs in from the defaults, for its label. */
static const char *uspf_variant(const struct uspf_config *cfg, bool immap)
{
	if (!immap)
		return cfg->anon_vma_at_mmap ? "anon_vma_at_mmap=on" : NULL;
	if (cfg->anon_vma_at_mmap)
		return cfg->immap_reorder ? "immap_reorder=on anon_vma_at_mmap=on" :
					    "immap_reorder=off anon_vma_at_mmap=on";
	return cfg->immap_reorder ? "immap_reorder=on" : "immap_reorder=off";
}

/*
 * The CPU time a row cost: this process's (faulting workers, handler
 * threads, the callback worker, their time in the kernel) and its
 * waited-for children's (references that run as processes).
 */
static uint64_t cpu_now_ns(void)
{
	struct rusage self, kids;
	uint64_t ns = 0;

	if (!getrusage(RUSAGE_SELF, &self))
		ns += (uint64_t)(self.ru_utime.tv_sec + self.ru_stime.tv_sec) * 1000000000ull +
		      (uint64_t)(self.ru_utime.tv_usec + self.ru_stime.tv_usec) * 1000ull;
	if (!getrusage(RUSAGE_CHILDREN, &kids))
		ns += (uint64_t)(kids.ru_utime.tv_sec + kids.ru_stime.tv_sec) * 1000000000ull +
		      (uint64_t)(kids.ru_utime.tv_usec + kids.ru_stime.tv_usec) * 1000ull;
	return ns;
}

/* cpu_ns (every iteration) and cpu_ns_per_fault, as the row's counters. */
static void row_cpu(const struct bench_opts *o, struct bench_pft_row *row, uint64_t since)
{
	uint64_t ns = cpu_now_ns() - since, faults = row->faults * o->iterations;

	bench_pft_row_counter(row, "cpu_ns", ns);
	if (faults)
		bench_pft_row_counter(row, "cpu_ns_per_fault", ns / faults);
}

static int run_pft_threads(struct bench_report *rep, unsigned int threads)
{
	const struct bench_opts *o = rep->opts;
	struct bench_row *row;
	const char *label;
	unsigned int i, v;
	uint64_t t0;
	int ret;

	if (o->references) {
		progress("pft", "native", threads);
		row = bench_report_add(rep, BENCH_ROW_PFT);
		if (!row)
			return -ENOMEM;
		t0 = cpu_now_ns();
		ret = bench_native_run(o, threads, false, &row->pft);
		if (ret)
			return ret;
		row_cpu(o, &row->pft, t0);
		if (rep->native_folios) {
			progress("pft", "native", threads);
			row = bench_report_add(rep, BENCH_ROW_PFT);
			if (!row)
				return -ENOMEM;
			t0 = cpu_now_ns();
			ret = bench_native_run(o, threads, true, &row->pft);
			if (ret)
				return ret;
			row_cpu(o, &row->pft, t0);
			row->pft.variant = rep->native_folio_label;
		}
		progress("pft", "naive", threads);
		row = bench_report_add(rep, BENCH_ROW_PFT);
		if (!row)
			return -ENOMEM;
		t0 = cpu_now_ns();
		ret = bench_naive_run(o, threads, &row->pft);
		if (ret)
			return ret;
		row_cpu(o, &row->pft, t0);
	}
	for (v = 0; v < bench_nr_variants(o); v++) {
		struct bench_opts vo = *o;

		bench_variant_cfg(o, v, &vo.cfg);
		label = bench_variant_label(o, v);
		if (o->references) {
			progress("pft", "raw", threads);
			row = bench_report_add(rep, BENCH_ROW_PFT);
			if (!row)
				return -ENOMEM;
			t0 = cpu_now_ns();
			ret = bench_raw_run(&vo, threads, &row->pft);
			if (ret)
				return ret;
			row_cpu(o, &row->pft, t0);
			row->pft.handlers_variant = label;
			row->pft.variant = label;
			row->pft.spin_us = vo.cfg.spin_us;
		}
		for (i = 0; i < o->nr_policies; i++) {
			progress("pft", uspf_policy_name(o->policies[i]), threads);
			row = bench_report_add(rep, BENCH_ROW_PFT);
			if (!row)
				return -ENOMEM;
			t0 = cpu_now_ns();
			ret = bench_pft_run(&vo, o->policies[i], threads, &row->pft);
			if (ret)
				return ret;
			row_cpu(o, &row->pft, t0);
			row->pft.handlers_variant = label;
			row->pft.variant = join_variant(label, uspf_variant(&vo.cfg, false));
			row->pft.spin_us = vo.cfg.spin_us;
		}
	}
	return 0;
}

static int run_pft(struct bench_report *rep)
{
	const struct bench_opts *o = rep->opts;
	unsigned int i;
	int ret = 0;

	if (o->cfg.folio_pages > 1 && o->references) {
		rep->native_folios = bench_native_folios_offered(o->cfg.folio_pages,
								 rep->native_folio_why,
								 sizeof(rep->native_folio_why));
		snprintf(rep->native_folio_label, sizeof(rep->native_folio_label), "folio=%uK",
			 o->cfg.folio_pages * (unsigned int)(bench_page_size() / 1024));
	}
	bench_progress_start(o->nr_threads * (bench_nr_variants(o) * (o->nr_policies +
				(o->references ? 1 : 0)) + (o->references ? 2 : 0)));
	for (i = 0; i < rep->opts->nr_threads; i++) {
		ret = run_pft_threads(rep, rep->opts->threads[i]);
		if (ret)
			break;
	}
	progress_done();
	if (ret)
		return ret;
	bench_report_ratios(rep);
	return 0;
}

/* ---- the harness's workloads: page_fault1, malloc1, spf_test, execl, random ---- */

static int work_row(struct bench_report *rep, const struct bench_wl *wl,
		    enum bench_as_kind kind, const struct uspf_config *cfg,
		    unsigned int threads, const char *label)
{
	const struct bench_opts *o = rep->opts;
	struct bench_row *row;

	progress(wl->name, kind == BENCH_AS_NATIVE ? "native" :
		 kind == BENCH_AS_NAIVE ? "naive" : uspf_policy_name(cfg->policy), threads);
	row = bench_report_add(rep, BENCH_ROW_PFT);
	if (!row)
		return -ENOMEM;
	uint64_t t0;
	int ret;

	if (kind == BENCH_AS_USPF) {
		row->pft.handlers_variant = label;
		row->pft.variant = join_variant(label, uspf_variant(cfg, wl->id == BENCH_EXECL));
		row->pft.spin_us = cfg->spin_us;
	}
	t0 = cpu_now_ns();
	ret = bench_work_row(o, wl, kind, cfg, threads, &row->pft);
	if (!ret)
		row_cpu(o, &row->pft, t0);
	return ret;
}

static int run_work_threads(struct bench_report *rep, const struct bench_wl *wl,
			    unsigned int threads)
{
	const struct bench_opts *o = rep->opts;
	struct uspf_config cfg = o->cfg;
	const char *label;
	unsigned int i, v;
	int ret = 0;

	if (o->references) {
		ret = work_row(rep, wl, BENCH_AS_NATIVE, &cfg, threads, NULL);
		if (!ret)
			ret = work_row(rep, wl, BENCH_AS_NAIVE, &cfg, threads, NULL);
	}
	for (v = 0; v < bench_nr_variants(o) && !ret; v++) {
		label = bench_variant_label(o, v);
		bench_variant_cfg(o, v, &cfg);
		for (i = 0; i < o->nr_policies && !ret; i++) {
			cfg.policy = o->policies[i];
			if (wl->id == BENCH_EXECL && o->immap == BENCH_IMMAP_BOTH) {
				cfg.immap_reorder = true;
				ret = work_row(rep, wl, BENCH_AS_USPF, &cfg, threads, label);
				cfg.immap_reorder = false;
			}
			if (!ret)
				ret = work_row(rep, wl, BENCH_AS_USPF, &cfg, threads, label);
			cfg.immap_reorder = o->cfg.immap_reorder;
		}
	}
	return ret;
}

static int run_work(struct bench_report *rep, const struct bench_wl *wl)
{
	unsigned int i;
	int ret = 0;

	for (i = 0; i < rep->opts->nr_threads && !ret; i++)
		ret = run_work_threads(rep, wl, rep->opts->threads[i]);
	progress_done();
	return ret;
}

/* ---- vmas ---- */

static long read_long_file(const char *path)
{
	long v = -1;
	FILE *f;

	f = fopen(path, "re");
	if (!f)
		return -1;
	if (fscanf(f, "%ld", &v) != 1)
		v = -1;
	fclose(f);
	return v;
}

static long count_maps(void)
{
	long n = 0;
	FILE *f;
	int c;

	f = fopen("/proc/self/maps", "re");
	if (!f)
		return -1;
	while ((c = getc(f)) != EOF)
		n += c == '\n';
	fclose(f);
	return n;
}

static int check_max_map_count(const struct bench_opts *o)
{
	long max = read_long_file("/proc/sys/vm/max_map_count");
	long now = count_maps();
	size_t n = 0;
	unsigned int i;

	for (i = 0; i < o->nr_vmas; i++)
		n = o->vmas[i] > n ? o->vmas[i] : n;
	if (max < 0 || now < 0) {
		fprintf(stderr, "uspf bench: cannot read vm.max_map_count or /proc/self/maps; "
			"assuming %zu mappings fit\n", n);
		return 0;
	}
	if ((long)n + now + VMAS_HEADROOM <= max)
		return 0;
	fprintf(stderr, "uspf bench: --vmas %zu needs vm.max_map_count >= %ld (it is %ld, %ld maps in use): "
		"raise it with sysctl -w vm.max_map_count=N or pass a smaller --vmas\n",
		n, (long)n + now + VMAS_HEADROOM, max, now);
	return -E2BIG;
}

static void unmap_all(struct uspf *u, void **addrs, size_t n, size_t pg)
{
	size_t i;
	int ret;

	for (i = 0; i < n; i++) {
		ret = uspf_munmap(u, addrs[i], pg);
		if (ret)
			fprintf(stderr, "uspf bench: uspf_munmap: %s\n", strerror(-ret));
	}
}

static int vmas_map(struct uspf *u, void **addrs, size_t n, size_t pg)
{
	/* A generation each: adjacent mappings must not merge into one VMA. */
	struct uspf_backing b = { .kind = USPF_BACKING_PATTERN };
	size_t i;
	int ret;

	for (i = 0; i < n; i++) {
		b.pattern.generation = i;
		ret = uspf_mmap(u, NULL, pg, PROT_READ | PROT_WRITE,
				MAP_PRIVATE | MAP_ANONYMOUS, &b, &addrs[i]);
		if (ret) {
			fprintf(stderr, "uspf bench: uspf_mmap of mapping %zu of %zu: %s\n",
				i + 1, n, strerror(-ret));
			unmap_all(u, addrs, i, pg);
			return ret;
		}
	}
	return 0;
}

static int vmas_one(const struct bench_opts *o, enum uspf_policy_id policy,
		    size_t n, struct bench_vmas_row *row)
{
	struct uspf_config cfg = o->cfg;
	size_t pg = bench_page_size();
	struct uspf_stats st;
	uint64_t t0, t1, t2;
	struct uspf *u;
	void **addrs;
	int ret;

	addrs = calloc(n, sizeof(*addrs));
	if (!addrs) {
		fprintf(stderr, "uspf bench: vmas n=%zu: %s\n", n, strerror(ENOMEM));
		return -ENOMEM;
	}
	cfg.policy = policy;
	ret = uspf_create(&u, &cfg);
	if (ret) {
		fprintf(stderr, "uspf bench: uspf_create: %s\n", strerror(-ret));
		free(addrs);
		return ret;
	}
	t0 = bench_now_ns();
	ret = vmas_map(u, addrs, n, pg);
	t1 = bench_now_ns();
	if (!ret) {
		row->map_ns = (double)(t1 - t0) / (double)n;
		ret = uspf_stats(u, &st);
		if (ret)
			fprintf(stderr, "uspf bench: uspf_stats: %s\n", strerror(-ret));
		row->model_vmas = ret ? 0 : st.vmas;
		t2 = bench_now_ns();
		unmap_all(u, addrs, n, pg);
		row->unmap_ns = (double)(bench_now_ns() - t2) / (double)n;
	}
	uspf_destroy(u);
	free(addrs);
	row->policy = uspf_policy_name(policy);
	row->n = n;
	return ret;
}

static int run_vmas(struct bench_report *rep)
{
	const struct bench_opts *o = rep->opts;
	struct bench_row *row;
	unsigned int p, i;
	int ret;

	ret = check_max_map_count(o);
	if (ret)
		return ret;
	for (p = 0; p < o->nr_policies; p++) {
		for (i = 0; i < o->nr_vmas; i++) {
			row = bench_report_add(rep, BENCH_ROW_VMAS);
			if (!row)
				return -ENOMEM;
			ret = vmas_one(o, o->policies[p], o->vmas[i], &row->vmas);
			if (ret)
				return ret;
		}
	}
	return 0;
}

/* ---- index ---- */

static int run_index(struct bench_report *rep)
{
	const struct bench_opts *o = rep->opts;
	struct bench_index_result r;
	struct bench_row *row;
	unsigned int i;
	int ret;

	for (i = 0; i < o->nr_index_sizes; i++) {
		memset(&r, 0, sizeof(r));
		ret = bench_index_run(o->index_sizes[i], o->seed, &r);
		if (ret < 0) {
			fprintf(stderr, "uspf bench: index n=%zu: %s\n",
				o->index_sizes[i], strerror(-ret));
			return ret;
		}
		row = bench_report_add(rep, BENCH_ROW_INDEX);
		if (!row)
			return -ENOMEM;
		row->index.n = o->index_sizes[i];
		row->index.insert_ns = r.insert_ns;
		row->index.lookup_ns = r.lookup_ns;
		row->index.erase_ns = r.erase_ns;
	}
	return 0;
}

/*
 * PM QoS (Documentation/power/pm_qos_interface.rst): while the file is
 * open, no CPU enters an idle state slower to leave than `us`.  Every
 * userfaultfd fault is two cross-thread wake-ups; on a guest that halts
 * idle vCPUs each can cost tens of microseconds, which would measure the
 * idle states, not the locking.  cyclictest holds 0 the same way.
 */
static int pm_qos_hold(int us, char *note, size_t len)
{
	int32_t v = us;
	int fd;

	if (us < 0) {
		snprintf(note, len, "not held (--pm-qos off)");
		return -1;
	}
	fd = open("/dev/cpu_dma_latency", O_WRONLY | O_CLOEXEC);
	if (fd < 0 || write(fd, &v, sizeof(v)) != (ssize_t)sizeof(v)) {
		snprintf(note, len, "not held (/dev/cpu_dma_latency: %s)", strerror(errno));
		if (fd >= 0)
			close(fd);
		return -1;
	}
	snprintf(note, len, "held at %d us during the run", us);
	return fd;
}

int cmd_bench(int argc, char **argv)
{
	struct bench_report rep = { 0 };
	struct bench_opts o;
	unsigned int i;
	int ret, qos_fd;

	ret = parse_args(argc, argv, &o);
	if (ret >= 0)
		return ret;
	rep.opts = &o;
	rep.cpus = online_cpus();
	qos_fd = pm_qos_hold(o.pm_qos_us, rep.pm_qos, sizeof(rep.pm_qos));
	ret = 0;
	for (i = 0; i < o.nr_workloads && !ret; i++) {
		switch (o.workloads[i]) {
		case BENCH_PFT:
			ret = run_pft(&rep);
			break;
		case BENCH_VMAS:
			ret = run_vmas(&rep);
			break;
		case BENCH_INDEX:
			ret = run_index(&rep);
			break;
		default:
			ret = run_work(&rep, bench_wl_of(o.workloads[i]));
			break;
		}
	}
	if (!ret) {
		bench_report_ratios(&rep);
		ret = bench_report_print(&rep, stdout);
	}
	if (!ret && o.plot)
		ret = bench_plot_write(&rep);
	bench_report_free(&rep);
	if (qos_fd >= 0)
		close(qos_fd);		/* the request ends with the file */
	return ret ? 1 : 0;
}
