/* SPDX-License-Identifier: MIT */
/*
 * handler.h - handler threads: take fault messages in, hand each to the
 * policy, batch the wakes.
 *
 * Everything here is private to its thread (counters, histogram, buffers,
 * the wake list): the fast path writes no shared cacheline.  uspf_stats()
 * reads the counters racily (relaxed loads); each is a monotonic count.
 */
#ifndef USPF_HANDLER_H
#define USPF_HANDLER_H

#include <pthread.h>
#include <stdint.h>

#include "uspf.h"

struct uspf;
struct uffd_intake;

struct wake_range {
	unsigned long start;
	unsigned long end;
};

struct uspf_handler {
	struct uspf *u;
	unsigned int id;
	pthread_t thread;
	bool started;
	void *buf;			/* fill buffer: folio_pages pages */
	struct wake_range *wakes;	/* ranges to UFFDIO_WAKE after this batch */
	unsigned int nr_wakes;
	unsigned int max_wakes;
	bool dontwake;			/* resolving this batch with *_MODE_DONTWAKE */
	uint64_t batch_start_ns;
	int intake_kind;		/* enum uffd_intake_kind in use */
	int error;			/* why the thread stopped early, -errno */
	uint64_t counters[USPF_NR_COUNTERS];
	uint64_t hist[USPF_HIST_BUCKETS];
} __attribute__((aligned(64)));

/* Per-thread counting: owner-only writes, relaxed so stats may read them. */
static inline void count_add(struct uspf_handler *h, enum uspf_counter c, uint64_t n)
{
	__atomic_store_n(&h->counters[c], __atomic_load_n(&h->counters[c], __ATOMIC_RELAXED) + n,
			 __ATOMIC_RELAXED);
}

static inline void count_event(struct uspf_handler *h, enum uspf_counter c)
{
	count_add(h, c, 1);
}

int handler_start(struct uspf *u, struct uspf_handler *h, unsigned int id);
void handler_join(struct uspf_handler *h);
/* Queue [start, end) for UFFDIO_WAKE at the end of the current batch. */
void handler_queue_wake(struct uspf_handler *h, unsigned long start, unsigned long end);
void handler_flush_wakes(struct uspf_handler *h);

#endif
