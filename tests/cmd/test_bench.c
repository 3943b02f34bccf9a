/* SPDX-License-Identifier: MIT */
/*
 * test_bench.c - the pure logic of `uspf bench` and `uspf torture`: the
 * mmtests arithmetic (Hmean, spread, stddev, CoV), the latency histogram's
 * percentiles, the CSV report's columns and ratios, and the option checks
 * (a bad value is exit status 2 before anything runs).  The end-to-end runs are bench-smoke.sh and test_torture.
 */
#include <criterion/criterion.h>
#include <math.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cmd/bench/bench.h"
#include "cmd/torture.h"

TestSuite(bench_logic, .timeout = 30);

#define NEAR(a, b) (fabs((double)(a) - (double)(b)) < 1e-6 * (fabs((double)(b)) + 1))

/* Rates 100, 200, 400: Hmean 3 / (1/100 + 1/200 + 1/400) = 171.43. */
Test(bench_logic, rates_fold_is_mmtests_hmean_and_spread)
{
	const double rates[] = { 200, 100, 400 };
	struct bench_pft_row row;
	double mean = 700.0 / 3, sd;

	memset(&row, 0, sizeof(row));
	bench_rates_fold(rates, 3, &row);
	cr_assert(NEAR(row.hmean, 3.0 / (1.0 / 100 + 1.0 / 200 + 1.0 / 400)), "hmean %f", row.hmean);
	cr_assert(NEAR(row.min, 100) && NEAR(row.max, 400));
	sd = sqrt(((200 - mean) * (200 - mean) + (100 - mean) * (100 - mean) +
		   (400 - mean) * (400 - mean)) / 2);	/* sample stddev: n - 1 */
	cr_assert(NEAR(row.stddev, sd), "stddev %f, expected %f", row.stddev, sd);
	cr_assert(NEAR(row.cov_pct, sd / mean * 100), "cov %f", row.cov_pct);
}

Test(bench_logic, one_iteration_has_no_spread)
{
	const double rates[] = { 1234.5 };
	struct bench_pft_row row;

	memset(&row, 0, sizeof(row));
	bench_rates_fold(rates, 1, &row);
	cr_assert(NEAR(row.hmean, 1234.5) && NEAR(row.min, 1234.5) && NEAR(row.max, 1234.5));
	cr_assert_eq(row.stddev, 0);
	cr_assert_eq(row.cov_pct, 0);
}

/* The histogram: exact below 8 ns, then 8 buckets per power of two (within 1/8). */
Test(bench_logic, histogram_percentiles)
{
	struct bench_hist h;
	uint64_t p50, p99;
	unsigned int i;

	memset(&h, 0, sizeof(h));
	cr_assert_eq(bench_hist_percentile(&h, 50), 0, "an empty histogram reads 0");
	for (i = 0; i < 99; i++)
		bench_hist_add(&h, 1000);
	bench_hist_add(&h, 1000000);
	cr_assert_eq(h.count, 100);
	cr_assert_eq(h.max, 1000000);
	p50 = bench_hist_percentile(&h, 50);
	p99 = bench_hist_percentile(&h, 99);
	cr_assert(p50 >= 1000 - 1000 / 8 && p50 <= 1000 + 1000 / 8, "p50 %llu", (unsigned long long)p50);
	cr_assert_eq(p99, p50, "99 of 100 samples are 1000 ns: p99 %llu", (unsigned long long)p99);
	p99 = bench_hist_percentile(&h, 100);
	cr_assert(p99 >= 1000000 - 1000000 / 8 && p99 <= 1000000 + 1000000 / 8,
		  "p100 %llu", (unsigned long long)p99);
	memset(&h, 0, sizeof(h));
	bench_hist_add(&h, 5);
	cr_assert_eq(bench_hist_percentile(&h, 50), 5, "exact below 8 ns");
}

/* A bad option is one line and exit status 2, before anything is measured. */
static int run_cmd(int (*cmd)(int, char **), const char *const *args)
{
	char *argv[16];
	int argc = 0, ret, saved;

	while (args[argc] && argc < 15) {
		argv[argc] = (char *)args[argc];
		argc++;
	}
	argv[argc] = NULL;
	saved = dup(STDERR_FILENO);	/* the one line goes to /dev/null here */
	cr_assert(freopen("/dev/null", "w", stderr));
	ret = cmd(argc, argv);
	fflush(stderr);
	dup2(saved, STDERR_FILENO);
	close(saved);
	return ret;
}

Test(bench_logic, bench_refuses_bad_options)
{
	static const char *const bad[][4] = {
		{ "bench", "--iterations", "0", NULL },
		{ "bench", "--threads", "x", NULL },
		{ "bench", "--policy", "nope", NULL },
		{ "bench", "--workload", "nope", NULL },
		{ "bench", "--format", "yaml", NULL },
		{ "bench", "--no-such-flag", NULL, NULL },
	};
	unsigned int i;

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		cr_assert_eq(run_cmd(cmd_bench, bad[i]), 2, "uspf %s %s %s", bad[i][0], bad[i][1],
			     bad[i][2] ? bad[i][2] : "");
}

Test(bench_logic, torture_refuses_bad_options)
{
	static const char *const bad[][4] = {
		{ "torture", "--seconds", "-1", NULL },
		{ "torture", "--policy", "nope", NULL },
		{ "torture", "--inject", "nope", NULL },
		{ "torture", "--no-such-flag", NULL, NULL },
	};
	unsigned int i;

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		cr_assert_eq(run_cmd(cmd_torture, bad[i]), 2, "uspf %s %s %s", bad[i][0], bad[i][1],
			     bad[i][2] ? bad[i][2] : "");
}

/*
 * The report's columns: a pft report of two rows (spf and the native
 * reference at the same thread count) as CSV - mmtests' columns in order,
 * one field per column on every line, and the ratio to native computed
 * from the two Hmeans.
 */
static int column(const char *header, const char *name)
{
	char buf[4096], *tok, *save;
	int i = 0;

	snprintf(buf, sizeof(buf), "%s", header);
	for (tok = strtok_r(buf, ",\n", &save); tok; tok = strtok_r(NULL, ",\n", &save), i++)
		if (!strcmp(tok, name))
			return i;
	return -1;
}

static const char *field(const char *line, int idx, char *out, size_t len)
{
	const char *p = line, *e;
	int i;

	for (i = 0; i < idx && p; i++) {
		p = strchr(p, ',');
		if (p)
			p++;
	}
	if (!p)
		return NULL;
	e = p + strcspn(p, ",\n");
	snprintf(out, len, "%.*s", (int)(e - p), p);
	return out;
}

Test(bench_logic, csv_report_columns_and_ratios)
{
	static const char *const want[] = { "workload", "policy", "variant", "threads", "handlers",
					    "intake", "spin_us", "user_mode_only", "iterations", "ops_name",
					    "ops_per_sec", "faults", "faults_per_sec" };
	struct bench_opts opts;
	struct bench_report rep;
	struct bench_row *row;
	char *buf = NULL, *lines[3], *nl, val[64];
	size_t len = 0, i;
	FILE *out;
	int n, commas[3];

	memset(&opts, 0, sizeof(opts));
	opts.workload = BENCH_PFT;
	opts.format = BENCH_CSV;
	opts.iterations = 3;
	memset(&rep, 0, sizeof(rep));
	rep.opts = &opts;
	rep.cpus = 2;
	row = bench_report_add(&rep, BENCH_ROW_PFT);
	cr_assert_not_null(row);
	row->pft.policy = "spf";
	row->pft.threads = 2;
	row->pft.handlers = 2;
	row->pft.intake = "uring";
	row->pft.faults = 4096;
	row->pft.hmean = 50000;
	row = bench_report_add(&rep, BENCH_ROW_PFT);
	row->pft.policy = "native";
	row->pft.threads = 2;
	row->pft.faults = 4096;
	row->pft.hmean = 200000;
	bench_report_ratios(&rep);
	cr_assert(NEAR(rep.rows[0].pft.ratio_native, 0.25), "ratio %f", rep.rows[0].pft.ratio_native);
	cr_assert(isnan(rep.rows[1].pft.ratio_native) || NEAR(rep.rows[1].pft.ratio_native, 1));

	out = open_memstream(&buf, &len);
	cr_assert_not_null(out);
	cr_assert_eq(bench_report_print(&rep, out), 0);
	fclose(out);
	/* Header, then one line per row. */
	for (i = 0, nl = buf; i < 3; i++) {
		lines[i] = nl;
		cr_assert_not_null(nl = strchr(nl, '\n'), "line %zu missing:\n%s", i, buf);
		nl++;
		commas[i] = 0;
		for (char *c = lines[i]; c < nl; c++)
			commas[i] += *c == ',';
	}
	cr_assert_eq(commas[1], commas[0], "row 1 has another column count:\n%s", buf);
	cr_assert_eq(commas[2], commas[0], "row 2 has another column count:\n%s", buf);
	for (i = 0; i < sizeof(want) / sizeof(want[0]); i++)
		cr_assert_eq(column(lines[0], want[i]), (int)i, "column %zu is not %s:\n%s", i,
			     want[i], lines[0]);
	n = column(lines[0], "ratio_native");
	cr_assert_geq(n, 0, "no ratio_native column:\n%s", lines[0]);
	cr_assert_not_null(field(lines[1], n, val, sizeof(val)));
	cr_assert(NEAR(strtod(val, NULL), 0.25), "spf's ratio_native field '%s'", val);
	cr_assert_not_null(field(lines[1], column(lines[0], "policy"), val, sizeof(val)));
	cr_assert_str_eq(val, "spf");
	free(buf);
	bench_report_free(&rep);
}

/* A THP sysfs tree of our own: the top "enabled" and the named sizes' files. */
static void thp_tree(char *dir, const char *top, const char *const sizes[][2])
{
	char path[512];
	FILE *f;
	size_t i;

	snprintf(path, sizeof(path), "%s/enabled", dir);
	cr_assert_not_null(f = fopen(path, "w"));
	fprintf(f, "%s\n", top);
	fclose(f);
	for (i = 0; sizes[i][0]; i++) {
		snprintf(path, sizeof(path), "%s/hugepages-%skB", dir, sizes[i][0]);
		mkdir(path, 0755);
		strcat(path, "/enabled");
		cr_assert_not_null(f = fopen(path, "w"));
		fprintf(f, "%s\n", sizes[i][1]);
		fclose(f);
	}
}

/*
 * The native row at the uspf folio size runs only where the kernel would
 * fault an MADV_HUGEPAGE region in folios of exactly that size: the size
 * on (always, madvise, or inherit from a top level that is), no larger one.
 */
Test(bench_logic, native_folio_row_only_where_the_host_offers_that_size)
{
	static const char *const never[][2] = {
		{ "64", "always inherit madvise [never]" },
		{ "2048", "always [inherit] madvise never" }, { NULL, NULL } };
	static const char *const on64[][2] = {
		{ "64", "always inherit [madvise] never" },
		{ "2048", "always inherit madvise [never]" }, { NULL, NULL } };
	static const char *const inherit64[][2] = {
		{ "64", "always [inherit] madvise never" },
		{ "128", "always inherit madvise [never]" },
		{ "2048", "always inherit madvise [never]" }, { NULL, NULL } };
	static const char *const larger[][2] = {
		{ "64", "[always] inherit madvise never" },
		{ "2048", "always [inherit] madvise never" }, { NULL, NULL } };
	char dir[] = "/tmp/uspf-thp.XXXXXX", why[160], cmd[64];

	cr_assert_not_null(mkdtemp(dir));
	thp_tree(dir, "always [madvise] never", never);
	cr_assert_not(bench_folios_offered_in(dir, 16, why, sizeof(why)));
	cr_assert(strstr(why, "hugepages-64kB/enabled: never"), "%s", why);
	cr_assert_not(bench_folios_offered_in(dir, 8, why, sizeof(why)));
	cr_assert(strstr(why, "hugepages-32kB/enabled: absent"), "%s", why);
	thp_tree(dir, "always [madvise] never", on64);
	cr_assert(bench_folios_offered_in(dir, 16, why, sizeof(why)), "%s", why);
	thp_tree(dir, "always [madvise] never", inherit64);
	cr_assert(bench_folios_offered_in(dir, 16, why, sizeof(why)), "%s", why);
	thp_tree(dir, "always madvise [never]", inherit64);
	cr_assert_not(bench_folios_offered_in(dir, 16, why, sizeof(why)));
	thp_tree(dir, "always [madvise] never", larger);
	cr_assert_not(bench_folios_offered_in(dir, 16, why, sizeof(why)));
	cr_assert(strstr(why, "larger size is on too (hugepages-2048kB/enabled: madvise)"), "%s", why);
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	cr_assert_eq(system(cmd), 0);
}
