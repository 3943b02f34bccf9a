/* SPDX-License-Identifier: MIT */
/*
 * mm.h - struct uspf_mm, the model of the kernel's mm_struct, and its
 * mmap_lock API (include/linux/mmap_lock.h).
 *
 *   field                          written under
 *   -----------------------------  -------------------------------------------
 *   index (the VMA tree)           mmap write lock
 *   mm_lock_seq                    mmap write lock (odd while it is held)
 *   page_table_lock                - (a spinlock; guards anon_vma installs)
 *   mmap_sem_contention_jiffies    any fault path that found the lock contended
 *   spf_abort_jiffies/aborts,      speculative aborts (slow path only)
 *   spf_backoff_until
 *   ptl                            - (the PTL stripes)
 */
#ifndef USPF_MM_H
#define USPF_MM_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>

#include "mm/inject.h"
#include "mm/jiffies.h"
#include "mm/ptl.h"
#include "mm/rwsem.h"
#include "mm/seqcount.h"
#include "mm/vma_index.h"

struct uffd;
struct vma_lock_ops;
struct uspf_mm;

/*
 * The named steps where a protocol's window is a few instructions wide.
 * With debug checks on, stall_at() stalls there now and then (the
 * torture arms a seeded subset of them per run, mm->stall_armed), or
 * calls a test's hook, which can hold the thread there while the test
 * plays the writer (mm->stall_fn: deterministic interleavings).
 */
enum stall_point {
	STALL_LOOKUP,		/* found the VMA under RCU; not yet locked or referenced */
	STALL_CHECKED,		/* a check made; the lock it guards not yet taken */
	STALL_LOCKED,		/* read-locked or referenced; its re-checks not yet made */
	STALL_SNAPSHOT,		/* speculative: fields read, not yet filled */
	STALL_FILLED,		/* the page filled; the commit's PTL not yet taken */
	STALL_END_READ,		/* vma_end_read(): the lock word released, up_read() not returned */
	STALL_PROT_CHANGED,	/* writer: mprotect's page tables changed, PTLs released */
	NR_STALL_POINTS
};

typedef void (*stall_fn)(struct uspf_mm *mm, enum stall_point p, void *arg);

struct uspf_mm {
	struct rw_semaphore mmap_lock;
	seqcount_t mm_lock_seq;		/* bumped by mmap write lock and unlock */
	struct vma_index index;
	pthread_spinlock_t page_table_lock;
	struct uffd *uffd;
	unsigned int hz;
	bool anon_vma_at_mmap;

	/* Arcangeli: when the fault path last found mmap_lock held (seed 003). */
	_Atomic unsigned long mmap_sem_contention_jiffies;

	/* spf backoff: aborts counted per jiffy; a storm sends faults to the mm lock. */
	unsigned int adaptive_window;	/* spf-adaptive: jiffies of speculation after contention */
	unsigned int spf_backoff_aborts;
	unsigned int spf_backoff_jiffies;
	_Atomic unsigned long spf_abort_jiffies;
	_Atomic unsigned int spf_aborts;
	_Atomic unsigned long spf_backoff_until;
	_Atomic bool spf_backoff_armed;

	_Atomic uint64_t vma_writes;	/* vm_write_begin() calls that wrote vm_sequence */
	bool vm_sequence;		/* the policy's writers keep vm_sequence */
	_Atomic uint64_t vma_write_waits;	/* vma_start_write() that waited for readers */
	bool immap_reorder;		/* Yu Ma: i_mmap_rwsem only around the file link */
	_Atomic uint64_t i_mmap_holds;	/* i_mmap_rwsem write holds by this mm, */
	_Atomic uint64_t i_mmap_hold_ns;	/* their total time, */
	_Atomic uint64_t i_mmap_contended;	/* and those that had to wait */

	/* Bug injection and invariant checks (inject.h). */
	_Atomic uint64_t inject;	/* switched while handlers run: atomics, relaxed */
	atomic_bool debug_checks;
	_Atomic uint64_t violations;
	atomic_bool violation_ready;
	char violation[256];
	const struct vma_lock_ops *vma_lock;	/* the policy's per-VMA lock, or NULL */
	_Atomic uint64_t stall_armed;	/* stall points the torture stalls at (0: all) */
	_Atomic stall_fn stall_fn;	/* a test's hook at every stall point, or NULL */
	void *stall_arg;

	/* Its own pages: the model above can be made read-only (inject.h). */
	struct ptl_table ptl __attribute__((aligned(4096)));
};

/*
 * rcutorture's trick: with debug checks on (the torture), stall now and
 * then at the points where a protocol's window is a few instructions wide
 * (between finding a VMA and locking it, between a check and the lock it
 * guards), so that writers get to run inside it.  Thread-local state: no
 * shared write, and nothing at all when debug checks are off.
 */
void torture_stall(uint64_t max_ns);

static inline bool mm_debug_checks(const struct uspf_mm *mm)
{
	return atomic_load_explicit((atomic_bool *)&mm->debug_checks, memory_order_relaxed);
}


void mm_stall(struct uspf_mm *mm, enum stall_point p);
const char *stall_point_name(enum stall_point p);

static inline void stall_at(struct uspf_mm *mm, enum stall_point p)
{
	if (__builtin_expect(mm_debug_checks(mm), 0))
		mm_stall(mm, p);
}

/* Record an invariant violation (debug checks); the first is described. */
void mm_violation(struct uspf_mm *mm, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

/* Debug checks: check the state invariants now (takes the mmap lock for read). */
void mm_check_invariants(struct uspf_mm *mm);

int mm_init(struct uspf_mm *mm, struct uffd *uffd, unsigned int hz, bool anon_vma_at_mmap,
	    unsigned int backoff_aborts, unsigned int backoff_jiffies);
/* Unmap nothing: the caller has removed every VMA. */
void mm_destroy(struct uspf_mm *mm);

static inline bool inject(const struct uspf_mm *mm, unsigned int which)
{
	uint64_t mask = atomic_load_explicit((_Atomic uint64_t *)&mm->inject, memory_order_relaxed);

	return __builtin_expect(mask != 0, 0) && (mask & (1ull << which));
}

static inline unsigned long mm_jiffies(const struct uspf_mm *mm)
{
	return uspf_jiffies(mm->hz);
}

static inline void mmap_read_lock(struct uspf_mm *mm)
{
	down_read(&mm->mmap_lock);
}

static inline bool mmap_read_trylock(struct uspf_mm *mm)
{
	return down_read_trylock(&mm->mmap_lock);
}

/* Arcangeli's down_read_trylock_exclusive(): fails, writing nothing, if held at all. */
static inline bool mmap_read_trylock_exclusive(struct uspf_mm *mm)
{
	return down_read_trylock_exclusive(&mm->mmap_lock);
}

static inline void mmap_read_unlock(struct uspf_mm *mm)
{
	up_read(&mm->mmap_lock);
}

/*
 * The per-VMA locks' clock: a VMA is write-locked while its vm_lock_seq
 * equals this (both per-VMA policies read it the same way).
 */
static inline unsigned int mm_lock_seq(struct uspf_mm *mm)
{
	return raw_read_seqcount(&mm->mm_lock_seq);
}

static inline void mmap_write_lock(struct uspf_mm *mm)
{
	down_write(&mm->mmap_lock);
	write_seqcount_begin(&mm->mm_lock_seq);
}

static inline void mmap_write_unlock(struct uspf_mm *mm)
{
	write_seqcount_end(&mm->mm_lock_seq);
	up_write(&mm->mmap_lock);
}

/* Downgrade releases every VMA write lock too (vma_end_write_all()). */
static inline void mmap_write_downgrade(struct uspf_mm *mm)
{
	if (!inject(mm, INJ_RWSEM_DOWNGRADE_KEEPS_LOCKS))
		write_seqcount_end(&mm->mm_lock_seq);
	downgrade_write(&mm->mmap_lock);
}

static inline void mmap_assert_write_locked(struct uspf_mm *mm)
{
	if (!rwsem_is_write_locked(&mm->mmap_lock))
		__builtin_trap();
}

static inline void mmap_assert_locked(struct uspf_mm *mm)
{
	if (!rwsem_is_locked(&mm->mmap_lock))
		__builtin_trap();
}

/* find_vma() under RCU or the mmap lock: the VMA containing addr, or NULL. */
struct uspf_vma *vma_lookup(struct uspf_mm *mm, unsigned long addr);

#endif
