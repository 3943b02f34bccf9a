/* SPDX-License-Identifier: MIT */
/*
 * tests/mm/test_jiffies.c - the user-space tick counter: its rate, monotonicity,
 * scaling with hz, and the kernel's wrap-safe comparisons.
 *
 * The clock is CLOCK_MONOTONIC_COARSE (one kernel tick of resolution) and
 * the box may be a loaded 2-CPU VM, so rates are checked within 50%..200%.
 */
#include <criterion/criterion.h>
#include <limits.h>
#include <time.h>

#include "mm/jiffies.h"

TestSuite(jiffies, .timeout = 30);

/* Measured jiffies per second of CLOCK_MONOTONIC, over ~200 ms. */
static double measured_hz(unsigned int hz)
{
	unsigned long j0, j1;
	uint64_t t0, t1;

	j0 = uspf_jiffies(hz);
	t0 = uspf_now_ns();
	do {
		struct timespec ts = { 0, 10000000 };

		nanosleep(&ts, NULL);
		t1 = uspf_now_ns();
	} while (t1 - t0 < 200000000ull);
	j1 = uspf_jiffies(hz);
	return (double)(j1 - j0) * 1e9 / (double)(t1 - t0);
}

static void assert_rate(unsigned int hz)
{
	double got = measured_hz(hz);

	cr_assert(got >= 0.5 * hz && got <= 2.0 * hz,
		  "hz %u: measured %.1f jiffies/s", hz, got);
}

Test(jiffies, rate_default_hz)
{
	assert_rate(USPF_HZ_DEFAULT);
}

Test(jiffies, rate_high_hz)
{
	assert_rate(1000);
}

Test(jiffies, monotonic)
{
	unsigned long prev = uspf_jiffies(USPF_HZ_MAX), now;
	int i;

	for (i = 0; i < 200000; i++) {
		now = uspf_jiffies(USPF_HZ_MAX);
		cr_assert(!time_before(now, prev), "went back: %lu after %lu", now, prev);
		cr_assert_geq(now, prev);
		prev = now;
	}
}

/* One clock, two units: hz 10000 reads 100 times hz 100, within a tick. */
Test(jiffies, hz_scales)
{
	unsigned long lo0, hi, lo1;

	lo0 = uspf_jiffies(100);
	hi = uspf_jiffies(10000);
	lo1 = uspf_jiffies(100);
	cr_assert(lo0 <= hi / 100 && hi / 100 <= lo1,
		  "%lu <= %lu <= %lu", lo0, hi / 100, lo1);
	cr_assert_gt(uspf_jiffies(USPF_HZ_MIN), 0);
}

Test(jiffies, compare_plain)
{
	unsigned long a = 1000, b = 1001;

	cr_assert(time_after(b, a));
	cr_assert(!time_after(a, b));
	cr_assert(time_before(a, b));
	cr_assert(!time_before(b, a));
	cr_assert(!time_after(a, a));
	cr_assert(!time_before(a, a));
	cr_assert(time_after_eq(a, a));
	cr_assert(time_before_eq(a, a));
	cr_assert(time_after_eq(b, a));
	cr_assert(!time_after_eq(a, b));
	cr_assert(time_before_eq(a, b));
	cr_assert(!time_before_eq(b, a));
}

/* After the counter wraps, 1 is later than ULONG_MAX. */
Test(jiffies, compare_across_wrap)
{
	unsigned long before_wrap = ULONG_MAX, after_wrap = 1;

	cr_assert(time_after(after_wrap, before_wrap));
	cr_assert(!time_after(before_wrap, after_wrap));
	cr_assert(time_before(before_wrap, after_wrap));
	cr_assert(!time_before(after_wrap, before_wrap));
	cr_assert(time_after_eq(after_wrap, before_wrap));
	cr_assert(!time_after_eq(before_wrap, after_wrap));
	cr_assert(time_before_eq(before_wrap, after_wrap));
	cr_assert(!time_before_eq(after_wrap, before_wrap));
	cr_assert(time_after(0ul, ULONG_MAX));
	cr_assert(time_before(ULONG_MAX - 5, 3ul));
	/* LONG_MAX apart: the farthest that still compares the right way. */
	cr_assert(time_after((unsigned long)LONG_MAX, 0ul));
	cr_assert(time_before(0ul, (unsigned long)LONG_MAX));
}
