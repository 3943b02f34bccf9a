/* SPDX-License-Identifier: MIT */
/*
 * uspf.c - the `uspf` command: global flags and the subcommand table.
 *
 *	uspf --help | --version
 *	uspf help [SUBCOMMAND]
 *	uspf SUBCOMMAND [options]
 *
 * Each subcommand is one function taking (argc, argv) with argv[0] set to
 * its name; it returns the exit status (0 ok, 1 failure, 2 usage error).
 */
#include "config.h"

#include <stdio.h>
#include <string.h>

#include "cmd/bench/bench.h"
#include "cmd/cmd_run.h"
#include "cmd/compare.h"
#include "cmd/torture.h"

struct subcommand {
	const char *name;
	int (*fn)(int argc, char **argv);
	const char *summary;
};

static const struct subcommand subcommands[] = {
	{ "bench", cmd_bench, "measure fault throughput and latency per policy, with references" },
	{ "run", cmd_run, "run an unmodified program with its memory under uspf (LD_PRELOAD)" },
	{ "compare", cmd_compare, "your program natively and under every policy, side by side" },
	{ "torture", cmd_torture, "random mapping changes against checked faults; PASS or the first FAIL" },
};

#define NR_SUBCOMMANDS (sizeof(subcommands) / sizeof(subcommands[0]))

static void usage(FILE *out)
{
	size_t i;

	fprintf(out,
		"usage: uspf [--help | --version]\n"
		"       uspf help [SUBCOMMAND]\n"
		"       uspf SUBCOMMAND [options]\n"
		"\n"
		"uspf resolves page faults in user space (userfaultfd) through a model of\n"
		"a kernel fault-path locking protocol.\n"
		"\n"
		"subcommands:\n");
	for (i = 0; i < NR_SUBCOMMANDS; i++)
		fprintf(out, "  %-10s %s\n", subcommands[i].name, subcommands[i].summary);
	fprintf(out, "\n'uspf SUBCOMMAND --help' describes a subcommand's options.\n");
}

static void accepted(FILE *out)
{
	size_t i;

	for (i = 0; i < NR_SUBCOMMANDS; i++)
		fprintf(out, "%s%s", i ? ", " : "", subcommands[i].name);
	fprintf(out, ", help");
}

static const struct subcommand *find_subcommand(const char *name)
{
	size_t i;

	for (i = 0; i < NR_SUBCOMMANDS; i++) {
		if (!strcmp(subcommands[i].name, name))
			return &subcommands[i];
	}
	return NULL;
}

static int unknown_subcommand(const char *name)
{
	fprintf(stderr, "uspf: unknown subcommand '%s' (accepted: ", name);
	accepted(stderr);
	fprintf(stderr, ")\n");
	return 2;
}

/* `uspf help [SUBCOMMAND]` */
static int cmd_help(int argc, char **argv)
{
	const struct subcommand *sc;
	char help[] = "--help";
	char *sub_argv[3];

	if (argc < 2) {
		usage(stdout);
		return 0;
	}
	if (argc > 2) {
		fprintf(stderr, "uspf help: takes at most one subcommand, got %d arguments\n",
			argc - 1);
		return 2;
	}
	sc = find_subcommand(argv[1]);
	if (!sc)
		return unknown_subcommand(argv[1]);
	sub_argv[0] = argv[1];
	sub_argv[1] = help;
	sub_argv[2] = NULL;
	return sc->fn(2, sub_argv);
}

int main(int argc, char **argv)
{
	const struct subcommand *sc;
	const char *arg;

	if (argc < 2) {
		usage(stderr);
		return 2;
	}
	arg = argv[1];
	if (!strcmp(arg, "--help") || !strcmp(arg, "-h")) {
		usage(stdout);
		return 0;
	}
	if (!strcmp(arg, "--version") || !strcmp(arg, "-V")) {
		printf("uspf %s\n", PACKAGE_VERSION);
		return 0;
	}
	if (arg[0] == '-') {
		fprintf(stderr, "uspf: unknown option '%s' (accepted: --help, --version, "
			"or a subcommand: ", arg);
		accepted(stderr);
		fprintf(stderr, ")\n");
		return 2;
	}
	if (!strcmp(arg, "help"))
		return cmd_help(argc - 1, argv + 1);
	sc = find_subcommand(arg);
	if (!sc)
		return unknown_subcommand(arg);
	return sc->fn(argc - 1, argv + 1);
}
