/* SPDX-License-Identifier: MIT */
/*
 * stats.h - counters and the handling-time histogram.
 *
 * The histogram is log-linear: bucket = (floor(log2 ns), next 3 bits), so
 * any percentile is within 12.5% of the true value, with no allocation
 * and one increment per fault.
 */
#ifndef USPF_STATS_H
#define USPF_STATS_H

#include <stdint.h>

#include "uspf.h"

unsigned int hist_bucket(uint64_t ns);
uint64_t hist_bucket_value(unsigned int b);	/* the bucket's lower bound, ns */

static inline void hist_add(uint64_t *hist, uint64_t ns)
{
	unsigned int b = hist_bucket(ns);

	__atomic_store_n(&hist[b], __atomic_load_n(&hist[b], __ATOMIC_RELAXED) + 1,
			 __ATOMIC_RELAXED);
}

#endif
