/* SPDX-License-Identifier: MIT */
/*
 * helpers.h - what every example shares, so that each program's own file
 * is its idea: option values checked the same way, the same closing
 * report of what uspf did.  As liburing's examples/helpers.c.
 */
#ifndef USPF_EXAMPLES_HELPERS_H
#define USPF_EXAMPLES_HELPERS_H

#include <stdbool.h>
#include <stdint.h>
#include <uspf.h>

/* The program's name in error lines ("arena: --size 'x': ..."); set it first. */
extern const char *ex_prog;

/* A number within [min, max]; ex_parse_size also takes a K, M or G suffix. */
bool ex_parse_ulong(const char *s, unsigned long min, unsigned long max, unsigned long *out);
bool ex_parse_size(const char *s, unsigned long long min, unsigned long long max,
		   unsigned long long *out);
/* Seconds, 0.001 to 3600. */
bool ex_parse_seconds(const char *s, double *out);

/* One line on stderr naming the flag, the value and what is accepted; returns 2. */
int ex_bad_value(const char *flag, const char *val, const char *expected);
/* The same for --policy, listing the policies (and "all" first if `all`). */
int ex_bad_policy(const char *val, bool all);

/* xorshift64: a reproducible stream from a non-zero seed. */
uint64_t ex_next_random(uint64_t *s);

/* uspf_stats() once every fault taken in has ended (up to a second). */
int ex_settled_stats(struct uspf *u, struct uspf_stats *st);
/* Faults so far (0 if the stats cannot be read). */
uint64_t ex_faults(struct uspf *u);
/*
 * What uspf did: policy, handlers, intake, faults and pages, handling
 * p50/p99, then one line per fault path - the counters whose names start
 * with spf_ (Dufour's speculative path), vma_lock_ (per-VMA locks) or
 * mmap_lock_ (the mm-wide lock) - and one for the rest.
 */
void ex_print_stats(const struct uspf_stats *st);
/* ex_settled_stats() then ex_print_stats(), or the error on stderr. */
void ex_report(struct uspf *u);

#endif
