/* SPDX-License-Identifier: MIT */
/*
 * bench.c - `uspf bench`: option parsing, the run loop, and the two small
 * workloads that need no fault path (vmas, index).
 *
 * pft (the default) runs, for every thread count: the native reference,
 * the naive reference, then each selected policy, each --iterations times,
 * and prints one row per (policy, threads) with ratios to the references
 * at the same thread count.
 *
 * vmas maps N one-page regions through uspf_mmap() and unmaps them all,
 * reporting ns per operation for each N: a flat per-op cost shows the VMA
 * index has no quadratic term.  index times the VMA index alone
 * (bench_index_run(), src/bench_index.c).
 */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "bench.h"
#include "cli.h"
#include "bench_index.h"

#define VMAS_HEADROOM	1024	/* mappings left for the runtime and libc */

enum {
	OPT_WORKLOAD = 256,
	OPT_POLICY,
	OPT_THREADS,
	OPT_SIZE,
	OPT_ITERATIONS,
	OPT_HANDLERS,
	OPT_INTAKE,
	OPT_FAULT_AROUND,
	OPT_FORMAT,
	OPT_NO_REFERENCES,
	OPT_VMAS,
	OPT_INDEX_SIZES,
	OPT_SEED,
	OPT_PLOT,
};

static const struct option long_options[] = {
	{ "workload",		required_argument,	NULL, OPT_WORKLOAD },
	{ "policy",		required_argument,	NULL, OPT_POLICY },
	{ "threads",		required_argument,	NULL, OPT_THREADS },
	{ "size",		required_argument,	NULL, OPT_SIZE },
	{ "iterations",		required_argument,	NULL, OPT_ITERATIONS },
	{ "handlers",		required_argument,	NULL, OPT_HANDLERS },
	{ "intake",		required_argument,	NULL, OPT_INTAKE },
	{ "fault-around",	required_argument,	NULL, OPT_FAULT_AROUND },
	{ "format",		required_argument,	NULL, OPT_FORMAT },
	{ "no-references",	no_argument,		NULL, OPT_NO_REFERENCES },
	{ "vmas",		required_argument,	NULL, OPT_VMAS },
	{ "index-sizes",	required_argument,	NULL, OPT_INDEX_SIZES },
	{ "seed",		required_argument,	NULL, OPT_SEED },
	{ "plot",		required_argument,	NULL, OPT_PLOT },
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
"  --workload pft|vmas|index   pft (default): mmtests pft, one region, one slice\n"
"                              per thread; vmas: map/unmap N one-page regions;\n"
"                              index: the VMA index alone\n"
"  --policy LIST               comma list of policies, or 'all' (default all:");
	for (unsigned int p = 0; p < USPF_NR_POLICIES; p++)
		fprintf(out, " %s", uspf_policy_name((enum uspf_policy_id)p));
	fprintf(out, ")\n"
"  --threads LIST              comma list of faulting thread counts (default 1,CPUs)\n"
"  --size BYTES                pft region size, K/M/G suffixes (default 64M)\n"
"  --iterations N              runs per row; Hmean, min-max, stddev and CoV over\n"
"                              them (default 3)\n"
"  --handlers N                uspf handler threads (0: online CPUs)\n"
"  --intake uring|poll|busy    how uspf handlers read fault messages\n"
"  --fault-around N            pages uspf resolves per fault (1 = off)\n"
"  --format table|json|csv     output format (default table); json and csv\n"
"                              give every counter (csv: see uspf(1), OUTPUT)\n"
"  --plot FILE                 also draw faults/sec vs threads, one line per\n"
"                              policy and reference, into FILE, an SVG or PNG\n"
"                              (.svg or .png), with gnuplot (gnuplot-nox)\n"
"  --no-references             skip the native and naive references\n"
"  --vmas LIST                 N for --workload vmas (default 1000,10000,50000)\n"
"  --index-sizes LIST          n for --workload index (default 1000,10000,100000)\n"
"  --seed N                    seed for --workload index (default 1)\n"
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
	unsigned int i, cpus = online_cpus();

	memset(o, 0, sizeof(*o));
	o->workload = BENCH_PFT;
	for (i = 0; i < USPF_NR_POLICIES; i++)
		o->policies[i] = (enum uspf_policy_id)i;
	o->nr_policies = USPF_NR_POLICIES;
	o->threads[o->nr_threads++] = 1;
	if (cpus > 1)
		o->threads[o->nr_threads++] = cpus > BENCH_MAX_THREADS ? BENCH_MAX_THREADS : cpus;
	o->size = 64UL << 20;
	o->iterations = 3;
	uspf_config_init(&o->cfg);
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
	unsigned long long v;
	enum uspf_intake intake;

	switch (opt) {
	case OPT_HANDLERS:
		if (parse_ull(val, 0, 1000000, &v))
			return bad_value("--handlers", val, "a number of threads, 0 for online CPUs");
		o->cfg.handlers = (unsigned int)v;
		return check_config(o, "--handlers", val);
	case OPT_INTAKE:
		if (uspf_intake_from_name(val, &intake))
			return bad_value("--intake", val, "uring, poll or busy");
		o->cfg.intake = intake;
		return check_config(o, "--intake", val);
	case OPT_FAULT_AROUND:
		if (parse_ull(val, 0, 1000000, &v))
			return bad_value("--fault-around", val, "a number of pages, 1 for off");
		o->cfg.fault_around = (unsigned int)v;
		return check_config(o, "--fault-around", val);
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
		if (!strcmp(val, "pft"))
			o->workload = BENCH_PFT;
		else if (!strcmp(val, "vmas"))
			o->workload = BENCH_VMAS;
		else if (!strcmp(val, "index"))
			o->workload = BENCH_INDEX;
		else
			return bad_value("--workload", val, "pft, vmas or index");
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
			return bad_value("--size", val,
					 "bytes with an optional K, M or G suffix, a positive multiple of the page size, at most 1T");
		return 0;
	case OPT_ITERATIONS:
		if (parse_ull(val, 1, 1000, &v))
			return bad_value("--iterations", val, "an integer 1..1000");
		o->iterations = (unsigned int)v;
		return 0;
	case OPT_HANDLERS:
	case OPT_INTAKE:
	case OPT_FAULT_AROUND:
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
	case OPT_PLOT:
		o->plot = val;		/* checked by bench_plot_check() */
		return 0;
	}
	return 2;
}

static int check_pages_per_thread(const struct bench_opts *o)
{
	unsigned int i, max = 0;

	for (i = 0; i < o->nr_threads; i++)
		max = o->threads[i] > max ? o->threads[i] : max;
	if (o->workload != BENCH_PFT || o->size / bench_page_size() >= max)
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

static void progress(const char *what, unsigned int threads)
{
	bench_progress_row("pft", what, threads);
}

static void progress_done(void)
{
	bench_progress_end();
}

static int run_pft_threads(struct bench_report *rep, unsigned int threads)
{
	const struct bench_opts *o = rep->opts;
	struct bench_row *row;
	unsigned int i;
	int ret;

	if (o->references) {
		progress("native", threads);
		row = bench_report_add(rep, BENCH_ROW_PFT);
		if (!row)
			return -ENOMEM;
		ret = bench_native_run(o, threads, &row->pft);
		if (ret)
			return ret;
		progress("naive", threads);
		row = bench_report_add(rep, BENCH_ROW_PFT);
		if (!row)
			return -ENOMEM;
		ret = bench_naive_run(o, threads, &row->pft);
		if (ret)
			return ret;
	}
	for (i = 0; i < o->nr_policies; i++) {
		progress(uspf_policy_name(o->policies[i]), threads);
		row = bench_report_add(rep, BENCH_ROW_PFT);
		if (!row)
			return -ENOMEM;
		ret = bench_pft_run(o, o->policies[i], threads, &row->pft);
		if (ret)
			return ret;
	}
	return 0;
}

static int run_pft(struct bench_report *rep)
{
	const struct bench_opts *o = rep->opts;
	unsigned int i;
	int ret = 0;

	bench_progress_start(o->nr_threads * (o->nr_policies + (o->references ? 2 : 0)));
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

int cmd_bench(int argc, char **argv)
{
	struct bench_report rep = { 0 };
	struct bench_opts o;
	int ret;

	ret = parse_args(argc, argv, &o);
	if (ret >= 0)
		return ret;
	rep.opts = &o;
	rep.cpus = online_cpus();
	switch (o.workload) {
	case BENCH_PFT:
		ret = run_pft(&rep);
		break;
	case BENCH_VMAS:
		ret = run_vmas(&rep);
		break;
	case BENCH_INDEX:
		ret = run_index(&rep);
		break;
	}
	if (!ret)
		ret = bench_report_print(&rep, stdout);
	if (!ret && o.plot)
		ret = bench_plot_write(&rep);
	bench_report_free(&rep);
	return ret ? 1 : 0;
}
