/* SPDX-License-Identifier: MIT */
/*
 * mm/jiffies.h - the kernel's tick counter, in user space.
 *
 * uspf_jiffies(hz) is CLOCK_MONOTONIC_COARSE in units of 1/hz seconds: a
 * vDSO read with no syscall and no shared write, cheap enough for the fault
 * path.  Its resolution is the coarse clock's (the kernel tick, see
 * clock_getres(2)): with hz above the kernel's CONFIG_HZ, jiffies advance in
 * steps.  Comparisons use the kernel's wrap-safe time_after() family.
 */
#ifndef USPF_JIFFIES_H
#define USPF_JIFFIES_H

#include <stdbool.h>
#include <stdint.h>
#include <time.h>

#define USPF_HZ_DEFAULT 250
#define USPF_HZ_MIN 10
#define USPF_HZ_MAX 10000

static inline unsigned long uspf_jiffies(unsigned int hz)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
	return (unsigned long)ts.tv_sec * hz +
	       (unsigned long)ts.tv_nsec / (1000000000ul / hz);
}

#define time_after(a, b)	((long)((b) - (a)) < 0)
#define time_before(a, b)	time_after(b, a)
#define time_after_eq(a, b)	((long)((a) - (b)) >= 0)
#define time_before_eq(a, b)	time_after_eq(b, a)

/* Nanoseconds of CLOCK_MONOTONIC, for latency measurement. */
static inline uint64_t uspf_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

#endif
