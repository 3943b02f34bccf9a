/* SPDX-License-Identifier: MIT */
/*
 * probe.h - the round trip a fault costs, sampled (probe.c).
 */
#ifndef USPF_PROBE_H
#define USPF_PROBE_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

struct uspf;

struct uspf_probe {
	unsigned long page;		/* registered, the runtime's own; 0: no probe */
	pthread_t thread;
	bool started;
	pthread_mutex_t lock;
	pthread_cond_t wake;
	bool stop;			/* under lock */
	atomic_uint_fast64_t trips;	/* round trips timed */
	atomic_uint_fast64_t trip_ns;	/* ... their nanoseconds */
};

/* Every cfg.probe_ms, a fault on a page of the runtime's own, timed.  0 or -errno. */
int probe_start(struct uspf *u);
/* Before the handlers stop: the probe may be inside a fault. */
void probe_stop(struct uspf *u);

/* The handlers: a fault at addr is the probe's (installed, not counted as the program's). */
static inline bool probe_fault(const struct uspf_probe *p, unsigned long addr)
{
	return p->page && addr == p->page;
}

#endif
