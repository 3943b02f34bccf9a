/* SPDX-License-Identifier: MIT */
/*
 * mm/seqcount.h - sequence counts, as the kernel's seqcount_t.
 *
 * Writers must be serialised by the caller (for VMAs: the mmap write lock).
 * The count is odd while a write is in progress.  Readers take a snapshot
 * with raw_read_seqcount() (which does not wait for an even value: the
 * speculative fault path aborts on odd instead of spinning) and check it
 * with read_seqcount_retry().
 */
#ifndef USPF_SEQCOUNT_H
#define USPF_SEQCOUNT_H

#include <stdatomic.h>
#include <stdbool.h>

typedef struct {
	_Atomic unsigned int sequence;
} seqcount_t;

static inline void seqcount_init(seqcount_t *s)
{
	atomic_init(&s->sequence, 0);
}

/* The current value, ordered before the reads that follow it. */
static inline unsigned int raw_read_seqcount(const seqcount_t *s)
{
	return atomic_load_explicit((_Atomic unsigned int *)&s->sequence, memory_order_acquire);
}

/* Wait for an even value, then snapshot it. */
static inline unsigned int read_seqcount_begin(const seqcount_t *s)
{
	unsigned int seq;

	while ((seq = raw_read_seqcount(s)) & 1)
		__builtin_ia32_pause();
	return seq;
}

/* True when the reads since `start` may have seen a writer's changes. */
static inline bool read_seqcount_retry(const seqcount_t *s, unsigned int start)
{
	atomic_thread_fence(memory_order_acquire);	/* smp_rmb() */
	return atomic_load_explicit((_Atomic unsigned int *)&s->sequence,
				    memory_order_relaxed) != start;
}

static inline void write_seqcount_begin(seqcount_t *s)
{
	atomic_store_explicit(&s->sequence,
			      atomic_load_explicit(&s->sequence, memory_order_relaxed) + 1,
			      memory_order_relaxed);
	atomic_thread_fence(memory_order_release);	/* smp_wmb(): count before data */
}

static inline void write_seqcount_end(seqcount_t *s)
{
	atomic_thread_fence(memory_order_release);	/* smp_wmb(): data before count */
	atomic_store_explicit(&s->sequence,
			      atomic_load_explicit(&s->sequence, memory_order_relaxed) + 1,
			      memory_order_relaxed);
}

#endif
