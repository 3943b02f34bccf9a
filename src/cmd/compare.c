/* SPDX-License-Identifier: MIT */
/*
 * cmd/compare.c - `uspf compare [options] -- PROGRAM ARGS...`: the user's
 * own program natively and under each policy, side by side.
 *
 * Every repeat runs the program once natively (no preload) and once under
 * each policy (`uspf run`, this binary, with the same options), in that
 * order, so that drift on a shared machine hits every row alike; same
 * environment, working directory and standard input each time.  The
 * native run of the first repeat is the reference: every other run must
 * end the same way and write the same standard output (or, with
 * --output-digest, the same named files), else its row fails, says which
 * run differed and where, and the command exits 1.
 *
 * A run's figures: its wall time (fork to exit), its peak RSS (the largest
 * of its processes', wait4()'s ru_maxrss), and, for uspf runs, the stats
 * lines its processes appended to a file of the run's own (USPF_STATS):
 * counters and handling-time histograms summed over the processes, the
 * number of processes, the round trips the probe timed.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <limits.h>
#include <math.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "uspf.h"
#include "cmd/cli.h"
#include "cmd/compare.h"
#include "cmd/gnuplot.h"
#include "preload/env.h"

#define MAX_ROWS	(USPF_NR_POLICIES + 1)
#define MAX_REPEAT	1000
#define MAX_DIGESTS	16
#define MAX_RUN_OPTS	32

enum cmp_format { CMP_TABLE, CMP_JSON, CMP_CSV };

struct cmp_opts {
	enum uspf_policy_id policies[USPF_NR_POLICIES];
	unsigned int nr_policies;
	unsigned int repeat;
	const char *stdin_path;
	const char *digests[MAX_DIGESTS];
	unsigned int nr_digests;
	enum cmp_format format;
	const char *plot;
	bool quiet;
	char *run_opts[MAX_RUN_OPTS];	/* passed to every `uspf run` */
	unsigned int nr_run_opts;
	char **argv;			/* PROGRAM ARGS... */
};

struct cmp_row {
	const char *name;		/* "native" or a policy */
	int policy;			/* -1: native */
	double *wall;			/* seconds, one per repeat */
	unsigned int runs;
	long peak_rss_kib;
	uint64_t procs;			/* summed over the runs */
	uint64_t counters[USPF_NR_COUNTERS];
	struct uspf_stats hist;		/* merged handling-time histograms */
	bool failed;			/* differed from the reference, or could not run */
	char why[512];			/* the first failure */
	int killed;			/* a signal that ended one of its runs, or 0 */
	char killed_why[96];
};

struct cmp_state {
	struct cmp_opts *o;
	struct cmp_row rows[MAX_ROWS];
	unsigned int nr_rows;
	char dir[PATH_MAX];		/* this comparison's scratch directory */
	char self[PATH_MAX];		/* this binary, for `uspf run` */
	int ref_status;			/* the reference run's wait status */
};

static void compare_usage(FILE *out)
{
	fprintf(out,
"usage: uspf compare [options] [--] PROGRAM [ARGS...]\n"
"\n"
"Run PROGRAM natively and under each policy, --repeat times each,\n"
"interleaved; check that every run ends and writes as the native one did;\n"
"print wall time, faults by path, handling time, round trip and peak RSS.\n"
"\n"
"  --policy LIST          comma list of policies, or 'all' (default all)\n"
"  --repeat N             runs of each row, 1..1000 (default 3)\n"
"  --stdin FILE           every run reads FILE (default: /dev/null)\n"
"  --output-digest FILE   compare FILE (written by the program) instead of its\n"
"                         standard output; may be given up to 16 times\n"
"  --format table|json|csv  output format (default table)\n"
"  --plot FILE            also draw wall time per policy, with the spread as\n"
"                         error bars, into FILE (.svg or .png; gnuplot)\n"
"  --quiet                no progress on stderr\n"
"  uspf run's options, for every uspf run: --handlers N, --intake K,\n"
"  --spin-us N, --folio-pages N (--fault-around N), --hz N, --min-size BYTES,\n"
"  --heap, --no-heap\n"
"  -h, --help             this text\n"
"\n"
"exit status: 0 when every run matched the native one, 1 when one did\n"
"not, 2 for a usage error (nothing is run).\n");
}

/* ---- options ---- */

static int parse_policies(const char *val, struct cmp_opts *o)
{
	char buf[256], *tok, *save = NULL;
	enum uspf_policy_id id;
	unsigned int i;

	if (!strcmp(val, "all")) {
		for (o->nr_policies = 0; o->nr_policies < USPF_NR_POLICIES; o->nr_policies++)
			o->policies[o->nr_policies] = (enum uspf_policy_id)o->nr_policies;
		return 0;
	}
	if (!*val || strlen(val) >= sizeof(buf) || val[strlen(val) - 1] == ',' ||
	    strstr(val, ",,"))
		return -EINVAL;
	snprintf(buf, sizeof(buf), "%s", val);
	o->nr_policies = 0;
	for (tok = strtok_r(buf, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
		if (uspf_policy_from_name(tok, &id))
			return -EINVAL;
		for (i = 0; i < o->nr_policies && o->policies[i] != id; i++)
			;
		if (i == o->nr_policies)
			o->policies[o->nr_policies++] = id;
	}
	return 0;
}

/* PROGRAM as execvp() would find it: an executable regular file. */
static int find_program(const char *prog, char *path, size_t len)
{
	const char *p, *end, *dirs = getenv("PATH");
	struct stat st;
	size_t n;

	if (strchr(prog, '/')) {
		snprintf(path, len, "%s", prog);
		if (stat(path, &st))
			return -errno;
		return S_ISREG(st.st_mode) && !access(path, X_OK) ? 0 : -EACCES;
	}
	if (!dirs || !*dirs)
		dirs = "/usr/local/bin:/usr/bin:/bin";
	for (p = dirs; ; p = end + 1) {
		end = strchrnul(p, ':');
		n = (size_t)(end - p);
		if ((size_t)snprintf(path, len, "%.*s%s%s", (int)n, p, n ? "/" : "", prog) < len &&
		    !stat(path, &st) && S_ISREG(st.st_mode) && !access(path, X_OK))
			return 0;
		if (!*end)
			return -ENOENT;
	}
}

/* A `uspf run` option: checked as uspf run checks it, kept for every uspf run. */
static int run_option(struct cmp_opts *o, const char *flag, const char *var, const char *val)
{
	char msg[320];

	if (var && (!*val || preload_env_check(var, val, msg, sizeof(msg)))) {
		fprintf(stderr, "uspf compare: %s %s (%s): %s\n", flag, val, var,
			*val ? msg : "empty value");
		return 2;
	}
	if (o->nr_run_opts + 2 > MAX_RUN_OPTS) {
		fprintf(stderr, "uspf compare: too many uspf run options\n");
		return 2;
	}
	o->run_opts[o->nr_run_opts++] = (char *)flag;
	if (val)
		o->run_opts[o->nr_run_opts++] = (char *)val;
	return 0;
}

enum {
	OPT_POLICY = 256, OPT_REPEAT, OPT_STDIN, OPT_DIGEST, OPT_FORMAT, OPT_PLOT, OPT_QUIET,
	OPT_HANDLERS, OPT_INTAKE, OPT_SPIN, OPT_FOLIO, OPT_HZ, OPT_MIN_SIZE, OPT_HEAP,
	OPT_NO_HEAP,
};

static int parse_opts(int argc, char **argv, struct cmp_opts *o)
{
	static const struct option opts[] = {
		{ "policy", required_argument, NULL, OPT_POLICY },
		{ "repeat", required_argument, NULL, OPT_REPEAT },
		{ "stdin", required_argument, NULL, OPT_STDIN },
		{ "output-digest", required_argument, NULL, OPT_DIGEST },
		{ "format", required_argument, NULL, OPT_FORMAT },
		{ "plot", required_argument, NULL, OPT_PLOT },
		{ "quiet", no_argument, NULL, OPT_QUIET },
		{ "handlers", required_argument, NULL, OPT_HANDLERS },
		{ "intake", required_argument, NULL, OPT_INTAKE },
		{ "spin-us", required_argument, NULL, OPT_SPIN },
		{ "folio-pages", required_argument, NULL, OPT_FOLIO },
		{ "fault-around", required_argument, NULL, OPT_FOLIO },	/* the old name */
		{ "hz", required_argument, NULL, OPT_HZ },
		{ "min-size", required_argument, NULL, OPT_MIN_SIZE },
		{ "heap", no_argument, NULL, OPT_HEAP },
		{ "no-heap", no_argument, NULL, OPT_NO_HEAP },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	unsigned long long v;
	char path[PATH_MAX];
	int c, ret;

	o->repeat = 3;
	parse_policies("all", o);
	opterr = 0;
	optind = 1;
	while ((c = getopt_long(argc, argv, "+:h", opts, NULL)) != -1) {
		ret = 0;
		switch (c) {
		case OPT_POLICY:
			if (parse_policies(optarg, o))
				return cli_bad_value("compare", "--policy", optarg,
						     "a comma list of spf, mmap-lock, spf-adaptive, "
						     "pervma-rwsem, pervma-refcnt, spf-v12, or all");
			break;
		case OPT_REPEAT:
			if (cli_parse_ull(optarg, 1, MAX_REPEAT, &v))
				return cli_bad_value("compare", "--repeat", optarg, "an integer 1..1000");
			o->repeat = (unsigned int)v;
			break;
		case OPT_STDIN:
			if (access(optarg, R_OK)) {
				fprintf(stderr, "uspf compare: --stdin '%s': %s\n", optarg,
					strerror(errno));
				return 2;
			}
			o->stdin_path = optarg;
			break;
		case OPT_DIGEST:
			if (o->nr_digests == MAX_DIGESTS)
				return cli_bad_value("compare", "--output-digest", optarg,
						     "at most 16 files");
			o->digests[o->nr_digests++] = optarg;
			break;
		case OPT_FORMAT:
			if (!strcmp(optarg, "table"))
				o->format = CMP_TABLE;
			else if (!strcmp(optarg, "json"))
				o->format = CMP_JSON;
			else if (!strcmp(optarg, "csv"))
				o->format = CMP_CSV;
			else
				return cli_bad_value("compare", "--format", optarg, "table, json or csv");
			break;
		case OPT_PLOT:
			o->plot = optarg;
			break;
		case OPT_QUIET:
			o->quiet = true;
			break;
		case OPT_HANDLERS:
			ret = run_option(o, "--handlers", "USPF_HANDLERS", optarg);
			break;
		case OPT_INTAKE:
			ret = run_option(o, "--intake", "USPF_INTAKE", optarg);
			break;
		case OPT_SPIN:
			ret = run_option(o, "--spin-us", "USPF_SPIN_US", optarg);
			break;
		case OPT_FOLIO:
			ret = run_option(o, "--folio-pages", "USPF_FOLIO_PAGES", optarg);
			break;
		case OPT_HZ:
			ret = run_option(o, "--hz", "USPF_HZ", optarg);
			break;
		case OPT_MIN_SIZE:
			ret = run_option(o, "--min-size", "USPF_MIN_SIZE", optarg);
			break;
		case OPT_HEAP:
			ret = run_option(o, "--heap", NULL, NULL);
			break;
		case OPT_NO_HEAP:
			ret = run_option(o, "--no-heap", NULL, NULL);
			break;
		case 'h':
			compare_usage(stdout);
			return 0;
		default:
			return cli_unknown_option("compare", argv, c, opts);
		}
		if (ret)
			return ret;
	}
	if (optind >= argc) {
		fprintf(stderr, "uspf compare: no program given (uspf compare [options] -- PROGRAM "
			"[ARGS...])\n");
		return 2;
	}
	ret = find_program(argv[optind], path, sizeof(path));
	if (ret) {
		fprintf(stderr, "uspf compare: PROGRAM '%s': %s\n", argv[optind],
			ret == -ENOENT && !strchr(argv[optind], '/') ? "not found in PATH" :
			ret == -EACCES ? "not an executable file" : strerror(-ret));
		return 2;
	}
	if (o->plot) {
		ret = gnuplot_check("compare", o->plot);
		if (ret >= 0)
			return ret;
	}
	o->argv = argv + optind;
	return -1;
}

/* ---- one run ---- */

static double now_s(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)t.tv_sec + t.tv_nsec / 1e9;
}

static void scratch(const struct cmp_state *s, char *buf, size_t len, const char *name)
{
	snprintf(buf, len, "%s/%s", s->dir, name);
}

/*
 * Fork, exec (natively, or `uspf run` with the options and this row's
 * policy), wait.  Standard output and error go to files of the run's own.
 */
static int run_once(struct cmp_state *s, const struct cmp_row *row, int *status,
		    double *wall, long *maxrss)
{
	char out[PATH_MAX + 16], err[PATH_MAX + 16], stats[PATH_MAX + 16];
	char *argv[MAX_RUN_OPTS + 8 + 4096];
	unsigned int i, n = 0;
	struct rusage ru;
	double t0;
	pid_t pid;
	int fd;

	scratch(s, out, sizeof(out), "stdout");
	scratch(s, err, sizeof(err), "stderr");
	scratch(s, stats, sizeof(stats), "stats");
	unlink(stats);
	if (row->policy >= 0) {
		argv[n++] = s->self;
		argv[n++] = "run";
		for (i = 0; i < s->o->nr_run_opts; i++)
			argv[n++] = s->o->run_opts[i];
		argv[n++] = "--policy";
		argv[n++] = (char *)uspf_policy_name((enum uspf_policy_id)row->policy);
		argv[n++] = "--stats";
		argv[n++] = stats;
		argv[n++] = "--";
	}
	for (i = 0; s->o->argv[i] && n < sizeof(argv) / sizeof(argv[0]) - 1; i++)
		argv[n++] = s->o->argv[i];
	argv[n] = NULL;
	fflush(NULL);
	t0 = now_s();
	pid = fork();
	if (pid < 0)
		return -errno;
	if (!pid) {
		fd = open(s->o->stdin_path ? s->o->stdin_path : "/dev/null", O_RDONLY);
		if (fd < 0 || dup2(fd, STDIN_FILENO) < 0)
			_exit(126);
		fd = open(out, O_WRONLY | O_CREAT | O_TRUNC, 0600);
		if (fd < 0 || dup2(fd, STDOUT_FILENO) < 0)
			_exit(126);
		fd = open(err, O_WRONLY | O_CREAT | O_TRUNC, 0600);
		if (fd < 0 || dup2(fd, STDERR_FILENO) < 0)
			_exit(126);
		execvp(argv[0], argv);
		fprintf(stderr, "uspf compare: cannot run '%s': %s\n", argv[0], strerror(errno));
		_exit(127);
	}
	while (wait4(pid, status, 0, &ru) < 0)
		if (errno != EINTR)
			return -errno;
	*wall = now_s() - t0;
	*maxrss = ru.ru_maxrss;
	return 0;
}

/* ---- the stats lines of a uspf run ---- */

/* The number after "key": in line, or -1. */
static long long json_num(const char *line, const char *key)
{
	char k[64];
	const char *p;

	snprintf(k, sizeof(k), "\"%s\":", key);
	p = strstr(line, k);
	return p ? strtoll(p + strlen(k), NULL, 10) : -1;
}

/* Sum every process's counters and histogram into row; count the processes. */
static void add_stats(struct cmp_state *s, struct cmp_row *row)
{
	char path[PATH_MAX + 16], *line = NULL, *p, *end;
	size_t cap = 0;
	unsigned int c, b;
	unsigned long long n;
	FILE *f;

	scratch(s, path, sizeof(path), "stats");
	f = fopen(path, "re");
	if (!f)
		return;
	while (getline(&line, &cap, f) > 0) {
		row->procs++;
		p = strstr(line, "\"counters\":{");
		end = p ? strchr(p, '}') : NULL;
		if (end) {
			*end = '\0';
			for (c = 0; c < USPF_NR_COUNTERS; c++) {
				long long v = json_num(p, uspf_counter_name((enum uspf_counter)c));

				if (v > 0)
					row->counters[c] += (uint64_t)v;
			}
			*end = '}';
		}
		p = strstr(line, "\"hist\":[");
		for (p = p ? p + 8 : NULL; p && sscanf(p, "[%u,%llu]", &b, &n) == 2; ) {
			if (b < USPF_HIST_BUCKETS)
				row->hist.hist[b] += n;
			p = strchr(p, ']');
			p = p && p[1] == ',' ? p + 2 : NULL;
		}
	}
	free(line);
	fclose(f);
}

/* ---- checking a run against the reference ---- */

static const char *status_str(int status, char *buf, size_t len)
{
	if (WIFSIGNALED(status))
		snprintf(buf, len, "killed by signal %d (%s)", WTERMSIG(status),
			 strsignal(WTERMSIG(status)));
	else
		snprintf(buf, len, "exit status %d", WEXITSTATUS(status));
	return buf;
}

/* Where two files first differ: "" when they do not. */
static void first_difference(const char *a, const char *b, char *where, size_t len)
{
	FILE *fa = fopen(a, "re"), *fb = fopen(b, "re");
	unsigned long off = 0, lineno = 1;
	int ca, cb;

	where[0] = '\0';
	if (!fa || !fb) {
		snprintf(where, len, "%s is missing", !fa ? a : b);
		goto out;
	}
	for (;; off++) {
		ca = getc(fa);
		cb = getc(fb);
		if (ca != cb) {
			snprintf(where, len, "first difference at byte %lu (line %lu)%s", off, lineno,
				 ca == EOF ? ": the reference ends there" :
				 cb == EOF ? ": this run's output ends there" : "");
			break;
		}
		if (ca == EOF)
			break;
		lineno += ca == '\n';
	}
out:
	if (fa)
		fclose(fa);
	if (fb)
		fclose(fb);
}

static int copy_file(const char *from, const char *to)
{
	char buf[65536];
	FILE *in = fopen(from, "re"), *out;
	size_t n;
	int ret = 0;

	if (!in)
		return -errno;
	out = fopen(to, "we");
	if (!out) {
		ret = -errno;
		fclose(in);
		return ret;
	}
	while ((n = fread(buf, 1, sizeof(buf), in)) > 0)
		if (fwrite(buf, 1, n, out) != n)
			ret = -EIO;
	fclose(in);
	if (fclose(out) && !ret)
		ret = -EIO;
	return ret;
}

/* The reference run's outputs, kept. */
static void keep_reference(struct cmp_state *s)
{
	char from[PATH_MAX + 16], to[PATH_MAX + 16];
	unsigned int i;

	scratch(s, from, sizeof(from), "stdout");
	scratch(s, to, sizeof(to), "ref.stdout");
	copy_file(from, to);
	for (i = 0; i < s->o->nr_digests; i++) {
		snprintf(to, sizeof(to), "%s/ref.%u", s->dir, i);
		copy_file(s->o->digests[i], to);
	}
}

/* The last line of the run's standard error, for a row that failed. */
static void last_stderr_line(struct cmp_state *s, char *buf, size_t len)
{
	char path[PATH_MAX + 16], *line = NULL;
	size_t cap = 0;
	ssize_t n;
	FILE *f;

	buf[0] = '\0';
	scratch(s, path, sizeof(path), "stderr");
	f = fopen(path, "re");
	if (!f)
		return;
	while ((n = getline(&line, &cap, f)) > 0) {
		if (line[n - 1] == '\n')
			line[--n] = '\0';
		if (n)
			snprintf(buf, len, "%s", line);
	}
	free(line);
	fclose(f);
}

static void check_run(struct cmp_state *s, struct cmp_row *row, unsigned int rep, int status)
{
	char a[64], b[64], ref[PATH_MAX + 16], got[PATH_MAX + 16], where[160], err[200];
	unsigned int i;

	if (WIFSIGNALED(status) && !row->killed) {
		row->killed = WTERMSIG(status);
		snprintf(row->killed_why, sizeof(row->killed_why), "run %u: %s", rep + 1,
			 status_str(status, a, sizeof(a)));
	}
	if (row->failed)
		return;
	if (status != s->ref_status) {
		last_stderr_line(s, err, sizeof(err));
		snprintf(row->why, sizeof(row->why), "run %u: %s, the native run's %s%s%s", rep + 1,
			 status_str(status, a, sizeof(a)), status_str(s->ref_status, b, sizeof(b)),
			 err[0] ? "; its last line on stderr: " : "", err);
		row->failed = true;
		return;
	}
	if (!s->o->nr_digests) {
		scratch(s, ref, sizeof(ref), "ref.stdout");
		scratch(s, got, sizeof(got), "stdout");
		first_difference(ref, got, where, sizeof(where));
		if (where[0]) {
			snprintf(row->why, sizeof(row->why), "run %u: standard output differs: %s",
				 rep + 1, where);
			row->failed = true;
		}
		return;
	}
	for (i = 0; i < s->o->nr_digests; i++) {
		snprintf(ref, sizeof(ref), "%s/ref.%u", s->dir, i);
		first_difference(ref, s->o->digests[i], where, sizeof(where));
		if (where[0]) {
			snprintf(row->why, sizeof(row->why), "run %u: %s differs: %s", rep + 1,
				 s->o->digests[i], where);
			row->failed = true;
			return;
		}
	}
}

/* ---- the figures ---- */

struct wall_fold {
	double hmean, min, max, cov_pct;
};

static struct wall_fold fold(const struct cmp_row *r)
{
	struct wall_fold w = { 0, INFINITY, 0, 0 };
	double inv = 0, sum = 0, sq = 0, mean;
	unsigned int i;

	for (i = 0; i < r->runs; i++) {
		inv += 1 / (r->wall[i] > 1e-9 ? r->wall[i] : 1e-9);
		sum += r->wall[i];
		w.min = r->wall[i] < w.min ? r->wall[i] : w.min;
		w.max = r->wall[i] > w.max ? r->wall[i] : w.max;
	}
	if (!r->runs)
		return (struct wall_fold){ 0, 0, 0, 0 };
	w.hmean = r->runs / inv;
	mean = sum / r->runs;
	for (i = 0; i < r->runs; i++)
		sq += (r->wall[i] - mean) * (r->wall[i] - mean);
	if (r->runs > 1 && mean > 0)
		w.cov_pct = 100 * sqrt(sq / (r->runs - 1)) / mean;
	return w;
}

/* Per run, over the repeats. */
static uint64_t per_run(const struct cmp_row *r, uint64_t v)
{
	return r->runs ? (v + r->runs / 2) / r->runs : 0;
}

static uint64_t ctr(const struct cmp_row *r, enum uspf_counter c)
{
	return per_run(r, r->counters[c]);
}

/* Faults by path: speculative, under the VMA lock, under the mmap lock, fallen back. */
static uint64_t speculative(const struct cmp_row *r)
{
	return ctr(r, USPF_C_SPF_SUCCESS) + ctr(r, USPF_C_ADAPTIVE_SUCCESS);
}

static uint64_t fallbacks(const struct cmp_row *r)
{
	return ctr(r, USPF_C_MMAP_LOCK_FALLBACK) + ctr(r, USPF_C_VMA_LOCK_ABORT) +
	       ctr(r, USPF_C_VMA_LOCK_RETRY);
}

/* Why faults left the fast path: the abort counters that are not zero. */
static const enum uspf_counter reasons[] = {
	USPF_C_SPF_ABORT_NO_VMA, USPF_C_SPF_ABORT_SEQ_ODD, USPF_C_SPF_ABORT_NOT_ANON,
	USPF_C_SPF_ABORT_NO_ANON_VMA, USPF_C_SPF_ABORT_OUTSIDE, USPF_C_SPF_ABORT_SNAPSHOT,
	USPF_C_SPF_ABORT_VMA_CHANGED, USPF_C_SPF_BACKOFF, USPF_C_VMA_LOCK_ABORT,
	USPF_C_VMA_LOCK_RETRY, USPF_C_VMA_LOCK_MISS, USPF_C_VMA_LOCK_WRONG_MM,
	USPF_C_ADAPTIVE_ABORT_NO_VMA, USPF_C_ADAPTIVE_ABORT_NOT_ANON,
	USPF_C_ADAPTIVE_ABORT_NO_ANON_VMA, USPF_C_ADAPTIVE_ABORT_OUTSIDE,
	USPF_C_ADAPTIVE_ABORT_VMA_CHANGED,
};
#define NR_REASONS (sizeof(reasons) / sizeof(reasons[0]))

static uint64_t round_trip_mean(const struct cmp_row *r)
{
	return r->counters[USPF_C_ROUND_TRIPS] ?
	       r->counters[USPF_C_ROUND_TRIP_NS] / r->counters[USPF_C_ROUND_TRIPS] : 0;
}

static const char *result(const struct cmp_row *r)
{
	return r->failed ? "DIFFERS" : r->killed ? "killed" : "ok";
}

static void print_table(const struct cmp_state *s, FILE *out)
{
	const struct cmp_row *nat = &s->rows[0];
	struct wall_fold w, wn = fold(nat);
	char spread[48], cmdline[512];
	unsigned int i, j, k;
	int n = 0;

	for (i = 0; s->o->argv[i] && n < (int)sizeof(cmdline); i++)
		n += snprintf(cmdline + n, sizeof(cmdline) - n, "%s%s", i ? " " : "", s->o->argv[i]);
	fprintf(out, "# uspf %s compare: %s\n", PACKAGE_VERSION, cmdline);
	fprintf(out, "# %u repeat%s of each row, interleaved; %ld CPUs; uspf run options:",
		s->o->repeat, s->o->repeat == 1 ? "" : "s", sysconf(_SC_NPROCESSORS_ONLN));
	for (i = 0; i < s->o->nr_run_opts; i++)
		fprintf(out, " %s", s->o->run_opts[i]);
	fprintf(out, "%s\n", s->o->nr_run_opts ? "" : " none (the defaults)");
	fprintf(out, "# wall: Hmean over the repeats, s; vs native: wall / native's (above 1: "
		"slower); checked: %s\n", s->o->nr_digests ? "the --output-digest files" :
		"exit status and standard output");
	fprintf(out, "# per run (mean over the repeats): processes, faults served, pages "
		"installed, faults speculative / under the VMA lock / under the mmap lock / "
		"fallen back; handling p50/p99 ns; round trip mean ns (the probe); peak RSS KiB "
		"(largest over the runs)\n");
	fprintf(out, "%-14s %9s %21s %6s %9s %5s %9s %9s %9s %9s %9s %9s %9s %9s %9s %10s %s\n",
		"policy", "wall s", "spread (min-max)", "CoV%", "vs native", "procs", "faults",
		"pages", "spec", "vma_lock", "mmap_lock", "fallback", "p50 ns", "p99 ns",
		"rtrip ns", "peak KiB", "result");
	for (i = 0; i < s->nr_rows; i++) {
		const struct cmp_row *r = &s->rows[i];
		bool u = r->policy >= 0;

		w = fold(r);
		snprintf(spread, sizeof(spread), "%.3f-%.3f", w.min, w.max);
		fprintf(out, "%-14s %9.3f %21s %6.1f %9.3f %5" PRIu64, r->name, w.hmean, spread,
			w.cov_pct, wn.hmean > 0 ? w.hmean / wn.hmean : NAN,
			u ? per_run(r, r->procs) : (uint64_t)1);
		if (u) {
			fprintf(out, " %9" PRIu64 " %9" PRIu64 " %9" PRIu64 " %9" PRIu64 " %9" PRIu64
				" %9" PRIu64 " %9" PRIu64 " %9" PRIu64, ctr(r, USPF_C_FAULTS),
				ctr(r, USPF_C_PAGES), speculative(r), ctr(r, USPF_C_VMA_LOCK_SUCCESS),
				ctr(r, USPF_C_MMAP_LOCK_FAULT), fallbacks(r),
				uspf_stats_percentile(&r->hist, 50), uspf_stats_percentile(&r->hist, 99));
			if (r->counters[USPF_C_ROUND_TRIPS])
				fprintf(out, " %9" PRIu64, round_trip_mean(r));
			else
				fprintf(out, " %9s", "-");	/* the probe never ran: under 100 ms */
		} else {
			for (j = 0; j < 9; j++)
				fprintf(out, " %9s", "-");
		}
		fprintf(out, " %10ld %s\n", r->peak_rss_kib, result(r));
		for (j = 0, k = 0; u && j < NR_REASONS; j++) {
			if (!ctr(r, reasons[j]))
				continue;
			fprintf(out, "%s%s=%" PRIu64, k++ ? " " : "               fallbacks by reason: ",
				uspf_counter_name(reasons[j]), ctr(r, reasons[j]));
		}
		if (k)
			fprintf(out, "\n");
		if (r->failed)
			fprintf(out, "               %s\n", r->why);
		else if (r->killed)
			fprintf(out, "               %s\n", r->killed_why);
	}
}

static void json_string(FILE *out, const char *str)
{
	fputc('"', out);
	for (; *str; str++) {
		if (*str == '"' || *str == '\\')
			fprintf(out, "\\%c", *str);
		else if ((unsigned char)*str < 0x20)
			fprintf(out, "\\u%04x", *str);
		else
			fputc(*str, out);
	}
	fputc('"', out);
}

static void print_json(const struct cmp_state *s, FILE *out)
{
	struct wall_fold w, wn = fold(&s->rows[0]);
	unsigned int i, j, k;

	fprintf(out, "{\"uspf_version\": \"%s\", \"cpus\": %ld, \"repeat\": %u, \"program\": [",
		PACKAGE_VERSION, sysconf(_SC_NPROCESSORS_ONLN), s->o->repeat);
	for (i = 0; s->o->argv[i]; i++) {
		fprintf(out, "%s", i ? ", " : "");
		json_string(out, s->o->argv[i]);
	}
	fprintf(out, "], \"run_options\": [");
	for (i = 0; i < s->o->nr_run_opts; i++) {
		fprintf(out, "%s", i ? ", " : "");
		json_string(out, s->o->run_opts[i]);
	}
	fprintf(out, "], \"checked\": \"%s\", \"rows\": [", s->o->nr_digests ? "output_digest" :
		"stdout");
	for (i = 0; i < s->nr_rows; i++) {
		const struct cmp_row *r = &s->rows[i];
		bool u = r->policy >= 0;

		w = fold(r);
		fprintf(out, "%s\n  {\"policy\": \"%s\", \"wall_s\": {\"hmean\": %.6f, \"min\": %.6f, "
			"\"max\": %.6f, \"cov_pct\": %.2f, \"runs\": [", i ? "," : "", r->name, w.hmean,
			w.min, w.max, w.cov_pct);
		for (j = 0; j < r->runs; j++)
			fprintf(out, "%s%.6f", j ? ", " : "", r->wall[j]);
		fprintf(out, "]}, \"ratio_native\": %.4f, \"processes\": %" PRIu64,
			wn.hmean > 0 ? w.hmean / wn.hmean : 0, u ? per_run(r, r->procs) : (uint64_t)1);
		if (u) {
			fprintf(out, ", \"faults\": %" PRIu64 ", \"pages\": %" PRIu64
				", \"speculative\": %" PRIu64 ", \"vma_lock\": %" PRIu64
				", \"mmap_lock\": %" PRIu64 ", \"fallbacks\": %" PRIu64
				", \"fallback_reasons\": {", ctr(r, USPF_C_FAULTS), ctr(r, USPF_C_PAGES),
				speculative(r), ctr(r, USPF_C_VMA_LOCK_SUCCESS),
				ctr(r, USPF_C_MMAP_LOCK_FAULT), fallbacks(r));
			for (j = 0, k = 0; j < NR_REASONS; j++)
				if (ctr(r, reasons[j]))
					fprintf(out, "%s\"%s\": %" PRIu64, k++ ? ", " : "",
						uspf_counter_name(reasons[j]), ctr(r, reasons[j]));
			fprintf(out, "}, \"handle_p50_ns\": %" PRIu64 ", \"handle_p99_ns\": %" PRIu64
				", \"round_trip_mean_ns\": ", uspf_stats_percentile(&r->hist, 50),
				uspf_stats_percentile(&r->hist, 99));
			if (r->counters[USPF_C_ROUND_TRIPS])
				fprintf(out, "%" PRIu64, round_trip_mean(r));
			else
				fprintf(out, "null");
		}
		fprintf(out, ", \"peak_rss_kib\": %ld, \"result\": \"%s\", \"detail\": ",
			r->peak_rss_kib, r->failed ? "differs" : r->killed ? "killed" : "ok");
		if (r->failed || r->killed)
			json_string(out, r->failed ? r->why : r->killed_why);
		else
			fprintf(out, "null");
		fprintf(out, "}");
	}
	fprintf(out, "\n]}\n");
}

static void print_csv(const struct cmp_state *s, FILE *out)
{
	struct wall_fold w, wn = fold(&s->rows[0]);
	unsigned int i;

	fprintf(out, "policy,wall_s_hmean,wall_s_min,wall_s_max,wall_cov_pct,ratio_native,"
		"processes,faults,pages,speculative,vma_lock,mmap_lock,fallbacks,handle_p50_ns,"
		"handle_p99_ns,round_trip_mean_ns,peak_rss_kib,result\n");
	for (i = 0; i < s->nr_rows; i++) {
		const struct cmp_row *r = &s->rows[i];

		w = fold(r);
		fprintf(out, "%s,%.6f,%.6f,%.6f,%.2f,%.4f,%" PRIu64, r->name, w.hmean, w.min, w.max,
			w.cov_pct, wn.hmean > 0 ? w.hmean / wn.hmean : 0,
			r->policy >= 0 ? per_run(r, r->procs) : (uint64_t)1);
		if (r->policy >= 0)
			fprintf(out, ",%" PRIu64 ",%" PRIu64 ",%" PRIu64 ",%" PRIu64 ",%" PRIu64 ",%"
				PRIu64 ",%" PRIu64 ",%" PRIu64 ",", ctr(r, USPF_C_FAULTS),
				ctr(r, USPF_C_PAGES), speculative(r), ctr(r, USPF_C_VMA_LOCK_SUCCESS),
				ctr(r, USPF_C_MMAP_LOCK_FAULT), fallbacks(r),
				uspf_stats_percentile(&r->hist, 50), uspf_stats_percentile(&r->hist, 99));
		else
			fprintf(out, ",,,,,,,,,");
		if (r->counters[USPF_C_ROUND_TRIPS])
			fprintf(out, "%" PRIu64, round_trip_mean(r));
		fprintf(out, ",%ld,%s\n", r->peak_rss_kib,
			r->failed ? "differs" : r->killed ? "killed" : "ok");
	}
}

/* Wall time per row, bars from min to max. */
static int plot_script(FILE *f, bool svg, const char *output, const void *arg)
{
	const struct cmp_state *s = arg;
	struct wall_fold w;
	unsigned int i;

	gnuplot_terminal(f, svg, 960, 480);
	fprintf(f, "set output ");
	gnuplot_str(f, output);
	fprintf(f, "\n$d << EOD\n");
	for (i = 0; i < s->nr_rows; i++) {
		w = fold(&s->rows[i]);
		fprintf(f, "%u \"%s\" %.6f %.6f %.6f\n", i, s->rows[i].name, w.hmean, w.min, w.max);
	}
	fprintf(f, "EOD\nset title ");
	gnuplot_str(f, s->o->argv[0]);
	fprintf(f, "\nset style fill solid 0.4\nset boxwidth 0.6\nset yrange [0:*]\n"
		"set xrange [-0.6:%u.6]\nset grid ytics\nset xtics rotate by -20\n"
		"set ylabel 'wall time, s (Hmean; bars: min-max of %u runs)'\n"
		"plot $d using 1:3:xtic(2) with boxes lc rgb '#1f77b4' notitle, \\\n"
		"     $d using 1:3:4:5 with yerrorbars lc rgb 'black' pt 0 notitle\n"
		"unset output\n", s->nr_rows - 1, s->o->repeat);
	return 0;
}

/* ---- the comparison ---- */

static void progress(const struct cmp_state *s, unsigned int done, unsigned int total,
		     const char *name, double wall)
{
	if (s->o->quiet)
		return;
	if (isatty(STDERR_FILENO))
		fprintf(stderr, "\r\033[K[%u/%u] %s: %.3f s", done, total, name, wall);
	else
		fprintf(stderr, "uspf compare: [%u/%u] %s: %.3f s\n", done, total, name, wall);
}

static int compare(struct cmp_state *s)
{
	unsigned int rep, i, total = s->o->repeat * s->nr_rows, done = 0;
	double wall;
	long rss;
	int status, ret;

	for (rep = 0; rep < s->o->repeat; rep++) {
		for (i = 0; i < s->nr_rows; i++) {
			struct cmp_row *r = &s->rows[i];

			ret = run_once(s, r, &status, &wall, &rss);
			if (ret) {
				fprintf(stderr, "uspf compare: cannot run the program: %s\n",
					strerror(-ret));
				return 1;
			}
			if (rep == 0 && i == 0) {
				s->ref_status = status;
				keep_reference(s);
			}
			r->wall[r->runs++] = wall;
			if (rss > r->peak_rss_kib)
				r->peak_rss_kib = rss;
			if (r->policy >= 0)
				add_stats(s, r);
			check_run(s, r, rep, status);
			progress(s, ++done, total, r->name, wall);
		}
	}
	if (!s->o->quiet && isatty(STDERR_FILENO))
		fprintf(stderr, "\r\033[K");
	return 0;
}

static void remove_dir(const char *dir)
{
	static const char *const names[] = { "stdout", "stderr", "stats", "ref.stdout" };
	char path[PATH_MAX + 16];
	unsigned int i;

	for (i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		snprintf(path, sizeof(path), "%s/%s", dir, names[i]);
		unlink(path);
	}
	for (i = 0; i < MAX_DIGESTS; i++) {
		snprintf(path, sizeof(path), "%s/ref.%u", dir, i);
		unlink(path);
	}
	rmdir(dir);
}

int cmd_compare(int argc, char **argv)
{
	static struct cmp_opts o;
	static struct cmp_state s;
	const char *tmp = getenv("TMPDIR");
	char msg[320];
	unsigned int i, failed = 0;
	ssize_t n;
	int ret;

	memset(&o, 0, sizeof(o));
	memset(&s, 0, sizeof(s));
	ret = parse_opts(argc, argv, &o);
	if (ret >= 0)
		return ret;
	/* Variables from the caller's environment are checked as uspf run would. */
	if (uspf_preload_parse_env(msg, sizeof(msg))) {
		fprintf(stderr, "uspf: %s\n", msg);
		return 2;
	}
	s.o = &o;
	n = readlink("/proc/self/exe", s.self, sizeof(s.self) - 1);
	if (n <= 0) {
		fprintf(stderr, "uspf compare: cannot find its own binary: %s\n", strerror(errno));
		return 1;
	}
	s.self[n] = '\0';
	snprintf(s.dir, sizeof(s.dir), "%s/uspf-compare.XXXXXX", tmp && *tmp ? tmp : "/tmp");
	if (!mkdtemp(s.dir)) {
		fprintf(stderr, "uspf compare: a scratch directory in %s: %s\n",
			tmp && *tmp ? tmp : "/tmp", strerror(errno));
		return 1;
	}
	s.rows[s.nr_rows++] = (struct cmp_row){ .name = "native", .policy = -1 };
	for (i = 0; i < o.nr_policies; i++)
		s.rows[s.nr_rows++] = (struct cmp_row){ .name = uspf_policy_name(o.policies[i]),
							.policy = (int)o.policies[i] };
	for (i = 0; i < s.nr_rows; i++) {
		s.rows[i].wall = calloc(o.repeat, sizeof(double));
		if (!s.rows[i].wall) {
			fprintf(stderr, "uspf compare: out of memory\n");
			remove_dir(s.dir);
			return 1;
		}
	}
	ret = compare(&s);
	remove_dir(s.dir);
	if (ret)
		return ret;
	if (o.format == CMP_JSON)
		print_json(&s, stdout);
	else if (o.format == CMP_CSV)
		print_csv(&s, stdout);
	else
		print_table(&s, stdout);
	fflush(stdout);
	if (o.plot && gnuplot_draw("compare", o.plot, plot_script, &s, "nothing to plot"))
		ret = 1;
	for (i = 0; i < s.nr_rows; i++) {
		failed += s.rows[i].failed;
		free(s.rows[i].wall);
	}
	if (failed && !o.quiet)
		fprintf(stderr, "uspf compare: %u row%s differed from the native run\n", failed,
			failed == 1 ? "" : "s");
	return failed ? 1 : ret;
}
