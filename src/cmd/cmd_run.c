/* SPDX-License-Identifier: MIT */
/*
 * cmd/cmd_run.c - `uspf run [options] -- PROGRAM ARGS...`: run an unmodified
 * program with libuspf-preload.so injected.
 *
 * Every option becomes a USPF_* variable and is checked, with every USPF_*
 * variable already set, by the same code the library runs: a bad value is
 * one line and exit status 2, and the program is never started.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cmd/cli.h"
#include "cmd/cmd_run.h"
#include "preload/env.h"
#include "uffd/uffd.h"

#ifndef PKGLIBDIR
#define PKGLIBDIR "/usr/local/lib/uspf"
#endif

static void run_usage(FILE *out)
{
	fprintf(out,
		"usage: uspf run [options] [--] PROGRAM [ARGS...]\n"
		"\n"
		"Run PROGRAM with its anonymous memory under uspf (libuspf-preload.so).\n"
		"\n"
		"options (each sets the USPF_* variable named; children inherit it):\n"
		"  --policy P        USPF_POLICY: spf (default), mmap-lock, spf-adaptive,\n"
		"                    pervma-rwsem, pervma-refcnt, spf-v12\n"
		"  --handlers N      USPF_HANDLERS: handler threads, 0 = one per two online\n"
		"                    CPUs (default)\n"
		"  --intake K        USPF_INTAKE: poll (default), uring, busy\n"
		"  --spin-us N       USPF_SPIN_US: how long an idle handler looks for the next\n"
		"                    fault before it sleeps, 0 to 10000 (default 50)\n"
		"  --folio-pages N   USPF_FOLIO_PAGES: pages installed per fault, 1 to 512\n"
		"                    (default 1, as the kernel; more: a large-folio analogue;\n"
		"                    --fault-around, USPF_FAULT_AROUND: the old names)\n"
		"  --hz N            USPF_HZ: jiffies per second, 10 to 10000 (default 250)\n"
		"  --min-size BYTES  USPF_MIN_SIZE: smallest mapping taken, K/M/G suffixes\n"
		"                    (default 64K)\n"
		"  --heap            USPF_HEAP=1: malloc served from uspf memory (default)\n"
		"  --no-heap         USPF_HEAP=0: keep the system allocator\n"
		"  --stats FILE|-    USPF_STATS: each process appends one JSON line to FILE\n"
		"                    at exit; '-' prints a table on stderr\n"
		"  -h, --help        this text\n"
		"\n"
		"exit status: PROGRAM's; 2 for a bad option or variable (an unwritable\n"
		"--stats file, a USPF_PRELOAD that is not there); 127 if PROGRAM cannot\n"
		"be run.\n");
}

/* The preload library: $USPF_PRELOAD, the build tree, or the installed one. */
static int preload_path(char *buf, size_t len)
{
	const char *env = getenv("USPF_PRELOAD");
	char self[PATH_MAX];
	ssize_t n;
	char *slash;

	if (env && *env) {
		if (env[0] != '/') {
			if (!realpath(env, self))
				return -errno;
			snprintf(buf, len, "%s", self);
		} else {
			snprintf(buf, len, "%s", env);
		}
		return 0;
	}
	n = readlink("/proc/self/exe", self, sizeof(self) - 1);
	if (n > 0) {
		self[n] = '\0';
		slash = strrchr(self, '/');
		if (slash) {
			*slash = '\0';
			/* libtool's wrapper runs the real binary from .libs/ */
			n = snprintf(buf, len, "%s/.libs/libuspf-preload.so", self);
			if (n > 0 && (size_t)n < len && !access(buf, R_OK))
				return 0;
			n = snprintf(buf, len, "%s/libuspf-preload.so", self);
			if (n > 0 && (size_t)n < len && strstr(self, "/.libs") && !access(buf, R_OK))
				return 0;
		}
	}
	snprintf(buf, len, "%s/libuspf-preload.so", PKGLIBDIR);
	return 0;
}

/*
 * The stats file: made absolute now (each process of the run appends to
 * the same file, wherever it changes directory) and opened once for
 * append, so that a path that cannot be written is an error before the
 * program starts, not a line silently lost at its exit.
 */
static int stats_check(const char *path, char *abs, size_t len)
{
	char cwd[PATH_MAX];
	int fd, n;

	if (!strcmp(path, "-")) {
		snprintf(abs, len, "-");
		return 0;
	}
	if (path[0] == '/')
		n = snprintf(abs, len, "%s", path);
	else if (getcwd(cwd, sizeof(cwd)))
		n = snprintf(abs, len, "%s/%s", cwd, path);
	else
		return -errno;
	if (n < 0 || (size_t)n >= len)
		return -ENAMETOOLONG;
	fd = open(abs, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
	if (fd < 0)
		return -errno;
	close(fd);
	return 0;
}

/*
 * Without the privilege for a full userfaultfd uspf takes nothing (a
 * user-mode-only one would make read(2) into fresh memory fail): say so
 * once for the whole run, not once per process, and turn it off.
 */
static void user_mode_only_once(void)
{
	struct uffd u;
	const char *off = getenv("USPF_DISABLE");

	if ((off && !strcmp(off, "1")) || uffd_open(&u, 0, NULL))
		return;
	if (u.how == UFFD_VIA_SYSCALL_USER_ONLY) {
		fprintf(stderr, "uspf: userfaultfd serves user-mode faults only (needs root or "
			"vm.unprivileged_userfaultfd=1 for kernel faults): uspf is off\n");
		setenv("USPF_DISABLE", "1", 1);
	}
	uffd_close(&u);
}

/* An ASan runtime must come first in LD_PRELOAD: then ours goes after it. */
static bool names_asan(const char *preload)
{
	return strstr(preload, "libasan") || strstr(preload, "libclang_rt.asan");
}

int cmd_run(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "policy", required_argument, NULL, 'p' },
		{ "handlers", required_argument, NULL, 'n' },
		{ "intake", required_argument, NULL, 'i' },
		{ "spin-us", required_argument, NULL, 'S' },
		{ "folio-pages", required_argument, NULL, 'f' },
		{ "fault-around", required_argument, NULL, 'f' },	/* the old name */
		{ "hz", required_argument, NULL, 'z' },
		{ "min-size", required_argument, NULL, 'm' },
		{ "heap", no_argument, NULL, 'H' },
		{ "no-heap", no_argument, NULL, 'N' },
		{ "stats", required_argument, NULL, 's' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	char lib[PATH_MAX + 16], msg[320], stats[PATH_MAX + 16], *preload;
	const char *old, *var = NULL, *flag = NULL;
	int c, ret;

	opterr = 0;
	optind = 1;
	while ((c = getopt_long(argc, argv, "+:h", opts, NULL)) != -1) {
		switch (c) {
		case 'p': var = "USPF_POLICY"; flag = "--policy"; break;
		case 'n': var = "USPF_HANDLERS"; flag = "--handlers"; break;
		case 'i': var = "USPF_INTAKE"; flag = "--intake"; break;
		case 'S': var = "USPF_SPIN_US"; flag = "--spin-us"; break;
		case 'f': var = "USPF_FOLIO_PAGES"; flag = "--folio-pages"; break;
		case 'z': var = "USPF_HZ"; flag = "--hz"; break;
		case 'm': var = "USPF_MIN_SIZE"; flag = "--min-size"; break;
		case 's': var = "USPF_STATS"; flag = "--stats"; break;
		case 'H': setenv("USPF_HEAP", "1", 1); continue;
		case 'N': setenv("USPF_HEAP", "0", 1); continue;
		case 'h':
			run_usage(stdout);
			return 0;
		default:
			/* One line, naming what is accepted, as bench and torture do. */
			return cli_unknown_option("run", argv, c, opts);
		}
		/* `--stats -- prog`: the value is missing, not a file named "--". */
		if (c == 's' && optarg[0] == '-' && optarg[1]) {
			fprintf(stderr, "uspf run: --stats needs a FILE or '-' (got '%s'; name a "
				"file that starts with '-' as ./%s)\n", optarg, optarg);
			return 2;
		}
		if (!*optarg || preload_env_check(var, optarg, msg, sizeof(msg))) {
			fprintf(stderr, "uspf run: %s %s (%s): %s\n", flag, optarg, var,
				*optarg ? msg : "empty value");
			return 2;
		}
		setenv(var, optarg, 1);
	}
	if (optind >= argc) {
		fprintf(stderr, "uspf run: no program given (uspf run [options] -- PROGRAM "
			"[ARGS...])\n");
		return 2;
	}
	/* Variables from the caller's environment are checked as the library would. */
	if (uspf_preload_parse_env(msg, sizeof(msg))) {
		fprintf(stderr, "uspf: %s\n", msg);
		return 2;
	}
	old = getenv("USPF_STATS");
	if (old && *old) {
		ret = stats_check(old, stats, sizeof(stats));
		if (ret) {
			fprintf(stderr, "uspf run: --stats %s (USPF_STATS): cannot write it: %s\n",
				old, strerror(-ret));
			return 2;
		}
		setenv("USPF_STATS", stats, 1);
	}
	ret = preload_path(lib, sizeof(lib));
	if (ret || access(lib, R_OK)) {
		fprintf(stderr, "uspf run: cannot find libuspf-preload.so (tried %s): set "
			"USPF_PRELOAD to its path\n", lib);
		return 2;
	}
	user_mode_only_once();
	old = getenv("LD_PRELOAD");
	if (old && *old) {
		size_t n = strlen(lib) + strlen(old) + 2;

		preload = malloc(n);
		if (!preload) {
			fprintf(stderr, "uspf run: out of memory\n");
			return 1;
		}
		if (names_asan(old))
			snprintf(preload, n, "%s:%s", old, lib);
		else
			snprintf(preload, n, "%s:%s", lib, old);
	} else {
		preload = lib;
	}
	setenv("LD_PRELOAD", preload, 1);
	fflush(NULL);
	execvp(argv[optind], argv + optind);
	fprintf(stderr, "uspf run: cannot run '%s': %s\n", argv[optind], strerror(errno));
	return 127;
}
