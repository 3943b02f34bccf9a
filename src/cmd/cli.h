/* SPDX-License-Identifier: MIT */
/*
 * cli.h - what the uspf subcommands share to check their flags: every bad
 * value is one line naming the flag and what it accepts, exit status 2.
 */
#ifndef USPF_CLI_H
#define USPF_CLI_H

#include <getopt.h>
#include <stdio.h>

/* "uspf CMD: FLAG 'VAL': expected ACCEPTS"; returns 2, the usage exit status. */
int cli_bad_value(const char *cmd, const char *flag, const char *val, const char *accepts);
/* A decimal integer in [min, max], nothing else: 0 or -EINVAL. */
int cli_parse_ull(const char *s, unsigned long long min, unsigned long long max,
		  unsigned long long *out);
/*
 * getopt_long() returned '?' or ':' for argv[optind - 1]: one line saying
 * what was wrong and what is accepted; returns 2.
 */
int cli_unknown_option(const char *cmd, char **argv, int opt, const struct option *options);

#endif
