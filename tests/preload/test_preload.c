/* SPDX-License-Identifier: MIT */
/*
 * tests/preload/test_preload.c - libuspf-preload.so and `uspf run` on real programs.
 *
 * Every test launches programs (tests/targets/ and system tools) with
 * posix_spawn, once plainly and once with LD_PRELOAD set to the absolute
 * path of the library, and checks that stdout and the exit status are the
 * same and that the stats file holds one JSON line per process.
 *
 * The heap is left to the system allocator here (USPF_HEAP=0): these
 * tests are about the mmap family, fork, read(2), signals and the
 * configuration; the malloc family has its own.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "tests/as_nobody.h"
#include "tests/helpers.h"

extern char **environ;

#define OUT_MAX (4 << 20)

struct result {
	int status;		/* exit status, or 128 + signal */
	char *out;		/* stdout */
	size_t out_len;
	char *err;		/* stderr */
	size_t err_len;
};

static const char *env_or_skip(const char *name)
{
	const char *v = getenv(name);

	if (!v || !*v)
		cr_skip_test("%s not set (run under make check)", name);
	return v;
}

static char *slurp(const char *path, size_t *len)
{
	char *buf = malloc(OUT_MAX + 1);
	size_t n = 0;
	ssize_t r;
	int fd = open(path, O_RDONLY);

	cr_assert(buf);
	if (fd >= 0) {
		while (n < OUT_MAX && (r = read(fd, buf + n, OUT_MAX - n)) > 0)
			n += (size_t)r;
		close(fd);
	}
	buf[n] = '\0';
	if (len)
		*len = n;
	return buf;
}

/*
 * Run argv with the test's environment minus LD_PRELOAD and USPF_*, plus
 * `extra` (NULL-terminated "NAME=value" strings); stdin from `in` or
 * /dev/null.
 */
static void run(char *const argv[], const char *const extra[], const char *in, struct result *r)
{
	char out_path[] = "/tmp/uspf-preload-out-XXXXXX";
	char err_path[] = "/tmp/uspf-preload-err-XXXXXX";
	posix_spawn_file_actions_t fa;
	char *envp[512];
	size_t n = 0, i;
	pid_t pid;
	int ofd, efd, st, ret;

	for (i = 0; environ[i] && n < 480; i++) {
		if (!strncmp(environ[i], "LD_PRELOAD=", 11) || !strncmp(environ[i], "USPF_", 5))
			continue;
		envp[n++] = environ[i];
	}
	for (i = 0; extra && extra[i]; i++)
		envp[n++] = (char *)extra[i];
	envp[n] = NULL;
	ofd = mkstemp(out_path);
	efd = mkstemp(err_path);
	cr_assert(ofd >= 0 && efd >= 0);
	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_addopen(&fa, 0, in ? in : "/dev/null", O_RDONLY, 0);
	posix_spawn_file_actions_adddup2(&fa, ofd, 1);
	posix_spawn_file_actions_adddup2(&fa, efd, 2);
	ret = posix_spawnp(&pid, argv[0], &fa, NULL, argv, envp);
	posix_spawn_file_actions_destroy(&fa);
	cr_assert_eq(ret, 0, "spawn %s: %s", argv[0], strerror(ret));
	cr_assert_eq(waitpid(pid, &st, 0), pid);
	r->status = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
	close(ofd);
	close(efd);
	r->out = slurp(out_path, &r->out_len);
	r->err = slurp(err_path, &r->err_len);
	unlink(out_path);
	unlink(err_path);
}

static void result_free(struct result *r)
{
	free(r->out);
	free(r->err);
}

struct stats_line {
	long pid;
	char program[64];
	long long faults;
};

/* Parse the stats file: every line one JSON object with the fields we need. */
static size_t read_stats(const char *path, struct stats_line *lines, size_t max)
{
	size_t len, n = 0;
	char *buf = slurp(path, &len), *line, *save = NULL, *p;

	for (line = strtok_r(buf, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		cr_assert_lt(n, max, "too many stats lines");
		cr_assert(line[0] == '{' && line[strlen(line) - 1] == '}', "not JSON: %s", line);
		cr_assert(strstr(line, "\"counters\":{") && strstr(line, "\"latency_ns\":{\"p50\":"),
			  "fields missing: %s", line);
		p = strstr(line, "\"pid\":");
		cr_assert(p, "%s", line);
		lines[n].pid = strtol(p + 6, NULL, 10);
		p = strstr(line, "\"program\":\"");
		cr_assert(p, "%s", line);
		p += 11;
		snprintf(lines[n].program, sizeof(lines[n].program), "%.*s",
			 (int)(strchr(p, '"') - p), p);
		p = strstr(line, "\"faults\":");
		cr_assert(p, "%s", line);
		lines[n].faults = strtoll(p + 9, NULL, 10);
		n++;
	}
	free(buf);
	return n;
}

static void check_one_line_per_pid(const struct stats_line *l, size_t n)
{
	size_t i, j;

	for (i = 0; i < n; i++)
		for (j = i + 1; j < n; j++)
			cr_assert_neq(l[i].pid, l[j].pid, "two lines for pid %ld", l[i].pid);
}

/* Faults served in the processes called `program` (-1: none seen). */
static long long faults_of(const struct stats_line *l, size_t n, const char *program,
			   size_t *procs)
{
	long long f = -1;
	size_t i;

	*procs = 0;
	for (i = 0; i < n; i++) {
		if (strcmp(l[i].program, program))
			continue;
		(*procs)++;
		f = (f < 0 ? 0 : f) + l[i].faults;
	}
	return f;
}

static char *stats_path(void)
{
	static char path[64];
	int fd;

	snprintf(path, sizeof(path), "/tmp/uspf-preload-stats-XXXXXX");
	fd = mkstemp(path);
	cr_assert(fd >= 0);
	close(fd);
	return path;
}

/*
 * Run argv plainly and under the library with `policy`; same stdout and
 * status; return the stats lines.
 */
static const char *heap_env = "USPF_HEAP=0";
static const char *asan_lib;	/* libasan, preloaded first */

static size_t compare_run(char *const argv[], const char *in, const char *policy,
			  struct stats_line *lines, size_t max)
{
	static char preload[8400], stats_env[128], policy_env[64];
	const char *lib = env_or_skip("USPF_PRELOAD_LIB");
	const char *extra[] = { preload, stats_env, policy_env, heap_env,
				"USPF_MIN_SIZE=64K", asan_lib ? "ASAN_OPTIONS=detect_leaks=0" : NULL,
				NULL };
	struct result plain, under;
	char *stats = stats_path();
	size_t n;

	if (asan_lib)
		snprintf(preload, sizeof(preload), "LD_PRELOAD=%s %s", asan_lib, lib);
	else
		snprintf(preload, sizeof(preload), "LD_PRELOAD=%s", lib);
	snprintf(stats_env, sizeof(stats_env), "USPF_STATS=%s", stats);
	snprintf(policy_env, sizeof(policy_env), "USPF_POLICY=%s", policy);
	run(argv, NULL, in, &plain);
	run(argv, extra, in, &under);
	cr_assert_eq(under.status, plain.status, "%s: status %d under uspf, %d without; "
		     "stderr: %s", argv[0], under.status, plain.status, under.err);
	cr_assert_eq(under.out_len, plain.out_len, "%s (%s): %zu bytes of output, %zu without",
		     argv[0], policy, under.out_len, plain.out_len);
	cr_assert(!memcmp(under.out, plain.out, plain.out_len), "%s (%s): output differs",
		  argv[0], policy);
	n = read_stats(stats, lines, max);
	unlink(stats);
	check_one_line_per_pid(lines, n);
	result_free(&plain);
	result_free(&under);
	return n;
}

static char *target(const char *name)
{
	static char path[4][4200];
	static int next;
	char *p = path[next++ & 3];

	snprintf(p, sizeof(path[0]), "%s/%s", env_or_skip("USPF_TARGETS"), name);
	return p;
}

static void target_faults(const char *name, const char *policy, size_t want_procs)
{
	static struct stats_line lines[128];
	char *argv[] = { target(name), NULL };
	size_t n, procs;
	long long f;

	n = compare_run(argv, NULL, policy, lines, 128);
	f = faults_of(lines, n, name, &procs);
	cr_assert_eq(procs, want_procs, "%s: %zu stats lines, want %zu", name, procs, want_procs);
	for (size_t i = 0; i < n; i++)
		if (!strcmp(lines[i].program, name))
			cr_assert_gt(lines[i].faults, 0, "%s pid %ld: no faults served", name,
				     lines[i].pid);
	cr_log_info("%s (%s): %lld faults", name, policy, f);
}

TestSuite(preload, .timeout = 60);

Test(preload, mmap_family_round_trips)
{
	target_faults("t_mmap", "spf", 1);
}

Test(preload, threads_map_and_unmap)
{
	target_faults("t_threads", "spf", 1);
}

Test(preload, every_policy)
{
	static const char *const policies[] = {
		"spf", "mmap-lock", "spf-adaptive", "pervma-rwsem", "pervma-refcnt", "spf-v12",
	};

	for (size_t i = 0; i < sizeof(policies) / sizeof(policies[0]); i++) {
		target_faults("t_threads", policies[i], 1);
		target_faults("t_mmap", policies[i], 1);
	}
}

Test(preload, fork_child_sees_parent_data)
{
	/* parent and child each write a line, each with faults of its own */
	target_faults("t_fork", "spf", 2);
}

Test(preload, fork_while_threads_change_mappings)
{
	/* the parent and its 100 children, each of which _exit()s */
	target_faults("t_fork_threads", "spf", 101);
	heap_env = "USPF_HEAP=1";
	target_faults("t_fork_threads", "pervma-refcnt", 101);
}

/*
 * The userfaultfd selftests' stress, under every policy, with the uspf
 * heap: per-page mutexes and counters checked against a separate array,
 * mapping churn, read(2) into fresh memory, a forked child that checks
 * too (it _exit()s: its stats line is written all the same).
 */
Test(preload, uffd_stress_every_policy, .timeout = 240)
{
	static const char *const policies[] = {
		"spf", "mmap-lock", "spf-adaptive", "pervma-rwsem", "pervma-refcnt", "spf-v12",
	};

	heap_env = "USPF_HEAP=1";
	for (size_t i = 0; i < sizeof(policies) / sizeof(policies[0]); i++)
		target_faults("t_uffd_stress", policies[i], 2);
}

Test(preload, disabled_takes_nothing)
{
	const char *lib = env_or_skip("USPF_PRELOAD_LIB");
	static char preload[4200], stats_env[128];
	const char *extra[] = { preload, stats_env, "USPF_DISABLE=1", NULL };
	char *argv[] = { target("t_mmap"), NULL };
	char *stats = stats_path();
	struct stats_line lines[4];
	struct result plain, under;
	size_t n;

	snprintf(preload, sizeof(preload), "LD_PRELOAD=%s", lib);
	snprintf(stats_env, sizeof(stats_env), "USPF_STATS=%s", stats);
	run(argv, NULL, NULL, &plain);
	run(argv, extra, NULL, &under);
	cr_assert_eq(under.status, plain.status);
	cr_assert_eq(under.out_len, plain.out_len);
	cr_assert(!memcmp(under.out, plain.out, plain.out_len));
	n = read_stats(stats, lines, 4);
	cr_assert_eq(n, 1);
	cr_assert_eq(lines[0].faults, 0);
	unlink(stats);
	result_free(&plain);
	result_free(&under);
}

/* Run t_exit with `how`; the stats lines by pid, all from t_exit. */
static unsigned int lines_in(const char *s);
static bool have(const char *prog);

static size_t exit_lines(const char *how, struct stats_line *lines, size_t max)
{
	char *argv[] = { target("t_exit"), (char *)how, NULL };
	size_t n = compare_run(argv, NULL, "spf", lines, max);

	for (size_t i = 0; i < n; i++) {
		cr_assert_str_eq(lines[i].program, "t_exit");
		cr_assert_gt(lines[i].faults, 0, "%s: pid %ld: no faults", how, lines[i].pid);
	}
	return n;
}

/* One line per process however it leaves: exit(3), _exit(2), _Exit(3). */
Test(preload, stats_line_on_every_exit)
{
	struct stats_line lines[4];

	cr_assert_eq(exit_lines("return", lines, 4), 1);
	cr_assert_eq(exit_lines("_exit", lines, 4), 1);
	cr_assert_eq(exit_lines("_Exit", lines, 4), 1);
	/* a forked child faults on its own runtime: its own line */
	cr_assert_eq(exit_lines("fork", lines, 4), 2);
	/* a vfork()ed child shares the parent's runtime: no line of its own */
	cr_assert_eq(exit_lines("vfork", lines, 4), 1);
}

/*
 * An unprivileged user gets a user-mode-only userfaultfd: read(2) into a
 * registered page would fail with EFAULT, so uspf takes nothing and says
 * so in one line; the program (t_read: read(2) into fresh memory) runs
 * as without uspf.
 *
 * nobody may not reach the build tree (a clone under /root or in a
 * `mktemp -d` directory): t_read and the library run from copies in a
 * directory of their own (as_nobody.h), both runs the same program.
 */
Test(preload, user_mode_only_takes_nothing, .fini = t_nobody_cleanup)
{
	const char *lib = env_or_skip("USPF_PRELOAD_LIB");
	static char preload[PATH_MAX + 16], stats_env[128], reuid[32], regid[32];
	/*
	 * The library goes to t_read only: setpriv keeps its capabilities on
	 * its one thread (capset) before setresgid(), which glibc applies to
	 * every thread - uspf's handler threads would fail it (see uspf(7)).
	 * It still holds them when it execs: only env, exec'ing as nobody
	 * proper, would find a t_read that nobody cannot reach.
	 */
	char *plain_argv[] = { "setpriv", reuid, regid, "--clear-groups", "--",
			       NULL /* t_read */, NULL };
	char *argv[] = { "setpriv", reuid, regid, "--clear-groups", "--",
			 "env", preload, stats_env, "USPF_MIN_SIZE=64K", NULL /* t_read */, NULL };
	struct stats_line lines[4];
	struct result plain, under;
	char *stats, *all, *t_read;

	if (geteuid() != 0)
		cr_skip_test("needs root to drop to nobody");
	if (!have("setpriv"))
		cr_skip_test("setpriv missing");
	t_read = (char *)t_nobody_copy(target("t_read"));
	lib = t_nobody_copy(lib);
	plain_argv[5] = argv[9] = t_read;
	stats = stats_path();
	cr_assert_eq(chmod(stats, 0666), 0);
	snprintf(reuid, sizeof(reuid), "--reuid=%d", T_NOBODY);
	snprintf(regid, sizeof(regid), "--regid=%d", T_NOBODY);
	snprintf(preload, sizeof(preload), "LD_PRELOAD=%s", lib);
	snprintf(stats_env, sizeof(stats_env), "USPF_STATS=%s", stats);
	run(plain_argv, NULL, NULL, &plain);
	run(argv, NULL, NULL, &under);
	cr_assert_eq(plain.status, 0, "t_read as nobody: status %d; stderr: %s", plain.status,
		     plain.err);
	if (!strstr(under.err, "user-mode faults only")) {
		/* vm.unprivileged_userfaultfd=1: nobody gets a full one here */
		cr_assert_eq(under.status, 0, "status %d (plain %d); stdout: %s; stderr: %s",
			     under.status, plain.status, under.out, under.err);
		/*
		 * uspf served t_read's faults: not a library that never loaded
		 * (ld.so only warns and goes on), nor one that took nothing
		 * without saying why
		 */
		cr_assert_eq(read_stats(stats, lines, 4), 1, "no stats line from t_read: "
			     "was %s preloaded? stderr: %s", lib, under.err);
		cr_assert_gt(lines[0].faults, 0, "no faults served, no user-mode-only line; "
			     "stderr: %s", under.err);
		unlink(stats);
		t_nobody_cleanup();	/* .fini does not run after a skip */
		cr_skip_test("user-mode-only path not reachable here");
	}
	cr_assert_eq(under.status, 0, "stderr: %s", under.err);
	cr_assert_eq(lines_in(under.err), 1, "one line, not: %s", under.err);
	cr_assert_eq(under.out_len, plain.out_len);
	cr_assert(!memcmp(under.out, plain.out, plain.out_len), "output differs");
	cr_assert_eq(read_stats(stats, lines, 4), 1);
	cr_assert_eq(lines[0].faults, 0);
	all = slurp(stats, NULL);
	cr_assert(strstr(all, "\"uspf\":false"), "%s", all);
	free(all);
	unlink(stats);
	result_free(&plain);
	result_free(&under);
}

Test(preload, read_into_fresh_memory)
{
	target_faults("t_read", "spf", 1);
}

Test(preload, signal_handler_during_faults)
{
	target_faults("t_signal", "spf", 1);
}

/*
 * The malloc family itself: threads allocating and freeing every size
 * class and large blocks (checksummed contents, same output as glibc's),
 * and the small-object timing program's checks (never its timings).
 */
Test(preload, malloc_family_stress)
{
	static const char *const policies[] = { "spf", "pervma-refcnt" };
	static struct stats_line lines[16];
	char *stress[] = { target("malloc_stress"), NULL };
	char *bench[] = { target("malloc_bench"), "-q", NULL };
	size_t n, procs;
	long long f;

	heap_env = "USPF_HEAP=1";
	for (size_t i = 0; i < sizeof(policies) / sizeof(policies[0]); i++) {
		n = compare_run(stress, NULL, policies[i], lines, 16);
		f = faults_of(lines, n, "malloc_stress", &procs);
		cr_log_info("malloc_stress (%s): %lld faults in %zu processes", policies[i], f, procs);
		cr_assert_gt(f, 1000, "malloc_stress (%s): %lld faults", policies[i], f);
	}
	n = compare_run(bench, NULL, "spf", lines, 16);
	f = faults_of(lines, n, "malloc_bench", &procs);
	cr_assert_gt(f, 0, "malloc_bench: no faults served");
}

/* The same targets with the malloc family on (preload/malloc.c) too. */
Test(preload, targets_with_uspf_heap)
{
	heap_env = "USPF_HEAP=1";
	target_faults("t_mmap", "spf", 1);
	target_faults("t_threads", "spf", 1);
	target_faults("t_fork", "spf", 2);
	target_faults("t_read", "spf", 1);
	target_faults("t_signal", "spf", 1);
}

/* Under AddressSanitizer's runtime (LD_PRELOAD with libasan first). */
Test(preload, under_asan_runtime)
{
	static char path[4096];
	char *argv[] = { "gcc", "-print-file-name=libasan.so", NULL };
	struct result r;
	size_t n;

	run(argv, NULL, NULL, &r);
	n = r.out_len;
	while (n && (r.out[n - 1] == '\n' || r.out[n - 1] == ' '))
		n--;
	if (r.status || !n || r.out[0] != '/' || n >= sizeof(path))
		cr_skip_test("no libasan.so (gcc -print-file-name)");
	memcpy(path, r.out, n);
	path[n] = '\0';
	result_free(&r);
	if (access(path, R_OK))
		cr_skip_test("no libasan.so");
	asan_lib = path;
	target_faults("t_mmap", "spf", 1);
	target_faults("t_threads", "pervma-refcnt", 1);
	target_faults("t_fork", "spf", 2);
}

/* ---- programs no one here wrote ---------------------------------------- */

static const char *big_input(void)
{
	static char path[] = "/tmp/uspf-preload-in-XXXXXX";
	FILE *f;
	int fd = mkstemp(path), i;

	cr_assert(fd >= 0);
	f = fdopen(fd, "w");
	cr_assert(f);
	/* ~2.4 MB of lines in a scrambled order */
	for (i = 0; i < 120000; i++)
		fprintf(f, "%07u line %d %s\n", (unsigned int)((i * 7919u) % 1000003u), i,
			i % 3 ? "alpha" : "omega");
	fclose(f);
	return path;
}

static bool have(const char *prog)
{
	char *argv[] = { "sh", "-c", NULL, NULL };
	char cmd[256];
	struct result r;
	bool ok;

	snprintf(cmd, sizeof(cmd), "command -v %s >/dev/null", prog);
	argv[2] = cmd;
	run(argv, NULL, NULL, &r);
	ok = r.status == 0;
	result_free(&r);
	return ok;
}

static long long real_program(char *const argv[], const char *in, const char *tag)
{
	struct stats_line lines[64];
	size_t n, i;
	long long total = 0;

	n = compare_run(argv, in, "spf", lines, 64);
	cr_assert_gt(n, 0, "%s: no stats lines", tag);
	for (i = 0; i < n; i++) {
		total += lines[i].faults;
		cr_log_info("%s: %s (pid %ld): %lld faults", tag, lines[i].program, lines[i].pid,
			    lines[i].faults);
	}
	cr_log_info("%s: %lld faults served by uspf in %zu processes", tag, total, n);
	return total;
}

Test(preload, sort_large_file)
{
	const char *in = big_input();
	char *argv[] = { "sort", (char *)in, NULL };

	real_program(argv, NULL, "sort");
	unlink(in);
}

Test(preload, gzip_round_trip)
{
	const char *in = big_input();
	char cmd[256];
	char *argv[] = { "sh", "-c", cmd, NULL };

	if (!have("gzip"))
		cr_skip_test("gzip missing");
	snprintf(cmd, sizeof(cmd), "gzip -c %s | gunzip | cksum; gzip -c %s | wc -c", in, in);
	real_program(argv, NULL, "gzip");
	unlink(in);
}

/* A compressor whose buffers are big enough to come from uspf: thousands of faults. */
Test(preload, xz_round_trip)
{
	const char *in = big_input();
	char cmd[256];
	char *argv[] = { "sh", "-c", cmd, NULL };

	if (!have("xz"))
		cr_skip_test("xz missing");
	heap_env = "USPF_HEAP=1";	/* its buffers come from malloc */
	snprintf(cmd, sizeof(cmd), "xz -c %s | xz -dc | cksum; xz -c %s | wc -c", in, in);
	cr_assert_geq(real_program(argv, NULL, "xz"), 1000, "xz ran on too little uspf memory");
	unlink(in);
}

Test(preload, shell_pipeline)
{
	char *argv[] = { "sh", "-c", "seq 1 200000 | sort -r | head", NULL };

	real_program(argv, NULL, "pipeline");
}

Test(preload, python_computation)
{
	char *argv[] = { "python3", "-c", "print(sum(i*i for i in range(10**6)))", NULL };
	struct stats_line lines[64];
	size_t n, i;
	long long f = 0;

	if (!have("python3"))
		cr_skip_test("python3 missing");
	n = compare_run(argv, NULL, "spf", lines, 64);
	for (i = 0; i < n; i++)
		f += lines[i].faults;
	/* CPython maps its arenas (256 KiB and up) with mmap: those fault through uspf */
	cr_assert_gt(f, 0, "python3: no faults served");
	cr_log_info("python3: %lld faults", f);
}

/*
 * The acceptance run: with the malloc family on, real programs on every
 * policy give the same output, with thousands of faults served by uspf.
 */
Test(preload, real_programs_uspf_heap_every_policy)
{
	static const char *const policies[] = {
		"spf", "mmap-lock", "spf-adaptive", "pervma-rwsem", "pervma-refcnt", "spf-v12",
	};
	const char *in = big_input();
	char cmd[512];
	char *argv[] = { "sh", "-c", cmd, NULL };
	struct stats_line lines[64];
	bool py = have("python3"), gz = have("gzip"), xz = have("xz");
	char xz_cmd[160] = "";

	/* the compressor of the acceptance: its buffers are uspf heap */
	if (xz)
		snprintf(xz_cmd, sizeof(xz_cmd), "xz -1 -c %s | xz -dc | cksum;", in);
	snprintf(cmd, sizeof(cmd), "sort %s | cksum; %s %s seq 1 200000 | sort -r | head; %s",
		 in, gz ? "gzip -c /dev/null >/dev/null;" : "", xz_cmd,
		 py ? "python3 -c 'print(sum(i*i for i in range(10**6)))'" : "true");
	heap_env = "USPF_HEAP=1";
	for (size_t i = 0; i < sizeof(policies) / sizeof(policies[0]); i++) {
		long long total = 0, sort_faults;
		size_t n = compare_run(argv, NULL, policies[i], lines, 64), procs;

		for (size_t j = 0; j < n; j++)
			total += lines[j].faults;
		sort_faults = faults_of(lines, n, "sort", &procs);
		cr_log_info("%s: %lld faults in %zu processes, sort %lld", policies[i], total, n,
			    sort_faults);
		cr_assert_gt(sort_faults, 1000, "%s: sort: %lld faults", policies[i], sort_faults);
		if (xz) {
			long long xz_faults = faults_of(lines, n, "xz", &procs);

			cr_log_info("%s: xz %lld faults in %zu processes", policies[i], xz_faults,
				    procs);
			cr_assert_gt(xz_faults, 1000, "%s: xz: %lld faults", policies[i], xz_faults);
		}
	}
	if (gz) {
		snprintf(cmd, sizeof(cmd), "gzip -c %s | gunzip | cksum", in);
		compare_run(argv, NULL, "spf", lines, 64);
	}
	unlink(in);
}

/* ---- configuration ----------------------------------------------------- */

static unsigned int lines_in(const char *s)
{
	unsigned int n = 0;

	for (; *s; s++)
		n += *s == '\n';
	return n;
}

/* A bad value: exit 2, one line naming the variable, the program never runs. */
static void check_refused(char *const argv[], const char *const extra[], const char *marker,
			  const char *name)
{
	struct result r;
	struct stat sb;

	run(argv, extra, NULL, &r);
	cr_assert_eq(r.status, 2, "status %d; stderr: %s", r.status, r.err);
	cr_assert_eq(lines_in(r.err), 1, "stderr: %s", r.err);
	cr_assert(strstr(r.err, name), "stderr does not name %s: %s", name, r.err);
	cr_assert_neq(stat(marker, &sb), 0, "the program ran");
	result_free(&r);
}

Test(preload, bad_policy_refused)
{
	static char preload[4200];
	const char *bin = env_or_skip("USPF_BIN");
	const char *lib = env_or_skip("USPF_PRELOAD_LIB");
	char marker[] = "/tmp/uspf-preload-marker-XXXXXX";
	char cmd[128];
	int fd = mkstemp(marker);

	cr_assert(fd >= 0);
	close(fd);
	unlink(marker);
	snprintf(cmd, sizeof(cmd), "touch %s", marker);
	{
		char *argv[] = { (char *)bin, "run", "--policy", "nope", "--", "sh", "-c", cmd, NULL };

		check_refused(argv, NULL, marker, "USPF_POLICY");
	}
	{
		const char *extra[] = { "USPF_POLICY=nope", NULL };
		char *argv[] = { (char *)bin, "run", "--", "sh", "-c", cmd, NULL };

		check_refused(argv, extra, marker, "USPF_POLICY");
	}
	{
		const char *extra[] = { preload, "USPF_POLICY=nope", NULL };
		char *argv[] = { "sh", "-c", cmd, NULL };

		snprintf(preload, sizeof(preload), "LD_PRELOAD=%s", lib);
		check_refused(argv, extra, marker, "USPF_POLICY");
	}
	{
		const char *extra[] = { preload, "USPF_MIN_SIZE=12Q", NULL };
		char *argv[] = { "sh", "-c", cmd, NULL };

		check_refused(argv, extra, marker, "USPF_MIN_SIZE");
	}
	{
		char *argv[] = { (char *)bin, "run", "--handlers", "999", "--", "sh", "-c", cmd, NULL };

		check_refused(argv, NULL, marker, "--handlers");
	}
	{
		char *argv[] = { (char *)bin, "run", "--spin-us", "10001", "--", "sh", "-c", cmd, NULL };

		check_refused(argv, NULL, marker, "--spin-us");
	}
	{
		const char *extra[] = { preload, "USPF_SPIN_US=-1", NULL };
		char *argv[] = { "sh", "-c", cmd, NULL };

		check_refused(argv, extra, marker, "USPF_SPIN_US");
	}
}

Test(preload, uspf_run_end_to_end)
{
	const char *bin = env_or_skip("USPF_BIN");
	char *stats = stats_path();
	char *t = target("t_mmap");
	char *plain_argv[] = { t, NULL };
	char *argv[] = { (char *)bin, "run", "--no-heap", "--policy", "pervma-rwsem",
			 "--handlers", "2", "--intake", "poll", "--fault-around", "4",
			 "--min-size", "1M", "--stats", stats, "--", t, NULL };
	char *table_argv[] = { (char *)bin, "run", "--no-heap", "--stats", "-", "--", t, NULL };
	struct stats_line lines[8];
	struct result plain, under, table;
	size_t n, procs;

	run(plain_argv, NULL, NULL, &plain);
	run(argv, NULL, NULL, &under);
	cr_assert_eq(under.status, plain.status, "stderr: %s", under.err);
	cr_assert_eq(under.out_len, plain.out_len);
	cr_assert(!memcmp(under.out, plain.out, plain.out_len));
	n = read_stats(stats, lines, 8);
	cr_assert_gt(faults_of(lines, n, "t_mmap", &procs), 0);
	cr_assert_eq(procs, 1);
	{
		char *s = slurp(stats, NULL);

		cr_assert(strstr(s, "\"policy\":\"pervma-rwsem\""), "%s", s);
		free(s);
	}
	unlink(stats);
	run(table_argv, NULL, NULL, &table);
	cr_assert_eq(table.status, 0);
	cr_assert(strstr(table.err, "faults"), "no table on stderr: %s", table.err);
	result_free(&plain);
	result_free(&under);
	result_free(&table);
}

Test(preload, uspf_run_missing_program)
{
	const char *bin = env_or_skip("USPF_BIN");
	char *argv[] = { (char *)bin, "run", "--", "/nonexistent/uspf-no-such-program", NULL };
	struct result r;

	run(argv, NULL, NULL, &r);
	cr_assert_eq(r.status, 127, "status %d: %s", r.status, r.err);
	result_free(&r);
}

/* A number field of a stats line ("name":123), or -1; null is -2. */
static long long stats_field(const char *line, const char *name)
{
	char key[64];
	const char *p;

	snprintf(key, sizeof(key), "\"%s\":", name);
	p = strstr(line, key);
	if (!p)
		return -1;
	p += strlen(key);
	return strncmp(p, "null", 4) ? strtoll(p, NULL, 10) : -2;
}

/*
 * What uspf cost the program, per process: faults served, pages
 * installed, the mean handling time and the mean round trip, sampled by
 * the probe while the program faults (USPF_STATS turns it on).
 */
Test(preload, stats_say_what_uspf_cost)
{
	const char *bin = env_or_skip("USPF_BIN");
	char *stats = stats_path(), *t = target("t_faulting"), *line, *s;
	char *argv[] = { (char *)bin, "run", "--stats", stats, "--", t, "500", NULL };
	char *table_argv[] = { (char *)bin, "run", "--stats", "-", "--", t, "300", NULL };
	struct result r;
	long long faults, pages, handle, trips, trip;

	run(argv, NULL, NULL, &r);
	cr_assert_eq(r.status, 0, "stderr: %s", r.err);
	result_free(&r);
	s = slurp(stats, NULL);
	line = strstr(s, "\"program\":\"t_faulting\"");
	cr_assert_not_null(line, "%s", s);
	faults = stats_field(line, "faults");
	pages = stats_field(line, "pages");
	handle = stats_field(line, "handle_mean_ns");
	trips = stats_field(line, "round_trip_probes");
	trip = stats_field(line, "round_trip_mean_ns");
	cr_assert_gt(faults, 1000, "%s", line);
	cr_assert_geq(pages, faults, "%s", line);
	cr_assert_gt(handle, 0, "%s", line);
	cr_assert_geq(trips, 1, "half a second of faults and no probe: %s", line);
	cr_assert_gt(trip, 0, "%s", line);
	/* The probe's own faults are not the program's. */
	cr_assert_eq(stats_field(line, "round_trips"), trips, "%s", line);
	free(s);
	unlink(stats);
	run(table_argv, NULL, NULL, &r);
	cr_assert_eq(r.status, 0);
	cr_assert(strstr(r.err, "faults served") && strstr(r.err, "pages installed") &&
		  strstr(r.err, "handling mean") && strstr(r.err, "round trip mean"),
		  "table: %s", r.err);
	result_free(&r);
}
