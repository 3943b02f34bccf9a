/* SPDX-License-Identifier: MIT */
/*
 * cli.c - flag checking shared by the uspf subcommands.
 */
#include <errno.h>
#include <stdlib.h>

#include "cmd/cli.h"

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

int cli_unknown_option(const char *cmd, char **argv, int opt, const struct option *options)
{
	const struct option *o;

	if (opt != '?') {
		fprintf(stderr, "uspf %s: option '%s' needs a value (see uspf %s --help)\n",
			cmd, argv[optind - 1], cmd);
		return 2;
	}
	if (optopt && optopt < 256)
		fprintf(stderr, "uspf %s: unknown option '-%c' (accepted: ", cmd, optopt);
	else
		fprintf(stderr, "uspf %s: unknown or ambiguous option '%s' (accepted: ", cmd,
			argv[optind - 1]);
	for (o = options; o->name; o++)
		fprintf(stderr, "%s--%s", o == options ? "" : ", ", o->name);
	fprintf(stderr, ")\n");
	return 2;
}
