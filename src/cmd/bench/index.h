/* SPDX-License-Identifier: MIT */
/*
 * cmd/bench/index.h - the VMA index alone (`uspf bench --workload index`).
 */
#ifndef USPF_BENCH_INDEX_H
#define USPF_BENCH_INDEX_H

#include <stddef.h>
#include <stdint.h>

/* Microbenchmark of the VMA index: insert/lookup/erase of n ranges. */
struct bench_index_result { size_t n; double insert_ns, lookup_ns, erase_ns; };

/*
 * Insert n random non-overlapping page ranges in random order, look up n
 * random addresses inside them (each under its own rcu_read_lock(), as a
 * fault would), then erase them all in another random order.  Each figure
 * is the average over its whole loop, timed with CLOCK_MONOTONIC.  The same
 * seed gives the same ranges and orders.
 * Returns 0, -EINVAL (n == 0), -ENOMEM, or -EIO if the index answered wrong.
 */
int bench_index_run(size_t n, uint64_t seed, struct bench_index_result *r);

#endif
