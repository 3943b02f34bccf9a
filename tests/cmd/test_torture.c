/* SPDX-License-Identifier: MIT */
/*
 * tests/cmd/test_torture.c - `uspf torture` as a program: every policy passes a short
 * run, every bug injection is caught, --list-injections lists them all, and
 * bad flags are usage errors.
 *
 * The command runs as a child process - USPF_BIN, the built `uspf`, set by
 * the Makefile's test environment - with its output captured in temporary
 * files and shown whenever a test fails, so a failing torture can be rerun
 * by hand from the seed it printed.
 */
#include <errno.h>
#include <fcntl.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "tests/helpers.h"
#include "hooks.h"

TestSuite(torture, .timeout = 120);

extern char **environ;

#define MAX_ARGS	24

/* Seconds an injected run may take to be caught, and the seeds tried. */
#define INJECT_SECONDS	"6"
static const char *const inject_seeds[] = { "1", "2", "3" };

struct run {
	int status;		/* exit status; 128 + signal if killed */
	char *out;		/* what it wrote on stdout */
	char *err;		/* ... and on stderr */
};

static const char *uspf_bin(void)
{
	const char *bin = getenv("USPF_BIN");

	if (!bin || !*bin)
		cr_skip_test("USPF_BIN is not set (run through `make check`)");
	return bin;
}

static char *slurp(int fd)
{
	struct stat st;
	char *buf;
	ssize_t n;
	size_t off = 0;

	cr_assert_eq(fstat(fd, &st), 0);
	buf = calloc(1, (size_t)st.st_size + 1);
	cr_assert_not_null(buf);
	lseek(fd, 0, SEEK_SET);
	while (off < (size_t)st.st_size &&
	       (n = read(fd, buf + off, (size_t)st.st_size - off)) > 0)
		off += (size_t)n;
	buf[off] = '\0';
	return buf;
}

static int temp_file(void)
{
	char name[] = "/tmp/uspf-torture-test.XXXXXX";
	int fd = mkstemp(name);

	cr_assert_geq(fd, 0, "mkstemp: %s", strerror(errno));
	unlink(name);
	return fd;
}

/* Run `uspf torture ARGS...` (NULL-terminated) and capture what it prints. */
static void run_torture(struct run *r, const char *const *args)
{
	const char *argv[MAX_ARGS + 3];
	posix_spawn_file_actions_t fa;
	int outfd = temp_file(), errfd = temp_file(), status, i, n = 0;
	pid_t pid;

	argv[n++] = uspf_bin();
	argv[n++] = "torture";
	for (i = 0; args[i]; i++) {
		cr_assert_lt(n, MAX_ARGS + 2);
		argv[n++] = args[i];
	}
	argv[n] = NULL;
	cr_assert_eq(posix_spawn_file_actions_init(&fa), 0);
	posix_spawn_file_actions_adddup2(&fa, outfd, STDOUT_FILENO);
	posix_spawn_file_actions_adddup2(&fa, errfd, STDERR_FILENO);
	i = posix_spawn(&pid, argv[0], &fa, NULL, (char *const *)argv, environ);
	posix_spawn_file_actions_destroy(&fa);
	cr_assert_eq(i, 0, "posix_spawn %s: %s", argv[0], strerror(i));
	while (waitpid(pid, &status, 0) < 0)
		cr_assert_eq(errno, EINTR, "waitpid: %s", strerror(errno));
	r->status = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
	r->out = slurp(outfd);
	r->err = slurp(errfd);
	close(outfd);
	close(errfd);
}

static void run_free(struct run *r)
{
	free(r->out);
	free(r->err);
}

/* ---- every policy survives a short torture ---- */

T_POLICY_PARAMS(torture, policy_passes)
ParameterizedTest(enum uspf_policy_id *policy, torture, policy_passes)
{
	const char *args[] = { "--policy", uspf_policy_name(*policy), "--seconds", "1.5",
			       "--seed", "1", NULL };
	struct run r;

	run_torture(&r, args);
	cr_assert_eq(r.status, 0, "uspf torture --policy %s --seconds 1.5 --seed 1: exit %d\n"
		     "stdout:\n%s\nstderr:\n%s", args[1], r.status, r.out, r.err);
	cr_assert_not_null(strstr(r.out, "\nPASS\n"), "no PASS line:\n%s", r.out);
	cr_assert_not_null(strstr(r.out, "seed:        1\n"), "the seed is not printed:\n%s", r.out);
	run_free(&r);
}

/* ---- every bug injection is caught ---- */

ParameterizedTestParameters(torture, injection_caught)
{
	static unsigned int idx[NR_INJECTIONS];
	unsigned int i;

	for (i = 0; i < NR_INJECTIONS; i++)
		idx[i] = i;
	return cr_make_param_array(unsigned int, idx, NR_INJECTIONS);
}

ParameterizedTest(unsigned int *which, torture, injection_caught)
{
	const struct uspf_inject_info *inj = &inject_info[*which];
	struct run r = { 0 };
	unsigned int k;

	/* A race needs luck: another seed gets another chance. */
	for (k = 0; k < sizeof(inject_seeds) / sizeof(inject_seeds[0]); k++) {
		const char *args[32] = { "--policy", inj->policy, "--inject", inj->name,
					 "--seconds", INJECT_SECONDS, "--seed", inject_seeds[k] };
		unsigned int n = 8, i;

		for (i = 0; inj->torture_args && inj->torture_args[i] && n < 31; i++)
			args[n++] = inj->torture_args[i];
		args[n] = NULL;

		if (k)
			run_free(&r);
		run_torture(&r, args);
		if (r.status == 1 && strstr(r.out, "\nFAIL: "))
			break;
		/* Anything but a clean verdict either way is a failure at once. */
		cr_assert_eq(r.status, 0, "uspf torture --policy %s --inject %s --seed %s: exit %d\n"
			     "stdout:\n%s\nstderr:\n%s", inj->policy, inj->name, inject_seeds[k],
			     r.status, r.out, r.err);
	}
	cr_assert_eq(r.status, 1, "injection %s (%s: %s) was not caught in %s s with seeds 1, 2, 3; "
		     "the last run:\nstdout:\n%s\nstderr:\n%s", inj->name, inj->policy, inj->what,
		     INJECT_SECONDS, r.out, r.err);
	run_free(&r);
}

/* ---- --list-injections ---- */

Test(torture, list_injections)
{
	const char *args[] = { "--list-injections", NULL };
	char want[256];
	unsigned int i;
	struct run r;
	char *line;

	run_torture(&r, args);
	cr_assert_eq(r.status, 0, "exit %d, stderr: %s", r.status, r.err);
	cr_assert_str_empty(r.err);
	for (i = 0; i < NR_INJECTIONS; i++) {
		snprintf(want, sizeof(want), "\n%s ", inject_info[i].name);
		line = strstr(r.out, want);
		cr_assert_not_null(line, "%s is not listed:\n%s", inject_info[i].name, r.out);
		line++;
		cr_assert(strstr(line, inject_info[i].policy) &&
			  strstr(line, inject_info[i].policy) < strchr(line, '\n'),
			  "%s: its policy %s is not on its line:\n%s", inject_info[i].name,
			  inject_info[i].policy, r.out);
		cr_assert(strstr(line, inject_info[i].what) &&
			  strstr(line, inject_info[i].what) < strchr(line, '\n'),
			  "%s: what it breaks is not on its line:\n%s", inject_info[i].name, r.out);
	}
	run_free(&r);
}

Test(torture, help)
{
	const char *args[] = { "--help", NULL };
	struct run r;

	run_torture(&r, args);
	cr_assert_eq(r.status, 0);
	cr_assert_not_null(strstr(r.out, "usage: uspf torture"), "%s", r.out);
	cr_assert_not_null(strstr(r.out, "--inject NAME"), "%s", r.out);
	cr_assert_str_empty(r.err);
	run_free(&r);
}

/* ---- usage errors: exit 2, one line on stderr naming the flag ---- */

struct bad_case {
	const char *args[6];
	const char *names;	/* what the message must mention */
};

static const struct bad_case bad_cases[] = {
	{ { "--seconds", "0" }, "--seconds" },
	{ { "--seconds", "abc" }, "--seconds" },
	{ { "--seconds", "-1" }, "--seconds" },
	{ { "--seconds", "1e3" }, "--seconds" },
	{ { "--seconds", "" }, "--seconds" },
	{ { "--seconds" }, "--seconds" },
	{ { "--seed", "-5" }, "--seed" },
	{ { "--seed", "x1" }, "--seed" },
	{ { "--threads", "0" }, "--threads" },
	{ { "--threads", "257" }, "--threads" },
	{ { "--writers", "65" }, "--writers" },
	{ { "--writers", "two" }, "--writers" },
	{ { "--mms", "0" }, "--mms" },
	{ { "--mms", "17" }, "--mms" },
	{ { "--slots", "0" }, "--slots" },
	{ { "--handlers", "257" }, "--handlers" },
	{ { "--handlers", "x" }, "--handlers" },
	{ { "--folio-pages", "0" }, "--folio-pages" },
	{ { "--fault-around", "513" }, "--folio-pages" },
	{ { "--policy", "nope" }, "--policy" },
	{ { "--inject", "nope" }, "--inject" },
	{ { "--policy", "spf", "--inject", "refcnt-no-mm-check" }, "--inject" },
	{ { "--watchdog", "0" }, "--watchdog" },
	{ { "--ops", "remap,,dontneed" }, "--ops" },
	{ { "--bogus" }, "--bogus" },
	{ { "-x" }, "-x" },
	{ { "stray" }, "stray" },
};

Test(torture, bad_flags)
{
	unsigned int i;
	struct run r;
	char *nl;

	for (i = 0; i < sizeof(bad_cases) / sizeof(bad_cases[0]); i++) {
		const struct bad_case *c = &bad_cases[i];

		run_torture(&r, c->args);
		cr_assert_eq(r.status, 2, "torture %s %s: exit %d, expected 2\nstderr: %s",
			     c->args[0], c->args[1] ? c->args[1] : "", r.status, r.err);
		cr_assert_str_empty(r.out, "torture %s: wrote on stdout: %s", c->args[0], r.out);
		nl = strchr(r.err, '\n');
		cr_assert(nl && nl[1] == '\0', "torture %s %s: expected one line on stderr, got: %s",
			  c->args[0], c->args[1] ? c->args[1] : "", r.err);
		cr_assert_not_null(strstr(r.err, c->names), "torture %s: the message does not name %s: %s",
				   c->args[0], c->names, r.err);
		run_free(&r);
	}
}
