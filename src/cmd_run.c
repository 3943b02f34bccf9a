/* SPDX-License-Identifier: MIT */
/*
 * cmd_run.c - `uspf run [options] -- PROGRAM ARGS...`: run an unmodified
 * program with libuspf-preload.so injected.
 *
 * Every option becomes a USPF_* variable and is checked, with every USPF_*
 * variable already set, by the same code the library runs: a bad value is
 * one line and exit status 2, and the program is never started.
 */
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "preload_env.h"

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
		"                    pervma-rwsem, pervma-refcnt\n"
		"  --handlers N      USPF_HANDLERS: handler threads, 0 = online CPUs (default)\n"
		"  --intake K        USPF_INTAKE: uring (default), poll, busy\n"
		"  --fault-around N  USPF_FAULT_AROUND: pages per fault, 1 to 512 (default 1)\n"
		"  --hz N            USPF_HZ: jiffies per second, 10 to 10000 (default 250)\n"
		"  --min-size BYTES  USPF_MIN_SIZE: smallest mapping taken, K/M/G suffixes\n"
		"                    (default 64K)\n"
		"  --heap            USPF_HEAP=1: malloc served from uspf memory (default)\n"
		"  --no-heap         USPF_HEAP=0: keep the system allocator\n"
		"  --stats FILE|-    USPF_STATS: each process appends one JSON line to FILE\n"
		"                    at exit; '-' prints a table on stderr\n"
		"  -h, --help        this text\n"
		"\n"
		"exit status: PROGRAM's; 2 for a bad option or variable; 127 if PROGRAM\n"
		"cannot be run.\n");
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

int cmd_run(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "policy", required_argument, NULL, 'p' },
		{ "handlers", required_argument, NULL, 'n' },
		{ "intake", required_argument, NULL, 'i' },
		{ "fault-around", required_argument, NULL, 'f' },
		{ "hz", required_argument, NULL, 'z' },
		{ "min-size", required_argument, NULL, 'm' },
		{ "heap", no_argument, NULL, 'H' },
		{ "no-heap", no_argument, NULL, 'N' },
		{ "stats", required_argument, NULL, 's' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	char lib[PATH_MAX + 16], msg[320], *preload;
	const char *old, *var = NULL, *flag = NULL;
	int c, ret;

	opterr = 0;
	optind = 1;
	while ((c = getopt_long(argc, argv, "+:h", opts, NULL)) != -1) {
		switch (c) {
		case 'p': var = "USPF_POLICY"; flag = "--policy"; break;
		case 'n': var = "USPF_HANDLERS"; flag = "--handlers"; break;
		case 'i': var = "USPF_INTAKE"; flag = "--intake"; break;
		case 'f': var = "USPF_FAULT_AROUND"; flag = "--fault-around"; break;
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
	ret = preload_path(lib, sizeof(lib));
	if (ret || access(lib, R_OK)) {
		fprintf(stderr, "uspf run: cannot find libuspf-preload.so (tried %s): set "
			"USPF_PRELOAD\n", lib);
		return 1;
	}
	old = getenv("LD_PRELOAD");
	if (old && *old) {
		size_t n = strlen(lib) + strlen(old) + 2;

		preload = malloc(n);
		if (!preload) {
			fprintf(stderr, "uspf run: out of memory\n");
			return 1;
		}
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
