/* SPDX-License-Identifier: MIT */
/*
 * stats.c - counter names, histogram buckets, percentiles.
 */
#include <math.h>

#include "stats.h"

static const char *const counter_names[USPF_NR_COUNTERS] = {
	[USPF_C_FAULTS] = "faults",
	[USPF_C_PAGES] = "pages",
	/* The v12 series' names: vmstat speculative_pgfault, trace points spf_vma_*. */
	[USPF_C_SPF_ATTEMPT] = "spf_attempt",
	[USPF_C_SPF_SUCCESS] = "speculative_pgfault",
	[USPF_C_SPF_ABORT_NO_VMA] = "spf_abort_no_vma",
	[USPF_C_SPF_ABORT_SEQ_ODD] = "spf_vma_changed_seq_odd",
	[USPF_C_SPF_ABORT_NOT_ANON] = "spf_vma_notsup",
	[USPF_C_SPF_ABORT_NO_ANON_VMA] = "spf_vma_noanon",
	[USPF_C_SPF_ABORT_OUTSIDE] = "spf_vma_changed_outside",
	[USPF_C_SPF_ABORT_SNAPSHOT] = "spf_vma_changed_snapshot",
	[USPF_C_SPF_ABORT_VMA_CHANGED] = "spf_vma_changed",
	[USPF_C_SPF_BACKOFF] = "spf_backoff",
	[USPF_C_MMAP_LOCK_FALLBACK] = "mmap_lock_fallback",
	[USPF_C_MMAP_LOCK_FAULT] = "mmap_lock_fault",
	[USPF_C_ANON_VMA_PREPARE] = "anon_vma_prepare",
	[USPF_C_RETRY] = "retries",
	[USPF_C_EEXIST] = "eexist",
	[USPF_C_ENOENT] = "enoent",
	[USPF_C_ESRCH] = "esrch",
	[USPF_C_BAD_AREA] = "bad_area",
	[USPF_C_FILL_ERROR] = "fill_error",
	[USPF_C_COPY_ERROR] = "copy_error",
	[USPF_C_WAKE] = "wakes",
	[USPF_C_FOLIO_EXTRA_PAGES] = "folio_extra_pages",
	[USPF_C_INTAKE_READS] = "intake_reads",
	[USPF_C_INTAKE_ERRORS] = "intake_errors",
	[USPF_C_INTAKE_SPIN_HITS] = "intake_spin_hits",
	[USPF_C_INTAKE_SPIN_MISSES] = "intake_spin_misses",
	[USPF_C_INTAKE_SPIN_NS] = "intake_spin_ns",
	[USPF_C_INTAKE_SPIN_BACKOFFS] = "intake_spin_backoffs",
	[USPF_C_HANDLE_NS] = "handle_ns",
	[USPF_C_ROUND_TRIPS] = "round_trips",
	[USPF_C_ROUND_TRIP_NS] = "round_trip_ns",
	[USPF_C_MMAP_LOCK_CONTENDED] = "mmap_lock_contended",
	[USPF_C_MMAP_LOCK_SPUN] = "mmap_lock_spun",
	[USPF_C_ADAPTIVE_ATTEMPT] = "adaptive_attempt",
	[USPF_C_ADAPTIVE_SUCCESS] = "adaptive_success",
	[USPF_C_ADAPTIVE_ABORT_NO_VMA] = "adaptive_abort_no_vma",
	[USPF_C_ADAPTIVE_ABORT_NOT_ANON] = "adaptive_abort_not_anon",
	[USPF_C_ADAPTIVE_ABORT_NO_ANON_VMA] = "adaptive_abort_no_anon_vma",
	[USPF_C_ADAPTIVE_ABORT_OUTSIDE] = "adaptive_abort_outside_vma",
	[USPF_C_ADAPTIVE_ABORT_VMA_CHANGED] = "adaptive_abort_vma_changed",
	[USPF_C_VMA_WRITES] = "vma_writes",
	[USPF_C_VMA_LOCK_SUCCESS] = "vma_lock_success",
	[USPF_C_VMA_LOCK_ABORT] = "vma_lock_abort",
	[USPF_C_VMA_LOCK_RETRY] = "vma_lock_retry",
	[USPF_C_VMA_LOCK_MISS] = "vma_lock_miss",
	[USPF_C_VMA_LOCK_WRONG_MM] = "vma_lock_wrong_mm",
	[USPF_C_SPF_CONTENDED] = "mmap_lock_contended_spf",
	[USPF_C_SPF_WINDOW] = "spf_window",
	[USPF_C_VMA_WRITE_WAITS] = "vma_write_waits",
	[USPF_C_I_MMAP_LOCKS] = "i_mmap_locks",
	[USPF_C_I_MMAP_HOLD_NS] = "i_mmap_hold_ns",
	[USPF_C_I_MMAP_CONTENDED] = "i_mmap_contended",
	[USPF_C_FAULTS_ENDED] = "faults_ended",
};

const char *uspf_counter_name(enum uspf_counter c)
{
	if ((unsigned int)c >= USPF_NR_COUNTERS)
		return NULL;
	return counter_names[c];
}

unsigned int hist_bucket(uint64_t ns)
{
	unsigned int lg, sub;

	if (ns < USPF_HIST_SUB)
		return (unsigned int)ns;	/* exact below 8 ns */
	lg = 63u - (unsigned int)__builtin_clzll(ns);
	sub = (unsigned int)(ns >> (lg - 3)) & (USPF_HIST_SUB - 1);
	return lg * USPF_HIST_SUB + sub;
}

uint64_t hist_bucket_value(unsigned int b)
{
	unsigned int lg = b / USPF_HIST_SUB, sub = b % USPF_HIST_SUB;

	if (lg < 3)
		return b < USPF_HIST_SUB ? b : 0;
	return (1ull << lg) | ((uint64_t)sub << (lg - 3));
}

uint64_t uspf_stats_percentile(const struct uspf_stats *st, double pct)
{
	uint64_t total = 0, seen = 0, want;
	unsigned int b;

	/*
	 * NaN is no percentile: it passes both clamps below, and converting
	 * it to an integer is undefined (x86-64 gives 2^63: the top bucket).
	 */
	if (!st || isnan(pct))
		return 0;
	for (b = 0; b < USPF_HIST_BUCKETS; b++)
		total += st->hist[b];
	if (!total)
		return 0;
	if (pct < 0)
		pct = 0;
	if (pct > 100)
		pct = 100;
	want = (uint64_t)(pct / 100.0 * (double)total + 0.5);
	if (want == 0)
		want = 1;
	for (b = 0; b < USPF_HIST_BUCKETS; b++) {
		seen += st->hist[b];
		if (seen >= want)
			return hist_bucket_value(b);
	}
	return hist_bucket_value(USPF_HIST_BUCKETS - 1);
}
