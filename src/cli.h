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
/* "--a, --b, ..." from a getopt_long table. */
void cli_accepted_options(FILE *out, const struct option *options);

#endif
