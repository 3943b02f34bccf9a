/* SPDX-License-Identifier: MIT */
/*
 * cmd/bench/plot.c - `uspf bench --plot FILE`: faults/sec against faulting
 * threads, one line per policy and per reference, one panel per workload,
 * drawn by gnuplot into FILE, an SVG or a PNG by its extension.
 *
 * gnuplot (the Debian package gnuplot-nox) runs as a child process; the
 * script and the data (gnuplot 5 data blocks) go down a pipe to its stdin,
 * and its stdout goes to our stderr so that the results on stdout stay
 * clean.  It draws into a temporary file next to FILE, renamed over FILE
 * once gnuplot has succeeded, so a failed plot leaves no truncated file.
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
#include "cmd/cli.h"

extern char **environ;

#define GNUPLOT_PACKAGE	"gnuplot-nox"
#define PLOT_WIDTH	960
#define PLOT_PANEL	480	/* height of one workload's panel */
#define PLOT_MAX_GROUPS	64	/* workloads, and series in a workload */

enum plot_kind { PLOT_SVG, PLOT_PNG };

static int plot_kind(const char *path, enum plot_kind *kind)
{
	size_t len = strlen(path);
	const char *base = strrchr(path, '/');

	base = base ? base + 1 : path;
	if (len < 4 || strlen(base) <= 4)
		return -EINVAL;
	if (!strcasecmp(path + len - 4, ".svg"))
		*kind = PLOT_SVG;
	else if (!strcasecmp(path + len - 4, ".png"))
		*kind = PLOT_PNG;
	else
		return -EINVAL;
	return 0;
}

/* The first executable `gnuplot` in $PATH, as exec would find it. */
static int find_gnuplot(char *buf, size_t len)
{
	const char *path = getenv("PATH"), *p, *end;
	size_t n;

	if (!path || !*path)
		path = "/usr/local/bin:/usr/bin:/bin";
	for (p = path; ; p = end + 1) {
		end = strchrnul(p, ':');
		n = (size_t)(end - p);
		if (n == 0)
			snprintf(buf, len, "./gnuplot");
		else if ((size_t)snprintf(buf, len, "%.*s/gnuplot", (int)n, p) >= len)
			buf[0] = '\0';
		if (buf[0] && !access(buf, X_OK))
			return 0;
		if (!*end)
			return -ENOENT;
	}
}

int bench_plot_check(const struct bench_opts *o)
{
	char dir[PATH_MAX], gnuplot[PATH_MAX];
	enum plot_kind kind;
	const char *slash;
	struct stat st;

	if (!o->plot)
		return -1;
	if (plot_kind(o->plot, &kind))
		return cli_bad_value("bench", "--plot", o->plot,
				     "a file name ending in .svg or .png");
	if (o->workload == BENCH_VMAS || o->workload == BENCH_INDEX) {
		fprintf(stderr, "uspf bench: --plot: the %s workload has no faults/sec to plot "
			"(plots are of the fault workloads, e.g. --workload pft)\n",
			o->workload == BENCH_VMAS ? "vmas" : "index");
		return 2;
	}
	slash = strrchr(o->plot, '/');
	if (!slash)
		snprintf(dir, sizeof(dir), ".");
	else if (slash == o->plot)
		snprintf(dir, sizeof(dir), "/");
	else
		snprintf(dir, sizeof(dir), "%.*s", (int)(slash - o->plot), o->plot);
	if (access(dir, W_OK | X_OK)) {
		fprintf(stderr, "uspf bench: --plot '%s': cannot write in the directory '%s': %s\n",
			o->plot, dir, strerror(errno));
		return 2;
	}
	if (!stat(o->plot, &st) && (S_ISDIR(st.st_mode) || access(o->plot, W_OK))) {
		fprintf(stderr, "uspf bench: --plot '%s': %s\n", o->plot,
			S_ISDIR(st.st_mode) ? "is a directory" : strerror(errno));
		return 2;
	}
	if (find_gnuplot(gnuplot, sizeof(gnuplot))) {
		fprintf(stderr, "uspf bench: --plot needs gnuplot, which is not in PATH "
			"(install the Debian package " GNUPLOT_PACKAGE ")\n");
		return 2;
	}
	return -1;
}

/* ---- the script ---- */

/* A gnuplot single-quoted string: ' is written twice. */
static void gp_str(FILE *f, const char *s)
{
	fputc('\'', f);
	for (; *s; s++) {
		if (*s == '\'')
			fputc('\'', f);
		fputc(*s, f);
	}
	fputc('\'', f);
}

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

static void gp_terminal(FILE *f, enum plot_kind kind, unsigned int height)
{
	if (kind == PLOT_SVG) {
		fprintf(f, "set terminal svg size %u,%u noenhanced font 'Sans,11' "
			"background rgb 'white'\n", PLOT_WIDTH, height);
		return;
	}
	/* gnuplot-nox has pngcairo; the gd png terminal is the fallback */
	fprintf(f, "if (strstrt(GPVAL_TERMINALS, 'pngcairo') > 0) {\n"
		"  set terminal pngcairo size %u,%u noenhanced font 'Sans,10' background rgb 'white'\n"
		"} else {\n"
		"  set terminal png size %u,%u noenhanced background rgb 'white'\n"
		"}\n", PLOT_WIDTH, height, PLOT_WIDTH, height);
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

static int gp_script(FILE *f, const struct bench_report *rep, enum plot_kind kind,
		     const char *output)
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
	gp_terminal(f, kind, PLOT_PANEL * workloads.n);
	fprintf(f, "set output ");
	gp_str(f, output);
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
			gp_str(f, workloads.names[w]);
		else
			fprintf(f, "'uspf %s bench %s: faults/sec vs threads, %u CPUs'",
				PACKAGE_VERSION, workloads.names[w], rep->cpus);
		fprintf(f, "\nplot");
		for (s = 0; s < series[w].n; s++) {
			fprintf(f, "%s $w%us%u using 1:2:3:4 with yerrorlines", s ? ", \\\n    " : "",
				w, s);
			gp_style(f, series[w].names[s], group_of(&policies, series[w].names[s]));
			fprintf(f, " title ");
			gp_str(f, series[w].names[s]);
		}
		fprintf(f, "\n");
	}
	if (workloads.n > 1)
		fprintf(f, "unset multiplot\n");
	fprintf(f, "unset output\n");
	return 0;
}

/* ---- running gnuplot ---- */

static int write_all(int fd, const char *buf, size_t len)
{
	ssize_t n;

	while (len) {
		n = write(fd, buf, len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		buf += n;
		len -= (size_t)n;
	}
	return 0;
}

static int run_gnuplot(const char *gnuplot, const char *script, size_t len)
{
	struct sigaction ign = { .sa_handler = SIG_IGN }, old;
	posix_spawn_file_actions_t fa;
	char *argv[] = { "gnuplot", NULL };
	int fds[2], ret, ret2, status;
	pid_t pid;

	if (pipe2(fds, O_CLOEXEC))
		return -errno;
	ret = -posix_spawn_file_actions_init(&fa);
	if (!ret)
		ret = -posix_spawn_file_actions_adddup2(&fa, fds[0], STDIN_FILENO);
	if (!ret)
		ret = -posix_spawn_file_actions_adddup2(&fa, STDERR_FILENO, STDOUT_FILENO);
	if (!ret)
		ret = -posix_spawn(&pid, gnuplot, &fa, NULL, argv, environ);
	posix_spawn_file_actions_destroy(&fa);
	close(fds[0]);
	if (ret) {
		close(fds[1]);
		fprintf(stderr, "uspf bench: --plot: running %s: %s\n", gnuplot, strerror(-ret));
		return ret;
	}
	/* gnuplot may stop reading early: a write error, not a SIGPIPE */
	sigaction(SIGPIPE, &ign, &old);
	ret = write_all(fds[1], script, len);
	close(fds[1]);
	sigaction(SIGPIPE, &old, NULL);
	while ((ret2 = (int)waitpid(pid, &status, 0)) < 0 && errno == EINTR)
		;
	if (ret2 < 0) {
		fprintf(stderr, "uspf bench: --plot: waiting for gnuplot: %s\n", strerror(errno));
		return -ECHILD;
	}
	if (WIFEXITED(status) && WEXITSTATUS(status) == 0 && !ret)
		return 0;
	if (WIFSIGNALED(status))
		fprintf(stderr, "uspf bench: --plot: gnuplot was killed by signal %d\n",
			WTERMSIG(status));
	else if (!WIFEXITED(status) || WEXITSTATUS(status))
		fprintf(stderr, "uspf bench: --plot: gnuplot exited with status %d\n",
			WEXITSTATUS(status));
	else
		fprintf(stderr, "uspf bench: --plot: writing to gnuplot: %s\n", strerror(-ret));
	return -EIO;
}

int bench_plot_write(const struct bench_report *rep)
{
	const char *path = rep->opts->plot;
	char gnuplot[PATH_MAX], tmp[PATH_MAX];
	enum plot_kind kind;
	char *script = NULL;
	size_t len = 0;
	struct stat st;
	FILE *f;
	int ret;

	if (plot_kind(path, &kind))
		return -EINVAL;		/* bench_plot_check() said so already */
	if (find_gnuplot(gnuplot, sizeof(gnuplot))) {
		fprintf(stderr, "uspf bench: --plot needs gnuplot, which is not in PATH "
			"(install the Debian package " GNUPLOT_PACKAGE ")\n");
		return -ENOENT;
	}
	/* the same extension: gnuplot is told the terminal, but a reader is not */
	if ((size_t)snprintf(tmp, sizeof(tmp), "%.*s.tmp%ld%s", (int)(strlen(path) - 4), path,
			     (long)getpid(), path + strlen(path) - 4) >= sizeof(tmp)) {
		fprintf(stderr, "uspf bench: --plot '%s': %s\n", path, strerror(ENAMETOOLONG));
		return -ENAMETOOLONG;
	}
	f = open_memstream(&script, &len);
	if (!f) {
		fprintf(stderr, "uspf bench: --plot: %s\n", strerror(errno));
		return -ENOMEM;
	}
	ret = gp_script(f, rep, kind, tmp);
	if (fclose(f) && !ret)
		ret = -ENOMEM;
	if (ret) {
		fprintf(stderr, "uspf bench: --plot: %s\n",
			ret == -ENODATA ? "no faults/sec rows to plot" : strerror(-ret));
		free(script);
		return ret;
	}
	ret = run_gnuplot(gnuplot, script, len);
	free(script);
	if (!ret && (stat(tmp, &st) || st.st_size == 0)) {
		fprintf(stderr, "uspf bench: --plot: gnuplot left no plot in %s\n", tmp);
		ret = -EIO;
	}
	if (!ret && rename(tmp, path)) {
		ret = -errno;
		fprintf(stderr, "uspf bench: --plot: renaming %s to %s: %s\n", tmp, path,
			strerror(-ret));
	}
	if (ret)
		unlink(tmp);
	return ret;
}
