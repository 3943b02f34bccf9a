/* SPDX-License-Identifier: MIT */
/*
 * helpers.c - the examples' shared option checks and closing report.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "helpers.h"

const char *ex_prog = "example";

bool ex_parse_ulong(const char *s, unsigned long min, unsigned long max, unsigned long *out)
{
	unsigned long v;
	char *end;

	if (*s < '0' || *s > '9')
		return false;
	errno = 0;
	v = strtoul(s, &end, 10);
	if (errno || *end || v < min || v > max)
		return false;
	*out = v;
	return true;
}

bool ex_parse_size(const char *s, unsigned long long min, unsigned long long max,
		   unsigned long long *out)
{
	unsigned long long v;
	char *end;

	if (*s < '0' || *s > '9')
		return false;
	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno)
		return false;
	switch (*end) {
	case 'G': v <<= 10; /* fall through */
	case 'M': v <<= 10; /* fall through */
	case 'K': v <<= 10; end++; break;
	}
	if (*end || v < min || v > max)
		return false;
	*out = v;
	return true;
}

bool ex_parse_seconds(const char *s, double *out)
{
	char *end;
	double v;

	if ((*s < '0' || *s > '9') && *s != '.')
		return false;
	errno = 0;
	v = strtod(s, &end);
	if (errno || *end || !(v >= 0.001 && v <= 3600))
		return false;
	*out = v;
	return true;
}

int ex_bad_value(const char *flag, const char *val, const char *expected)
{
	fprintf(stderr, "%s: %s '%s': expected %s\n", ex_prog, flag, val, expected);
	return 2;
}

int ex_bad_policy(const char *val, bool all)
{
	unsigned int p;

	fprintf(stderr, "%s: --policy '%s': expected %sone of ", ex_prog, val, all ? "all or " : "");
	for (p = 0; p < USPF_NR_POLICIES; p++)
		fprintf(stderr, "%s%s", p ? ", " : "", uspf_policy_name(p));
	fprintf(stderr, "\n");
	return 2;
}

uint64_t ex_next_random(uint64_t *s)
{
	*s ^= *s << 13;
	*s ^= *s >> 7;
	*s ^= *s << 17;
	return *s;
}

/* A fault is counted when it arrives: wait (briefly) until each has ended. */
int ex_settled_stats(struct uspf *u, struct uspf_stats *st)
{
	unsigned int tries;
	int ret = 0;

	for (tries = 0; tries < 1000; tries++) {
		ret = uspf_stats(u, st);
		if (ret || st->counters[USPF_C_FAULTS_ENDED] == st->counters[USPF_C_FAULTS])
			break;
		usleep(1000);
	}
	return ret;
}

uint64_t ex_faults(struct uspf *u)
{
	struct uspf_stats st;

	if (uspf_stats(u, &st))
		return 0;
	return st.counters[USPF_C_FAULTS];
}

void ex_print_stats(const struct uspf_stats *st)
{
	static const struct { const char *title, *prefix; } paths[] = {
		{ "speculative:", "spf_" },
		{ "per-VMA lock:", "vma_lock_" },
		{ "mmap_lock:", "mmap_lock_" },
		{ "other:", "" },
	};
	bool shown[USPF_NR_COUNTERS] = { false };
	unsigned int p, c, n;

	shown[USPF_C_FAULTS] = shown[USPF_C_PAGES] = shown[USPF_C_FAULTS_ENDED] = true;
	printf("uspf: policy %s, %u handlers, intake %s\n", uspf_policy_name(st->policy),
	       st->handlers, uspf_intake_name(st->intake));
	printf("  faults %llu, pages %llu; handling p50 %llu ns, p99 %llu ns\n",
	       (unsigned long long)st->counters[USPF_C_FAULTS],
	       (unsigned long long)st->counters[USPF_C_PAGES],
	       (unsigned long long)uspf_stats_percentile(st, 50),
	       (unsigned long long)uspf_stats_percentile(st, 99));
	for (p = 0; p < sizeof(paths) / sizeof(paths[0]); p++) {
		for (c = 0, n = 0; c < USPF_NR_COUNTERS; c++) {
			const char *name = uspf_counter_name(c);

			if (shown[c] || !st->counters[c] ||
			    strncmp(name, paths[p].prefix, strlen(paths[p].prefix)))
				continue;
			shown[c] = true;
			if (n++)
				printf(", ");
			else
				printf("  %-14s", paths[p].title);
			printf("%s %llu", name, (unsigned long long)st->counters[c]);
		}
		if (n)
			printf("\n");
	}
}

void ex_report(struct uspf *u)
{
	struct uspf_stats st;
	int ret = ex_settled_stats(u, &st);

	if (ret) {
		fprintf(stderr, "uspf_stats: %s\n", strerror(-ret));
		return;
	}
	ex_print_stats(&st);
}
