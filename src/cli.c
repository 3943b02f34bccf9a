/* SPDX-License-Identifier: MIT */
/*
 * cli.c - flag checking shared by the uspf subcommands.
 */
#include <errno.h>
#include <stdlib.h>

#include "cli.h"

int cli_bad_value(const char *cmd, const char *flag, const char *val, const char *accepts)
{
	fprintf(stderr, "uspf %s: %s '%s': expected %s\n", cmd, flag, val, accepts);
	return 2;
}

int cli_parse_ull(const char *s, unsigned long long min, unsigned long long max,
		  unsigned long long *out)
{
	unsigned long long v;
	char *end;

	if (*s < '0' || *s > '9')
		return -EINVAL;
	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno || *end || v < min || v > max)
		return -EINVAL;
	*out = v;
	return 0;
}

void cli_accepted_options(FILE *out, const struct option *options)
{
	const struct option *opt;

	for (opt = options; opt->name; opt++)
		fprintf(out, "%s--%s", opt == options ? "" : ", ", opt->name);
}
