/* SPDX-License-Identifier: MIT */
/*
 * cmd/bench/plot.c - `uspf bench --plot FILE`: faults/sec against faulting
 * threads, one line per policy and per reference, one panel per workload,
 * drawn by gnuplot into FILE, an SVG or a PNG by its extension.
 *
 * gnuplot runs as cmd/gnuplot.c runs it (a child fed down a pipe, a
 * temporary file renamed over FILE once it succeeded).
 *
 * bench_plot_check() runs before the benchmark: a bad extension, a
 * directory that cannot be written or a missing gnuplot is a usage error
 * then, not a surprise after a long run.
 *
 * The y axis is logarithmic: the native reference is an order of magnitude
 * above the userfaultfd rows, and on a log scale equal ratios are equal
 * distances.  The bars are the min-max spread over the iterations.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <spawn.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cmd/bench/bench.h"
#include "cmd/gnuplot.h"

#define PLOT_WIDTH	960
#define PLOT_PANEL	480	/* height of one workload's panel */
#define PLOT_MAX_GROUPS	64	/* workloads, and series in a workload */

int bench_plot_check(const struct bench_opts *o)
{
	if (!o->plot)
		return -1;
	if (o->workload == BENCH_VMAS || o->workload == BENCH_INDEX) {
		fprintf(stderr, "uspf bench: --plot: the %s workload has no faults/sec to plot "
			"(plots are of the fault workloads, e.g. --workload pft)\n",
			o->workload == BENCH_VMAS ? "vmas" : "index");
		return 2;
	}
	return gnuplot_check("bench", o->plot);
}

/* ---- the script ---- */

struct plot_groups {
	const char *names[PLOT_MAX_GROUPS];
	unsigned int n;
};

static unsigned int group_of(struct plot_groups *g, const char *name)
{
	unsigned int i;

	for (i = 0; i < g->n; i++)
		if (!strcmp(g->names[i], name))
			return i;
	if (g->n == PLOT_MAX_GROUPS)
		return PLOT_MAX_GROUPS;
	g->names[g->n] = name;
	return g->n++;
}

static bool is_ref(const char *policy)
{
	return !strcmp(policy, "native") || !strcmp(policy, "naive");
}

/* One data block per (workload, series): threads hmean min max, by threads. */
static void gp_data(FILE *f, const struct bench_report *rep, unsigned int w,
		    const char *workload, unsigned int s, const char *policy)
{
	const struct bench_pft_row *r, *next;
	unsigned int last = 0;
	size_t i;

	fprintf(f, "$w%us%u << EOD\n", w, s);
	for (;;) {
		/* the row with the smallest thread count above the last one */
		next = NULL;
		for (i = 0; i < rep->nr_rows; i++) {
			r = &rep->rows[i].pft;
			if (rep->rows[i].kind != BENCH_ROW_PFT || r->threads <= last ||
			    strcmp(bench_row_workload(r), workload) || strcmp(r->policy, policy))
				continue;
			if (!next || r->threads < next->threads)
				next = r;
		}
		if (!next)
			break;
		fprintf(f, "%u %.1f %.1f %.1f\n", next->threads, next->hmean, next->min, next->max);
		last = next->threads;
	}
	fprintf(f, "EOD\n");
}

static void gp_axes(FILE *f, const struct bench_report *rep)
{
	unsigned int lo = UINT_MAX, hi = 0, t, prev = 0, n = 0;
	size_t i;

	for (i = 0; i < rep->nr_rows; i++) {
		if (rep->rows[i].kind != BENCH_ROW_PFT)
			continue;
		t = rep->rows[i].pft.threads;
		lo = t < lo ? t : lo;
		hi = t > hi ? t : hi;
	}
	fprintf(f, "set logscale x 2\nset xrange [%g:%g]\nset xtics (", lo / 1.3, hi * 1.3);
	/* every thread count measured, ascending */
	for (;;) {
		t = UINT_MAX;
		for (i = 0; i < rep->nr_rows; i++)
			if (rep->rows[i].kind == BENCH_ROW_PFT && rep->rows[i].pft.threads > prev &&
			    rep->rows[i].pft.threads < t)
				t = rep->rows[i].pft.threads;
		if (t == UINT_MAX)
			break;
		fprintf(f, "%s%u", n++ ? ", " : "", t);
		prev = t;
	}
	fprintf(f, ")\nset logscale y 10\nset format y '%%.0s%%c'\n"
		"set grid xtics ytics mytics\nset key outside right top vertical\n"
		"set xlabel 'faulting threads'\n");
	if (rep->opts->iterations > 1)
		fprintf(f, "set ylabel 'faults/sec (Hmean; bars: min-max of %u iterations)'\n",
			rep->opts->iterations);
	else
		fprintf(f, "set ylabel 'faults/sec'\n");
}

/*
 * native dashed black, naive dash-dotted grey, the policies solid, each in
 * its own colour and point type, the same in every panel.
 */
static void gp_style(FILE *f, const char *policy, unsigned int nth_policy)
{
	static const char *const colours[] = {
		"#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd",
		"#8c564b", "#e377c2", "#17becf", "#7f7f00",
	};

	if (!strcmp(policy, "native"))
		fprintf(f, " lw 2 dt 2 pt 1 lc rgb 'black'");
	else if (!strcmp(policy, "naive"))
		fprintf(f, " lw 2 dt 4 pt 2 lc rgb 'gray40'");
	else
		fprintf(f, " lw 2 dt 1 pt %u lc rgb '%s'", 4 + nth_policy,
			colours[nth_policy % (sizeof(colours) / sizeof(colours[0]))]);
}

static int gp_script(FILE *f, const struct bench_report *rep, bool svg, const char *output)
{
	struct plot_groups workloads = { 0 }, policies = { 0 }, series[PLOT_MAX_GROUPS];
	const struct bench_pft_row *r;
	unsigned int w, s;
	size_t i;

	memset(series, 0, sizeof(series));
	for (i = 0; i < rep->nr_rows; i++) {
		if (rep->rows[i].kind != BENCH_ROW_PFT)
			continue;
		r = &rep->rows[i].pft;
		w = group_of(&workloads, bench_row_workload(r));
		if (w == PLOT_MAX_GROUPS)
			continue;
		group_of(&series[w], r->policy);
		if (!is_ref(r->policy))
			group_of(&policies, r->policy);
	}
	if (!workloads.n)
		return -ENODATA;
	gnuplot_terminal(f, svg, PLOT_WIDTH, PLOT_PANEL * workloads.n);
	fprintf(f, "set output ");
	gnuplot_str(f, output);
	fprintf(f, "\n");
	for (w = 0; w < workloads.n; w++)
		for (s = 0; s < series[w].n; s++)
			gp_data(f, rep, w, workloads.names[w], s, series[w].names[s]);
	gp_axes(f, rep);
	if (workloads.n > 1)
		fprintf(f, "set multiplot layout %u,1 title 'uspf %s bench: faults/sec vs threads, "
			"%u CPUs'\n", workloads.n, PACKAGE_VERSION, rep->cpus);
	for (w = 0; w < workloads.n; w++) {
		fprintf(f, "set title ");
		if (workloads.n > 1)
			gnuplot_str(f, workloads.names[w]);
		else
			fprintf(f, "'uspf %s bench %s: faults/sec vs threads, %u CPUs'",
				PACKAGE_VERSION, workloads.names[w], rep->cpus);
		fprintf(f, "\nplot");
		for (s = 0; s < series[w].n; s++) {
			fprintf(f, "%s $w%us%u using 1:2:3:4 with yerrorlines", s ? ", \\\n    " : "",
				w, s);
			gp_style(f, series[w].names[s], group_of(&policies, series[w].names[s]));
			fprintf(f, " title ");
			gnuplot_str(f, series[w].names[s]);
		}
		fprintf(f, "\n");
	}
	if (workloads.n > 1)
		fprintf(f, "unset multiplot\n");
	fprintf(f, "unset output\n");
	return 0;
}

static int bench_script(FILE *f, bool svg, const char *output, const void *arg)
{
	return gp_script(f, arg, svg, output);
}

int bench_plot_write(const struct bench_report *rep)
{
	return gnuplot_draw("bench", rep->opts->plot, bench_script, rep, "no faults/sec rows to plot");
}
